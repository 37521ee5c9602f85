"""Cron jobs through the real socket: schedule, unschedule, list_jobs, job_history, run_job and the
events on jobs:NAME, with exec photons whose scripts leave a trace in files, and the kanban C++
photon. Seconds-level crons keep each test to a few seconds; restarts use the same PHOTON_DIR, so
jobs and their runs come back from the daemon's SQLite file."""
import json
import os
import signal
import sqlite3
import time
import unittest

from harness import KANBAN, TIMEOUT, BlackboxTest, ctl, wait_until

# tick appends "SESSION ARGS" to $STATE/ticks; slow takes 3 s; fail fails with a message; hang
# writes its pid (its process group's) to $STATE/hang.pid and sleeps.
MANIFEST = """
[methods.tick]
command = 'read -r args; printf "%s %s\\\\n" "$PHOTON_SESSION_ID" "$args" >> "$STATE/ticks"'
env = { STATE = "@STATE@" }

[methods.slow]
command = "sleep 3"

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


class JobsTest(BlackboxTest):
    def serve(self, *args, photon_dir=None, declared=None, check_exit=True):
        """photond serving MANIFEST (+ declared jobs) as photon "jb"; a second call with the same
        photon_dir restarts it there (with the manifest rewritten when `declared` is given)."""
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
                           check_exit=check_exit)

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

    def test_a_seconds_job_runs_its_method_and_announces_each_run(self):
        d = self.serve()
        c = self.client(d)
        c.subscribe("jobs:jb")
        self.schedule(c, "every", "tick", EVERY_SECOND, args={"tag": "every"})
        self.schedule(c, "even", "tick", "*/2 * * * * *", args={"tag": "even"})
        completed = lambda events: [e for e in events
                                    if e["event"] == "job-completed" and e["data"]["jobId"] == "every"]
        events = self.events(c, lambda events: len(completed(events)) >= 3)
        self.assertEqual({e["event"] for e in events}, {"job-started", "job-completed"}, events)

        every = [e for e in events if e["data"]["jobId"] == "every"]
        started = {}
        for event in every:
            data = event["data"]
            self.assertEqual(data["method"], "tick")
            if event["event"] == "job-started":
                self.assertEqual(data["trigger"], "schedule")
                self.assertEqual(data["scheduledFor"] % 1000, 0, data)
                started[data["runId"]] = data
            else:
                self.assertIn(data["runId"], started, f"job-completed before its job-started: {every}")
        done = completed(events)
        self.assertEqual([e["data"]["runCount"] for e in done], list(range(1, len(done) + 1)))
        self.assertEqual([e["data"]["runId"] for e in done], sorted(e["data"]["runId"] for e in done))
        slots = [started[e["data"]["runId"]]["scheduledFor"] for e in done]
        self.assertEqual(slots, sorted(set(slots)), "one run per slot, in slot order")

        runs = self.history(c, "every")
        by_id = {run["runId"]: run for run in runs}
        self.assertEqual([run["runId"] for run in runs], sorted(by_id, reverse=True), "newest first")
        for event in done:
            run = by_id[event["data"]["runId"]]
            self.assertEqual(run["trigger"], "schedule")
            self.assertEqual(run["status"], "ok", run)
            self.assertEqual(run["error"], "")
            self.assertEqual(run["scheduledFor"], started[run["runId"]]["scheduledFor"])
            self.assertGreaterEqual(run["startedAt"], run["scheduledFor"])
            self.assertEqual(run["durationMs"], run["endedAt"] - run["startedAt"])
        self.assertEqual(len(self.history(c, "every", limit=1)), 1)

        ticks = wait_until(lambda: len(self.ticks_tagged("every")) >= len(done) and self.ticks(),
                           message="the tick lines")
        self.assertEqual({session for session, _ in ticks}, {"scheduler"}, "runs use session scheduler")

        # The */2 job's first slot is at most 2 s after it was scheduled; three runs of the other
        # usually span it, but not when a loaded machine delayed the second schedule: waited for.
        even_started = lambda more: [e["data"]["scheduledFor"] for e in events + more
                                     if e["event"] == "job-started" and e["data"]["jobId"] == "even"]
        even = even_started(self.events(c, even_started))
        self.assertTrue(even, "the */2 job ran")
        self.assertTrue(all(slot % 2000 == 0 for slot in even), even)

        job = self.jobs(c)["every"]
        self.assertGreaterEqual(job["runCount"], 3)
        self.assertEqual(job["lastStatus"], "ok")
        self.assertEqual(job["lastError"], "")
        self.assertGreater(job["nextRun"], job["lastRun"])
        self.assertEqual(job["args"], {"tag": "every"})
        self.assertEqual((job["catchUp"], job["overlap"], job["declared"]), ("latest", "skip", False))

    def test_jobs_and_their_runs_survive_a_restart(self):
        d = self.serve()
        with d.client() as c:
            self.schedule(c, "keep", "tick", EVERY_SECOND, args={"tag": "keep"},
                          timezone="Europe/Paris", catchUp="skip", overlap="allow")
            wait_until(lambda: [r for r in self.history(c, "keep") if r["status"] == "ok"][1:],
                       message="two finished runs")
            before = self.jobs(c)["keep"]
            old_runs = self.history(c, "keep", limit=1000)
        self.assertEqual(d.stop(), 0)
        old_ids = {run["runId"] for run in old_runs}
        ticks_before = len(self.ticks_tagged("keep"))

        d2 = self.serve(photon_dir=self.dir)
        c = self.client(d2)
        after = self.jobs(c)["keep"]
        for field in ("method", "args", "cron", "timezone", "catchUp", "overlap", "createdAt", "createdBy",
                      "declared"):
            self.assertEqual(after[field], before[field], field)
        self.assertGreaterEqual(after["runCount"], before["runCount"])

        wait_until(lambda: len(self.ticks_tagged("keep")) > ticks_before, message="a run after the restart")
        runs = wait_until(lambda: [r for r in self.history(c, "keep", limit=1000)
                                   if r["runId"] not in old_ids and r["status"] == "ok"] and
                          self.history(c, "keep", limit=1000), message="a finished run after the restart")
        ids = [run["runId"] for run in runs]
        self.assertTrue(old_ids <= set(ids), f"the runs before the restart are kept: {old_ids} in {ids}")
        new_ids = set(ids) - old_ids
        self.assertGreater(min(new_ids), max(old_ids), "run ids keep increasing across a restart")
        self.assertEqual(ids, sorted(ids, reverse=True))
        manual = c.call({"type": "run_job", "id": "m", "jobId": "keep"})
        self.assertGreater(manual["data"]["runId"], max(ids), manual)

    def test_a_slot_missed_while_the_daemon_was_down(self):
        d = self.serve()
        with d.client() as c:
            # A second of the minute 7 s ahead: its next slot is then 6-7 s away, across a minute
            # boundary too, which leaves the two schedules and the stop below time on a loaded
            # machine (3-4 s did not always).
            second = (int(time.time()) + 7) % 60
            cron = f"{second} * * * * *"
            latest = self.schedule(c, "latest", "tick", cron, args={"tag": "latest"})
            skip = self.schedule(c, "skip", "tick", cron, args={"tag": "skip"}, catchUp="skip")
        slot = latest["nextRun"]
        self.assertEqual(skip["nextRun"], slot)
        self.assertEqual(time.gmtime(slot // 1000).tm_sec, second)
        self.assertEqual(d.stop(), 0)
        self.assertLess(time.time() * 1000, slot, "the daemon took so long to stop that the slot passed")
        time.sleep(max(0.0, (slot + 3500) / 1000 - time.time()))

        d2 = self.serve("--missed-after", "1s", photon_dir=self.dir)
        c = self.client(d2)
        runs = wait_until(lambda: [r for r in self.history(c, "latest") if r["status"] != "running"],
                          message="the catch-up run")
        self.assertEqual(len(runs), 1, runs)
        self.assertEqual((runs[0]["trigger"], runs[0]["status"], runs[0]["scheduledFor"]),
                         ("catch-up", "ok", slot), runs)
        self.assertGreaterEqual(runs[0]["startedAt"], slot + 3000)

        missed = self.history(c, "skip")
        self.assertEqual(len(missed), 1, missed)
        self.assertEqual((missed[0]["status"], missed[0]["scheduledFor"]), ("missed", slot), missed)
        jobs = self.jobs(c)
        self.assertEqual((jobs["skip"]["lastStatus"], jobs["skip"]["runCount"]), ("missed", 0), jobs["skip"])
        self.assertEqual((jobs["latest"]["lastStatus"], jobs["latest"]["runCount"]), ("ok", 1), jobs["latest"])
        for job in jobs.values():
            self.assertEqual(job["nextRun"], slot + 60_000, job)

        time.sleep(1)  # nothing more comes
        self.assertEqual(len(self.history(c, "latest")), 1)
        self.assertEqual(len(self.ticks_tagged("latest")), 1)
        self.assertEqual(self.ticks_tagged("skip"), [])

    def test_overlap_skip_and_allow(self):
        d = self.serve()
        c = self.client(d)
        c.subscribe("jobs:jb")
        self.schedule(c, "serial", "slow", EVERY_SECOND)
        self.schedule(c, "parallel", "slow", EVERY_SECOND, overlap="allow")
        events = self.events(c, lambda events: any(e["event"] == "job-skipped" for e in events))
        skipped = events[-1]["data"]
        self.assertEqual((skipped["jobId"], skipped["method"]), ("serial", "slow"))
        self.assertEqual(skipped["scheduledFor"] % 1000, 0)
        # A slot was skipped, so serial runs now (for 2 s more at least): run_job is refused too,
        # while parallel takes one more run.
        reply = c.call({"type": "run_job", "id": "r", "jobId": "serial"})
        self.assertEqual(reply["data"], {"started": False, "jobId": "serial",
                                         "reason": 'job "serial" is running (overlap: skip)'}, reply)
        reply = c.call({"type": "run_job", "id": "r", "jobId": "parallel"})
        self.assertEqual(reply["data"]["started"], True, reply)
        self.events(c, lambda more: sum(e["event"] == "job-started" and e["data"]["jobId"] == "parallel"
                                         for e in events + more) >= 4)

        def intervals(job_id):
            runs = [r for r in self.history(c, job_id, limit=1000) if r["status"] != "skipped"]
            never = float("inf")
            return sorted((r["startedAt"], r["endedAt"] if r["endedAt"] is not None else never) for r in runs)

        serial = self.history(c, "serial", limit=1000)
        self.assertTrue([r for r in serial if r["status"] == "skipped"], serial)
        for run in serial:
            if run["status"] == "skipped":
                self.assertEqual(run["trigger"], "schedule")
                self.assertIn("still running", run["error"])
        spans = intervals("serial")
        for (_, end), (start, _) in zip(spans, spans[1:]):
            self.assertGreaterEqual(start, end, f"two serial runs at once: {serial}")

        parallel = self.history(c, "parallel", limit=1000)
        self.assertEqual([r for r in parallel if r["status"] == "skipped"], [])
        spans = intervals("parallel")
        self.assertTrue(any(start < end for (_, end), (start, _) in zip(spans, spans[1:])),
                        f"no two parallel runs overlapped: {parallel}")

    def test_a_failing_method(self):
        d = self.serve()
        c = self.client(d)
        c.subscribe("jobs:jb")
        self.schedule(c, "broken", "fail", EVERY_SECOND)
        events = self.events(c, lambda events: any(e["event"] == "job-failed" for e in events))
        failed = events[-1]["data"]
        self.assertEqual((failed["jobId"], failed["method"]), ("broken", "fail"))
        self.assertIn("status 3", failed["error"])
        self.assertIn("the disk is full", failed["error"])
        started = [e["data"] for e in events if e["event"] == "job-started"]
        self.assertEqual(started[-1]["runId"], failed["runId"])
        job = self.jobs(c)["broken"]
        self.assertEqual(job["lastStatus"], "failed")
        self.assertIn("the disk is full", job["lastError"])

        # Run by hand: the same, and the history records it.
        self.schedule(c, "broken", "fail", "0 0 1 1 *")
        run = c.call({"type": "run_job", "id": "m", "jobId": "broken"})["data"]["runId"]
        self.events(c, lambda events: any(e["event"] == "job-failed" and e["data"]["runId"] == run
                                          for e in events))
        job = self.jobs(c)["broken"]
        self.assertEqual(job["lastStatus"], "failed")
        self.assertIn("the disk is full", job["lastError"])
        record = self.history(c, "broken")[0]
        self.assertEqual((record["runId"], record["status"]), (run, "failed"))
        self.assertIn("the disk is full", record["error"])

    def test_declared_jobs(self):
        d = self.serve(declared=DECLARED)
        c = self.client(d)
        job = self.jobs(c)["nightly"]
        self.assertEqual({k: job[k] for k in ("method", "args", "cron", "timezone", "catchUp", "overlap",
                                              "declared", "lastRun", "runCount", "lastStatus")},
                         {"method": "tick", "args": {"tag": "nightly"}, "cron": "0 3 * * *",
                          "timezone": "Europe/Paris", "catchUp": "skip", "overlap": "allow",
                          "declared": True, "lastRun": None, "runCount": 0, "lastStatus": ""})
        self.assertGreater(job["nextRun"], time.time() * 1000)

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
        self.assertEqual(events[0]["data"]["trigger"], "manual")
        self.assertEqual(self.ticks(), [("scheduler", {"tag": "nightly"})])

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
        first = self.schedule(c, "yearly", "tick", "0 0 1 1 *", args={"tag": "old"})
        replaced = self.schedule(c, "yearly", "tick", "0 0 1 7 *", args={"tag": "manual"})
        self.assertNotEqual(first["nextRun"], replaced["nextRun"])
        jobs = self.jobs(c)
        self.assertEqual(list(jobs), ["yearly"])
        self.assertEqual((jobs["yearly"]["cron"], jobs["yearly"]["args"]), ("0 0 1 7 *", {"tag": "manual"}))
        self.assertEqual(jobs["yearly"]["nextRun"], replaced["nextRun"])

        c.subscribe("jobs:jb")
        before = time.time() * 1000
        reply = c.call({"type": "run_job", "id": "r", "jobId": "yearly"})
        self.assertEqual((reply["type"], reply["success"]), ("result", True), reply)
        self.assertEqual((reply["data"]["started"], reply["data"]["jobId"]), (True, "yearly"))
        run_id = reply["data"]["runId"]
        events = self.events(c, lambda events: any(e["event"] == "job-completed" for e in events))
        self.assertEqual(events[0], {"event": "job-started", "data": {
            "jobId": "yearly", "method": "tick", "runId": run_id, "trigger": "manual",
            "scheduledFor": events[0]["data"]["scheduledFor"]}})
        self.assertEqual(events[-1], {"event": "job-completed", "data": {
            "jobId": "yearly", "method": "tick", "runCount": 1, "runId": run_id}})
        run = self.history(c, "yearly")[0]
        self.assertEqual((run["runId"], run["trigger"], run["status"]), (run_id, "manual", "ok"))
        self.assertGreaterEqual(run["scheduledFor"], before - 1000)
        self.assertEqual(self.ticks(), [("scheduler", {"tag": "manual"})])
        job = self.jobs(c)["yearly"]
        self.assertEqual((job["runCount"], job["lastStatus"]), (1, "ok"))
        self.assertEqual(job["nextRun"], replaced["nextRun"], "a manual run leaves the schedule alone")

        reply = c.call({"type": "unschedule", "id": "u", "jobId": "yearly"})
        self.assertEqual(reply, {"type": "result", "id": "u", "success": True,
                                 "data": {"unscheduled": True, "jobId": "yearly"}})
        self.assertEqual(self.jobs(c), {})

    def test_a_declared_job_keeps_its_record_across_restarts(self):
        d = self.serve(declared=DECLARED)
        with d.client() as c:
            c.subscribe("jobs:jb")
            c.call({"type": "run_job", "id": "m", "jobId": "nightly"})
            self.events(c, lambda events: any(e["event"] == "job-completed" for e in events))
            before = self.jobs(c)["nightly"]
        self.assertEqual(d.stop(), 0)
        d2 = self.serve(photon_dir=self.dir)
        c = self.client(d2)
        jobs = self.jobs(c)
        self.assertEqual(list(jobs), ["nightly"])
        self.assertEqual(jobs["nightly"], before)
        self.assertEqual(len(self.history(c, "nightly")), 1)

    def test_a_job_no_longer_declared_stays_as_an_ordinary_job(self):
        d = self.serve(declared=DECLARED)
        with d.client() as c:
            declared = self.jobs(c)["nightly"]
        self.assertEqual(d.stop(), 0)
        # The manifest no longer declares it: docs/scheduler.md says it stays as an ordinary job.
        d2 = self.serve(photon_dir=self.dir, declared="")
        c = self.client(d2)
        job = self.jobs(c)["nightly"]
        self.assertEqual({k: job[k] for k in ("method", "args", "cron", "timezone", "createdAt")},
                         {k: declared[k] for k in ("method", "args", "cron", "timezone", "createdAt")})
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
            wait_until(lambda: self.history(c, "hung")[0]["status"] == "running", message="a running run")
            # The store writes on its own thread: the kill waits until the running run is in the
            # file, rather than 0.5 s that a loaded machine may not give the writer.
            wait_until(lambda: self.stored_status(run_id) == "running", message="the running run stored")
        d.kill()

        d2 = self.serve(photon_dir=self.dir)
        c = self.client(d2)
        run = self.history(c, "hung")[0]
        self.assertEqual((run["runId"], run["status"], run["error"]),
                         (run_id, "failed", "the daemon stopped while it ran"), run)
        # Its end was never seen: no made-up end or duration, but when the restart found it.
        self.assertEqual((run["endedAt"], run["durationMs"], run["interrupted"]), (None, None, True), run)
        self.assertIsInstance(run["foundAt"], int, run)
        self.assertGreaterEqual(run["foundAt"], run["startedAt"], run)
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
        # The old run's end is still announced.
        self.events(c, lambda events: any(e["event"] == "job-completed" and e["data"]["runId"] == run_id
                                          for e in events))
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
        time.sleep(2)
        self.assertIsNone(d.proc.poll(), "the daemon exited on --idle-timeout although it has a job")
        with d.client() as c:
            c.call({"type": "unschedule", "id": "u", "jobId": "yearly"})
        self.assertEqual(d.wait(), 0, "without jobs, the idle timeout applies again")

    def test_a_photon_without_methods_schedules_nothing(self):
        d = self.daemon("plain", args=["--log-level", "warn"])
        c = self.client(d)
        reply = c.call({"type": "schedule", "id": "s", "jobId": "j", "method": "tick", "cron": "* * * * *"})
        self.assertEqual(reply, {"type": "result", "id": "s", "success": False, "data": {
            "scheduled": False, "jobId": "j", "reason": "this photon has no methods to schedule"}})

    def test_jobs_of_the_kanban_photon_run_in_session_scheduler(self):
        d = self.daemon("kanban", args=["--log-level", "warn"], program=[KANBAN])
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

        seen = {"job-completed": set(), "task-added": 0}
        deadline = time.monotonic() + TIMEOUT
        while not ({"pick", "add"} <= seen["job-completed"] and seen["task-added"]):
            message = c.next_message(timeout=max(0.1, deadline - time.monotonic()))
            event = message["message"]
            if message["channel"] == "board:cron":
                self.assertEqual(event["event"], "task-added", event)
                self.assertEqual(event["data"]["title"], "From cron")
                seen["task-added"] += 1
            elif event["event"] == "job-failed":
                self.fail(f"a kanban job failed: {event}")
            elif event["event"] == "job-completed":
                seen["job-completed"].add(event["data"]["jobId"])
        reply = c.call({"type": "command", "id": "b", "method": "currentBoard", "args": {},
                        "sessionId": "scheduler"})
        self.assertEqual(reply["data"], {"board": "nightly"}, "useBoard ran in session scheduler")
        reply = c.call({"type": "command", "id": "b", "method": "currentBoard", "args": {}})
        self.assertNotEqual(reply["data"], {"board": "nightly"}, "and in no other")


if __name__ == "__main__":
    unittest.main()
