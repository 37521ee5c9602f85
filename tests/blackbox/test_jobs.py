"""Cron jobs through the real socket: schedule, unschedule, list_jobs, job_history, run_job and the
events on jobs:NAME, with exec photons whose scripts leave a trace in files, and the kanban C++
photon. The daemons run on a test clock (photond --test-clock): a slot fires when the test moves
the clock onto it, not a millisecond before, so every slot, catch-up, DST change and overlap is
checked exactly and at once. Restarts use the same PHOTON_DIR, so jobs and their runs come back
from the daemon's SQLite file."""
import json
import os
import signal
import sqlite3
import time
import unittest

from harness import (KANBAN, TIMEOUT, BlackboxTest, advance_to, ctl, epoch_ms, messages_before_pong, rfc3339,
                     wait_until)

# tick appends "SESSION ARGS" to $STATE/ticks; slow runs until the test creates $STATE/gate (so
# a run lasts exactly as long as a test needs it to); fail fails with a message; hang writes its
# pid (its process group's) to $STATE/hang.pid and sleeps.
MANIFEST = """
[methods.tick]
command = 'read -r args; printf "%s %s\\\\n" "$PHOTON_SESSION_ID" "$args" >> "$STATE/ticks"'
env = { STATE = "@STATE@" }

[methods.slow]
command = 'read -r args; while [ ! -e "$STATE/gate" ]; do sleep 0.02; done'
env = { STATE = "@STATE@" }

[methods.fail]
command = "echo 'the disk is full' >&2; exit 3"

[methods.hang]
command = 'echo $$ > "$STATE/hang.pid"; exec sleep 30'
env = { STATE = "@STATE@" }
"""

DECLARED = """
[jobs.nightly]
method = "tick"
cron = "0 3 * * *"
args = { tag = "nightly" }
timezone = "Europe/Paris"
catch_up = "skip"
overlap = "allow"
"""

EVERY_SECOND = "* * * * * *"
# Where the test clocks start: a Sunday noon (UTC), far from any DST change.
T0 = "2026-03-08T12:00:00Z"
T0_MS = epoch_ms(T0)
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# Events sent while the clock move that made them is served; the others come when a run ends.
AT_THE_SLOT = ("job-started", "job-skipped")
ENDS = ("job-completed", "job-failed")


