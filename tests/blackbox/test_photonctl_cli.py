# photonctl's command line as redis-cli, nats and systemctl users expect it: unknown commands with
# a suggestion, --version and the top-level help, pub --raw and one message per stdin line, lock
# --wait forever, the human status (and a dead daemon's leftovers), logs and restart.
import json
import os
import signal
import subprocess
import unittest

from harness import PHOTONCTL, TIMEOUT, BlackboxTest, ctl, daemon_env, kill_from_pid_file, wait_until

MANIFEST = """
[methods.greet]
description = "Says hello"
command = "echo hi"

[[methods.greet.params]]
name = "who"
type = "string"
required = false
"""


class UnknownCommandTest(BlackboxTest):
    def setUp(self):
        self.dir = self.make_dir()

    def test_unknown_command_suggests_the_nearest(self):
        for word, nearest in (("subscribe", "sub"), ("publish", "pub"), ("stat", "status"), ("lcok", "lock"),
                              ("runjob", "run-job"), ("log", "logs")):
            with self.subTest(word=word):
                r = ctl(self.dir, word, "kanban")
                self.assertEqual(r.returncode, 2)
                self.assertEqual(r.stdout, "")
                self.assertEqual(r.stderr, f'photonctl: unknown command "{word}"; did you mean {nearest}?\n'
                                           "Run 'photonctl --help' for the list of commands.\n")
        r = ctl(self.dir, "--json", "xyzzy")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, 'photonctl: unknown command "xyzzy"\n'
                                   "Run 'photonctl --help' for the list of commands.\n")

    def test_version(self):
        r = ctl(self.dir, "--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^photonctl \d+\.\d+\.\d+\n$")

    def test_help_lists_the_environment_exit_codes_and_docs(self):
        r = ctl(self.dir, "--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for text in ("PHOTON_DIR", "PHOTON_SESSION_ID", "Exit status: 0 ok, 1 refused or failed, 2 usage, 3 daemon "
                     "not running", "docs/", "service", "logs", "restart"):
            self.assertIn(text, r.stdout)


