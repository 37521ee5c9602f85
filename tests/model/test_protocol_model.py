# Model-based test of the wire protocol: random operations on up to 8 connections of the real photond, compared with protocol_model after every step.
"""Hypothesis drives the real daemon (PHOTOND) over its Unix socket with random sequences of
connects, disconnects, subscribes, publishes, lock requests (with leases, waits and
releaseOnDisconnect), lock queries and, when the daemon was built with the test clock, clock moves,
cron jobs (scheduled, replaced, removed, run by hand, overlapping) and restarts of the daemon;
after every step it compares every reply, every channel message, every late lock answer, the tokens
and the daemon's status with protocol_model.Model. A divergence is shrunk by Hypothesis to a minimal
sequence, which it prints (docs/testing.md, "The model test").

Two worlds: one daemon (everything, on the test clock when available), and two daemons of one photon
sharing one Redis (what docs/scaling.md promises across daemons: channels, locks without waits).

Runs under unittest (ctest: a bounded number of examples, MODEL_EXAMPLES and MODEL_STEPS), or as a
program for a time budget: `python3 tests/model/test_protocol_model.py --seconds 600` (`make model`).
Minimal sequences worth keeping are replayed by the Regressions classes; KNOWN_DIVERGENCES names the
cases where the daemon and the documents disagree, each skipped in its regression test by name.
"""

import argparse
import datetime
import os
import shutil
import sys
import time
import unittest

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import protocol_model  # noqa: E402
from wire import (Conn, Redis, finish_daemon, has_test_clock, make_tmpdir, restart_daemon,  # noqa: E402
                  start_daemon, wait_until)

SLOTS = 8
# Channel names after the example's namespace: `a:` is matched by `a:*` (docs/channels.md), `ab` by
# `a*` but not by `a:*`, `a:b:c` by every pattern of `a`.
CHANNELS = ["a", "a:", "a:b", "a:bc", "a:b:c", "ab", "b"]
PATTERNS = ["a*", "a:*", "a:b*", "*"]
LOCKS = ["x", "y"]
# Leases and waits on the test clock, in ms: equal and neighbouring values, so lease ends and wait
# ends meet. On the real clock every lease and wait is an hour: nothing ends during a test.
LEASES = [1, 100, 250, 1000, 30000]
WAITS = [0, 100, 250, 1000]
ADVANCES = [0, 1, 99, 100, 150, 250, 1000, 5000, 300_000]
# Jobs (one daemon on the test clock): every 5 or 10 minutes of the wall clock, in UTC, calling a
# method that returns at once. Wall-clock jumps land 90 s after a 10-minute boundary, so the latest
# slot a jump passes is always over --missed-after (60 s) late: a catch-up, never a normal run.
JOBS = ["j", "k"]
PERIODS = [300_000, 600_000]
JOB_EVENTS = "jobs:m"
MANIFEST = """description = "The model test's photon"
[methods.tick]
description = "Returns at once"
command = ["/bin/sh", "-c", "cat >/dev/null"]
timeout = "30s"

[methods.hold]
description = "Runs until the test opens its gate (a file), so runs overlap the next slots"
command = ["/bin/sh", "-c", "cat >/dev/null; while [ ! -e '{gate}' ]; do sleep 0.01; done"]
timeout = "10m"
"""
HOUR = 3_600_000

# Divergences between the daemon and the documents that the model found and the lead has not yet
# decided (the daemon or the documents to change). Each names the case it keeps the generator
# away from, so the rest of the model still runs; see the report and docs/testing.md.
KNOWN_DIVERGENCES = {
}


def now_ms():
    return int(time.time() * 1000)


class World:
    """The daemons an example runs against, shared by the examples of one test: each example works
    in a namespace of its own (channels, locks, holders), closes its connections and releases its
    locks at the end, so examples do not see each other. A daemon that died is started again."""

    def __init__(self, daemons, clock):
        self.count = daemons
        self.clock = clock
        self.jobs = clock and daemons == 1
        self.gate_dir = make_tmpdir()
        self.gate = os.path.join(self.gate_dir, "gate")  # while it exists, "hold" runs end
        self.redis = Redis() if daemons > 1 else None
        self.daemons = [None] * daemons
        self.controls = [None] * daemons
        self.crashes = []
        self.token_max = None
        self.message_ids = [{} for _ in range(daemons)]
        self.examples = 0
        self.steps = 0
        for index in range(daemons):
            self._start(index)

    def _args(self):
        args = ["--log-level", "warn"]
        if self.redis:
            args += ["--broker", self.redis.url]
        if self.clock:
            args.append("--test-clock")
        return args

    def _start(self, index, restart_at=None):
        """Starts daemon `index` in a fresh PHOTON_DIR, or (restart_at: an RFC 3339 time for its
        test clock) stops it and starts it again in its own."""
        if restart_at is None:
            d = start_daemon("m", self._args(), MANIFEST.replace("{gate}", self.gate) if self.jobs else None)
        else:
            self.controls[index].close()
            args = [a for a in self._args() if a != "--test-clock"] + [f"--test-clock={restart_at}"]
            code, output, d = restart_daemon(self.daemons[index], args)
            if code != 0:
                self.crashes.append(f"daemon {index} exited with {code} on SIGTERM (restart):\n{output}")
                raise AssertionError(f"photond exited with {code} on SIGTERM")
        self.daemons[index] = d
        self.controls[index] = Conn(d.sock_path)
        if self.jobs:
            assert self.controls[index].request({"type": "subscribe", "channel": JOB_EVENTS})["success"]
        self.message_ids[index] = {}
        if self.redis:
            wait_until(lambda: self.controls[index].request({"type": "status"})["data"]["broker"]["state"] == "connected",
                       message="the daemon connected to Redis")
        elif index == 0 and restart_at is None:
            self.token_max = None  # a fresh PHOTON_DIR: tokens start again

    def ensure(self):
        """Every daemon alive and answering (one that died in a failed example is replaced)."""
        for index, d in enumerate(self.daemons):
            alive = d.proc.poll() is None
            if alive:
                try:
                    self.controls[index].sync()
                except (OSError, TimeoutError, Exception):  # noqa: BLE001 - any failure: replace it
                    alive = False
            if not alive:
                self.controls[index].close()
                code, output = finish_daemon(d)
                self.crashes.append(f"daemon {index} ended with {code}:\n{output}")
                self._start(index)

    def namespace(self):
        self.examples += 1
        return f"e{self.examples}."

    def stop(self):
        """Stops everything; returns the reports of daemons that did not exit cleanly."""
        reports = list(self.crashes)
        for index, d in enumerate(self.daemons):
            self.controls[index].close()
            code, output = finish_daemon(d)
            if code not in (None, 0):
                reports.append(f"daemon {index} exited with {code} on SIGTERM:\n{output}")
        if self.redis:
            self.redis.stop()
        shutil.rmtree(self.gate_dir, ignore_errors=True)
        return reports


