# Model check of resuming (issue 18): subscribers on the socket, the WebSocket and /events, cut off thousands of times at random points, must receive exactly what was published on their channels.
"""Two publishers flood `board:a`, `board:b` and `chat` with numbered messages in random bursts.
Nine subscribers (`board:a`, `board:*` and `*` on each of the three transports) read at random
moments, are cut off abruptly (mid-flood, mid-replay, with lines unread or half read) and come back
with the last eventId they fully received. resume_model then checks every subscriber's history,
across all its connections: exactly the messages published on its channels, in publish order,
no gap, no duplicate, each eventId naming its message; a refresh (`refresh_needed`, `photon-gap`)
exactly where the window, by its documented rule (simulated by the model), had lost a message the
subscriber missed, never elsewhere, and everything whole again after it.

Two windows (docs/channels.md): one so large that nothing ever leaves it, where a refresh is a
failure; one small (per channel and in all), where refreshes happen.

A seeded random generator chooses the operations (threads would make a run unrepeatable; one
thread pipelining against the daemon's own interleaving is enough). The seed is printed; set
RESUME_MODEL_SEED to run the same choices again, RESUME_MODEL_STEPS for the length of a run.
"""

import collections
import json
import os
import random
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "blackbox"))

from harness import PHOTOND, TIMEOUT, Daemon, make_tmpdir  # noqa: E402
from resume_clients import (Closed, EventStreamSubscriber, Publisher, SocketSubscriber,  # noqa: E402
                            WebSocketSubscriber)
from protocol_model import matches  # noqa: E402
from resume_model import (Connection, PublishLog, SubscriberHistory, Window, check_complete,  # noqa: E402
                          check_subscriber, sequence_of, WindowSimulation)

CHANNELS = ["board:a", "board:b", "chat"]
BASELINE_CHANNEL = "setup"  # the run's first message: the id every subscriber's first connection resumes from
SUBSCRIPTIONS = ["board:a", "board:*", "*"]
TRANSPORTS = ["socket", "websocket", "events"]
PUBLISHERS = ["p0", "p1"]
# Mostly small bursts; a flood now and then, more than the small window keeps of a channel (60).
BURSTS = [1, 1, 2, 3, 5, 8, 13, 20, 70]
STEPS = int(os.environ.get("RESUME_MODEL_STEPS", "3000"))  # ctest sets the same
# A report quotes the operations from this many before the diverging connection opened.
OPERATIONS_BEFORE = 25
OPERATIONS_AFTER = 15


class Subscriber:
    """One subscriber: its current connection (None while away) and its whole history."""

    def __init__(self, name, transport, subscription):
        self.history = SubscriberHistory(name, transport, subscription)
        self.connection = None
        self.last_event_id = None
        self.connections_opened = 0  # numbers its subscribe requests

    @property
    def name(self):
        return self.history.name