class PubTest(BlackboxTest):
    def setUp(self):
        self.dir = self.make_dir()
        self.d = self.daemon(name="t", photon_dir=self.dir)
        self.sub = self.client(self.d)
        self.sub.subscribe("ch")

    def received(self, count):
        return [self.sub.next_message()["message"] for _ in range(count)]

    def test_raw_sends_any_text_as_a_string(self):
        r = ctl(self.dir, "pub", "--raw", "t", "ch", "not {json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "published to 1 subscriber\n")
        self.assertEqual(self.received(1), ["not {json"])

    def test_one_message_per_stdin_line(self):
        r = ctl(self.dir, "pub", "t", "ch", input='{"a":1}\n\n[2]\r\n"three"\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "published 3 messages, 3 deliveries\n")
        self.assertEqual(self.received(3), [{"a": 1}, [2], "three"])
        r = ctl(self.dir, "--json", "pub", "--raw", "t", "ch", input="deploy started\ndeploy done\n")
        self.assertEqual(json.loads(r.stdout), {"published": True, "channel": "ch", "messages": 2, "delivered": 2})
        self.assertEqual(self.received(2), ["deploy started", "deploy done"])

    def test_a_line_that_is_not_json_stops_the_run(self):
        r = ctl(self.dir, "pub", "t", "ch", input='{"a":1}\nnot json\n{"c":3}\n')
        self.assertEqual(r.returncode, 2)
        self.assertIn("stdin line 2: message is not valid JSON", r.stderr)
        self.assertIn("(1 published before it; --raw sends text as is)", r.stderr)
        self.assertEqual(ctl(self.dir, "pub", "t", "ch", '"marker"').returncode, 0)
        self.assertEqual(self.received(2), [{"a": 1}, "marker"], "nothing after the bad line was sent")

    def test_empty_stdin_is_a_usage_error(self):
        r = ctl(self.dir, "pub", "t", "ch", input="\n \n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no message", r.stderr)


class LockWaitTest(BlackboxTest):
    def setUp(self):
        self.dir = self.make_dir()
        self.d = self.daemon(name="t", photon_dir=self.dir)
        self.holder = self.client(self.d)
        reply = self.holder.call({"type": "lock", "id": "a", "lockName": "deploy", "sessionId": "ci-7",
                                  "lockTimeout": 600000})
        self.assertTrue(reply["data"]["acquired"], reply)

    def waiters(self):
        locks = self.holder.call({"type": "list_locks", "id": "l"})["data"]["locks"]
        return locks[0]["waiters"] if locks else 0

    def test_wait_forever_waits_and_says_who_holds_the_lock(self):
        for forever in ("forever", "-1"):
            with self.subTest(wait=forever):
                p = self.spawn_photonctl(self.dir, "lock", "t", "deploy", "--wait", forever, "--", "echo", "ran")
                wait_until(lambda: self.waiters() == 1, message="photonctl to wait for the lock")
                self.holder.call({"type": "unlock", "id": "r", "lockName": "deploy", "sessionId": "ci-7"})
                out, err = p.communicate(timeout=TIMEOUT)
                self.assertEqual(p.returncode, 0, err)
                self.assertEqual(out, "ran\n")
                waiting = [line for line in err.splitlines() if line.startswith("photonctl: waiting")]
                self.assertEqual(len(waiting), 1, err)
                self.assertIn('without a limit for lock "deploy", held by ci-7 (its lease ends in', waiting[0])
                reply = self.holder.call({"type": "lock", "id": "a", "lockName": "deploy",
                                          "sessionId": "ci-7", "lockTimeout": 600000})
                self.assertTrue(reply["data"]["acquired"], reply)

    def test_a_bounded_wait_also_says_who_holds_it(self):
        r = ctl(self.dir, "lock", "t", "deploy", "--wait", "1ms", "--", "true")
        self.assertEqual(r.returncode, 75)
        self.assertIn('photonctl: waiting up to 1ms for lock "deploy", held by ci-7', r.stderr)

    def test_no_wait_says_nothing_about_waiting(self):
        r = ctl(self.dir, "lock", "t", "deploy", "--wait", "0", "--", "true")
        self.assertEqual(r.returncode, 75)
        self.assertNotIn("waiting", r.stderr)

    def test_bad_waits_are_usage_errors(self):
        for wait in ("25h", "sometime", "-2"):
            with self.subTest(wait=wait):
                self.assertEqual(ctl(self.dir, "lock", "t", "deploy", "--wait", wait, "--", "true").returncode, 2)


class StatusTest(BlackboxTest):
    def setUp(self):
        self.dir = self.make_dir()
        manifest = os.path.join(self.dir, "photon.toml")
        with open(manifest, "w") as f:
            f.write(MANIFEST)
        self.d = self.daemon(name="t", photon_dir=self.dir,
                             args=["--manifest", manifest, "--ui-port", "0", "--webhook-port", "0"])

    def test_human_status_shows_locks_jobs_methods_urls_and_log(self):
        c = self.client(self.d)
        c.call({"type": "lock", "id": "a", "lockName": "deploy", "sessionId": "ci-7", "lockTimeout": 600000})
        self.assertEqual(ctl(self.dir, "schedule", "t", "nightly", "greet", "0 3 * * *").returncode, 0)
        r = ctl(self.dir, "status", "t")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertIn("methods      greet", lines)
        self.assertIn(f"log          {self.d.log_path}", lines)
        self.assertTrue(any(line.startswith("ui           http://127.0.0.1:") for line in lines), r.stdout)
        self.assertTrue(any(line.startswith("webhooks     http://127.0.0.1:") and line.endswith(
            "/webhook/ (authentication: none)") for line in lines), r.stdout)
        lock_rows = [line.split() for line in lines if line.startswith("deploy")]
        self.assertEqual([row[:3] for row in lock_rows], [["deploy", "ci-7", "1"]])
        job_rows = [line.split() for line in lines if line.startswith("nightly")]
        self.assertEqual([row[:7] for row in job_rows], [["nightly", "0", "3", "*", "*", "*", "greet"]])

    def test_a_killed_daemon_is_reported_dead_with_its_leftovers(self):
        self.d.stop()
        d = self.daemon(name="t", photon_dir=self.dir, check_exit=False)
        d.kill()
        self.assertTrue(os.path.exists(d.sock_path))
        self.d = d
        r = ctl(self.dir, "status", "t")
        self.assertEqual(r.returncode, 3)
        self.assertIn("photonctl: t is dead: no process serves its socket; its pid file names pid "
                      f"{self.d.pid}, which is gone\n", r.stderr)
        self.assertIn(f"  {self.d.sock_path}\n", r.stderr)
        self.assertIn(f"  {self.d.pid_path}\n", r.stderr)
        r = ctl(self.dir, "--json", "status", "t")
        self.assertEqual(r.returncode, 3)
        got = json.loads(r.stdout)
        self.assertEqual((got["running"], got["dead"]), (False, True))
        self.assertIn(self.d.sock_path, got["leftovers"])
        table = ctl(self.dir, "status")
        self.assertEqual(table.returncode, 0, table.stderr)
        row = next(line for line in table.stdout.splitlines() if line.startswith("t "))
        self.assertTrue(row.endswith("dead (stale socket)"), row)
        self.assertNotIn("not answering", table.stdout)

    def test_a_daemon_that_never_ran_is_not_running(self):
        r = ctl(self.dir, "status", "nobody")
        self.assertEqual(r.returncode, 3)
        self.assertEqual(r.stderr, "photonctl: nobody is not running\n")


class LogsAndRestartTest(BlackboxTest):
    def setUp(self):
        self.dir = self.make_dir()

    def test_logs_prints_the_end_of_the_log(self):
        d = self.daemon(name="t", photon_dir=self.dir)
        with open(d.log_path) as f:
            last = f.read().splitlines()[-1]
        r = ctl(self.dir, "logs", "t", "-n", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, last + "\n")
        r = ctl(self.dir, "logs", "nobody")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no log for nobody", r.stderr)

    def test_logs_follow_prints_what_is_appended(self):
        d = self.daemon(name="t", photon_dir=self.dir)
        out_path = os.path.join(self.dir, "follow.out")
        with open(out_path, "wb") as out:
            p = subprocess.Popen([PHOTONCTL, "logs", "t", "-f", "-n", "1"], env=daemon_env(self.dir),
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))

        def printed():
            with open(out_path) as f:
                return f.read()

        wait_until(lambda: "serving" in printed(), message="the last line")
        self.assertEqual(ctl(self.dir, "stop", "t").returncode, 0)
        wait_until(lambda: "shutdown requested by a client" in printed() and "stopped" in printed(),
                   message="the lines the stop appended")
        self.assertEqual(printed().count("serving"), 1, "the old lines once")
        self.assertIsNone(p.poll(), "-f keeps following")
        d.wait()

    def test_restart_starts_the_daemon_again_as_it_was(self):
        self.addCleanup(kill_from_pid_file, os.path.join(self.dir, "daemons", "t.pid"))
        self.assertEqual(ctl(self.dir, "start", "t", "--idle-timeout", "0").returncode, 0)
        before = json.loads(ctl(self.dir, "--json", "status", "t").stdout)["pid"]
        r = ctl(self.dir, "restart", "t")
        self.assertEqual(r.returncode, 0, r.stderr)
        after = json.loads(ctl(self.dir, "--json", "status", "t").stdout)["pid"]
        self.assertNotEqual(before, after)
        self.assertEqual(r.stdout, f"restarted t (pid {before} -> {after})\n")
        with open(f"/proc/{after}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        self.assertIn(b"--idle-timeout", argv, "the same command line")
        self.assertEqual(ctl(self.dir, "restart", "nobody").returncode, 3)


if __name__ == "__main__":
    unittest.main()