def read_text(path):
    """The file's text, or "" while it does not exist."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def brief(events):
    """(event, jobId, scheduledFor) of job-started and job-skipped events, for comparing lists."""
    return [(e["event"], e["data"]["jobId"], e["data"]["scheduledFor"]) for e in events]


class JobsTest(BlackboxTest):
    def serve(self, *args, photon_dir=None, declared=None, check_exit=True, test_clock=T0, env=None):
        """photond serving MANIFEST (+ declared jobs) as photon "jb", on a test clock from T0 (or
        the RFC 3339 time given); a second call with the same photon_dir restarts it there (with
        the manifest rewritten when `declared` is given)."""
        if photon_dir is None:
            photon_dir = self.make_dir()
            self.dir = photon_dir
            self.state = os.path.join(photon_dir, "state")
            os.mkdir(self.state)
            declared = declared or ""
        if declared is not None:
            with open(os.path.join(photon_dir, "photon.toml"), "w") as f:
                f.write(MANIFEST.replace("@STATE@", self.state) + declared)
        return self.daemon("jb", args=["--manifest", os.path.join(photon_dir, "photon.toml"),
                                       "--log-level", "warn", *args], photon_dir=photon_dir,
                           check_exit=check_exit, test_clock=test_clock, env=env)

    def open_gate(self):
        """Lets every run of `slow` end (and the next ones end at once)."""
        open(os.path.join(self.state, "gate"), "w").close()

    def stored_status(self, run_id):
        """The status of run run_id in the daemon's SQLite file (docs/scheduler.md), None before it
        is there."""
        try:
            db = sqlite3.connect(f"file:{os.path.join(self.dir, 'daemons', 'jb.db')}?mode=ro", uri=True, timeout=1)
        except sqlite3.Error:
            return None
        try:
            row = db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        except sqlite3.Error:
            return None
        finally:
            db.close()
        return row[0] if row else None

    def ticks(self):
        """(session, args) of every tick so far, in order."""
        result = []
        for line in read_text(os.path.join(self.state, "ticks")).splitlines():
            session, _, args = line.partition(" ")
            result.append((session, json.loads(args)))
        return result

    def ticks_tagged(self, tag):
        return [args for _, args in self.ticks() if args.get("tag") == tag]

    def schedule(self, c, job_id, method, cron, **fields):
        request = {"type": "schedule", "id": f"s-{job_id}", "jobId": job_id, "method": method, "cron": cron,
                   **fields}
        reply = c.call(request)
        self.assertEqual(reply["type"], "result", reply)
        self.assertEqual(reply["success"], True, reply)
        self.assertEqual(reply["data"]["scheduled"], True, reply)
        self.assertEqual(reply["data"]["jobId"], job_id)
        self.assertIsInstance(reply["data"]["nextRun"], int, reply)
        return reply["data"]

    def refused_schedule(self, c, job_id, method, cron, **fields):
        reply = c.call({"type": "schedule", "id": "r", "jobId": job_id, "method": method, "cron": cron, **fields})
        self.assertEqual(reply["type"], "result", reply)
        self.assertEqual(reply["success"], False, reply)
        self.assertEqual(reply["data"]["scheduled"], False, reply)
        self.assertEqual(reply["data"]["jobId"], job_id, reply)
        return reply["data"]["reason"]

    def jobs(self, c):
        reply = c.call({"type": "list_jobs", "id": "l"})
        self.assertEqual(reply["type"], "result", reply)
        self.assertTrue(reply["success"], reply)
        return {job["id"]: job for job in reply["data"]["jobs"]}

    def history(self, c, job_id, limit=None):
        request = {"type": "job_history", "id": "h", "jobId": job_id}
        if limit is not None:
            request["limit"] = limit
        reply = c.call(request)
        self.assertEqual(reply["type"], "result", reply)
        self.assertEqual(reply["data"]["jobId"], job_id, reply)
        return reply["data"]["runs"]

    def events(self, c, until, timeout=TIMEOUT):
        """Job events (the channel messages' `message`) until until(events) holds."""
        events = []
        deadline = time.monotonic() + timeout
        while not until(events):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for job events; got {events!r}")
            message = c.next_message(timeout=left)
            self.assertEqual(message["channel"], "jobs:jb", message)
            events.append(message["message"])
        return events

    def ended(self, c, run_ids, seen=()):
        """Waits for the end (job-completed or job-failed) of each run in run_ids; returns those
        events by run id (`seen`: events already read; ends that move() read are kept too)."""
        wanted = set(run_ids)
        ends = lambda events: {e["data"]["runId"]: e for e in events if e["event"] in ENDS and
                               e["data"]["runId"] in wanted}
        got = ends([*getattr(self, "ends_read", []), *seen])
        if not wanted <= set(got):
            got.update(ends(self.events(c, lambda more: wanted <= set(got) | set(ends(more)))))
        return got

    def settled(self, c, job_id):
        """The job's history once none of its runs is still running (for runs whose events came
        before the test subscribed: those of a daemon's first look at the clock, as it starts)."""
        return wait_until(lambda: (lambda runs: runs if all(r["status"] != "running" for r in runs) else None)(
            self.history(c, job_id)), message=f"the runs of {job_id} ended")

    def move(self, d, c, to, wait=True, jump=False):
        """Moves the clock to `to` (epoch ms) and returns the job-started and job-skipped events of
        the slots that came due, in order (the daemon sends them before it answers the move; a
        ping on `c` marks their end). Time passes (steady and wall clocks), or with `jump` the
        wall clock alone is set. With `wait`, also waits until each run started ends, so that the
        next move finds none of them still running."""
        if jump:
            d.set_wall(rfc3339(to))
        else:
            advance_to(d, to)
        events = [m["message"] for m in messages_before_pong(c)]
        at_slot = [e for e in events if e["event"] in AT_THE_SLOT]
        # A run may end before the ping's pong: kept for ended().
        self.ends_read = [*getattr(self, "ends_read", []), *(e for e in events if e["event"] in ENDS)]
        if wait:
            self.ended(c, [e["data"]["runId"] for e in at_slot if e["event"] == "job-started"], events)
        return at_slot

    def slot(self, d, c, at, wait=True):
        """Asserts that nothing is due 1 ms before `at` and returns what fires at `at` (see move)."""
        self.assertEqual(self.move(d, c, at - 1), [], f"something fired 1 ms before {rfc3339(at)}")
        return self.move(d, c, at, wait)

    # ---- slots

    def test_a_seconds_job_runs_its_method_at_each_slot_and_announces_each_run(self):
        d = self.serve()
        c = self.client(d)
        c.subscribe("jobs:jb")
        every = self.schedule(c, "every", "tick", EVERY_SECOND, args={"tag": "every"})
        even = self.schedule(c, "even", "tick", "*/2 * * * * *", args={"tag": "even"})
        self.assertEqual((every["nextRun"], even["nextRun"]), (T0_MS + SECOND, T0_MS + 2 * SECOND))

        started = {}  # runId: job-started data
        completed = {}  # runId: job-completed data
        for n in range(1, 5):
            at = T0_MS + n * SECOND
            # Not 1 ms before its slot; at the slot, each job due once, in job id order.
            self.assertEqual(self.move(d, c, at - 1), [], f"slot {n}")
            advance_to(d, at)
            events = [m["message"] for m in messages_before_pong(c)]
            at_slot = [e for e in events if e["event"] in AT_THE_SLOT]
            due = ["even", "every"] if n % 2 == 0 else ["every"]
            self.assertEqual(brief(at_slot), [("job-started", job, at) for job in due], f"slot {n}")
            for event in at_slot:
                data = event["data"]
                self.assertEqual((data["method"], data["trigger"]), ("tick", "schedule"), data)
                self.assertGreater(data["runId"], max(started, default=0), "run ids increase")
                started[data["runId"]] = data
            ends = self.ended(c, [e["data"]["runId"] for e in at_slot], events)
            self.assertEqual({e["event"] for e in ends.values()}, {"job-completed"}, ends)
            completed.update({run_id: e["data"] for run_id, e in ends.items()})

        for job_id, slots in (("every", [1, 2, 3, 4]), ("even", [2, 4])):
            runs = sorted(run_id for run_id, data in started.items() if data["jobId"] == job_id)
            self.assertEqual([started[r]["scheduledFor"] for r in runs], [T0_MS + n * SECOND for n in slots])
            self.assertEqual([completed[r]["runCount"] for r in runs], list(range(1, len(slots) + 1)))
            self.assertEqual({completed[r]["jobId"] for r in runs}, {job_id})
            history = self.history(c, job_id)
            self.assertEqual([run["runId"] for run in history], runs[::-1], "newest first")
            for run in history:
                # The clock stood at the slot while the run went: it started and ended then.
                self.assertEqual((run["trigger"], run["status"], run["error"]), ("schedule", "ok", ""), run)
                self.assertEqual(run["scheduledFor"], started[run["runId"]]["scheduledFor"])
                self.assertEqual((run["startedAt"], run["endedAt"], run["durationMs"]),
                                 (run["scheduledFor"], run["scheduledFor"], 0), run)
        self.assertEqual(len(self.history(c, "every", limit=1)), 1)

        ticks = self.ticks()
        self.assertEqual(sorted(json.dumps(args) for _, args in ticks),
                         sorted([json.dumps({"tag": "every"})] * 4 + [json.dumps({"tag": "even"})] * 2))
        self.assertEqual({session for session, _ in ticks}, {"scheduler"}, "runs use session scheduler")

        job = self.jobs(c)["every"]
        self.assertEqual((job["runCount"], job["lastStatus"], job["lastError"]), (4, "ok", ""))
        self.assertEqual((job["lastRun"], job["nextRun"]), (T0_MS + 4 * SECOND, T0_MS + 5 * SECOND))
        self.assertEqual(job["args"], {"tag": "every"})
        self.assertEqual((job["catchUp"], job["overlap"], job["declared"]), ("latest", "skip", False))
        self.assertEqual(self.jobs(c)["even"]["runCount"], 2)

    def test_jobs_and_their_runs_survive_a_restart(self):
        d = self.serve()
        with d.client() as c:
            c.subscribe("jobs:jb")
            self.schedule(c, "keep", "tick", EVERY_SECOND, args={"tag": "keep"},
                          timezone="Europe/Paris", catchUp="skip", overlap="allow")
            for n in (1, 2):
                self.assertEqual(brief(self.slot(d, c, T0_MS + n * SECOND)),
                                 [("job-started", "keep", T0_MS + n * SECOND)])
            before = self.jobs(c)["keep"]
            old_runs = self.history(c, "keep", limit=1000)
        self.assertEqual(d.stop(), 0)
        self.assertEqual([run["status"] for run in old_runs], ["ok", "ok"])
        old_ids = [run["runId"] for run in old_runs]

        # Back at the same time: nothing was missed, the next slot is the one computed before.
        d2 = self.serve(photon_dir=self.dir, test_clock=rfc3339(T0_MS + 2 * SECOND))
        c = self.client(d2)
        c.subscribe("jobs:jb")
        after = self.jobs(c)["keep"]
        self.assertEqual(after, before)
        self.assertEqual((after["runCount"], after["nextRun"]), (2, T0_MS + 3 * SECOND))
        self.assertEqual(self.history(c, "keep", limit=1000), old_runs)

        [started] = self.slot(d2, c, T0_MS + 3 * SECOND)
        self.assertEqual((started["data"]["trigger"], started["data"]["scheduledFor"]), ("schedule", T0_MS + 3 * SECOND))
        self.assertGreater(started["data"]["runId"], max(old_ids), "run ids keep increasing across a restart")
        runs = self.history(c, "keep", limit=1000)
        self.assertEqual([run["runId"] for run in runs], [started["data"]["runId"], *old_ids])
        self.assertEqual(runs[1:], old_runs)
        self.assertEqual(self.ticks_tagged("keep"), [{"tag": "keep"}] * 3)
        manual = c.call({"type": "run_job", "id": "m", "jobId": "keep"})
        self.assertEqual(manual["data"]["runId"], started["data"]["runId"] + 1, manual)
        self.ended(c, [manual["data"]["runId"]])
        self.assertEqual(self.jobs(c)["keep"]["runCount"], 4)

    def test_a_clock_set_back_repeats_no_run(self):
        d = self.serve()
        c = self.client(d)
        c.subscribe("jobs:jb")
        self.schedule(c, "every", "tick", EVERY_SECOND, args={"tag": "every"})
        self.assertEqual(brief(self.slot(d, c, T0_MS + SECOND)), [("job-started", "every", T0_MS + SECOND)])
        # Back 10 s: the next slot stays where it was computed, so the seconds passed again fire
        # nothing, and the next slot fires once when the clock reaches it again.
        d.set_wall(rfc3339(T0_MS + SECOND - 10 * SECOND))
        self.assertEqual(self.move(d, c, T0_MS), [])
        self.assertEqual(self.jobs(c)["every"]["nextRun"], T0_MS + 2 * SECOND)
        self.assertEqual(brief(self.slot(d, c, T0_MS + 2 * SECOND)), [("job-started", "every", T0_MS + 2 * SECOND)])
        self.assertEqual([run["scheduledFor"] for run in self.history(c, "every")], [T0_MS + 2 * SECOND, T0_MS + SECOND])

    # ---- missed slots (catchUp)

    def test_a_slot_missed_while_the_daemon_was_down(self):
        d = self.serve()
        with d.client() as c:
            latest = self.schedule(c, "latest", "tick", "7 * * * * *", args={"tag": "latest"})
            skip = self.schedule(c, "skip", "tick", "7 * * * * *", args={"tag": "skip"}, catchUp="skip")
        slot = T0_MS + 7 * SECOND
        self.assertEqual((latest["nextRun"], skip["nextRun"]), (slot, slot))
        self.assertEqual(d.stop(), 0)

        # Down until 3.5 s after the slot; with --missed-after 1s it was missed.
        back = slot + 3500
        # Its first look at the clock, as it starts, handles what was missed.
        d2 = self.serve("--missed-after", "1s", photon_dir=self.dir, test_clock=rfc3339(back))
        c = self.client(d2)
        c.subscribe("jobs:jb")
        runs = self.settled(c, "latest")
        self.assertEqual([(r["trigger"], r["status"], r["scheduledFor"], r["startedAt"]) for r in runs],
                         [("catch-up", "ok", slot, back)], runs)

        missed = self.history(c, "skip")
        self.assertEqual([(r["status"], r["trigger"], r["scheduledFor"], r["startedAt"]) for r in missed],
                         [("missed", "schedule", slot, back - back % SECOND)], missed)  # at the tick's second
        jobs = self.jobs(c)
        self.assertEqual((jobs["skip"]["lastStatus"], jobs["skip"]["runCount"]), ("missed", 0), jobs["skip"])
        self.assertEqual((jobs["latest"]["lastStatus"], jobs["latest"]["runCount"]), ("ok", 1), jobs["latest"])
        for job in jobs.values():
            self.assertEqual(job["nextRun"], slot + MINUTE, job)

        # Nothing more until the next slot, which both run as usual.
        self.assertEqual(brief(self.slot(d2, c, slot + MINUTE)),
                         [("job-started", "latest", slot + MINUTE), ("job-started", "skip", slot + MINUTE)])
        self.assertEqual([len(self.history(c, "latest")), len(self.history(c, "skip"))], [2, 2])
        self.assertEqual((self.ticks_tagged("latest"), self.ticks_tagged("skip")), ([{"tag": "latest"}] * 2, [{"tag": "skip"}]))

    def test_after_a_clock_jump_a_slot_within_missed_after_runs_and_later_ones_follow_the_policy(self):
        d = self.serve()  # --missed-after 60 s, the default
        c = self.client(d)
        c.subscribe("jobs:jb")
        for job_id in ("latest", "skip"):
            self.schedule(c, job_id, "tick", "0 * * * *", args={"tag": job_id}, catchUp=job_id, timezone="UTC")
        # The clock jumps to 60.999 s after the 13:00 slot: noticed within 60 s (the daemon counts
        # whole seconds), so both run it as scheduled.
        at = T0_MS + HOUR + MINUTE + 999
        events = self.move(d, c, at, jump=True)
        self.assertEqual(brief(events), [("job-started", "latest", T0_MS + HOUR), ("job-started", "skip", T0_MS + HOUR)])
        self.assertEqual([e["data"]["trigger"] for e in events], ["schedule", "schedule"])
        # To 61 s after the 14:00 slot: missed. "latest" runs it once, as a catch-up; "skip" only
        # records it.
        at2 = T0_MS + 2 * HOUR + MINUTE + SECOND
        events = self.move(d, c, at2, jump=True)
        self.assertEqual(brief(events), [("job-started", "latest", T0_MS + 2 * HOUR)])
        self.assertEqual(events[0]["data"]["trigger"], "catch-up")
        # Five slots (15:00 to 19:00) pass in one jump: one run, for the latest; one record.
        at3 = T0_MS + 7 * HOUR + 30 * MINUTE
        events = self.move(d, c, at3, jump=True)
        self.assertEqual(brief(events), [("job-started", "latest", T0_MS + 7 * HOUR)])
        self.assertEqual(events[0]["data"]["trigger"], "catch-up")

        runs = lambda job_id: [(r["trigger"], r["status"], r["scheduledFor"], r["startedAt"])
                               for r in self.history(c, job_id)]
        self.assertEqual(runs("latest"), [("catch-up", "ok", T0_MS + 7 * HOUR, at3),
                                          ("catch-up", "ok", T0_MS + 2 * HOUR, at2),
                                          ("schedule", "ok", T0_MS + HOUR, at)])
        self.assertEqual(runs("skip"), [("schedule", "missed", T0_MS + 7 * HOUR, at3),
                                        ("schedule", "missed", T0_MS + 2 * HOUR, at2),
                                        ("schedule", "ok", T0_MS + HOUR, at)])
        self.assertEqual(self.history(c, "skip")[0]["error"],
                         "the daemon was not running (or the clock jumped) at the scheduled time")
        jobs = self.jobs(c)
        self.assertEqual([(jobs[j]["runCount"], jobs[j]["lastStatus"], jobs[j]["nextRun"]) for j in ("latest", "skip")],
                         [(3, "ok", T0_MS + 8 * HOUR), (1, "missed", T0_MS + 8 * HOUR)])
        self.assertEqual((len(self.ticks_tagged("latest")), len(self.ticks_tagged("skip"))), (3, 1))

    def test_a_missed_slot_is_caught_up_only_within_24_hours(self):
        d = self.serve()
        c = self.client(d)
        c.subscribe("jobs:jb")
        # Once a year, on March 9 at noon: the latest slot missed is that one.
        self.schedule(c, "yearly", "tick", "0 12 9 3 *", args={"tag": "yearly"}, timezone="UTC")
        slot = epoch_ms("2026-03-09T12:00:00Z")
        self.assertEqual(self.jobs(c)["yearly"]["nextRun"], slot)
        events = self.move(d, c, slot + DAY + 999, jump=True)  # 24 h late, to the second
        self.assertEqual(brief(events), [("job-started", "yearly", slot)])
        self.assertEqual(events[0]["data"]["trigger"], "catch-up")
        slot2 = epoch_ms("2027-03-09T12:00:00Z")
        self.assertEqual(self.jobs(c)["yearly"]["nextRun"], slot2)
        self.assertEqual(self.move(d, c, slot2 + DAY + SECOND, jump=True), [], "24 h and 1 s late: not run")
        self.assertEqual([(r["trigger"], r["status"], r["scheduledFor"]) for r in self.history(c, "yearly")],
                         [("schedule", "missed", slot2), ("catch-up", "ok", slot)])
        job = self.jobs(c)["yearly"]
        self.assertEqual((job["runCount"], job["lastStatus"], job["nextRun"]),
                         (1, "missed", epoch_ms("2028-03-09T12:00:00Z")))
        self.assertEqual(self.ticks_tagged("yearly"), [{"tag": "yearly"}])

    # ---- daylight saving time (docs/scheduler.md)

    def test_spring_forward_a_skipped_local_time_fires_once_when_the_gap_ends(self):
        # New York, 2026-03-08: at 02:00 EST (07:00Z) the clocks go to 03:00 EDT.
        d = self.serve(test_clock="2026-03-08T05:30:00Z")  # 00:30 EST
        c = self.client(d)
        c.subscribe("jobs:jb")
        ny = {"timezone": "America/New_York"}
        self.schedule(c, "half-past-two", "tick", "30 2 * * *", args={"tag": "2:30"}, **ny)
        self.schedule(c, "hourly", "tick", "0 * * * *", args={"tag": "hourly"}, **ny)
        self.schedule(c, "quarters", "tick", "*/15 2 * * *", args={"tag": "quarters"}, **ny)
        gap_end = epoch_ms("2026-03-08T07:00:00Z")
        self.assertEqual([self.jobs(c)[j]["nextRun"] for j in ("half-past-two", "hourly", "quarters")],
                         [gap_end, epoch_ms("2026-03-08T06:00:00Z"), gap_end])
        fired = []
        for at in ("2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"):
            fired += brief(self.slot(d, c, epoch_ms(at)))
        # 01:00 EST; then 02:00, 02:15, 02:30, 02:45 and 03:00 all at 03:00 EDT, once each job;
        # then 04:00 EDT.
        self.assertEqual(fired, [("job-started", "hourly", epoch_ms("2026-03-08T06:00:00Z")),
                                 ("job-started", "half-past-two", gap_end),
                                 ("job-started", "hourly", gap_end),
                                 ("job-started", "quarters", gap_end),
                                 ("job-started", "hourly", epoch_ms("2026-03-08T08:00:00Z"))])
        jobs = self.jobs(c)
        self.assertEqual(jobs["half-past-two"]["nextRun"], epoch_ms("2026-03-09T06:30:00Z"))  # 02:30 EDT
        self.assertEqual(jobs["quarters"]["nextRun"], epoch_ms("2026-03-09T06:00:00Z"))  # 02:00 EDT

    def test_fall_back_a_repeated_local_time_fires_at_its_first_occurrence_only(self):
        # New York, 2026-11-01: at 02:00 EDT (06:00Z) the clocks go back to 01:00 EST.
        d = self.serve(test_clock="2026-11-01T04:59:00Z")  # 00:59 EDT
        c = self.client(d)
        c.subscribe("jobs:jb")
        ny = {"timezone": "America/New_York"}
        self.schedule(c, "half-past-one", "tick", "30 1 * * *", args={"tag": "1:30"}, **ny)
        self.schedule(c, "hourly", "tick", "0 * * * *", args={"tag": "hourly"}, **ny)
        fired = brief(self.slot(d, c, epoch_ms("2026-11-01T05:00:00Z")))  # 01:00 EDT
        fired += brief(self.slot(d, c, epoch_ms("2026-11-01T05:30:00Z")))  # 01:30 EDT
        advance_to(d, "2026-11-01T05:40:00Z")
        self.schedule(c, "quarters", "tick", "*/15 * * * *", args={"tag": "quarters"}, **ny)
        fired += brief(self.slot(d, c, epoch_ms("2026-11-01T05:45:00Z")))  # 01:45 EDT
        # The second pass through 01:00-01:59 (06:00Z-06:59Z, EST) fires nothing: the next slot
        # of any of them is 02:00 EST.
        fired += brief(self.slot(d, c, epoch_ms("2026-11-01T07:00:00Z")))
        self.assertEqual(fired, [("job-started", "hourly", epoch_ms("2026-11-01T05:00:00Z")),
                                 ("job-started", "half-past-one", epoch_ms("2026-11-01T05:30:00Z")),
                                 ("job-started", "quarters", epoch_ms("2026-11-01T05:45:00Z")),
                                 ("job-started", "hourly", epoch_ms("2026-11-01T07:00:00Z")),
                                 ("job-started", "quarters", epoch_ms("2026-11-01T07:00:00Z"))])
        self.assertEqual(self.jobs(c)["half-past-one"]["nextRun"], epoch_ms("2026-11-02T06:30:00Z"))  # 01:30 EST

    def test_the_daemons_own_zone_from_tz_across_both_changes(self):
        # Europe/Berlin: 2026-03-29 02:00 CET (01:00Z) becomes 03:00 CEST; 2026-10-25 03:00 CEST
        # (01:00Z) becomes 02:00 CET. A job without a zone uses the daemon's: $TZ.
        berlin = {"TZ": "Europe/Berlin"}
        d = self.serve(test_clock="2026-03-29T00:59:00Z", env=berlin)  # 01:59 CET
        c = self.client(d)
        c.subscribe("jobs:jb")
        self.schedule(c, "half-past-two", "tick", "30 2 * * *", args={"tag": "2:30"})
        self.assertEqual(self.jobs(c)["half-past-two"]["timezone"], "")
        gap_end = epoch_ms("2026-03-29T01:00:00Z")
        self.assertEqual(self.jobs(c)["half-past-two"]["nextRun"], gap_end)
        self.assertEqual(brief(self.slot(d, c, gap_end)), [("job-started", "half-past-two", gap_end)])
        self.assertEqual(self.jobs(c)["half-past-two"]["nextRun"], epoch_ms("2026-03-30T00:30:00Z"))  # 02:30 CEST
        self.assertEqual(d.stop(), 0)

        d = self.serve(photon_dir=self.dir, test_clock="2026-10-25T00:29:00Z", env=berlin)  # 02:29 CEST
        c = self.client(d)
        c.subscribe("jobs:jb")
        # Restored with the slot computed in March, long missed: the first look at the clock, at
        # the start, catches up the latest, yesterday's 02:30 CEST, once; the next slot is
        # today's first 02:30.
        caught_up = self.settled(c, "half-past-two")[0]
        self.assertEqual((caught_up["trigger"], caught_up["status"], caught_up["scheduledFor"], caught_up["startedAt"]),
                         ("catch-up", "ok", epoch_ms("2026-10-24T00:30:00Z"), epoch_ms("2026-10-25T00:29:00Z")))
        self.assertEqual(self.jobs(c)["half-past-two"]["nextRun"], epoch_ms("2026-10-25T00:30:00Z"))
        first = epoch_ms("2026-10-25T00:30:00Z")  # 02:30 CEST
        self.assertEqual(brief(self.slot(d, c, first)), [("job-started", "half-past-two", first)])
        # 02:30 CET, an hour later, is the same local time again: nothing.
        self.assertEqual(self.move(d, c, epoch_ms("2026-10-25T01:30:00Z")), [])
        self.assertEqual(self.jobs(c)["half-past-two"]["nextRun"], epoch_ms("2026-10-26T01:30:00Z"))  # 02:30 CET

    # ---- overlapping runs

    def test_overlap_skip_and_allow(self):
        d = self.serve()
        c = self.client(d)
        c.subscribe("jobs:jb")
        self.schedule(c, "serial", "slow", EVERY_SECOND)
        self.schedule(c, "parallel", "slow", EVERY_SECOND, overlap="allow")
        first = self.slot(d, c, T0_MS + SECOND, wait=False)
        self.assertEqual(brief(first), [("job-started", "parallel", T0_MS + SECOND),
                                        ("job-started", "serial", T0_MS + SECOND)])
        # The first runs go on (the gate is shut): serial skips the next slot, parallel runs it.
        second = self.slot(d, c, T0_MS + 2 * SECOND, wait=False)
        self.assertEqual(brief(second), [("job-started", "parallel", T0_MS + 2 * SECOND),
                                         ("job-skipped", "serial", T0_MS + 2 * SECOND)])
        self.assertEqual(second[1]["data"], {"jobId": "serial", "method": "slow", "scheduledFor": T0_MS + 2 * SECOND})
        reply = c.call({"type": "run_job", "id": "r", "jobId": "serial"})
        self.assertEqual(reply["data"], {"started": False, "jobId": "serial",
                                         "reason": 'job "serial" is running (overlap: skip)'}, reply)
        reply = c.call({"type": "run_job", "id": "r", "jobId": "parallel"})
        self.assertEqual(reply["data"]["started"], True, reply)
        manual = reply["data"]["runId"]
        started = [e["data"]["runId"] for e in first + second if e["event"] == "job-started"] + [manual]
        self.open_gate()
        ends = self.ended(c, started)
        self.assertEqual({e["event"] for e in ends.values()}, {"job-completed"}, ends)

        runs = lambda job_id: [(r["trigger"], r["status"], r["scheduledFor"]) for r in self.history(c, job_id)]
        self.assertEqual(runs("serial"), [("schedule", "skipped", T0_MS + 2 * SECOND),
                                          ("schedule", "ok", T0_MS + SECOND)])
        self.assertEqual(self.history(c, "serial")[0]["error"], "the previous run was still running")
        self.assertEqual(runs("parallel"), [("manual", "ok", T0_MS + 2 * SECOND),
                                            ("schedule", "ok", T0_MS + 2 * SECOND),
                                            ("schedule", "ok", T0_MS + SECOND)])
        jobs = self.jobs(c)
        self.assertEqual([(jobs[j]["runCount"], jobs[j]["lastStatus"]) for j in ("serial", "parallel")],
                         [(1, "ok"), (3, "ok")])
        # Nothing runs now: the next slot starts both.
        self.assertEqual(brief(self.slot(d, c, T0_MS + 3 * SECOND)),
                         [("job-started", "parallel", T0_MS + 3 * SECOND), ("job-started", "serial", T0_MS + 3 * SECOND)])

    def test_overlap_allow_runs_at_most_16_at_once(self):
        d = self.serve()
        c = self.client(d)
        c.subscribe("jobs:jb")
        self.schedule(c, "many", "slow", EVERY_SECOND, overlap="allow")
        started = []
        for n in range(1, 17):
            events = self.move(d, c, T0_MS + n * SECOND, wait=False)
            self.assertEqual(brief(events), [("job-started", "many", T0_MS + n * SECOND)])
            started.append(events[0]["data"]["runId"])
        self.assertEqual(brief(self.move(d, c, T0_MS + 17 * SECOND, wait=False)),
                         [("job-skipped", "many", T0_MS + 17 * SECOND)])
        reply = c.call({"type": "run_job", "id": "r", "jobId": "many"})
        self.assertEqual(reply["data"], {"started": False, "jobId": "many",
                                         "reason": '16 runs of job "many" are running (limit 16)'}, reply)
        self.open_gate()
        self.ended(c, started)
        history = self.history(c, "many", limit=100)
        self.assertEqual([(r["status"], r["scheduledFor"]) for r in history],
                         [("skipped", T0_MS + 17 * SECOND)] + [("ok", T0_MS + n * SECOND) for n in range(16, 0, -1)])
        self.assertEqual(history[0]["error"], "too many runs of this job are running")
        self.assertEqual(self.jobs(c)["many"]["runCount"], 16)

    # ---- failures, declarations, refusals

    def test_a_failing_method(self):
        d = self.serve()
        c = self.client(d)
        c.subscribe("jobs:jb")
        self.schedule(c, "broken", "fail", EVERY_SECOND)
        [started] = self.slot(d, c, T0_MS + SECOND, wait=False)
        failed = self.ended(c, [started["data"]["runId"]])[started["data"]["runId"]]
        self.assertEqual(failed["event"], "job-failed")
        failed = failed["data"]
        self.assertEqual((failed["jobId"], failed["method"], failed["runId"]),
                         ("broken", "fail", started["data"]["runId"]))
        self.assertIn("status 3", failed["error"])
        self.assertIn("the disk is full", failed["error"])
        job = self.jobs(c)["broken"]
        self.assertEqual((job["lastStatus"], job["runCount"]), ("failed", 1))
        self.assertIn("the disk is full", job["lastError"])

        # Run by hand: the same, and the history records it.
        self.schedule(c, "broken", "fail", "0 0 1 1 *")
        run = c.call({"type": "run_job", "id": "m", "jobId": "broken"})["data"]["runId"]
        self.assertEqual(self.ended(c, [run])[run]["event"], "job-failed")
        job = self.jobs(c)["broken"]
        self.assertEqual((job["lastStatus"], job["runCount"]), ("failed", 2))
        self.assertIn("the disk is full", job["lastError"])
        record = self.history(c, "broken")[0]
        self.assertEqual((record["runId"], record["status"], record["trigger"]), (run, "failed", "manual"))
        self.assertIn("the disk is full", record["error"])

    def test_declared_jobs(self):
        d = self.serve(declared=DECLARED)
        c = self.client(d)
        job = self.jobs(c)["nightly"]
        self.assertEqual({k: job[k] for k in ("method", "args", "cron", "timezone", "catchUp", "overlap",
                                              "declared", "lastRun", "runCount", "lastStatus", "createdAt")},
                         {"method": "tick", "args": {"tag": "nightly"}, "cron": "0 3 * * *",
                          "timezone": "Europe/Paris", "catchUp": "skip", "overlap": "allow",
                          "declared": True, "lastRun": None, "runCount": 0, "lastStatus": "", "createdAt": T0_MS})
        self.assertEqual(job["nextRun"], epoch_ms("2026-03-09T03:00:00+01:00"))

        reply = c.call({"type": "unschedule", "id": "u", "jobId": "nightly"})
        self.assertEqual(reply, {"type": "result", "id": "u", "success": False, "data": {
            "unscheduled": False, "jobId": "nightly",
            "reason": 'job "nightly" is declared by the photon and cannot be unscheduled'}})
        self.assertEqual(self.refused_schedule(c, "nightly", "tick", EVERY_SECOND),
                         'job "nightly" is declared by the photon; change it where it is declared')
        self.assertEqual(self.jobs(c)["nightly"], job, "untouched")

        c.subscribe("jobs:jb")
        reply = c.call({"type": "run_job", "id": "m", "jobId": "nightly"})
        self.assertEqual(reply["data"]["started"], True, reply)
        events = self.events(c, lambda events: any(e["event"] == "job-completed" for e in events))
        self.assertEqual([e["event"] for e in events], ["job-started", "job-completed"])
        self.assertEqual((events[0]["data"]["trigger"], events[0]["data"]["scheduledFor"]), ("manual", T0_MS))
        self.assertEqual(self.ticks(), [("scheduler", {"tag": "nightly"})])
        # And it fires at its slot, 03:00 in Paris.
        self.assertEqual(brief(self.slot(d, c, job["nextRun"])), [("job-started", "nightly", job["nextRun"])])
        self.assertEqual(self.ticks(), [("scheduler", {"tag": "nightly"})] * 2)

    def test_refusals_and_manual_runs(self):
        d = self.serve()
        c = self.client(d)
        self.assertEqual(self.refused_schedule(c, "bad", "tick", "61 * * * *"),
                         "Invalid cron expression: minute 61 is out of range 0-59")
        self.assertEqual(self.refused_schedule(c, "bad", "nope", EVERY_SECOND),
                         'unknown method "nope"; available: tick, slow, fail, hang')
        self.assertEqual(self.refused_schedule(c, "bad", "tick", "0 9 * * *", timezone="Mars/Base"),
                         'Invalid time zone: unknown time zone "Mars/Base"')
        self.assertEqual(self.jobs(c), {})

        reply = c.call({"type": "job_history", "id": "h", "jobId": "ghost"})
        self.assertEqual(reply, {"type": "error", "id": "h", "error": 'no job "ghost"'})
        reply = c.call({"type": "unschedule", "id": "u", "jobId": "ghost"})
        self.assertEqual(reply, {"type": "result", "id": "u", "success": False,
                                 "data": {"unscheduled": False, "jobId": "ghost", "reason": 'no job "ghost"'}})
        reply = c.call({"type": "run_job", "id": "r", "jobId": "ghost"})
        self.assertEqual(reply, {"type": "result", "id": "r", "success": False,
                                 "data": {"started": False, "jobId": "ghost", "reason": 'no job "ghost"'}})

        # A job far in the future, run by hand.
        first = self.schedule(c, "yearly", "tick", "0 0 1 1 *", args={"tag": "old"}, timezone="UTC")
        replaced = self.schedule(c, "yearly", "tick", "0 0 1 7 *", args={"tag": "manual"}, timezone="UTC")
        self.assertEqual((first["nextRun"], replaced["nextRun"]),
                         (epoch_ms("2027-01-01T00:00:00Z"), epoch_ms("2026-07-01T00:00:00Z")))
        jobs = self.jobs(c)
        self.assertEqual(list(jobs), ["yearly"])
        self.assertEqual((jobs["yearly"]["cron"], jobs["yearly"]["args"]), ("0 0 1 7 *", {"tag": "manual"}))
        self.assertEqual(jobs["yearly"]["nextRun"], replaced["nextRun"])

        c.subscribe("jobs:jb")
        now = d.advance(1234)["wallMs"]
        reply = c.call({"type": "run_job", "id": "r", "jobId": "yearly"})
        self.assertEqual((reply["type"], reply["success"]), ("result", True), reply)
        self.assertEqual((reply["data"]["started"], reply["data"]["jobId"]), (True, "yearly"))
        run_id = reply["data"]["runId"]
        events = self.events(c, lambda events: any(e["event"] == "job-completed" for e in events))
        self.assertEqual(events, [
            {"event": "job-started", "data": {"jobId": "yearly", "method": "tick", "runId": run_id,
                                              "trigger": "manual", "scheduledFor": now}},
            {"event": "job-completed", "data": {"jobId": "yearly", "method": "tick", "runCount": 1,
                                                "runId": run_id}}])
        run = self.history(c, "yearly")[0]
        self.assertEqual((run["runId"], run["trigger"], run["status"], run["scheduledFor"], run["startedAt"]),
                         (run_id, "manual", "ok", now, now))
        self.assertEqual(self.ticks(), [("scheduler", {"tag": "manual"})])
        job = self.jobs(c)["yearly"]
        self.assertEqual((job["runCount"], job["lastStatus"], job["lastRun"]), (1, "ok", now))
        self.assertEqual(job["nextRun"], replaced["nextRun"], "a manual run leaves the schedule alone")

        reply = c.call({"type": "unschedule", "id": "u", "jobId": "yearly"})
        self.assertEqual(reply, {"type": "result", "id": "u", "success": True,
                                 "data": {"unscheduled": True, "jobId": "yearly"}})
        self.assertEqual(self.jobs(c), {})
        # Gone: its slot passes without a run.
        self.assertEqual(self.move(d, c, replaced["nextRun"]), [])

    # ---- restarts and records

    def test_a_declared_job_keeps_its_record_across_restarts(self):
        d = self.serve(declared=DECLARED)
        with d.client() as c:
            c.subscribe("jobs:jb")
            run_id = c.call({"type": "run_job", "id": "m", "jobId": "nightly"})["data"]["runId"]
            self.ended(c, [run_id])
            before = self.jobs(c)["nightly"]
        self.assertEqual((before["runCount"], before["lastRun"]), (1, T0_MS))
        self.assertEqual(d.stop(), 0)
        d2 = self.serve(photon_dir=self.dir)
        c = self.client(d2)
        jobs = self.jobs(c)
        self.assertEqual(list(jobs), ["nightly"])
        self.assertEqual(jobs["nightly"], before)
        self.assertEqual([run["runId"] for run in self.history(c, "nightly")], [run_id])

    def test_a_job_no_longer_declared_stays_as_an_ordinary_job(self):
        d = self.serve(declared=DECLARED)
        with d.client() as c:
            declared = self.jobs(c)["nightly"]
        self.assertEqual(d.stop(), 0)
        # The manifest no longer declares it: docs/scheduler.md says it stays as an ordinary job.
        d2 = self.serve(photon_dir=self.dir, declared="")
        c = self.client(d2)
        job = self.jobs(c)["nightly"]
        self.assertEqual({k: job[k] for k in ("method", "args", "cron", "timezone", "createdAt", "nextRun")},
                         {k: declared[k] for k in ("method", "args", "cron", "timezone", "createdAt", "nextRun")})
        unschedule = c.call({"type": "unschedule", "id": "u", "jobId": "nightly"})
        self.assertEqual(
            (job["declared"], unschedule["success"]), (False, True),
            "DAEMON BUG: a job declared by an earlier manifest and no longer declared is restored as "
            "still declared (docs/scheduler.md: it \"stays in the store as an ordinary job\"), so "
            "unschedule and schedule refuse it for good. "
            f"list_jobs: {job}; unschedule: {unschedule}")

    def test_a_run_cut_short_by_a_crash_is_recorded_as_failed_with_an_unknown_end(self):
        d = self.serve(check_exit=False)
        pid_file = os.path.join(self.state, "hang.pid")
        with d.client() as c:
            self.schedule(c, "hung", "hang", "0 0 1 1 *")
            run_id = c.call({"type": "run_job", "id": "r", "jobId": "hung"})["data"]["runId"]
            pid = int(wait_until(lambda: read_text(pid_file).strip(), message="the method started"))
            self.addCleanup(kill_group, pid)
            self.assertEqual(self.history(c, "hung")[0]["status"], "running")
            # The store writes on its own thread: the kill waits until the running run is in the
            # file.
            wait_until(lambda: self.stored_status(run_id) == "running", message="the running run stored")
        d.kill()

        found_at = T0_MS + 5 * MINUTE
        d2 = self.serve(photon_dir=self.dir, test_clock=rfc3339(found_at))
        c = self.client(d2)
        run = self.history(c, "hung")[0]
        self.assertEqual((run["runId"], run["status"], run["error"]),
                         (run_id, "failed", "the daemon stopped while it ran"), run)
        # Its end was never seen: no made-up end or duration, but when the restart found it.
        self.assertEqual((run["startedAt"], run["endedAt"], run["durationMs"], run["interrupted"], run["foundAt"]),
                         (T0_MS, None, None, True, found_at), run)
        history = ctl(self.dir, "history", d2.name, "hung")
        self.assertIn("unknown", history.stdout, history.stdout)
        job = self.jobs(c)["hung"]
        self.assertEqual(
            (job["lastStatus"], job["lastError"]), ("failed", "the daemon stopped while it ran"),
            "DAEMON BUG: after a crash, job_history records the cut-short run as failed but "
            f"list_jobs does not (lastStatus, lastError, runCount are the job's before the run): {job}")

    def test_a_run_of_an_unscheduled_job_is_not_counted_for_a_new_job_of_its_id(self):
        d = self.serve()
        c = self.client(d)
        c.subscribe("jobs:jb")
        self.schedule(c, "j", "slow", "0 0 1 1 *")
        run_id = c.call({"type": "run_job", "id": "r", "jobId": "j"})["data"]["runId"]
        self.assertEqual(c.call({"type": "unschedule", "id": "u", "jobId": "j"})["data"]["unscheduled"], True)
        self.schedule(c, "j", "tick", "0 0 1 1 *")
        # The old run ends now; its end is still announced.
        self.open_gate()
        self.assertEqual(self.ended(c, [run_id])[run_id]["event"], "job-completed")
        job = self.jobs(c)["j"]
        self.assertEqual(self.history(c, "j"), [])
        self.assertEqual(
            (job["runCount"], job["lastStatus"]), (0, ""),
            "DAEMON BUG: a run of an unscheduled job that ends after a new job of the same id was "
            f"scheduled counts as the new job's run (runCount, lastStatus), which has no such run: {job}")

    def test_a_daemon_with_jobs_does_not_exit_when_idle(self):
        d = self.serve("--idle-timeout", "1s")
        with d.client() as c:
            self.schedule(c, "yearly", "tick", "0 0 1 1 *")
        d.wait_connections(0)  # the idle count starts at that close
        d.advance(10 * SECOND)
        d.clock()  # the idle check the move started has run
        self.assertIsNone(d.proc.poll(), "the daemon exited on --idle-timeout although it has a job")
        with d.client() as c:
            c.call({"type": "unschedule", "id": "u", "jobId": "yearly"})
        d.wait_connections(0)
        d.advance(SECOND - 1)
        d.clock()
        self.assertIsNone(d.proc.poll(), "the daemon exited before its idle timeout")
        d.advance(1)
        self.assertEqual(d.wait(), 0, "without jobs, the idle timeout applies again")

    def test_a_photon_without_methods_schedules_nothing(self):
        d = self.daemon("plain", args=["--log-level", "warn"])
        c = self.client(d)
        reply = c.call({"type": "schedule", "id": "s", "jobId": "j", "method": "tick", "cron": "* * * * *"})
        self.assertEqual(reply, {"type": "result", "id": "s", "success": False, "data": {
            "scheduled": False, "jobId": "j", "reason": "this photon has no methods to schedule"}})

    def test_jobs_of_the_kanban_photon_run_in_session_scheduler(self):
        d = self.daemon("kanban", args=["--log-level", "warn"], program=[KANBAN], test_clock=T0)
        c = self.client(d)
        c.subscribe("jobs:kanban")
        c.subscribe("board:cron")
        reply = c.call({"type": "schedule", "id": "s", "jobId": "pick", "method": "useBoard",
                        "cron": "0 0 1 1 *", "args": {"board": "nightly"}})
        self.assertTrue(reply["success"], reply)
        reply = c.call({"type": "schedule", "id": "s", "jobId": "add", "method": "addTask",
                        "cron": EVERY_SECOND, "args": {"title": "From cron", "board": "cron"}})
        self.assertTrue(reply["success"], reply)
        c.call({"type": "run_job", "id": "r", "jobId": "pick"})
        # A C++ photon's session runs one call at a time: the manual run of pick first, then add's
        # run at its slot.
        advance_to(d, T0_MS + SECOND)

        seen = {"job-completed": [], "task-added": 0}
        deadline = time.monotonic() + TIMEOUT
        while not (len(seen["job-completed"]) == 2 and seen["task-added"]):
            message = c.next_message(timeout=max(0.1, deadline - time.monotonic()))
            event = message["message"]
            if message["channel"] == "board:cron":
                self.assertEqual(event["event"], "task-added", event)
                self.assertEqual(event["data"]["title"], "From cron")
                seen["task-added"] += 1
            elif event["event"] == "job-failed":
                self.fail(f"a kanban job failed: {event}")
            elif event["event"] == "job-completed":
                seen["job-completed"].append(event["data"]["jobId"])
        self.assertEqual(sorted(seen["job-completed"]), ["add", "pick"])
        self.assertEqual(seen["task-added"], 1)
        self.assertEqual([run["scheduledFor"] for run in self.history(c, "add")], [T0_MS + SECOND])
        reply = c.call({"type": "command", "id": "b", "method": "currentBoard", "args": {},
                        "sessionId": "scheduler"})
        self.assertEqual(reply["data"], {"board": "nightly"}, "useBoard ran in session scheduler")
        reply = c.call({"type": "command", "id": "b", "method": "currentBoard", "args": {}})
        self.assertNotEqual(reply["data"], {"board": "nightly"}, "and in no other")
        # Nothing more came on the board: one slot, one task.
        self.assertEqual([m["channel"] for m in messages_before_pong(c) if m["channel"] == "board:cron"], [])


if __name__ == "__main__":
    unittest.main()