class ResumeRun:
    """One daemon, its publishers and subscribers, and the random operations of one run."""

    def __init__(self, test, window, seed, steps):
        self.test = test
        self.window = window
        self.seed = seed
        self.steps = steps
        self.rng = random.Random(seed)
        self.operations = []  # every operation, numbered by position, for the report
        self.markers = 0
        self.baseline_seq = None
        self.log = PublishLog()
        self.disconnects = 0
        self.mid_replay_cuts = 0
        self.closed_by_daemon = 0
        photon_dir = make_tmpdir()
        self.daemon = Daemon(photon_dir, "resume", ["--ui-port", "0", "--log-level", "warn", *window.args()])
        test.addCleanup(self._finish)
        self.daemon.start()
        with open(os.path.join(photon_dir, "daemons", "resume.ui")) as f:
            ui = json.load(f)
        self.port, self.token = ui["port"], ui["token"]
        self.publishers = [Publisher(self.daemon.sock_path, name, self.log) for name in PUBLISHERS]
        self.subscribers = [Subscriber(f"{transport}:{subscription}", transport, subscription)
                            for transport in TRANSPORTS for subscription in SUBSCRIPTIONS]

    def _finish(self):
        for publisher in self.publishers:
            publisher.close()
        for subscriber in self.subscribers:
            if subscriber.connection is not None:
                subscriber.connection.abort()
        code = self.daemon.stop()
        output = self.daemon.output()
        shutil.rmtree(self.daemon.photon_dir, ignore_errors=True)
        if code != 0:
            raise AssertionError(f"photond exited with {code} on SIGTERM:\n{output}")

    def note(self, text):
        self.operations.append(text)

    # ----- subscribers

    def connect(self, subscriber):
        subscriber.connections_opened += 1
        resume_from = subscriber.last_event_id
        history = subscriber.history
        if history.transport == "socket":
            connection = SocketSubscriber(self.daemon.sock_path, history.subscription, resume_from,
                                          f"s{subscriber.connections_opened}")
        elif history.transport == "websocket":
            connection = WebSocketSubscriber(self.port, self.token, history.subscription, resume_from,
                                             f"s{subscriber.connections_opened}")
        else:
            connection = EventStreamSubscriber(self.port, self.token, history.subscription, resume_from,
                                               in_query=self.rng.random() < 0.3)
        subscriber.connection = connection
        history.connections.append(Connection(len(history.connections), resume_from, len(self.operations),
                                              self.log.max_seq))
        self.note(f"{subscriber.name}: connect #{len(history.connections) - 1} from {resume_from}")

    def take(self, subscriber, items):
        """Files what a connection read in the subscriber's history; a refresh notes how many
        messages each publisher had sent by then (the most the daemon can have published)."""
        current = subscriber.history.connections[-1]
        for item in items:
            if item.kind == "refresh":
                item.sent = {p.name: p.sent for p in self.publishers}
            if item.kind == "message":
                subscriber.last_event_id = item.raw["eventId"]
            current.items.append(item)

    def read(self, subscriber, reader):
        """Runs reader(connection, items) on the subscriber's connection and files the items; a
        close by the daemon ends the connection (what was read before it counts)."""
        items = []
        try:
            reader(subscriber.connection, items)
        except Closed as closed:
            self.closed_by_daemon += 1
            self.note(f"{subscriber.name}: {closed}")
            subscriber.history.connections[-1].end = "closed by the daemon"
            subscriber.connection = None
        finally:
            self.take(subscriber, items)
        return items

    def read_available(self, subscriber):
        items = self.read(subscriber, lambda c, out: c.read_available(out))
        self.note(f"{subscriber.name}: read {len(items)} arrived")

    def abort(self, subscriber):
        subscriber.connection.abort()
        subscriber.connection = None
        subscriber.history.connections[-1].end = "aborted"
        self.disconnects += 1
        self.note(f"{subscriber.name}: aborted")

    def latest_published(self, subscriber):
        """The seq of the newest answered publish on the subscriber's channels (the baseline's if none)."""
        for message in reversed(self.log.ordered()):
            if message.seq <= self.baseline_seq:
                break
            if matches(subscriber.history.subscription, message.channel):
                return message.seq
        return self.baseline_seq

    def caught_up(self, subscriber, limit=None):
        """A condition on the items read so far: `limit` messages read, or everything due.

        Socket and WebSocket: the pong of a marker sent now (every line queued before it has come).
        /events: the newest answered publish on its channels, which a resumed stream gets in every
        case (replayed, kept after a gap, or live)."""
        if subscriber.history.transport == "events":
            target = self.latest_published(subscriber)
            start = sequence_of(subscriber.last_event_id)

            def done(items):
                seqs = [sequence_of(i.raw["eventId"]) for i in items if i.kind == "message"]
                return (limit is not None and len(seqs) >= limit) or max(seqs, default=start) >= target
        else:
            self.markers += 1
            ident = f"marker{self.markers}"
            subscriber.connection.send_marker(ident)

            def done(items):
                messages = sum(1 for i in items if i.kind == "message")
                return (limit is not None and messages >= limit) or any(
                    i.kind == "pong" and i.raw.get("id") == ident for i in items)
        return done

    def catch_up(self, subscriber, limit=None):
        done = self.caught_up(subscriber, limit)
        deadline = time.monotonic() + TIMEOUT
        items = self.read(subscriber, lambda c, out: c.read_until(done, deadline, out))
        self.note(f"{subscriber.name}: read {len(items)} until {'caught up' if limit is None else f'{limit} messages or caught up'}")

    # ----- the operations

    def publish(self):
        publisher = self.rng.choice(self.publishers)
        channel = self.rng.choice(CHANNELS)
        numbers = publisher.publish(channel, self.rng.choice(BURSTS))
        self.note(f"{publisher.name}: published n={numbers.start}..{numbers.stop - 1} on {channel}")

    def step(self):
        subscriber = self.rng.choice(self.subscribers)
        roll = self.rng.random()
        if roll < 0.25:
            self.publish()
        elif subscriber.connection is None:
            self.connect(subscriber)
        elif roll < 0.47:
            self.read_available(subscriber)
        elif roll < 0.75:
            # Cut off at a random point: maybe after reading what has arrived, maybe not, often
            # with lines still in flight; back at once or after a while.
            if self.rng.random() < 0.5:
                self.read_available(subscriber)
            self.abort(subscriber)
            if self.rng.random() < 0.5:
                self.connect(subscriber)
        elif roll < 0.90:
            # Cut off mid-replay: back, read a few of what the resume sends, gone again.
            self.abort(subscriber)
            self.connect(subscriber)
            self.catch_up(subscriber, limit=self.rng.randrange(0, 6))
            self.abort(subscriber)
            self.mid_replay_cuts += 1
            if self.rng.random() < 0.5:
                self.connect(subscriber)
        else:
            self.catch_up(subscriber)
        for publisher in self.publishers:
            publisher.read_replies(wait=False)

    def run(self):
        first = self.publishers[0]
        first.publish(BASELINE_CHANNEL, 1)
        first.read_replies(wait=True)
        baseline = self.log.by_publisher[(first.name, 0)]
        self.baseline_seq = baseline.seq
        for subscriber in self.subscribers:
            subscriber.last_event_id = baseline.event_id
            self.connect(subscriber)
        for _ in range(self.steps):
            self.step()
        self.finish()

    def finish(self):
        """Everyone back; a last message on each channel; then every subscriber must have it all."""
        for publisher in self.publishers:
            publisher.read_replies(wait=True)
        for subscriber in self.subscribers:
            if subscriber.connection is None:
                self.connect(subscriber)
            self.catch_up(subscriber)
            if subscriber.connection is None:  # closed by the daemon meanwhile
                self.connect(subscriber)
                self.catch_up(subscriber)
        for channel in CHANNELS:
            self.publishers[0].publish(channel, 1)
        self.publishers[0].read_replies(wait=True)
        self.note("p0: the last message on each channel")
        for subscriber in self.subscribers:
            self.catch_up(subscriber)

    # ----- the verdict

    def verdict(self, finished=True):
        """Checks every subscriber (and, when the run finished, that each has it all); returns
        (divergences, totals)."""
        divergences = []
        self.first_diverging_operation = None
        totals = collections.Counter()
        simulation = WindowSimulation(self.log, self.window)
        for subscriber in self.subscribers:
            findings = check_subscriber(subscriber.history, self.log, simulation, self.baseline_seq)
            divergences += findings.divergences
            if findings.first_operation is not None and self.first_diverging_operation is None:
                self.first_diverging_operation = findings.first_operation
            if finished and not findings.divergences:
                incomplete = check_complete(subscriber.history, self.log, self.baseline_seq)
                if incomplete:
                    divergences.append(incomplete)
            totals["refreshes"] += findings.refreshes
            totals["refreshes " + subscriber.history.transport] += findings.refreshes
            totals["resumes that replayed"] += findings.replays
            totals["messages replayed (socket, WebSocket)"] += findings.replayed
            totals["messages received"] += findings.received
            totals["connections"] += len(subscriber.history.connections)
        totals["disconnects"] = self.disconnects
        totals["cut mid-replay"] = self.mid_replay_cuts
        totals["closed by the daemon"] = self.closed_by_daemon
        totals["published"] = len(self.log.by_event_id)
        return divergences, totals

    def divergences_so_far(self):
        """After a run stopped short: the divergences in what was received until then (every
        publish answered first, when the daemon still answers), as text."""
        try:
            for publisher in self.publishers:
                publisher.read_replies(wait=True)
            divergences, _ = self.verdict(finished=False)
        except Exception as error:  # noqa: BLE001 - the report goes on without it
            return f"(no model check: {error!r})\n"
        return "".join(f"{d}\n" for d in divergences[:5])

    def reproduction(self, around=None):
        """The seed and how to run it again, and the operations around `around` (the last ones
        when None)."""
        end = len(self.operations) if around is None else min(len(self.operations), around + OPERATIONS_AFTER)
        start = max(0, (end if around is None else around) - OPERATIONS_BEFORE)
        quoted = "\n".join(f"    {i:6d} {self.operations[i]}" for i in range(start, end))
        return (f"seed {self.seed}, {self.steps} steps, window {self.window}\n"
                f"  again: RESUME_MODEL_SEED={self.seed} RESUME_MODEL_STEPS={self.steps} PHOTOND={PHOTOND} "
                f"/usr/bin/python3 -m unittest -v test_resume_model.{type(self.test).__name__}  (from tests/model)\n"
                f"  operations {start} to {end - 1} of {len(self.operations)}:\n{quoted}")


