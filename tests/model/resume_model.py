# The reference for subscribers that come back with lastEventId (docs/channels.md, "Resuming after a disconnect"): what each must have received; pure Python, no I/O.
"""Given every message published (each publisher's numbered messages, with the eventId its publish
was answered with) and what a subscriber received on each of its connections, `check_subscriber`
lists the ways the subscriber's history departs from what the documents promise.

Rules taken from the documents:
- eventIds are ordered in publish order across the daemon: `EPOCH-SEQ`, SEQ the message's sequence
  number in the daemon (docs/channels.md). The model orders messages by SEQ; clients of photond
  treat the id as opaque, the model may not, since "published after" is what it checks.
- A connection that resumes from event E receives every message on its channel or pattern
  published after E, oldest first, then the live ones: no gap, no duplicate at the seam
  (docs/protocol.md, "Resuming"). On the socket and the WebSocket: the subscribe's result first,
  the replayed messages marked `"replay":true`, then the live ones, unmarked.
- Unless the daemon cannot vouch for that, that is, a message after E on a matching channel has
  left the window: on the socket and the WebSocket it then sends `refresh_needed` and only live
  messages; on `/events` an `events_gap`, then the messages still kept after E on the stream's
  channels, then live (docs/ui.md, "/events").
- The window (WindowSimulation) keeps each channel's last `--replay-channel-messages`, and in all
  `--replay-messages`: when over, "the channel keeping the most messages (or bytes; of equals, the
  one with the oldest message) gives up its oldest" (docs/ui.md). The model replays that rule over
  the publish log, so it knows, at each point of the run, the newest message each channel has lost.

The daemon decides at an instant T the test cannot see; the model bounds it between what was
answered before the connection opened (and what the connection was sent as replayed) and the first
live message (or what had been sent when the refresh was read), and checks both ways: a refresh
must be needed at the latest possible T, a resume without one must not be needed at the earliest.
"""

import bisect
import collections
import dataclasses
from typing import Dict, List, Optional, Tuple

from protocol_model import matches

# How much a report quotes of a connection around its first divergence.
_CONTEXT_ITEMS = 6


def sequence_of(event_id):
    """The SEQ of `EPOCH-SEQ`; raises ValueError for anything else."""
    epoch, dash, seq = event_id.rpartition("-")
    if not dash or not epoch or not seq.isdigit():
        raise ValueError(f"not an event id of the form EPOCH-SEQ: {event_id!r}")
    return int(seq)


@dataclasses.dataclass(frozen=True)
class Message:
    """One publish, as its publisher's reply named it."""

    event_id: str
    seq: int
    channel: str
    publisher: str
    n: int

    @property
    def body(self):
        return {"p": self.publisher, "n": self.n}


class PublishLog:
    """Every message published in a run, in publish order once every reply is in."""

    def __init__(self):
        self.by_event_id: Dict[str, Message] = {}
        self.by_publisher: Dict[Tuple[str, int], Message] = {}
        self._ordered: Optional[List[Message]] = None
        self.max_seq = 0  # the newest message answered so far

    def add(self, event_id, channel, publisher, n):
        message = Message(event_id, sequence_of(event_id), channel, publisher, n)
        if event_id in self.by_event_id:
            raise AssertionError(f"two publishes answered with eventId {event_id}: "
                                 f"{self.by_event_id[event_id]} and {message}")
        self.by_event_id[event_id] = message
        self.by_publisher[(publisher, n)] = message
        self.max_seq = max(self.max_seq, message.seq)
        self._ordered = None
        return message

    def newest_sent(self, sent):
        """The newest seq among the messages each publisher had sent (`sent`: publisher -> count)."""
        return max((self.by_publisher[(p, count - 1)].seq for p, count in sent.items() if count), default=0)

    def ordered(self):
        if self._ordered is None:
            self._ordered = sorted(self.by_event_id.values(), key=lambda m: m.seq)
        return self._ordered

    def matching(self, subscription):
        return [m for m in self.ordered() if matches(subscription, m.channel)]


@dataclasses.dataclass(frozen=True)
class Window:
    """The replay window's flags. Messages are small and the age bound is off, so the counts are
    the only bounds that take part."""

    channel_messages: int
    messages: int

    def args(self):
        return ["--replay-channel-messages", str(self.channel_messages), "--replay-messages", str(self.messages),
                "--replay-age", "0", "--replay-channel-bytes", "512m", "--replay-bytes", "512m"]


class WindowSimulation:
    """The window's rule replayed over the publish log: after each message, the newest message
    each channel has lost."""

    def __init__(self, log, window):
        kept = collections.defaultdict(collections.deque)  # channel -> seqs kept, oldest first
        total = 0
        self._at = collections.defaultdict(list)  # channel -> seqs of the messages that made it lose one
        self._lost = collections.defaultdict(list)  # channel -> the seq it lost then

        def lose(channel, at_seq):
            self._at[channel].append(at_seq)
            self._lost[channel].append(kept[channel].popleft())

        for message in log.ordered():
            kept[message.channel].append(message.seq)
            total += 1
            if len(kept[message.channel]) > window.channel_messages:
                lose(message.channel, message.seq)
                total -= 1
            while total > window.messages:
                busiest = max((c for c in kept if kept[c]), key=lambda c: (len(kept[c]), -kept[c][0]))
                lose(busiest, message.seq)
                total -= 1

    def newest_lost(self, channel, at_seq):
        """The newest seq `channel` had lost once message `at_seq` was published (0: none)."""
        index = bisect.bisect_right(self._at[channel], at_seq)
        return self._lost[channel][index - 1] if index else 0