class ProtocolMachine(RuleBasedStateMachine):
    """The state machine; `world` is set by the test that runs it."""

    world = None
    # How the known divergences are worked around (a regression test turns them off to show them).
    step_advances = "advance-jumps" in KNOWN_DIVERGENCES
    # docs/locks.md: queued requests of a waiter's holder, answered as extensions when the lock goes
    # to it, keep the longest lease asked (none shortens the lease just granted).
    queued_extension_keeps_longer_lease = True

    def __init__(self):
        super().__init__()
        w = self.world
        w.ensure()
        self.w = w
        for control in w.controls:  # nothing left over from an example that failed
            control.sync()
            control.inbox.clear()
        self.ns = w.namespace()
        self.marker = self.ns + "!marker" if w.count > 1 else None
        self.conns = {}  # slot -> Conn
        self.keys = {}  # slot -> model connection key
        self.next_key = 0
        self.expected_inbox = {}  # model key -> [(channel, message)]
        self.seq = 0
        self.last_token = None
        self.run_ids = {}  # id(model Run) -> the daemon's runId
        clock = None
        if w.clock:
            data = w.controls[0].request({"type": "test_clock"})["data"]
            clock = (data["steadyMs"], data["wallMs"])
        self.model = protocol_model.Model(
            clock, queued_extension_keeps_longer_lease=self.queued_extension_keeps_longer_lease)
        self.step_started = now_ms()
        self.closed_this_step = False

    # ----- helpers

    def holder(self, slot):
        return f"{self.ns}h{slot}"

    def open_slots(self):
        return sorted(self.conns)

    def pick_open(self, who):
        slots = self.open_slots()
        return slots[who % len(slots)]

    def conn_key(self, slot):
        return self.keys[slot]

    def slot_of_key(self, key):
        for slot, k in self.keys.items():
            if k == key:
                return slot
        raise AssertionError(f"no open connection for model key {key}")

    def _open(self, slot, daemon):
        d = self.w.daemons[daemon]
        conn = Conn(d.sock_path, self.marker, aside=[JOB_EVENTS])
        conn.daemon = daemon
        self.conns[slot] = conn
        self.next_key += 1
        self.keys[slot] = self.next_key
        self.model.connect(self.next_key, daemon)
        self.expected_inbox[self.next_key] = []
        if self.marker:
            reply = conn.request({"type": "subscribe", "channel": self.marker})
            assert reply["success"] is True, reply

    def begin(self):
        self.model.begin_step()
        self.w.steps += 1
        self.step_started = now_ms()
        self.closed_this_step = False

    # ----- rules: connections

    @initialize()
    def two_connections(self):
        self.begin()
        self._open(0, 0)
        self._open(1, 1 % self.w.count)
        self.settle()

    @precondition(lambda self: len(self.conns) < SLOTS)
    @rule(who=st.integers(0, SLOTS - 1), daemon=st.integers(0, 1))
    def connect(self, who, daemon):
        self.begin()
        free = [s for s in range(SLOTS) if s not in self.conns]
        self._open(free[who % len(free)], daemon % self.w.count)
        self.settle()

    @precondition(lambda self: self.conns)
    @rule(who=st.integers(0, SLOTS - 1), graceful=st.booleans())
    def disconnect(self, who, graceful):
        self.begin()
        slot = self.pick_open(who)
        conn = self.conns.pop(slot)
        key = self.keys.pop(slot)
        if graceful:
            conn.close_graceful()
        else:
            conn.close()
        del self.expected_inbox[key]
        freed = [name for name, lock in self.model.locks.items() if lock.bound == key]
        self.model.disconnect(key)
        self.closed_this_step = True
        self.wait_connections()
        if self.w.count > 1:
            # The releases go to Redis from the connection's daemon: a query through that daemon
            # is answered after them (one Redis connection, in order).
            for name in freed:
                self.w.controls[conn.daemon].request({"type": "query_lock", "lockName": self.ns + name})
        self.settle()

    # ----- rules: channels

    @precondition(lambda self: self.conns)
    @rule(who=st.integers(0, SLOTS - 1), channel=st.sampled_from(CHANNELS + PATTERNS + ["<all>"]))
    def subscribe(self, who, channel):
        self.begin()
        slot = self.pick_open(who)
        channel = "*" if channel == "<all>" else self.ns + channel
        reply = self.conns[slot].request({"type": "subscribe", "channel": channel})
        self.expect_equal(reply["data"] if reply.get("success") else reply,
                          {"subscribed": True, "channel": channel}, "subscribe", reply)
        self.model.subscribe(self.conn_key(slot), channel)
        self.settle()

    @precondition(lambda self: self.conns)
    @rule(who=st.integers(0, SLOTS - 1), channel=st.sampled_from(CHANNELS + PATTERNS + ["<all>"]))
    def unsubscribe(self, who, channel):
        self.begin()
        slot = self.pick_open(who)
        channel = "*" if channel == "<all>" else self.ns + channel
        reply = self.conns[slot].request({"type": "unsubscribe", "channel": channel})
        self.expect_equal(reply["data"] if reply.get("success") else reply,
                          {"unsubscribed": True, "channel": channel}, "unsubscribe", reply)
        self.model.unsubscribe(self.conn_key(slot), channel)
        self.settle()

    @precondition(lambda self: self.conns)
    @rule(who=st.integers(0, SLOTS - 1), channels=st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=4))
    def publish(self, who, channels):
        """A burst from one connection, pipelined: every subscriber gets its share in publish order."""
        self.begin()
        slot = self.pick_open(who)
        conn = self.conns[slot]
        key = self.conn_key(slot)
        sent = []
        for suffix in channels:
            self.seq += 1
            channel = self.ns + suffix
            message = {"seq": self.seq, "from": slot}
            ident = conn.new_id("pub")
            conn.send({"type": "publish", "id": ident, "channel": channel, "message": message})
            sent.append((ident, channel, message))
        for ident, channel, message in sent:
            receivers, delivered = self.model.publish(key, channel)
            reply = conn.wait_reply(ident)
            # The event id is opaque here (tests/blackbox/test_resume.py checks what it names).
            event_id = reply.get("data", {}).pop("eventId", None)
            self.expect_equal(type(event_id), str, f"the eventId of a publish on {channel!r}")
            expected = {"type": "result", "id": ident, "success": True,
                        "data": {"published": True, "channel": channel, "delivered": delivered}}
            self.expect_equal(reply, expected, f"publish on {channel!r} (subscribers: {self.describe_subs()})")
            for receiver in receivers:
                self.expected_inbox[receiver].append((channel, message))
        if self.marker:
            # Across daemons the messages travel through Redis: a last message from the same
            # publisher arrives after them (per-publisher order), so it is the end to wait for.
            nonce = f"mark{self.seq}"
            reply = conn.request({"type": "publish", "channel": self.marker, "message": nonce})
            assert reply.get("success") is True, reply
            for other_slot, other in self.conns.items():
                if other_slot != slot:
                    other.wait_marker(nonce)
        self.settle()

    @precondition(lambda self: self.conns)
    @rule(who=st.integers(0, SLOTS - 1), kind=st.sampled_from(["star-inside", "publish-star", "empty"]))
    def bad_channel(self, who, kind):
        """Refused requests get an error with their id and leave the connection usable."""
        self.begin()
        slot = self.pick_open(who)
        request = {
            "star-inside": {"type": "subscribe", "channel": self.ns + "a*b"},
            "publish-star": {"type": "publish", "channel": self.ns + "a*", "message": 1},
            "empty": {"type": "subscribe", "channel": ""},
        }[kind]
        reply = self.conns[slot].request(request)
        assert reply.get("type") == "error" and isinstance(reply.get("error"), str) and reply["error"], \
            f"{request!r} should be refused with an error, got {reply!r}"
        self.settle()

    # ----- rules: locks

    @precondition(lambda self: self.conns)
    @rule(who=st.integers(0, SLOTS - 1), name=st.sampled_from(LOCKS), lease=st.sampled_from(LEASES),
          wait=st.sampled_from(WAITS), rod=st.sampled_from([None, False, True]),
          as_slot=st.one_of(st.none(), st.integers(0, 3)))
    def lock(self, who, name, lease, wait, rod, as_slot):
        self.begin()
        slot = self.pick_open(who)
        if not self.w.clock:
            lease, wait = HOUR, (HOUR if wait else 0)
        if self.w.count > 1:
            wait = 0  # across daemons waiters are not first come, first served (docs/scaling.md)
        holder = self.holder(slot if as_slot is None else as_slot)
        conn = self.conns[slot]
        request = {"type": "lock", "id": conn.new_id("lock"), "sessionId": holder,
                   "lockName": self.ns + name, "lockTimeout": lease}
        if wait:
            request["lockWait"] = wait
        if rod is not None:
            request["releaseOnDisconnect"] = rod
        t0 = now_ms()
        conn.send(request)
        expect = self.model.lock(self.conn_key(slot), request["id"], name, holder, lease, wait, bool(rod))
        if expect is not None:
            reply = conn.wait_reply(request["id"])
            self.check_lock_reply(reply, expect, t0, now_ms())
        self.settle()

    @precondition(lambda self: self.conns)
    @rule(who=st.integers(0, SLOTS - 1), name=st.sampled_from(LOCKS),
          as_slot=st.one_of(st.none(), st.integers(0, SLOTS - 1)))
    def unlock(self, who, name, as_slot):
        self.begin()
        slot = self.pick_open(who)
        holder = self.holder(slot if as_slot is None else as_slot)
        reply = self.conns[slot].request({"type": "unlock", "sessionId": holder, "lockName": self.ns + name})
        expect = self.model.unlock(self.conn_key(slot), name, holder)
        lock_name = self.ns + name
        if expect.kind == "released":
            data = {"released": True, "lockName": lock_name}
        else:
            data = {"released": False, "lockName": lock_name,
                    "reason": f'lock "{lock_name}" is held by {expect.holder}'}
        self.expect_equal(reply, {"type": "result", "id": reply.get("id"), "success": data["released"], "data": data},
                          f"unlock {name} as {holder}")
        self.settle()

    @precondition(lambda self: self.conns)
    @rule(who=st.integers(0, SLOTS - 1), name=st.sampled_from(LOCKS))
    def query_lock(self, who, name):
        self.begin()
        slot = self.pick_open(who)
        reply = self.conns[slot].request({"type": "query_lock", "lockName": self.ns + name})
        assert reply.get("type") == "result" and reply.get("success") is True, reply
        lock = self.model.query(name)
        self.check_lock_view(reply["data"]["lock"], name, lock, f"query_lock {name}")
        self.settle()

    @precondition(lambda self: self.conns)
    @rule(who=st.integers(0, SLOTS - 1))
    def list_locks(self, who):
        self.begin()
        slot = self.pick_open(who)
        reply = self.conns[slot].request({"type": "list_locks"})
        assert reply.get("type") == "result" and reply.get("success") is True, reply
        listed = reply["data"]["locks"]
        names = [entry["name"] for entry in listed]
        assert names == sorted(names), f"list_locks is not sorted by name: {names}"
        mine = [entry for entry in listed if entry["name"].startswith(self.ns)]
        expected = self.model.listing()
        assert [e["name"] for e in mine] == [self.ns + n for n, _ in expected], \
            f"list_locks: expected {[n for n, _ in expected]}, got {[e['name'] for e in mine]}\n{self.describe_locks()}"
        for entry, (name, lock) in zip(mine, expected):
            self.check_lock_view(entry, name, lock, "list_locks")
        self.settle()

    # ----- rules: the test clock

    @precondition(lambda self: self.w.clock)
    @rule(ms=st.sampled_from(ADVANCES))
    def advance(self, ms):
        """Time passes on the daemon's clock: leases and waits that end meanwhile end, in time order."""
        self.begin()
        target = self.model.steady + ms
        if self.step_advances:
            while (stop := self.model.next_deadline(target)) is not None and stop > self.model.steady:
                self._move_clock(stop - self.model.steady)
        self._move_clock(target - self.model.steady)
        self.settle()

    def _move_clock(self, ms):
        reply = self.w.controls[0].request({"type": "test_clock", "advanceMs": ms})
        self.model.advance(ms)
        self.expect_equal(reply.get("data"), {"wallMs": self.model.wall, "steadyMs": self.model.steady},
                          f"test_clock advanceMs {ms}", reply)
        self.await_runs()

    @precondition(lambda self: self.w.clock)
    @rule(tens=st.sampled_from([-6, 0, 1, 12]))
    def set_wall(self, tens):
        """A wall-clock jump (an hour back, within ten minutes, ten minutes or two hours forward) to
        90 s past a 10-minute boundary: leases stay where they were, and so does every expiresAt
        shown; jobs catch up (or record a miss) once, or keep their next slot after a jump back."""
        self.begin()
        wall = self.model.wall // 600_000 * 600_000 + tens * 600_000 + 90_000
        iso = datetime.datetime.fromtimestamp(wall / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        reply = self.w.controls[0].request({"type": "test_clock", "setWall": iso})
        self.model.set_wall(wall)
        self.expect_equal(reply.get("data"), {"wallMs": wall, "steadyMs": self.model.steady},
                          f"test_clock setWall {iso}", reply)
        self.await_runs()
        self.settle()

    @precondition(lambda self: self.w.jobs and self.model.jobs and not self.model.locks and not self.model.running)
    @rule()
    def restart(self):
        """The daemon stops (SIGTERM, exit 0) and starts again in its PHOTON_DIR, its clock going on
        from the same wall time: connections are gone, tokens go on above every token before
        (docs/locks.md), jobs and their records survive (docs/scheduler.md). Only without held
        locks or running runs (what a restart does to those is not said), and with a job to keep
        (a restart costs more than any other step, so it comes only when it has more to show)."""
        self.begin()
        for slot in list(self.conns):
            self.conns.pop(slot).close()
            key = self.keys.pop(slot)
            del self.expected_inbox[key]
            self.model.disconnect(key)
        wall = self.model.wall // 1000 * 1000  # whole seconds; before any slot not yet run
        iso = datetime.datetime.fromtimestamp(wall / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.w._start(0, restart_at=iso)
        data = self.w.controls[0].request({"type": "test_clock"})["data"]
        assert data["wallMs"] == wall, f"restarted with --test-clock={iso}, the clock says {data}"
        self.model.steady, self.model.wall = data["steadyMs"], wall
        self.last_token = None  # a restart may skip up to 999 tokens (docs/locks.md)
        self.settle()

    # ----- rules: jobs (one daemon on the test clock)

    @precondition(lambda self: self.w.jobs and self.conns)
    @rule(who=st.integers(0, SLOTS - 1), job=st.sampled_from(JOBS), method=st.sampled_from(["tick", "hold"]),
          period=st.sampled_from(PERIODS), catch_up=st.sampled_from(["latest", "skip"]),
          overlap=st.sampled_from(["skip", "allow"]))
    def schedule(self, who, job, method, period, catch_up, overlap):
        self.begin()
        slot = self.pick_open(who)
        if self.model.has_orphans(job):
            # A run of the job removed is still going: whether it counts for the job scheduled
            # again under its id is not said locally (docs/scaling.md: "may count that run").
            self.settle()
            return
        job_id = self.ns + job
        cron = f"*/{period // 60_000} * * * *"
        reply = self.conns[slot].request({"type": "schedule", "sessionId": self.holder(slot), "jobId": job_id,
                                          "method": method, "cron": cron, "timezone": "UTC",
                                          "catchUp": catch_up, "overlap": overlap})
        next_run = self.model.schedule(job, method, period, catch_up, overlap, self.holder(slot))
        self.expect_equal(reply.get("data"), {"scheduled": True, "jobId": job_id, "nextRun": next_run},
                          f"schedule {job} {cron}", reply)
        self.settle()

    @precondition(lambda self: self.w.jobs and self.conns)
    @rule(who=st.integers(0, SLOTS - 1), job=st.sampled_from(JOBS))
    def unschedule(self, who, job):
        self.begin()
        slot = self.pick_open(who)
        job_id = self.ns + job
        reply = self.conns[slot].request({"type": "unschedule", "jobId": job_id})
        if self.model.unschedule(job):
            self.expect_equal(reply.get("data"), {"unscheduled": True, "jobId": job_id}, f"unschedule {job}", reply)
        else:
            self.expect_equal(reply.get("data"), {"unscheduled": False, "jobId": job_id, "reason": f'no job "{job_id}"'},
                              f"unschedule {job} (none)", reply)
        self.settle()

    @precondition(lambda self: self.w.jobs and self.conns)
    @rule(who=st.integers(0, SLOTS - 1), job=st.sampled_from(JOBS))
    def run_job(self, who, job):
        self.begin()
        slot = self.pick_open(who)
        job_id = self.ns + job
        reply = self.conns[slot].request({"type": "run_job", "jobId": job_id})
        data = reply.get("data") or {}
        if self.model.run_job(job):
            assert reply.get("success") is True and data.get("started") is True and isinstance(data.get("runId"), int), \
                f"run_job {job}: {reply!r}"
        else:
            assert reply.get("success") is False and data.get("started") is False, f"run_job {job} (none): {reply!r}"
        self.await_runs()
        self.settle()

    @precondition(lambda self: self.w.jobs and self.conns)
    @rule(who=st.integers(0, SLOTS - 1))
    def list_jobs(self, who):
        self.begin()
        slot = self.pick_open(who)
        reply = self.conns[slot].request({"type": "list_jobs"})
        listed = [j for j in reply["data"]["jobs"] if j["id"].startswith(self.ns)]
        expected = []
        for job_id in sorted(self.model.jobs):
            job = self.model.jobs[job_id]
            expected.append({"id": self.ns + job_id, "method": job.method, "args": {}, "cron": job.cron,
                             "lastRun": job.last_run, "nextRun": job.next_run, "runCount": job.run_count,
                             "createdAt": job.created_at, "createdBy": job.created_by, "timezone": "UTC",
                             "catchUp": job.catch_up, "overlap": job.overlap, "declared": False,
                             "lastStatus": job.last_status, "lastError": ""})
        self.expect_equal(listed, expected, "list_jobs")
        self.settle()

    @precondition(lambda self: self.w.jobs and self.model.running)
    @rule()
    def release_runs(self):
        """The held runs end: each ends with job-completed and counts for its job."""
        self.begin()
        ended = self.model.release()
        control = self.w.controls[0]
        with open(self.w.gate, "w"):
            pass
        try:
            control.wait_for(lambda c: len(self.job_events("job-completed")) + len(self.job_events("job-failed")) >= len(ended))
        finally:
            os.unlink(self.w.gate)
        assert not self.job_events("job-failed"), f"job events: {control.inbox!r}"
        completed = self.job_events("job-completed")
        self.expect_equal(sorted((e["data"]["runId"], e["data"]["jobId"], e["data"]["method"]) for e in completed),
                          sorted((self.run_ids[id(r)], self.ns + r.job_id, r.method) for r in ended),
                          "runs ended (runId, jobId, method)", control.inbox)
        # A run whose job was unscheduled while it ran counts for no job (docs/scheduler.md).
        orphans = {self.run_ids[id(r)] for r in ended if r.orphan}
        self.expect_equal(sorted(e["data"]["runCount"] for e in completed if e["data"]["runId"] in orphans),
                          [0] * len(orphans), "runCount of the runs whose job was unscheduled", control.inbox)
        for job_id in {r.job_id for r in ended if not r.orphan}:
            job = self.model.jobs[job_id]
            counts = sorted(e["data"]["runCount"] for e in completed if e["data"]["jobId"] == self.ns + job_id)
            self.expect_equal(counts, list(range(job.run_count - len(counts) + 1, job.run_count + 1)),
                              f"runCount of the runs of {job_id} that ended", control.inbox)
        control.inbox.clear()
        self.settle()

    def job_events(self, kind):
        return [m["message"] for m in self.w.controls[0].inbox if m["message"].get("event") == kind]

    def await_runs(self):
        """Checks the runs the step started and the slots it skipped against the job events on
        jobs:m, and waits for the end of each run that returns at once (so none is still going
        when the clock moves on)."""
        runs, self.model.runs = self.model.runs, []
        skipped, self.model.skipped = self.model.skipped, []
        if not self.w.jobs:
            return
        control = self.w.controls[0]
        # The runs due started before the reply to the clock move or run_job: their job-started
        # and job-skipped came before the pong; their ends come when their methods return.
        control.sync()
        started = self.job_events("job-started")
        got = sorted((e["data"]["jobId"], e["data"]["method"], e["data"]["trigger"],
                      e["data"]["scheduledFor"] if e["data"]["trigger"] != "manual" else None) for e in started)
        want = sorted((self.ns + r.job_id, r.method, r.trigger, r.scheduled_for) for r in runs)
        self.expect_equal(got, want, "runs started (jobId, method, trigger, scheduledFor)", control.inbox)
        got = sorted((e["data"]["jobId"], e["data"]["scheduledFor"]) for e in self.job_events("job-skipped"))
        self.expect_equal(got, sorted((self.ns + j, t) for j, t in skipped), "slots skipped (jobId, scheduledFor)",
                          control.inbox)
        run_ids = [e["data"]["runId"] for e in started]
        assert run_ids == sorted(run_ids) and len(set(run_ids)) == len(run_ids), f"run ids {run_ids}"
        # Bind each model run to its run id (same job and trigger: in start order).
        for run in runs:
            for e in started:
                key = (self.ns + run.job_id, run.trigger)
                if (e["data"]["jobId"], e["data"]["trigger"]) == key and e["data"]["runId"] not in self.run_ids.values():
                    self.run_ids[id(run)] = e["data"]["runId"]
                    break
        quick = [r for r in runs if r.method == "tick"]
        if quick:
            control.wait_for(lambda c: len(self.job_events("job-completed")) + len(self.job_events("job-failed")) >= len(quick))
        assert not self.job_events("job-failed"), f"job events: {control.inbox!r}"
        for e in self.job_events("job-completed"):
            assert e["data"]["runId"] in [self.run_ids[id(r)] for r in quick], f"an unexpected run ended: {e!r}"
            job = self.model.jobs.get(e["data"]["jobId"][len(self.ns):])
            if job is not None:
                assert e["data"]["runCount"] == job.run_count, f"runCount {e!r}, model {job.run_count}"
        control.inbox.clear()

    # ----- checks

    def describe_subs(self):
        return {self.slot_of_key(k): sorted(v) for k, v in self.model.subs.items()}

    def describe_locks(self):
        return "model locks: " + repr({n: (l.holder, l.grant.token, l.expires, l.expires_at, l.bound,
                                           [(w.request_id, w.holder) for w in l.waiters])
                                       for n, l in self.model.locks.items()})

    def expect_equal(self, actual, expected, what, context=None):
        if actual != expected:
            extra = f"\n(reply: {context!r})" if context is not None else ""
            raise AssertionError(f"{what}:\n expected {expected!r}\n got      {actual!r}{extra}")

    def check_time(self, value, lo, hi, what):
        assert isinstance(value, int) and lo - 1 <= value <= hi + 1, \
            f"{what}: {value!r} is not the daemon's wall time of the request ({lo}..{hi})"

    def check_lock_reply(self, reply, exp, t0, t1):
        """Compares a lock reply with the model's Expect; learns the token (and, on the real clock,
        the times) of a new acquisition."""
        name = self.ns + exp.name
        what = f"lock {exp.name} ({exp.kind} expected)\n{self.describe_locks()}"
        data = reply.get("data") or {}
        broker = self.w.count > 1
        if exp.kind in ("acquired", "extended"):
            assert reply.get("type") == "result" and reply.get("success") is True and data.get("acquired") is True, \
                f"{what}: got {reply!r}"
            grant = exp.grant
            if grant.token is None:
                assert exp.kind == "acquired", what
                assert isinstance(data.get("token"), int) and data["token"] >= 1, f"{what}: bad token in {reply!r}"
                grant.token = data["token"]
            if grant.acquired_at is None:
                self.check_time(data.get("acquiredAt"), t0, t1, f"{what}: acquiredAt")
                grant.acquired_at = data["acquiredAt"]
            expected = {"acquired": True, "lockName": name, "holder": exp.holder, "acquiredAt": grant.acquired_at,
                        "expiresAt": exp.expires_at, "token": grant.token}
            if exp.kind == "extended":
                expected["extended"] = True
            if exp.expires_at is None:  # the real clock: the lease from the time of the request
                expires_at = data.get("expiresAt")
                if not broker:
                    self.check_time(expires_at - exp.lease if isinstance(expires_at, int) else None, t0, t1,
                                    f"{what}: expiresAt - lockTimeout")
                    exp.lock.expires_at = expires_at
                expected["expiresAt"] = expires_at
            self.expect_equal(data, expected, what, reply)
            return
        held_by = f'lock "{name}" is held by {exp.holder}'
        assert reply.get("type") == "result" and reply.get("success") is False, f"{what}: got {reply!r}"
        expected = {"acquired": False, "lockName": name, "holder": exp.holder,
                    "expiresAt": exp.expires_at if self.w.clock else exp.lock.expires_at, "reason": held_by}
        if broker:
            expected["expiresAt"] = data.get("expiresAt")
        if exp.kind == "timed_out":
            reason = data.get("reason", "")
            assert "timed out" in reason and reason.endswith(held_by), f"{what}: reason {reason!r}"
            expected["reason"] = reason
        self.expect_equal(data, expected, what, reply)

    def check_lock_view(self, view, name, lock, what):
        if lock is None:
            assert view is None, f"{what}: {name} should be free, got {view!r}\n{self.describe_locks()}"
            return
        expected = {"name": self.ns + name, "holder": lock.holder, "acquiredAt": lock.grant.acquired_at,
                    "expiresAt": lock.expires_at, "token": lock.grant.token, "waiters": len(lock.waiters)}
        if self.w.count > 1 and isinstance(view, dict):
            expected["expiresAt"] = view.get("expiresAt")  # the answering daemon's clock plus Redis's TTL
        self.expect_equal(view, expected, f"{what}\n{self.describe_locks()}")

    def wait_connections(self):
        """Waits until every daemon counts the connections the model has open (plus the control
        one): a connection closed abruptly is dropped when the daemon reads its end."""
        for index in range(self.w.count):
            expected = 1 + sum(1 for c in self.conns.values() if c.daemon == index)
            control = self.w.controls[index]
            wait_until(lambda: control.request({"type": "status"})["data"]["connections"] == expected,
                       message=f"daemon {index} to count {expected} connections")

    def settle(self):
        """After every step: everything owed has arrived, nothing else has, and the daemon's
        tokens, subscriptions and connections are the model's."""
        for conn in self.conns.values():
            conn.sync()
        t1 = now_ms()
        for exp in self.model.expected_async:
            slot = self.slot_of_key(exp.conn)
            conn = self.conns[slot]
            assert exp.request_id in conn.replies, \
                f"no answer to the waiting {exp.request_id} of slot {slot} ({exp.kind} expected)\n{self.describe_locks()}"
            self.check_lock_reply(conn.replies.pop(exp.request_id), exp, self.step_started, t1)
        self.model.expected_async = []
        for slot, conn in self.conns.items():
            assert not conn.replies, f"slot {slot} got lines the model does not expect: {conn.replies!r}\n{self.describe_locks()}"
            key = self.conn_key(slot)
            got = []
            ids = self.w.message_ids[conn.daemon]
            for m in conn.inbox:
                assert set(m) == {"type", "id", "channel", "eventId", "message"}, f"bad channel_message {m!r}"
                assert isinstance(m["id"], str) and m["id"].startswith("ch_") and m["id"][3:].isdigit(), m
                seq = m["message"].get("seq") if isinstance(m["message"], dict) else None
                if ids.setdefault(m["id"], (self.ns, seq)) != (self.ns, seq):
                    raise AssertionError(f"channel_message id {m['id']} reused: {m!r}")
                got.append((m["channel"], m["message"]))
            self.expect_equal(got, self.expected_inbox[key],
                              f"messages of slot {slot} (subscriptions: {self.describe_subs()})")
            conn.inbox.clear()
            self.expected_inbox[key] = []
        if self.w.jobs:
            control = self.w.controls[0]
            control.sync()
            assert not control.inbox, f"job events the model does not expect: {control.inbox!r}"
        self.check_tokens()
        self.check_status()

    def check_tokens(self):
        """New tokens are distinct, above every token the daemon(s) issued before (also in earlier
        examples), in the order of the acquisitions, and on one daemon consecutive."""
        grants = self.model.grants
        self.model.grants = []
        if not grants:
            return
        tokens = [g.grant.token for g in grants]
        assert all(isinstance(t, int) for t in tokens), f"acquisitions without a token: {grants!r}"
        assert len(set(tokens)) == len(tokens), f"a token issued twice: {tokens}"
        floor = self.w.token_max
        if floor is not None:
            assert min(tokens) > floor, f"tokens {tokens} are not above every token before ({floor})"
        # Acquisitions at different instants: in that order; at one instant, in any order.
        groups = {}
        for g in grants:
            groups.setdefault(g.group, []).append(g.grant.token)
        ordered = [groups[k] for k in sorted(groups)]
        for earlier, later in zip(ordered, ordered[1:]):
            assert max(earlier) < min(later), f"tokens out of order: {ordered}"
        if self.w.count == 1:  # consecutive on one daemon (docs/locks.md); an earlier example that
            # failed may have left tokens unread, so the run starts at this example's first token
            start = (self.last_token + 1) if self.last_token is not None else min(tokens)
            assert sorted(tokens) == list(range(start, start + len(tokens))), \
                f"tokens {sorted(tokens)} are not consecutive after {self.last_token}"
        self.last_token = max(tokens)
        self.w.token_max = max(tokens)

    def check_status(self):
        for index in range(self.w.count):
            status = self.w.controls[index].request({"type": "status"})["data"]
            expected_conns = 1 + sum(1 for c in self.conns.values() if c.daemon == index)
            assert status["connections"] == expected_conns, \
                f"daemon {index} counts {status['connections']} connections, the model {expected_conns}"
            counts = dict(self.model.subscriber_counts(index))
            if self.marker and expected_conns > 1:
                counts[self.marker] = expected_conns - 1
            if self.w.jobs:
                counts[JOB_EVENTS] = 1
            listed = {e["channel"]: e["subscribers"] for e in status["channels"]}
            self.expect_equal(listed, counts, f"status.channels of daemon {index}")

    def teardown(self):
        """Closes the example's connections and releases its locks, so the next example starts clean."""
        for conn in self.conns.values():
            conn.close()
        self.conns = {}
        try:
            for index in range(self.w.count):
                control = self.w.controls[index]
                wait_until(lambda: control.request({"type": "status"})["data"]["connections"] == 1,
                           message=f"daemon {index} to drop the example's connections")
            control = self.w.controls[0]
            if self.w.jobs:
                for job in control.request({"type": "list_jobs"})["data"]["jobs"]:
                    if job["id"].startswith(self.ns):
                        control.request({"type": "unschedule", "jobId": job["id"]})
                if self.model.running:
                    with open(self.w.gate, "w"):
                        pass
                    try:
                        control.wait_for(lambda c: len(self.job_events("job-completed")) >= len(self.model.running))
                    finally:
                        os.unlink(self.w.gate)
                control.sync()
                control.inbox.clear()
            for entry in control.request({"type": "list_locks"})["data"]["locks"]:
                if entry["name"].startswith(self.ns):
                    control.request({"type": "unlock", "sessionId": entry["holder"], "lockName": entry["name"]})
        except Exception:  # noqa: BLE001 - a dead daemon is replaced by the next example's ensure()
            pass


def machine_for(world):
    return type("ProtocolModel", (ProtocolMachine,), {"world": world})


def model_settings(examples, steps, database=None, derandomize=False):
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None, database=database,
                    derandomize=derandomize, print_blob=True,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])


