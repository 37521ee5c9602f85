# The reference model of what docs/protocol.md, channels.md, locks.md and scheduler.md promise: pure Python, no I/O.
"""What a client of photond should see, worked out from the documents alone.

The model knows connections (by a key that is unique for the test run), their subscriptions, the
locks with their holders, leases, waiters and release-on-disconnect bindings, and the daemon's clock
when the test moves it. Each operation returns what the daemon must answer; answers that come later
on other connections (a waiter granted, a wait timed out) are queued in `expected_async`, and the new
acquisitions of a step in `grants`, for the driver to compare and to learn the daemon's tokens from.

Rules taken from the documents (quoted where they decide a case):
- channels: a pattern ending in `*` matches every channel starting with the part before it
  ("`board:*` matches `board:a` and `board:a:b` (and `board:` itself)"); a connection receives a
  message once however many of its subscriptions match; the publisher never receives its own;
  `delivered` counts the connections (of the publisher's daemon) it was queued to.
- locks: the holder is the `sessionId`; a free lock is acquired with a new token greater than every
  token before it (consecutive on one daemon); the holder locking again extends the lease to
  `lockTimeout` from now, with the original `acquiredAt` and `token`; another holder is refused, or
  waits with `lockWait`, first come first served; when a lock goes to a waiter, every other queued
  request of that holder is answered at once as an extension; a waiter whose connection closes leaves
  the queue; a lock taken or extended with `releaseOnDisconnect` ends when that connection closes;
  "the instant a lease ends the lock is free ... and the first waiter is granted it then"; a
  wall-clock jump moves no lease and no `expiresAt` already given.
- jobs: a slot runs when its time comes, with `overlap: "skip"` not while a run of the job goes
  on (recorded as skipped); a wall-clock jump past slots runs the latest once as a catch-up
  (`catchUp: "latest"`) or records it missed (`"skip"`), and the next slot is computed from the
  new time; a jump back repeats nothing; a replaced job keeps its record; `runCount` counts the
  runs that ended; a run in progress finishes when its job is removed.
"""

import dataclasses
from typing import Dict, List, Optional


def matches(subscription, channel):
    """docs/channels.md: `board:*` matches every channel starting with `board:`; `*` matches all."""
    if subscription.endswith("*"):
        return channel.startswith(subscription[:-1])
    return subscription == channel


@dataclasses.dataclass
class Grant:
    """One acquisition: its token is learnt from the daemon's reply (the model cannot know the number)."""

    token: Optional[int] = None
    acquired_at: Optional[int] = None  # wall ms; None until known (real clock: learnt from the reply)


@dataclasses.dataclass
class Waiter:
    request_id: str
    conn: int
    holder: str
    lease: int
    wait: int
    rod: bool
    deadline: Optional[int]  # steady ms (None on the real clock: the waits are too long to end)


@dataclasses.dataclass
class Lock:
    holder: str
    grant: Grant
    expires: Optional[int]  # steady ms of the lease's end (None on the real clock)
    expires_at: Optional[int]  # wall ms shown on the wire (None until known on the real clock)
    lease: int
    bound: Optional[int] = None  # the connection whose close ends it
    waiters: List[Waiter] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Job:
    """A job that fires every `period` ms of the wall clock (`*/N * * * *` in UTC)."""

    cron: str
    method: str  # "tick" returns at once; "hold" runs until the test lets it end
    period: int
    catch_up: str
    overlap: str
    created_at: int
    created_by: str
    next_run: int
    last_run: Optional[int] = None
    run_count: int = 0
    last_status: str = ""


@dataclasses.dataclass
class Run:
    """A run the step started: announced by job-started, then job-completed."""

    job_id: str
    trigger: str
    scheduled_for: Optional[int]
    method: str = "tick"
    orphan: bool = False  # its job was unscheduled while it ran ("a run in progress finishes")


@dataclasses.dataclass
class Expect:
    """A reply the daemon owes: kind is acquired, extended, refused, timed_out, released, not_released."""

    conn: int
    request_id: str
    kind: str
    name: str
    holder: str = ""
    grant: Optional[Grant] = None
    lease: int = 0
    expires_at: Optional[int] = None
    wait: int = 0
    lock: Optional[Lock] = None  # for replies whose expiresAt is learnt on the real clock


