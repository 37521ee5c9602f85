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
- Unless the daemon cannot vouch for that: on the socket and the WebSocket it sends
  `refresh_needed` and then only live messages; on `/events` an `events_gap`, then the messages
  still kept after E on the stream's channels, then live (docs/ui.md, "/events").
- The window keeps, of each channel, at least its newest `guaranteed` messages (Window): a refresh
  or a gap is legitimate only when a matching channel had more than that after E. Anything skipped
  after a gap on `/events` must be older than a channel's newest `guaranteed`.
"""

import bisect
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

    def add(self, event_id, channel, publisher, n):
        message = Message(event_id, sequence_of(event_id), channel, publisher, n)
        if event_id in self.by_event_id:
            raise AssertionError(f"two publishes answered with eventId {event_id}: "
                                 f"{self.by_event_id[event_id]} and {message}")
        self.by_event_id[event_id] = message
        self.by_publisher[(publisher, n)] = message
        self._ordered = None
        return message

    def ordered(self):
        if self._ordered is None:
            self._ordered = sorted(self.by_event_id.values(), key=lambda m: m.seq)
        return self._ordered

    def matching(self, subscription):
        return [m for m in self.ordered() if matches(subscription, m.channel)]


@dataclasses.dataclass(frozen=True)
class Window:
    """The replay window's flags, and what they guarantee is kept of each channel.

    Per channel the daemon keeps its last `channel_messages`; in all `messages`, and when over,
    the channel keeping the most gives up its oldest. A channel losing one then held at least
    ceil((messages + 1) / k) (k channels holding messages), so it keeps at least
    floor(messages / k) = `guaranteed` (or all it ever had). Messages are small and the age bound
    is off, so no other bound takes part."""

    channel_messages: int
    messages: int
    channels: int  # every channel published on in the run (the window's k at most)

    @property
    def guaranteed(self):
        return min(self.channel_messages, self.messages // self.channels)

    def args(self):
        return ["--replay-channel-messages", str(self.channel_messages), "--replay-messages", str(self.messages),
                "--replay-age", "0", "--replay-channel-bytes", "512m", "--replay-bytes", "512m"]


@dataclasses.dataclass
class Received:
    """One line (or event) a connection received, in arrival order."""

    kind: str  # "ack" (the subscribe's result), "message", "refresh" (refresh_needed or events_gap)
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
        self.on_channel = {c: [m for m in self.messages if m.channel == c] for c in self.channels}
        self.seqs_on_channel = {c: [m.seq for m in ms] for c, ms in self.on_channel.items()}

    def after(self, seq):
        """The first message after `seq`, or None."""
        index = bisect.bisect_right(self.seqs, seq)
        return self.messages[index] if index < len(self.messages) else None

    def between(self, first_seq, last_seq):
        """How many messages lie strictly between the two seqs."""
        return bisect.bisect_left(self.seqs, last_seq) - bisect.bisect_right(self.seqs, first_seq)

    def on_channel_between(self, channel, first_seq, last_seq, sent=None):
        """The messages on `channel` strictly between the two seqs (of those `sent` by then, if given)."""
        seqs = self.seqs_on_channel[channel]
        found = self.on_channel[channel][bisect.bisect_right(seqs, first_seq):bisect.bisect_left(seqs, last_seq)]
        if sent is not None:
            found = [m for m in found if m.n < sent.get(m.publisher, 0)]
        return found


def check_subscriber(history, log, window, baseline_seq):
    """Checks one subscriber's connections against the publish log; returns Findings.

    `baseline_seq` is the SEQ of the id its first connection resumed from: everything matching
    after it is due. Call once every publish is answered."""
    findings = Findings()
    due = _Due(log, history.subscription)
    guaranteed = window.guaranteed
    last_seq = baseline_seq  # the last message received, across connections
    endless = float("inf")

    def diverge(conn, index, text):
        start = max(0, index - _CONTEXT_ITEMS)
        quoted = "\n".join(f"      {'>' if i == index else ' '} {item}"
                           for i, item in enumerate(conn.items[start:index + 2], start))
        findings.divergences.append(
            f"{history.name} ({history.transport}, {history.subscription!r}), connection {conn.number} "
            f"(opened at operation {conn.opened_at}, resumed from {conn.resumed_from}, {conn.end}), "
            f"line {index}: {text}\n{quoted}")
        findings.first_operation = conn.opened_at if findings.first_operation is None else findings.first_operation

    for conn in history.connections:
        if findings.divergences:
            break
        resumed_seq = sequence_of(conn.resumed_from)
        if resumed_seq != last_seq:
            diverge(conn, 0, f"the test resumed from seq {resumed_seq}, but the last message it received was seq {last_seq}")
            break
        acked = history.transport == "events"  # a stream has no subscribe result
        seen_live = False
        refresh = None  # the refresh item, once one came on this connection
        mode = "whole"  # after a refresh: "first live" (socket), "per channel" (/events); then "whole" again
        last_on_channel: Dict[str, int] = {}  # /events after a gap: the last seq received on each channel
        replayed_by_channel: Dict[str, int] = {}
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
            if item.kind == "refresh":
                findings.refreshes += 1
                if refresh is not None or any(i.kind == "message" for i in conn.items[:index]):
                    diverge(conn, index, "refresh_needed or events_gap after messages: it must come first")
                    break
                refresh = item
                mode = "per channel" if history.transport == "events" else "first live"
                # Legitimate only if a matching channel had more than the window guarantees after E,
                # among what was sent by then (the daemon cannot have published more). On the socket
                # the first live message bounds it exactly (below).
                if not any(len(due.on_channel_between(c, resumed_seq, endless, item.sent)) > guaranteed
                           for c in due.channels):
                    diverge(conn, index, f"told to refresh, but no matching channel had more than the "
                                         f"{guaranteed} messages the window guarantees after {conn.resumed_from} "
                                         f"(publishes sent by then: {item.sent})")
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
                    count = replayed_by_channel.get(published.channel, 0) + 1
                    replayed_by_channel[published.channel] = count
                    if count > window.channel_messages or sum(replayed_by_channel.values()) > window.messages:
                        diverge(conn, index, f"replayed more than the window keeps: {replayed_by_channel}")
                        break
            if mode == "whole":
                expected = due.after(last_seq)
                if published.seq != expected.seq:
                    diverge(conn, index, f"expected seq {expected.seq} ({expected.channel} {expected.body}) next, "
                                         f"got seq {published.seq}: {due.between(last_seq, published.seq)} "
                                         f"matching message(s) missing")
                    break
            elif mode == "first live":
                # The matching messages before the first live one after refresh_needed are exactly
                # those published before the daemon decided: the refresh is checked exactly here.
                if not any(len(due.on_channel_between(c, resumed_seq, published.seq)) > guaranteed
                           for c in due.channels):
                    diverge(conn, index, f"told to refresh, but before the first live message (seq {published.seq}) "
                                         f"no matching channel had more than the {guaranteed} messages the window "
                                         f"guarantees after {conn.resumed_from}")
                    break
                mode = "whole"
            else:
                # /events after a gap: the channels' kept messages merged, then live. Each channel is
                # whole from its first message; what a channel skipped before that must be older
                # than its newest `guaranteed` among what was sent when the gap was read.
                channel = published.channel
                if channel in last_on_channel:
                    following = due.on_channel_between(channel, last_on_channel[channel], endless)[0]
                    if following.seq != published.seq:
                        diverge(conn, index, f"after the gap, {channel} went from seq {last_on_channel[channel]} "
                                             f"to seq {published.seq}, skipping seq {following.seq}")
                        break
                else:
                    skipped = due.on_channel_between(channel, resumed_seq, published.seq)
                    if skipped:
                        later = len(due.on_channel_between(channel, skipped[-1].seq, endless, refresh.sent))
                        if later < guaranteed:
                            diverge(conn, index, f"after the gap, {channel} starts at seq {published.seq}, skipping "
                                                 f"{len(skipped)} message(s) up to seq {skipped[-1].seq}, with only "
                                                 f"{later} sent after it: the window guarantees {guaranteed}")
                            break
                last_on_channel[channel] = published.seq
            last_seq = published.seq
        if replayed_by_channel:
            findings.replays += 1
            findings.replayed += sum(replayed_by_channel.values())
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