class ResumeModelTest(unittest.TestCase):
    window = None
    expect_refreshes = None

    def run_model(self):
        seed = int(os.environ.get("RESUME_MODEL_SEED", random.SystemRandom().randrange(2**32)))
        run = ResumeRun(self, self.window, seed, STEPS)
        try:
            run.run()
        except Exception as error:
            # A wait that timed out is most often a message that never came: the model says which.
            raise AssertionError(f"{error}\n{run.divergences_so_far()}{run.reproduction()}") from error
        divergences, totals = run.verdict()
        print(f"\n{type(self).__name__}: seed {seed}, " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())),
              file=sys.stderr)
        if divergences:
            raise AssertionError(f"{len(divergences)} subscriber(s) diverge from the model:\n"
                                 + "\n".join(divergences[:5]) + "\n" + run.reproduction(run.first_diverging_operation))
        if self.expect_refreshes:
            # The small window must make refreshes happen, or its checks checked nothing.
            for transport in TRANSPORTS:
                self.assertGreater(totals["refreshes " + transport], 0, f"no refresh on {transport}\n{run.reproduction()}")
        else:
            self.assertEqual(totals["refreshes"], 0, run.reproduction())
        self.assertGreater(totals["resumes that replayed"], 0, run.reproduction())
        return totals


class WindowThatKeepsEverything(ResumeModelTest):
    """Nothing ever leaves the window: every resume must replay, none may be told to refresh."""

    window = Window(channel_messages=1_000_000, messages=1_000_000)
    expect_refreshes = False

    def test_every_subscriber_receives_everything_published_on_its_channels(self):
        self.run_model()


class SmallWindow(ResumeModelTest):
    """60 messages per channel, 150 in all (so the bound in all takes from the busiest channel):
    refreshes happen on every transport, each where the window had lost a missed message and
    nowhere else, and everything after one must be whole again."""

    window = Window(channel_messages=60, messages=150)
    expect_refreshes = True

    def test_refreshes_only_beyond_the_window_and_nothing_lost_around_them(self):
        self.run_model()


if __name__ == "__main__":
    unittest.main()