@dataclasses.dataclass
class GrantEvent:
    """A new acquisition in a step; `group` orders them (same group: same instant, any order)."""

    group: int
    name: str
    grant: Grant


class Model:
    """clock: (steady_ms, wall_ms) when the test moves the daemon's clock, else None (real clock)."""

    def __init__(self, clock=None, queued_extension_keeps_longer_lease=False):
        """queued_extension_keeps_longer_lease: a queued request of the new holder, answered as an
        extension when the lock goes to that holder, keeps the lease if it is longer than its
        lockTimeout from now (the daemon's behaviour) instead of setting it to lockTimeout from now
        (the documents' sentence on extensions)."""
        self.queued_extension_keeps_longer_lease = queued_extension_keeps_longer_lease
        self.timed = clock is not None
        self.steady, self.wall = clock if clock else (None, None)
        self.subs: Dict[int, set] = {}  # connection key -> subscriptions
        self.daemon_of: Dict[int, int] = {}  # connection key -> daemon index
        self.locks: Dict[str, Lock] = {}
        self.expected_async: List[Expect] = []
        self.grants: List[GrantEvent] = []
        self.pending: Dict[int, Dict[str, Waiter]] = {}  # connection -> request id -> waiter
        self.jobs: Dict[str, Job] = {}
        self.runs: List[Run] = []  # runs started in the step
        self.skipped: List[tuple] = []  # (job id, scheduledFor) of slots the step skipped
        self.running: List[Run] = []  # runs of "hold" methods still going
        self._group = 0

    # ----- connections

    def connect(self, conn, daemon=0):
        self.subs[conn] = set()
        self.daemon_of[conn] = daemon
        self.pending[conn] = {}

    def disconnect(self, conn):
        """The connection closed: its waiters leave (unanswered), its bound locks are released."""
        del self.subs[conn]
        del self.daemon_of[conn]
        del self.pending[conn]
        for lock in self.locks.values():
            lock.waiters = [w for w in lock.waiters if w.conn != conn]
        self._group += 1
        for name in sorted(self.locks):
            lock = self.locks.get(name)
            if lock is not None and lock.bound == conn:
                self._free(name)

    def begin_step(self):
        """A step of the test begins: the answers and acquisitions it causes are collected anew."""
        self.expected_async = []
        self.grants = []
        self.runs = []
        self.skipped = []

    def next_deadline(self, until):
        """The earliest lease end or wait end at or before steady time `until`, or None."""
        times = [lock.expires for lock in self.locks.values()]
        times += [w.deadline for lock in self.locks.values() for w in lock.waiters]
        times += [self._steady_of(job.next_run) for job in self.jobs.values()]
        times = [t for t in times if t is not None and t <= until]
        return min(times, default=None)

    def _steady_of(self, wall):
        return self.steady + (wall - self.wall)

    # ----- channels

    def subscribe(self, conn, channel):
        self.subs[conn].add(channel)

    def unsubscribe(self, conn, channel):
        self.subs[conn].discard(channel)

    def publish(self, conn, channel):
        """Returns (the connections that receive it, the publisher daemon's `delivered` count)."""
        receivers = [other for other, subs in self.subs.items()
                     if other != conn and any(matches(s, channel) for s in subs)]
        local = [other for other in receivers if self.daemon_of[other] == self.daemon_of[conn]]
        return receivers, len(local)

    def subscriber_counts(self, daemon):
        """status.channels as (channel, subscribers) for the connections of one daemon."""
        counts = {}
        for conn, subs in self.subs.items():
            if self.daemon_of[conn] != daemon:
                continue
            for s in subs:
                counts[s] = counts.get(s, 0) + 1
        return sorted(counts.items())

    # ----- locks

    def _new_grant(self, name, holder, lease, conn, rod, waiters=None):
        grant = Grant(acquired_at=self.wall)
        lock = Lock(holder=holder, grant=grant,
                    expires=self.steady + lease if self.timed else None,
                    expires_at=self.wall + lease if self.timed else None,
                    lease=lease, bound=conn if rod else None, waiters=waiters or [])
        self.locks[name] = lock
        self.grants.append(GrantEvent(self._group, name, grant))
        return lock

    def _extend(self, lock, lease, conn, rod, keep_longer=False):
        if not self.timed:
            lock.expires_at = None  # learnt from the reply
        elif not (keep_longer and lock.expires >= self.steady + lease):
            lock.expires = self.steady + lease
            lock.expires_at = self.wall + lease
        lock.lease = lease
        if rod:
            lock.bound = conn

    def lock(self, conn, request_id, name, holder, lease, wait, rod):
        """The immediate reply, or None when the request waits (its answer comes later)."""
        self._group += 1
        lock = self.locks.get(name)
        if lock is None:
            lock = self._new_grant(name, holder, lease, conn, rod)
            return Expect(conn, request_id, "acquired", name, holder, lock.grant, lease, lock.expires_at, lock=lock)
        if lock.holder == holder:
            self._extend(lock, lease, conn, rod)
            return Expect(conn, request_id, "extended", name, holder, lock.grant, lease, lock.expires_at, lock=lock)
        if wait == 0:
            return Expect(conn, request_id, "refused", name, lock.holder, lock.grant, 0, lock.expires_at, lock=lock)
        waiter = Waiter(request_id, conn, holder, lease, wait, rod,
                        self.steady + wait if self.timed else None)
        lock.waiters.append(waiter)
        self.pending[conn][request_id] = waiter
        return None

    def _free(self, name):
        """Ends the lock, or hands it to its first waiter (and extends that holder's later waiters)."""
        lock = self.locks.pop(name)
        if not lock.waiters:
            return
        first, rest = lock.waiters[0], lock.waiters[1:]
        del self.pending[first.conn][first.request_id]
        new = self._new_grant(name, first.holder, first.lease, first.conn, first.rod,
                              [w for w in rest if w.holder != first.holder])
        self.expected_async.append(Expect(first.conn, first.request_id, "acquired", name, first.holder,
                                          new.grant, first.lease, new.expires_at, lock=new))
        for same in (w for w in rest if w.holder == first.holder):
            del self.pending[same.conn][same.request_id]
            self._extend(new, same.lease, same.conn, same.rod, self.queued_extension_keeps_longer_lease)
            self.expected_async.append(Expect(same.conn, same.request_id, "extended", name, same.holder,
                                              new.grant, same.lease, new.expires_at, lock=new))

    def unlock(self, conn, name, holder):
        self._group += 1
        lock = self.locks.get(name)
        if lock is None:
            return Expect(conn, "", "released", name)
        if lock.holder != holder:
            return Expect(conn, "", "not_released", name, lock.holder)
        self._free(name)
        return Expect(conn, "", "released", name)

    def query(self, name):
        return self.locks.get(name)

    def listing(self):
        return sorted(self.locks.items())

    # ----- the test clock

    def advance(self, ms):
        """Time passes: every lease end and wait end up to now+ms, in time order (a lease ending at
        the instant a wait does is freed first: its first waiter is granted it "then")."""
        target = self.steady + ms
        while True:
            lease_end = min(((lock.expires, name) for name, lock in self.locks.items()), default=None)
            wait_end = min(((w.deadline, w.conn, w.request_id, name) for name, lock in self.locks.items()
                            for w in lock.waiters), default=None)
            slot = min(((self._steady_of(job.next_run), job_id) for job_id, job in self.jobs.items()), default=None)
            if slot is not None and slot[0] <= target and all(
                    end is None or slot[0] < end[0] for end in (lease_end, wait_end)):
                self._move_to(slot[0])
                self._fire(slot[1], "schedule", self.jobs[slot[1]].next_run)
            elif lease_end is not None and lease_end[0] <= target and (wait_end is None or lease_end[0] <= wait_end[0]):
                self._move_to(lease_end[0])
                self._group += 1
                self._free(lease_end[1])
            elif wait_end is not None and wait_end[0] <= target:
                self._move_to(wait_end[0])
                _, conn, request_id, name = wait_end
                lock = self.locks[name]
                waiter = self.pending[conn].pop(request_id)
                lock.waiters.remove(waiter)
                self.expected_async.append(Expect(conn, request_id, "timed_out", name, lock.holder, lock.grant,
                                                  0, lock.expires_at, waiter.wait, lock=lock))
            else:
                break
        self._move_to(target)

    def _move_to(self, steady):
        self.wall += steady - self.steady
        self.steady = steady

    def set_wall(self, wall_ms):
        """A wall-clock jump: no lease moves, and no expiresAt already given changes. A job whose
        slots it passed runs once for the latest (`catchUp: latest`, trigger catch-up) or records
        it missed (`skip`), and its next slot is computed from now (docs/scheduler.md); a jump
        back leaves every next slot where it was. The test jumps only where the latest slot passed
        is over --missed-after (60 s) old."""
        self.wall = wall_ms
        for job_id in sorted(self.jobs):
            job = self.jobs[job_id]
            if job.next_run > wall_ms:
                continue
            latest = wall_ms // job.period * job.period
            assert wall_ms - latest > 60_000, "the test jumped to within --missed-after of a slot"
            if job.catch_up == "latest" or self.busy(job_id):
                self._fire(job_id, "catch-up", latest)
            else:
                job.last_status = "missed"
            job.next_run = latest + job.period

    # ----- jobs

    def busy(self, job_id):
        """A run of the job still goes: overlap "skip" skips the slot; "allow" up to 16 at once."""
        going = sum(1 for run in self.running if run.job_id == job_id and not run.orphan)
        return going >= (1 if self.jobs[job_id].overlap == "skip" else 16)

    def has_orphans(self, job_id):
        return any(run.job_id == job_id and run.orphan for run in self.running)

    def _fire(self, job_id, trigger, scheduled_for):
        """A slot (or run_job) comes: with overlap "skip" and a run still going it is skipped
        (job-skipped, lastStatus skipped; "late or not", docs/scheduler.md); otherwise a run starts
        now. A "tick" run ends at once (the driver waits for its end), a "hold" run when released."""
        job = self.jobs[job_id]
        if trigger != "manual":
            job.next_run = scheduled_for + job.period
        if self.busy(job_id):
            job.last_status = "skipped"
            self.skipped.append((job_id, scheduled_for))
            return
        job.last_run = self.wall
        run = Run(job_id, trigger, scheduled_for, job.method)
        self.runs.append(run)
        if job.method == "hold":
            self.running.append(run)
        else:
            self._end(run)

    def _end(self, run):
        job = self.jobs.get(run.job_id)
        if job is not None and not run.orphan:
            job.run_count += 1
            job.last_status = "ok"

    def release(self):
        """The held runs end (in any order); returns them."""
        ended, self.running = self.running, []
        for run in ended:
            self._end(run)
        return ended

    def schedule(self, job_id, method, period, catch_up, overlap, created_by):
        """The reply's nextRun: the first slot after now. A replaced job keeps its record (createdAt,
        lastRun, runCount, lastStatus)."""
        cron = f"*/{period // 60_000} * * * *"
        job = self.jobs.get(job_id)
        next_run = self.wall // 1000 * 1000 // period * period + period
        if job is None:
            self.jobs[job_id] = Job(cron, method, period, catch_up, overlap, self.wall, created_by, next_run)
        else:  # the record stays (docs/protocol.md); the next slot is worked out from now
            job.cron, job.method, job.period = cron, method, period
            job.catch_up, job.overlap, job.created_by = catch_up, overlap, created_by
            job.next_run = next_run
        return self.jobs[job_id].next_run

    def unschedule(self, job_id):
        for run in self.running:
            if run.job_id == job_id:
                run.orphan = True
        return self.jobs.pop(job_id, None) is not None

    def run_job(self, job_id):
        """run_job: refused for an unknown job, or while a run of an overlap "skip" job runs."""
        job = self.jobs.get(job_id)
        if job is None or (job.overlap == "skip" and self.busy(job_id)):
            return False
        self._fire(job_id, "manual", None)
        return True