class ModelTest(unittest.TestCase):
    daemons = 1
    examples = int(os.environ.get("MODEL_EXAMPLES", "25"))
    steps = int(os.environ.get("MODEL_STEPS", "40"))

    @classmethod
    def setUpClass(cls):
        cls.world = World(cls.daemons, clock=cls.daemons == 1 and has_test_clock())

    @classmethod
    def tearDownClass(cls):
        print(f"\n{cls.__name__}: {cls.world.examples} examples, {cls.world.steps} steps "
              f"({'test clock' if cls.world.clock else 'real clock'})", file=sys.stderr)
        reports = cls.world.stop()
        if reports:
            raise AssertionError("\n".join(reports))

    def run_model(self):
        run_state_machine_as_test(machine_for(self.world), settings=model_settings(self.examples, self.steps))


class OneDaemon(ModelTest):
    def test_random_sequences_match_the_model(self):
        self.run_model()


class TwoDaemonsOneRedis(ModelTest):
    daemons = 2
    examples = int(os.environ.get("MODEL_EXAMPLES_BROKER", "10"))

    def test_random_sequences_match_the_model(self):
        self.run_model()


class Regressions(unittest.TestCase):
    """Minimal sequences found by the model, replayed as Hypothesis printed them. A sequence that
    shows a known divergence is skipped, naming it, until the daemon (or the documents) change."""

    @classmethod
    def setUpClass(cls):
        cls.clock = has_test_clock()
        cls.world = World(1, clock=cls.clock)

    @classmethod
    def tearDownClass(cls):
        reports = cls.world.stop()
        if reports:
            raise AssertionError("\n".join(reports))

    def machine(self, **workarounds):
        if not self.clock:
            self.skipTest("photond was built without PHOTON_TEST_CLOCK")
        return type("ProtocolModel", (ProtocolMachine,), {"world": self.world, **workarounds})()

    def test_a_wait_that_ends_before_the_lease_times_out(self):
        state = self.machine(step_advances=False)
        try:
            state.two_connections()
            state.lock(as_slot=1, lease=250, name='x', rod=None, wait=0, who=0)
            state.lock(as_slot=None, lease=1, name='x', rod=None, wait=100, who=0)
            state.advance(ms=250)  # the wait ends at 100: refused; the daemon grants it at 250
        finally:
            state.teardown()

    def test_a_waiter_is_granted_the_instant_the_lease_ends(self):
        state = self.machine(step_advances=False)
        try:
            state.two_connections()
            state.lock(as_slot=1, lease=1, name='y', rod=None, wait=0, who=0)
            state.lock(as_slot=None, lease=1, name='y', rod=None, wait=100, who=0)
            state.advance(ms=99)  # granted at 1 for 1 ms; the daemon grants it at 99
        finally:
            state.teardown()

    def test_a_slot_passed_while_time_passes_runs_on_time(self):
        state = self.machine(step_advances=False)
        try:
            state.two_connections()
            state.set_wall(tens=0)  # 90 s past a 10-minute boundary: the next slot in 210 s
            state.schedule(catch_up='skip', job='j', method='tick', overlap='skip', period=300000, who=0)
            state.advance(ms=300000)  # the slot comes 90 s before the move ends: a run, not a miss
            state.list_jobs(who=0)
        finally:
            state.teardown()

    def test_a_queued_extension_does_not_shorten_the_lease_just_granted(self):
        state = self.machine(queued_extension_keeps_longer_lease=True)
        try:
            state.two_connections()
            state.lock(as_slot=1, lease=30000, name='x', rod=None, wait=0, who=1)
            state.lock(as_slot=None, lease=1000, name='x', rod=None, wait=1000, who=0)
            state.lock(as_slot=None, lease=100, name='x', rod=None, wait=1000, who=0)
            state.unlock(as_slot=None, name='x', who=1)  # h0 gets it for 1000 ms; the 100 ms one keeps 1000
            state.query_lock(name='x', who=0)
        finally:
            state.teardown()

    def test_a_run_of_a_job_unscheduled_meanwhile_ends_naming_its_method(self):
        state = self.machine()
        try:
            state.two_connections()
            state.schedule(catch_up='latest', job='j', method='hold', overlap='skip', period=300000, who=0)
            state.run_job(job='j', who=0)
            state.unschedule(job='j', who=0)
            state.release_runs()  # job-completed said method "" (job-started said "hold")
        finally:
            state.teardown()

    def test_a_run_of_a_job_replaced_meanwhile_ends_naming_its_method(self):
        state = self.machine()
        try:
            state.two_connections()
            state.schedule(catch_up='latest', job='j', method='hold', overlap='skip', period=300000, who=0)
            state.set_wall(tens=1)  # a catch-up run of "hold" starts
            state.schedule(catch_up='latest', job='j', method='tick', overlap='skip', period=300000, who=0)
            state.release_runs()  # job-completed said method "tick" (job-started said "hold")
        finally:
            state.teardown()

    def test_waiters_are_served_first_come_first_served(self):
        # The sequence that caught a model whose queue was last come, first served.
        state = self.machine()
        try:
            state.two_connections()
            state.lock(as_slot=1, lease=1, name='x', rod=None, wait=0, who=0)
            state.lock(as_slot=None, lease=1, name='x', rod=None, wait=100, who=0)
            state.lock(as_slot=None, lease=1, name='x', rod=None, wait=100, who=0)
            state.advance(ms=1)
        finally:
            state.teardown()

    def test_the_publisher_does_not_receive_its_own_message(self):
        # The sequence that caught a model that echoed a message to its publisher.
        state = self.machine()
        try:
            state.two_connections()
            state.subscribe(channel='a', who=0)
            state.publish(channels=['a'], who=0)
        finally:
            state.teardown()

    def test_a_job_replaced_after_the_clock_went_back_starts_from_now(self):
        # Found by the model (its first reading kept the next slot of a job replaced unchanged).
        state = self.machine()
        try:
            state.two_connections()
            state.schedule(catch_up='latest', job='k', method='tick', overlap='skip', period=300000, who=0)
            state.set_wall(tens=-6)
            state.schedule(catch_up='latest', job='k', method='tick', overlap='skip', period=300000, who=0)
        finally:
            state.teardown()