@dataclasses.dataclass
class Received:
    """One line (or event) a connection received, in arrival order."""

    kind: str  # "ack" (the subscribe's result), "message", "refresh" (refresh_needed or events_gap), "pong"
    raw: dict
    replay: Optional[bool] = None  # socket and WebSocket: the `replay` mark; None on /events
    # For a refresh: how many messages each publisher had sent when it was read (what the daemon
    # can have published before it decided).
    sent: Optional[Dict[str, int]] = None

    def __str__(self):
        if self.kind == "message":
            mark = " replay" if self.replay else ""
            return f"{self.raw.get('eventId')} {self.raw.get('channel')} {self.raw.get('message')}{mark}"
        return f"{self.kind} {self.raw}"


@dataclasses.dataclass
class Connection:
    """One connection of a subscriber: the id it resumed from and what it received."""

    number: int
    resumed_from: str
    opened_at: int  # the number of the test's operation that opened it, for the report
    answered_before: int  # the newest seq answered before it opened: the daemon decided after that
    items: List[Received] = dataclasses.field(default_factory=list)
    end: str = "open"  # "aborted" (by the test), "closed by the daemon"


@dataclasses.dataclass
class SubscriberHistory:
    name: str
    transport: str  # "socket", "websocket", "events"
    subscription: str
    connections: List[Connection] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Findings:
    """What checking one subscriber found: its divergences, and counts for the run's report."""

    divergences: List[str] = dataclasses.field(default_factory=list)
    first_operation: Optional[int] = None  # the operation that opened the first diverging connection
    refreshes: int = 0
    replays: int = 0  # resumes that replayed at least one message
    replayed: int = 0  # messages received as replayed (socket and WebSocket)
    received: int = 0


class _Due:
    """The messages a subscription must receive, in publish order, indexed for the checks."""

    def __init__(self, log, subscription):
        self.messages = log.matching(subscription)
        self.seqs = [m.seq for m in self.messages]
        self.channels = sorted({m.channel for m in self.messages})

    def after(self, seq):
        """The first message after `seq`."""
        return self.messages[bisect.bisect_right(self.seqs, seq)]

    def between(self, first_seq, last_seq):
        """The messages strictly between the two seqs."""
        return self.messages[bisect.bisect_right(self.seqs, first_seq):bisect.bisect_left(self.seqs, last_seq)]


