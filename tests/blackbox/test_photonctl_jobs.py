# photonctl jobs / schedule / unschedule / history / run-job against a real photond serving an exec
# photon: the tables, local times with offsets, --json, refusals on stderr, exit codes. The daemon
# runs on a test clock (from the real time: photonctl prints times relative to its own clock), which
# the history test moves to fire its job's slots.
import datetime
import json
import os
import re
import unittest
import zoneinfo

from harness import BlackboxTest, ctl, wait_until

MANIFEST = r"""
[methods.tick]
command = "cat > /dev/null"

[methods.echo]
command = "cat"

# Long enough that it still runs when a second photonctl, started after the first gave up waiting,
# asks for another run, however slowly photonctl starts on a loaded machine (the daemon's shutdown
# ends it).
[methods.slow]
command = "sleep 30"

[methods.fail]
command = "echo 'the disk is full' >&2; exit 3"

[jobs.nightly]
method = "tick"
cron = "0 3 * * *"
timezone = "Europe/Paris"
"""

# photonctl's local zone in these tests: times are printed in it.
LOCAL = "Asia/Tokyo"


def local_time(millis, zone=LOCAL):
    """What photonctl prints for an epoch-milliseconds time: local time with its UTC offset."""
    return datetime.datetime.fromtimestamp(millis // 1000, zoneinfo.ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %z")


def cells(line):
    """A table row's cells (columns are at least two spaces apart, cells hold single spaces)."""
    return re.split(r" {2,}", line.rstrip())


class JobsCtlTest(BlackboxTest):
    def setUp(self):
        self.dir = self.make_dir()
        manifest = os.path.join(self.dir, "photon.toml")
        with open(manifest, "w") as f:
            f.write(MANIFEST)
        self.d = self.daemon(name="cj", photon_dir=self.dir, args=["--manifest", manifest, "--log-level", "warn"],
                             test_clock=True)
        self.c = self.client(self.d)

    def ctl(self, *args):
        return ctl(self.dir, *args, env={"TZ": LOCAL})

    def ok(self, *args):
        r = self.ctl(*args)
        self.assertEqual(r.returncode, 0, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertEqual(r.stderr, "")
        return r.stdout

    def refused(self, *args, code=1):
        r = self.ctl(*args)
        self.assertEqual(r.returncode, code, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        return r

    def jobs(self):
        reply = self.c.call({"type": "list_jobs", "id": "l"})
        return {job["id"]: job for job in reply["data"]["jobs"]}

    def history(self, job_id):
        return self.c.call({"type": "job_history", "id": "h", "jobId": job_id, "limit": 1000})["data"]["runs"]

    def test_schedule_prints_the_next_run_in_local_time(self):
        out = self.ok("schedule", "cj", "daily", "echo", "0 9 * * *", "--tz", "Europe/Paris")
        job = self.jobs()["daily"]
        self.assertRegex(out, r"^scheduled daily: next run (.*) \(in (\d+[dhm] )?\d+(ms|[dhms])\)\n$")
        self.assertEqual(out.split("next run ")[1].split(" (")[0], local_time(job["nextRun"]))
        self.assertEqual((job["method"], job["cron"], job["timezone"], job["catchUp"], job["overlap"], job["args"]),
                         ("echo", "0 9 * * *", "Europe/Paris", "latest", "skip", {}))
        self.assertEqual(datetime.datetime.fromtimestamp(job["nextRun"] / 1000,
                                                         zoneinfo.ZoneInfo("Europe/Paris")).hour, 9)

    def test_schedule_with_arguments_and_policies(self):
        self.ok("schedule", "cj", "report", "echo", "*/5 * * * *", "--args", '{"to":"ops","n":1}', "n=2",
                "tags=[\"a\"]", "--catch-up", "skip", "--overlap", "allow")
        job = self.jobs()["report"]
        self.assertEqual(job["args"], {"to": "ops", "n": 2, "tags": ["a"]})
        self.assertEqual((job["catchUp"], job["overlap"], job["timezone"]), ("skip", "allow", ""))
        # Scheduling the same id replaces the job.
        self.ok("schedule", "cj", "report", "tick", "0 0 1 1 *")
        job = self.jobs()["report"]
        self.assertEqual((job["method"], job["cron"], job["args"], job["catchUp"]), ("tick", "0 0 1 1 *", {}, "latest"))

    def test_schedule_json(self):
        r = self.ok("--json", "schedule", "cj", "y", "tick", "0 0 1 1 *")
        self.assertEqual(json.loads(r), {"scheduled": True, "jobId": "y", "nextRun": self.jobs()["y"]["nextRun"]})

    def test_schedule_refusals_exit_1_with_the_reason(self):
        for args, reason in [
            (("bad", "tick", "61 * * * *"), "Invalid cron expression: minute 61 is out of range 0-59"),
            (("bad", "nope", "* * * * *"), 'unknown method "nope"; available: tick, echo, slow, fail'),
            (("bad", "tick", "* * * * *", "--tz", "Mars/Base"), 'Invalid time zone: unknown time zone "Mars/Base"'),
            (("nightly", "tick", "* * * * *"),
             'job "nightly" is declared by the photon; change it where it is declared'),
        ]:
            with self.subTest(args=args):
                r = self.refused("schedule", "cj", *args)
                self.assertEqual((r.stdout, r.stderr), ("", f"photonctl: {reason}\n"))
                r = self.refused("--json", "schedule", "cj", *args)
                self.assertEqual(json.loads(r.stdout), {"scheduled": False, "jobId": args[0], "reason": reason})
        self.assertEqual(list(self.jobs()), ["nightly"])

    def test_jobs_table(self):
        self.ok("schedule", "cj", "broken", "fail", "0 0 1 1 *")
        self.ok("schedule", "cj", "idle", "tick", "*/10 * * * *")
        self.ok("run-job", "cj", "broken")
        wait_until(lambda: self.jobs()["broken"]["lastStatus"] == "failed", message="the failed run")
        jobs = self.jobs()
        lines = self.ok("jobs", "cj").splitlines()
        self.assertEqual(cells(lines[0]), ["ID", "CRON", "METHOD", "NEXT RUN", "LAST RUN", "RUNS", "LAST STATUS"])
        rows = {row[0]: row for row in map(cells, lines[1:])}
        self.assertEqual(list(rows), ["broken", "idle", "nightly"], "sorted by id")
        self.assertEqual(rows["nightly"][1:3], ["0 3 * * * (Europe/Paris)", "tick"])
        self.assertRegex(rows["nightly"][3], r"^" + re.escape(local_time(jobs["nightly"]["nextRun"])) + r" \(in .+\)$")
        self.assertEqual(rows["nightly"][4:], ["never", "0", "-"])
        self.assertEqual(rows["idle"][1:3], ["*/10 * * * *", "tick"])
        broken = rows["broken"]
        self.assertRegex(broken[4], r"^\d+(ms|s) ago$")
        self.assertEqual(broken[5], "1")
        self.assertTrue(broken[6].startswith("failed: method fail exited with status 3"), broken)
        self.assertTrue(broken[6].endswith("…"), "a long error is abbreviated")
        self.assertLess(len(broken[6]), len("failed: " + jobs["broken"]["lastError"]) + 1)

    def test_jobs_json_and_empty(self):
        self.assertEqual(json.loads(self.ok("--json", "jobs", "cj")), {"jobs": list(self.jobs().values())})
        self.ok("schedule", "cj", "x", "tick", "0 0 1 1 *")
        self.assertEqual(json.loads(self.ok("--json", "jobs", "cj")), {"jobs": list(self.jobs().values())})

        other = self.make_dir()
        manifest = os.path.join(other, "photon.toml")
        with open(manifest, "w") as f:
            f.write('[methods.tick]\ncommand = "true"\n')
        self.daemon(name="empty", photon_dir=other, args=["--manifest", manifest, "--log-level", "warn"])
        r = ctl(other, "jobs", "empty")
        self.assertEqual((r.returncode, r.stdout), (0, "no jobs on empty\n"))
        r = ctl(other, "--json", "jobs", "empty")
        self.assertEqual(json.loads(r.stdout), {"jobs": []})

    def test_unschedule(self):
        self.ok("schedule", "cj", "x", "tick", "0 0 1 1 *")
        self.assertEqual(self.ok("unschedule", "cj", "x"), "unscheduled x\n")
        self.assertNotIn("x", self.jobs())
        r = self.refused("unschedule", "cj", "x")
        self.assertEqual((r.stdout, r.stderr), ("", 'photonctl: no job "x"\n'))
        r = self.refused("unschedule", "cj", "nightly")
        self.assertEqual(r.stderr, 'photonctl: job "nightly" is declared by the photon and cannot be unscheduled\n')
        r = self.refused("--json", "unschedule", "cj", "x")
        self.assertEqual(json.loads(r.stdout), {"unscheduled": False, "jobId": "x", "reason": 'no job "x"'})
        self.ok("schedule", "cj", "x", "tick", "0 0 1 1 *")
        self.assertEqual(json.loads(self.ok("--json", "unschedule", "cj", "x")), {"unscheduled": True, "jobId": "x"})

    def test_history_table(self):
        self.ok("schedule", "cj", "sec", "fail", "* * * * * *")
        for n in (1, 2):
            self.d.advance(1000)  # one slot each (the clock crosses one whole second)
            wait_until(lambda: [r["status"] for r in self.history("sec")] == ["failed"] * n, message=f"failed run {n}")
        # Replaced, the job keeps its runs and stops running every second.
        self.ok("schedule", "cj", "sec", "tick", "0 0 1 1 *")
        self.d.advance(1000)
        self.ok("run-job", "cj", "sec", "--wait")
        runs = self.history("sec")
        self.assertEqual([(r["trigger"], r["status"]) for r in runs],
                         [("manual", "ok"), ("schedule", "failed"), ("schedule", "failed")])
        lines = self.ok("history", "cj", "sec", "-n", "1000").splitlines()
        self.assertEqual(cells(lines[0]), ["RUN", "TRIGGER", "SCHEDULED FOR", "STARTED", "DURATION", "STATUS", "ERROR"])
        rows = [cells(line) for line in lines[1:]]
        self.assertEqual([int(row[0]) for row in rows], [run["runId"] for run in runs], "newest first")
        manual, failed = rows[0], rows[-1]
        self.assertEqual((manual[1], manual[5]), ("manual", "ok"))
        self.assertEqual(len(manual), 6, "no error")
        run = runs[-1]
        self.assertEqual(failed[1:4], ["schedule", local_time(run["scheduledFor"]), local_time(run["startedAt"])])
        self.assertRegex(failed[4], r"^\d+(ms|s)$")
        self.assertEqual(failed[5:], ["failed", "method fail exited with status 3: the disk is full"])

        self.assertEqual(len(self.ok("history", "cj", "sec", "-n", "1").splitlines()), 2)
        data = json.loads(self.ok("--json", "history", "cj", "sec", "-n", "2"))
        self.assertEqual(data, {"jobId": "sec", "runs": runs[:2]})
        self.assertEqual(self.ok("history", "cj", "nightly"), "no runs of nightly yet\n")
        r = self.refused("history", "cj", "ghost")
        self.assertEqual((r.stdout, r.stderr), ("", 'photonctl: no job "ghost"\n'))

    def test_run_job(self):
        self.ok("schedule", "cj", "once", "tick", "0 0 1 1 *")
        out = self.ok("run-job", "cj", "once")
        run_id = int(re.fullmatch(r"started run (\d+) of once\n", out).group(1))
        run = wait_until(lambda: [r for r in self.history("once") if r["runId"] == run_id and r["status"] == "ok"],
                         message="the run's end")[0]
        self.assertEqual(run["trigger"], "manual")
        data = json.loads(self.ok("--json", "run-job", "cj", "once"))
        self.assertEqual(data, {"started": True, "jobId": "once", "runId": run_id + 1})
        r = self.refused("run-job", "cj", "ghost")
        self.assertEqual((r.stdout, r.stderr), ("", 'photonctl: no job "ghost"\n'))

    def test_run_job_wait(self):
        self.ok("schedule", "cj", "good", "tick", "0 0 1 1 *")
        lines = self.ok("run-job", "cj", "good", "--wait").splitlines()
        self.assertEqual(len(lines), 2, lines)
        run_id = re.fullmatch(r"started run (\d+) of good", lines[0]).group(1)
        self.assertRegex(lines[1], rf"^run {run_id} of good: ok in \d+(ms|s)$")

        self.ok("schedule", "cj", "bad", "fail", "0 0 1 1 *")
        r = self.refused("run-job", "cj", "bad", "--wait")
        run_id = re.fullmatch(r"started run (\d+) of bad\n", r.stdout).group(1)
        self.assertRegex(r.stderr, rf"^photonctl: run {run_id} of bad: failed in \d+(ms|s): "
                                   r"method fail exited with status 3: the disk is full\n$")
        r = self.refused("--json", "run-job", "cj", "bad", "--wait")
        outcome = json.loads(r.stdout)
        self.assertEqual(outcome, {**self.history("bad")[0], "jobId": "bad"})
        self.assertEqual((outcome["status"], outcome["trigger"]), ("failed", "manual"))

        self.ok("schedule", "cj", "slow", "slow", "0 0 1 1 *")
        r = self.refused("run-job", "cj", "slow", "--wait", "--timeout", "300ms")
        self.assertRegex(r.stderr, r"^photonctl: run \d+ of slow still running after 300ms\n$")
        # overlap skip: a second run is refused while the first runs.
        r = self.refused("run-job", "cj", "slow")
        self.assertEqual(r.stderr, 'photonctl: job "slow" is running (overlap: skip)\n')

    def test_usage_errors_exit_2(self):
        for args in (["schedule", "cj", "x", "tick"],
                     ["schedule", "cj", "x", "tick", "* * * * *", "--catch-up", "never"],
                     ["schedule", "cj", "x", "tick", "* * * * *", "--overlap", "queue"],
                     ["schedule", "cj", "x", "tick", "* * * * *", "--args", "[1]"],
                     ["schedule", "cj", "x", "tick", "* * * * *", "novalue"],
                     ["schedule", "cj", "", "tick", "* * * * *"],
                     ["schedule", "bad/name", "x", "tick", "* * * * *"],
                     ["jobs"], ["unschedule", "cj"], ["history", "cj", "x", "-n", "0"],
                     ["history", "cj", "x", "-n", "1001"], ["run-job", "cj", "x", "--timeout", "1s"],
                     ["run-job", "cj", "x", "--wait", "--timeout", "soon"]):
            with self.subTest(args=args):
                r = self.ctl(*args)
                self.assertEqual(r.returncode, 2, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertEqual(list(self.jobs()), ["nightly"])

    def test_not_running_exits_3(self):
        for args in (["jobs", "other"], ["schedule", "other", "x", "tick", "* * * * *"], ["unschedule", "other", "x"],
                     ["history", "other", "x"], ["run-job", "other", "x"]):
            with self.subTest(args=args):
                r = self.ctl(*args)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertTrue(r.stderr.startswith("photonctl: other is not running"), r.stderr)

    def test_help(self):
        for command in ("jobs", "schedule", "unschedule", "history", "run-job"):
            with self.subTest(command=command):
                r = self.ctl(command, "--help")
                self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--catch-up", self.ctl("schedule", "--help").stdout)


if __name__ == "__main__":
    unittest.main()