class BrokerRegressions(unittest.TestCase):
    """Minimal sequences of the two-daemon world (slot 0 on daemon 0, slot 1 on daemon 1)."""

    @classmethod
    def setUpClass(cls):
        cls.world = World(2, clock=False)

    @classmethod
    def tearDownClass(cls):
        reports = cls.world.stop()
        if reports:
            raise AssertionError("\n".join(reports))

    def machine(self, **workarounds):
        return type("ProtocolModel", (ProtocolMachine,), {"world": self.world, **workarounds})()

    def test_a_lock_extended_with_release_on_disconnect_follows_the_last_connection(self):
        state = self.machine()
        try:
            state.two_connections()
            state.lock(as_slot=None, lease=1000, name='y', rod=True, wait=0, who=0)  # slot 0 as h0
            state.lock(as_slot=0, lease=1000, name='y', rod=True, wait=0, who=1)  # slot 1 as h0: extended
            state.disconnect(graceful=True, who=0)  # slot 0 closes: y stays (bound to slot 1)
            state.query_lock(name='y', who=0)
        finally:
            state.teardown()

    def test_a_close_does_not_free_a_later_lock_taken_without_release_on_disconnect(self):
        state = self.machine()
        try:
            state.two_connections()
            state.lock(as_slot=None, lease=1000, name='y', rod=True, wait=0, who=0)  # slot 0 as h0
            state.unlock(as_slot=0, name='y', who=1)  # slot 1 releases it as h0
            state.lock(as_slot=0, lease=1000, name='y', rod=False, wait=0, who=1)  # and takes it, no rod
            state.disconnect(graceful=True, who=0)  # slot 0 closes: y stays (bound to none)
            state.query_lock(name='y', who=0)
        finally:
            state.teardown()

    def test_channels_cross_daemons_once_per_connection(self):
        state = self.machine()
        try:
            state.two_connections()
            state.subscribe(channel='a:*', who=1)
            state.subscribe(channel='<all>', who=1)
            state.publish(channels=['a:', 'a:b', 'ab'], who=0)
        finally:
            state.teardown()


def main():
    """`make model`: examples for a time budget, failures kept in a local database and replayed first."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("MODEL_SECONDS", "600")))
    parser.add_argument("--database", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".hypothesis-db"))
    args = parser.parse_args()
    database = DirectoryBasedExampleDatabase(args.database)
    deadline = time.monotonic() + args.seconds
    worlds = [World(1, has_test_clock()), World(2, False)]
    rounds = 0
    failed = False
    try:
        while time.monotonic() < deadline:
            for world in worlds:
                run_state_machine_as_test(machine_for(world),
                                          settings=model_settings(int(os.environ.get("MODEL_EXAMPLES", "25")),
                                                                  int(os.environ.get("MODEL_STEPS", "40")), database))
            rounds += 1
            print(f"model: round {rounds} passed ({int(deadline - time.monotonic())} s left)", flush=True)
    except Exception:  # noqa: BLE001 - Hypothesis has printed the minimal failing sequence
        failed = True
        raise
    finally:
        reports = [r for world in worlds for r in world.stop()]
        for report in reports:
            print(report, file=sys.stderr)
        if reports and not failed:
            sys.exit(1)


if __name__ == "__main__":
    main()