def check_subscriber(history, log, simulation, baseline_seq):
    """Checks one subscriber's connections against the publish log and the simulated window; returns Findings.

    `baseline_seq` is the SEQ of the id its first connection resumed from: everything matching
    after it is due. Call once every publish is answered."""
    findings = Findings()
    due = _Due(log, history.subscription)
    last_seq = baseline_seq  # the last message received, across connections

    def lost_after(resumed_seq, at_seq):
        """The matching channels that had lost a message after `resumed_seq` once `at_seq` was published."""
        return {c: simulation.newest_lost(c, at_seq) for c in due.channels
                if simulation.newest_lost(c, at_seq) > resumed_seq}

    def diverge(conn, index, text):
        start = max(0, index - _CONTEXT_ITEMS)
        quoted = "\n".join(f"      {'>' if i == index else ' '} {item}"
                           for i, item in enumerate(conn.items[start:index + 2], start))
        findings.divergences.append(
            f"{history.name} ({history.transport}, {history.subscription!r}), connection {conn.number} "
            f"(opened at operation {conn.opened_at}, resumed from {conn.resumed_from}, {conn.end}), "
            f"line {index}: {text}\n{quoted}")
        if findings.first_operation is None:
            findings.first_operation = conn.opened_at

    for conn in history.connections:
        if findings.divergences:
            break
        resumed_seq = sequence_of(conn.resumed_from)
        if resumed_seq != last_seq:
            diverge(conn, 0, f"the test resumed from seq {resumed_seq}, but the last message it received was seq {last_seq}")
            break
        events = history.transport == "events"
        acked = events  # a stream has no subscribe result
        decided = False  # whether the daemon's choice (replay or refresh) is known from what came
        earliest = conn.answered_before  # the daemon decided once this message was published, or later
        seen_live = False
        refresh = None  # the refresh item, once one came on this connection
        mode = "whole"  # after a refresh: "first live" (socket), "per channel" (/events); then "whole" again
        last_on_channel: Dict[str, int] = {}  # /events after a gap: the last seq received on each channel
        replayed = 0
        for index, item in enumerate(conn.items):
            if item.kind == "ack":
                if acked:
                    diverge(conn, index, "a second subscribe result")
                    break
                acked = True
                continue
            if not acked:
                diverge(conn, index, "a line before the subscribe's result")
                break
            if item.kind == "pong":
                if not decided and not events:
                    decided = True  # a refresh would have come with the result, before this
                    missed = lost_after(resumed_seq, earliest)
                    if missed:
                        diverge(conn, index, f"not told to refresh, though {missed} (channel: newest seq lost) had left "
                                             f"the window before the subscribe")
                        break
                continue
            if item.kind == "refresh":
                findings.refreshes += 1
                if decided:
                    diverge(conn, index, "refresh_needed or events_gap after messages: it must come first")
                    break
                decided, refresh = True, item
                mode = "per channel" if events else "first live"
                # Needed at the latest instant the daemon can have decided: by then every message it
                # can have published had been sent. (On the socket the first live message bounds it
                # exactly, below.)
                latest = log.newest_sent(item.sent)
                if not lost_after(resumed_seq, latest):
                    diverge(conn, index, f"told to refresh, but no matching channel had lost a message after "
                                         f"{conn.resumed_from} by seq {latest} (the newest published when it was read)")
                    break
                continue
            findings.received += 1
            raw = item.raw
            published = log.by_event_id.get(raw.get("eventId"))
            if published is None:
                diverge(conn, index, f"eventId {raw.get('eventId')!r} was never the answer to a publish")
                break
            if raw.get("channel") != published.channel or raw.get("message") != published.body:
                diverge(conn, index, f"eventId {published.event_id} names {published.channel} {published.body}, "
                                     f"the line says {raw.get('channel')} {raw.get('message')}")
                break
            if not matches(history.subscription, published.channel):
                diverge(conn, index, f"{published.channel} does not match {history.subscription!r}")
                break
            if published.seq <= last_seq:
                diverge(conn, index, f"seq {published.seq} again or out of order: the last received was seq {last_seq}")
                break
            if item.replay is not None:
                if item.replay and (seen_live or refresh is not None):
                    diverge(conn, index, "a replayed message after a live one or after refresh_needed")
                    break
                seen_live = seen_live or not item.replay
                if item.replay:
                    replayed += 1
                    earliest = max(earliest, published.seq)  # a replayed message was published before T
            if not decided:
                decided = True
                missed = lost_after(resumed_seq, earliest)
                if missed:
                    diverge(conn, index, f"not told to refresh, though {missed} (channel: newest seq lost) had left "
                                         f"the window before the subscribe")
                    break
            if mode == "whole":
                expected = due.after(last_seq)
                if published.seq != expected.seq:
                    diverge(conn, index, f"expected seq {expected.seq} ({expected.channel} {expected.body}) next, "
                                         f"got seq {published.seq}: {len(due.between(last_seq, published.seq))} "
                                         f"matching message(s) missing")
                    break
            elif mode == "first live":
                # The first live message after refresh_needed was published after the daemon
                # decided: the refresh must have been needed by the message before it.
                if not lost_after(resumed_seq, published.seq - 1):
                    diverge(conn, index, f"told to refresh, but no matching channel had lost a message after "
                                         f"{conn.resumed_from} before the first live message (seq {published.seq})")
                    break
                mode = "whole"
            else:
                # /events after a gap: each channel's kept messages merged, then live. Each channel is
                # whole from its first message; what it skipped before must have left the window by
                # the latest instant of the daemon's decision, and its first must not have by the
                # earliest.
                channel = published.channel
                skipped = [m for m in due.between(last_on_channel.get(channel, resumed_seq), published.seq)
                           if m.channel == channel]
                if channel in last_on_channel:
                    if skipped:
                        diverge(conn, index, f"after the gap, {channel} went from seq {last_on_channel[channel]} "
                                             f"to seq {published.seq}, skipping seq {skipped[0].seq}")
                        break
                else:
                    latest = log.newest_sent(refresh.sent)
                    if skipped and skipped[-1].seq > simulation.newest_lost(channel, latest):
                        diverge(conn, index, f"after the gap, {channel} starts at seq {published.seq}, but seq "
                                             f"{skipped[-1].seq} was still in the window at seq {latest} (the newest "
                                             f"published when the gap was read)")
                        break
                    if published.seq <= simulation.newest_lost(channel, earliest):
                        diverge(conn, index, f"after the gap, {channel} starts at seq {published.seq}, which had left "
                                             f"the window by seq {earliest} (answered before the stream opened)")
                        break
                last_on_channel[channel] = published.seq
            last_seq = published.seq
        if replayed:
            findings.replays += 1
            findings.replayed += replayed
    return findings


def check_complete(history, log, baseline_seq):
    """After the final sync every subscriber must have the last matching message: a divergence
    text, or None."""
    due = log.matching(history.subscription)
    due = [m for m in due if m.seq > baseline_seq]
    if not due:
        return None
    received = [item for conn in history.connections for item in conn.items if item.kind == "message"]
    if not received or received[-1].raw.get("eventId") != due[-1].event_id:
        last = received[-1] if received else "nothing"
        return (f"{history.name} ({history.transport}, {history.subscription!r}): the last matching message is "
                f"seq {due[-1].seq} ({due[-1].channel} {due[-1].body}); the last received was {last}")
    return None
