# photonctl lock / locks / unlock against a real photond: flock(1)-style mutual exclusion of commands,
# the fencing token in the environment, lease renewal, signals, exit codes. The daemon runs on its test
# clock: a wait runs out, and a lease would end, only when the test moves the clock.
import json
import os
import select
import signal
import subprocess
import sys
import time
import unittest

from harness import TIMEOUT, BlackboxTest, ctl, pid_alive, wait_until

# A command that records its turn with the lock: "start TOKEN" and "end TOKEN" lines appended to
# argv[1]. Of argv[2] runs in all, it holds the lock until every run that has not started yet waits
# for the lock (query_lock's waiters), so a run let in beside it would write its "start" in between,
# or leave this one waiting for a waiter that never comes (exit 1 at a generous deadline).
RECORDER = """
import json, os, socket, sys, time
path, total = sys.argv[1], int(sys.argv[2])
token = os.environ["PHOTON_LOCK_TOKEN"]
def note(what):
    with open(path, "a") as f:
        f.write(f"{what} {token}\\n")
def waiters():
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(os.path.join(os.environ["PHOTON_DIR"], "daemons", "t.sock"))
        s.sendall(b'{"type":"query_lock","id":"q","lockName":"L"}\\n')
        reply = b""
        while not reply.endswith(b"\\n"):
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("the daemon closed the connection")
            reply += chunk
    return json.loads(reply)["data"]["lock"]["waiters"]
try:
    with open(path) as f:
        before = sum(line.startswith("start") for line in f)
except FileNotFoundError:
    before = 0
note("start")
deadline = time.monotonic() + 60
while waiters() < total - before - 1:
    if time.monotonic() > deadline:
        sys.exit(f"token {token}: the other runs never all waited")
    time.sleep(0.02)
note("end")
"""

# Writes its pid to argv[1], then sleeps; exits 5 on SIGINT (and dies of SIGTERM).
SLEEPER = """
import os, signal, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(5))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
"""


class LockCtlTest(BlackboxTest):
    def setUp(self):
        self.d = self.daemon(name="t", test_clock=True)
        self.dir = self.d.photon_dir
        self.watch = self.client(self.d)

    # --- helpers ---------------------------------------------------------------------------------

    def spawn(self, *args, env=None):
        return self.spawn_photonctl(self.dir, *args, env=env)

    def finish(self, p, timeout=TIMEOUT * 2):
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError(f"photonctl still running after {timeout}s") from None
        return p.returncode, out, err

    def lock_call(self, c, name, session, **fields):
        return c.call({"type": "lock", "id": f"lock:{name}", "sessionId": session, "lockName": name, **fields})

    def hold_lock(self, name, session="holder-x", ttl=60000):
        """Acquires `name` as `session` on a connection of the test's; returns the reply's data."""
        c = self.client(self.d)
        reply = self.lock_call(c, name, session, lockTimeout=ttl)
        self.assertTrue(reply.get("success"), reply)
        return reply["data"]

    def query(self, name):
        reply = self.watch.call({"type": "query_lock", "id": "q", "lockName": name})
        self.assertTrue(reply.get("success"), reply)
        return reply["data"]["lock"]

    def python(self, script, *args):
        return [sys.executable, "-c", script, *args]

    def path(self, name):
        return os.path.join(self.dir, name)

    def stderr_until(self, p, text, timeout=TIMEOUT):
        """Reads photonctl's stderr until `text` shows (the rest is left to finish()); returns it."""
        got = b""
        deadline = time.monotonic() + timeout
        while text.encode() not in got:
            remaining = deadline - time.monotonic()
            self.assertGreater(remaining, 0, f"no {text!r} on photonctl's stderr: {got!r}")
            if select.select([p.stderr], [], [], remaining)[0]:
                chunk = os.read(p.stderr.fileno(), 4096)
                self.assertTrue(chunk, f"photonctl's stderr ended before {text!r}: {got!r}")
                got += chunk
        return got.decode()

    def read_turns(self, path, runs):
        """The tokens of the runs in the order they held the lock, checking that each run's "end"
        came before the next run's "start"."""
        with open(path) as f:
            record = [line.split() for line in f]
        tokens = [int(token) for _, token in record[::2]]
        self.assertEqual(record, [[what, str(token)] for token in tokens for what in ("start", "end")],
                         "runs overlapped or did not finish")
        self.assertEqual(len(tokens), runs, record)
        return tokens

    # --- lock ----------------------------------------------------------------------------------------

    def test_competing_commands_run_strictly_one_after_the_other(self):
        record = self.path("record")
        procs = [self.spawn("lock", "t", "L", "--wait", "60s", "--", *self.python(RECORDER, record, "4"))
                 for _ in range(4)]
        for p in procs:
            code, out, err = self.finish(p)
            self.assertEqual(code, 0, err)
        tokens = self.read_turns(record, 4)
        self.assertEqual(tokens, sorted(set(tokens)), "tokens must increase in the order of holding")
        self.assertIsNone(self.query("L"), "released after the last command")

    def test_runs_sharing_a_session_still_exclude_each_other(self):
        # Regression: with the same $PHOTON_SESSION_ID the second run counted as the same holder.
        record = self.path("record")
        env = {"PHOTON_SESSION_ID": "shared-session"}
        procs = [self.spawn("lock", "t", "L", "--wait", "60s", "--", *self.python(RECORDER, record, "2"), env=env)
                 for _ in range(2)]
        for p in procs:
            code, out, err = self.finish(p)
            self.assertEqual(code, 0, err)
        first, second = self.read_turns(record, 2)
        self.assertLess(first, second)

    def test_token_and_name_in_the_environment(self):
        script = 'echo "$PHOTON_LOCK_NAME $PHOTON_LOCK_TOKEN"'
        first = ctl(self.dir, "lock", "t", "board:write", "--", "sh", "-c", script)
        second = ctl(self.dir, "lock", "t", "board:write", "--", "sh", "-c", script)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(second.returncode, 0, second.stderr)
        name1, token1 = first.stdout.split()
        name2, token2 = second.stdout.split()
        self.assertEqual((name1, name2), ("board:write", "board:write"))
        self.assertGreater(int(token1), 0)
        self.assertGreater(int(token2), int(token1))

    def test_token_is_the_one_the_daemon_holds(self):
        token_file = self.path("token")
        script = f'echo "$PHOTON_LOCK_TOKEN" > {token_file}.tmp && mv {token_file}.tmp {token_file} && exec sleep 30'
        p = self.spawn("lock", "t", "L", "--", "sh", "-c", script)
        wait_until(lambda: os.path.exists(token_file), message="command started")
        with open(token_file) as f:
            token = int(f.read())
        self.assertEqual(self.query("L")["token"], token)
        p.send_signal(signal.SIGTERM)
        code, _, err = self.finish(p)
        self.assertEqual(code, 128 + signal.SIGTERM, err)

    def test_exit_status_of_the_command(self):
        for script, expected in (("exit 0", 0), ("exit 7", 7), ("exit 75", 75), ("kill -TERM $$", 128 + 15),
                                 ("kill -KILL $$", 128 + 9)):
            with self.subTest(script=script):
                r = ctl(self.dir, "lock", "t", "L", "--", "sh", "-c", script)
                self.assertEqual(r.returncode, expected, r.stderr)
                self.assertIsNone(self.query("L"))

    def test_command_that_cannot_run(self):
        r = ctl(self.dir, "lock", "t", "L", "--", "no-such-command-photon")
        self.assertEqual(r.returncode, 127, r.stderr)
        self.assertIn("no-such-command-photon", r.stderr)
        self.assertIsNone(self.query("L"))

    def test_not_acquired_exits_75_and_names_the_holder(self):
        self.hold_lock("L", session="holder-x")
        marker = self.path("ran")
        r = ctl(self.dir, "lock", "t", "L", "--wait", "0", "--", "touch", marker)
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn("holder-x", r.stderr)
        self.assertFalse(os.path.exists(marker), "the command ran without the lock")
        p = self.spawn("lock", "t", "L", "--wait", "300ms", "--", "touch", marker)
        wait_until(lambda: self.query("L")["waiters"] == 1, message="photonctl queued")
        self.d.advance(299)
        self.assertEqual(self.query("L")["waiters"], 1, "gave up before its --wait ran out")
        self.d.advance(1)
        code, _, err = self.finish(p)
        self.assertEqual(code, 75, err)
        self.assertIn("timed out", err)
        self.assertIn("holder-x", err)
        self.assertFalse(os.path.exists(marker))
        self.assertEqual(self.query("L")["holder"], "holder-x")

    def test_waits_for_the_holder_to_release(self):
        holder = self.client(self.d)
        self.assertTrue(self.lock_call(holder, "L", "holder-x")["success"])
        # No --wait: photonctl waits (up to 10 s) by default, as flock(1) does.
        p = self.spawn("lock", "t", "L", "--", "sh", "-c", 'echo "$PHOTON_LOCK_TOKEN"')
        wait_until(lambda: self.query("L")["waiters"] == 1, message="photonctl queued")
        self.assertIsNone(p.poll())
        reply = holder.call({"type": "unlock", "id": "u", "sessionId": "holder-x", "lockName": "L"})
        self.assertTrue(reply["success"], reply)
        code, out, err = self.finish(p)
        self.assertEqual(code, 0, err)
        self.assertGreater(int(out), 0)

    def test_renewal_keeps_a_short_lock_across_a_long_command(self):
        # The daemon's clock moves to 1 ms before the lease's end, three times over: the lock stays
        # the command's only because photonctl renews it (every ttl/3 of real time) in between.
        go = self.path("go")
        p = self.spawn("lock", "t", "L", "--ttl", "1500ms", "--", "sh", "-c",
                       'while [ ! -e "$1" ]; do sleep 0.05; done', "sh", go)
        lock = wait_until(lambda: self.query("L"), message="lock held")
        other = self.client(self.d)
        for _ in range(3):
            now = self.d.advance(1499)["wallMs"]
            self.assertEqual(self.query("L")["token"], lock["token"])
            wait_until(lambda: self.query("L")["expiresAt"] == now + 1500, message="a renewal after the move")
            reply = self.lock_call(other, "L", "other-session", lockTimeout=1000)
            self.assertFalse(reply["success"], f"another session got the lock while the command ran: {reply}")
            self.assertEqual(reply["data"]["holder"], lock["holder"])
            self.assertEqual(self.query("L")["token"], lock["token"], "renewals keep the token")
        self.assertIsNone(p.poll(), "the command ended before it was told to")
        open(go, "w").close()
        code, _, err = self.finish(p)
        self.assertEqual(code, 0, err)
        self.assertNotIn("lost", err)
        self.assertIsNone(self.query("L"))

    def test_sigterm_stops_the_command_and_releases(self):
        pid_file = self.path("cmd.pid")
        p = self.spawn("lock", "t", "L", "--ttl", "60s", "--", *self.python(SLEEPER, pid_file))
        wait_until(lambda: os.path.exists(pid_file), message="command started")
        with open(pid_file) as f:
            cmd_pid = int(f.read())
        self.assertIsNotNone(self.query("L"))
        p.send_signal(signal.SIGTERM)
        code, _, err = self.finish(p)
        self.assertEqual(code, 128 + signal.SIGTERM, err)
        self.assertFalse(pid_alive(cmd_pid), "the command outlived photonctl")
        self.assertIsNone(self.query("L"), "released at once, long before the 60 s lease")

    def test_sigint_is_forwarded_and_the_command_status_returned(self):
        pid_file = self.path("cmd.pid")
        p = self.spawn("lock", "t", "L", "--ttl", "60s", "--", *self.python(SLEEPER, pid_file))
        wait_until(lambda: os.path.exists(pid_file), message="command started")
        p.send_signal(signal.SIGINT)
        code, _, err = self.finish(p)
        self.assertEqual(code, 5, err)
        self.assertIsNone(self.query("L"))

    def test_lock_ends_when_photonctl_is_killed(self):
        pid_file = self.path("cmd.pid")
        p = self.spawn("lock", "t", "L", "--ttl", "60s", "--", *self.python(SLEEPER, pid_file))
        wait_until(lambda: os.path.exists(pid_file), message="command started")
        with open(pid_file) as f:
            cmd_pid = int(f.read())
        self.addCleanup(self._kill_pid, cmd_pid)
        p.kill()
        p.wait(timeout=TIMEOUT)  # not communicate(): the orphaned command still holds the pipes
        wait_until(lambda: self.query("L") is None, message="lock freed with photonctl's connection")

    def _kill_pid(self, pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def test_lost_lease_warns_and_lets_the_command_finish(self):
        # The lock is released in photonctl's name and taken by another session: the next renewal
        # is refused.
        env = {"PHOTON_SESSION_ID": "ctl-session"}
        # The command runs until the test has seen the warning, rather than for a fixed 2 s that a
        # slow `photonctl unlock` on a loaded machine could outlast.
        go = self.path("go")
        p = self.spawn("lock", "t", "L", "--ttl", "600ms", "--", "sh", "-c",
                       'while [ ! -e "$1" ]; do sleep 0.05; done; echo finished', "sh", go, env=env)
        wait_until(lambda: self.query("L"), message="lock held")
        holder = self.query("L")["holder"]
        self.assertEqual(holder, f"ctl-session/lock-{p.pid}", "one holder per run, under the session")
        # The other session waits first, so the unlock hands it the lock at once (a renewal never
        # takes a free lock back: test_a_lock_released_in_its_name_is_lost_and_never_taken_back).
        other = self.client(self.d)
        other.send({"type": "lock", "id": "lock:L", "sessionId": "other-session", "lockName": "L",
                    "lockTimeout": 60000, "lockWait": 60000})
        wait_until(lambda: self.query("L")["waiters"] == 1, message="the other session waiting")
        r = ctl(self.dir, "unlock", "t", "L", "--session", holder)
        self.assertEqual(r.returncode, 0, r.stderr)
        reply = other.reply()
        self.assertTrue(reply["success"], reply)
        self.assertEqual(reply["data"]["holder"], "other-session", reply)
        warned = self.stderr_until(p, "lost")
        open(go, "w").close()
        code, out, err = self.finish(p)
        err = warned + err
        self.assertEqual(code, 0, err)
        self.assertEqual(out.strip(), "finished")
        self.assertIn("lost", err)
        self.assertEqual(self.query("L")["holder"], "other-session", "photonctl left the other holder's lock alone")

    def test_a_lock_released_in_its_name_is_lost_and_never_taken_back(self):
        # Nobody else wants the lock: the renewal after the unlock finds it free, and takes nothing
        # (before renewToken it took the lock again under a new token, and photonctl never said).
        go = self.path("go")
        p = self.spawn("lock", "t", "F", "--ttl", "600ms", "--", "sh", "-c",
                       'while [ ! -e "$1" ]; do sleep 0.05; done; echo finished', "sh", go)
        wait_until(lambda: self.query("F"), message="lock held")
        held = self.query("F")
        r = ctl(self.dir, "unlock", "t", "F", "--session", held["holder"])
        self.assertEqual(r.returncode, 0, r.stderr)
        warned = self.stderr_until(p, "lost")
        self.assertIsNone(self.query("F"), "a renewal took the released lock back")
        open(go, "w").close()
        code, out, err = self.finish(p)
        self.assertEqual((code, out.strip()), (0, "finished"), warned + err)
        self.assertIsNone(self.query("F"))

    def test_daemon_gone_warns_and_the_command_status_stays(self):
        # The command runs until the test has seen the warning, rather than for a fixed 1.5 s that
        # a slow daemon shutdown on a loaded machine could outlast.
        go = self.path("go")
        p = self.spawn("lock", "t", "L", "--ttl", "600ms", "--", "sh", "-c",
                       'while [ ! -e "$1" ]; do sleep 0.05; done; exit 4', "sh", go)
        wait_until(lambda: self.query("L"), message="lock held")
        self.watch.close()
        self.assertEqual(self.d.stop(), 0)
        warned = self.stderr_until(p, "lost")
        open(go, "w").close()
        code, _, err = self.finish(p)
        err = warned + err
        self.assertEqual(code, 4, err)
        self.assertIn("lost", err)

    # --- locks and unlock ----------------------------------------------------------------------------

    def test_locks_table_and_json(self):
        r = ctl(self.dir, "locks", "t")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no locks", r.stdout)
        r = ctl(self.dir, "--json", "locks", "t")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"locks": []})

        b = self.hold_lock("b:1", session="alice")
        a = self.hold_lock("a:2", session="bob")
        r = ctl(self.dir, "locks", "t")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["LOCK", "HOLDER", "TOKEN", "ACQUIRED", "EXPIRES", "WAITERS"])
        self.assertEqual([line.split()[:3] for line in lines[1:]],
                         [["a:2", "bob", str(a["token"])], ["b:1", "alice", str(b["token"])]])
        r = ctl(self.dir, "--json", "locks", "t")
        self.assertEqual(r.returncode, 0, r.stderr)
        locks = json.loads(r.stdout)["locks"]
        self.assertEqual([(x["name"], x["holder"], x["token"], x["acquiredAt"], x["waiters"]) for x in locks],
                         [("a:2", "bob", a["token"], a["acquiredAt"], 0),
                          ("b:1", "alice", b["token"], b["acquiredAt"], 0)])
        self.assertEqual([x["expiresAt"] for x in locks], [a["expiresAt"], b["expiresAt"]])

    def test_unlock_as_a_session(self):
        self.hold_lock("L", session="alice")
        r = ctl(self.dir, "unlock", "t", "L")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('lock "L" is held by alice', r.stderr)
        self.assertEqual(self.query("L")["holder"], "alice")

        r = ctl(self.dir, "--json", "unlock", "t", "L", "--session", "bob")
        self.assertEqual(r.returncode, 1, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual((out["released"], out["lockName"], out["session"]), (False, "L", "bob"))
        self.assertIn("alice", out["reason"])

        r = ctl(self.dir, "unlock", "t", "L", "--session", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("released L", r.stdout)
        self.assertIsNone(self.query("L"))

        self.hold_lock("M", session="carol")
        r = ctl(self.dir, "--json", "unlock", "t", "M", env={"PHOTON_SESSION_ID": "carol"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"released": True, "lockName": "M", "session": "carol"})
        self.assertIsNone(self.query("M"))

        r = ctl(self.dir, "unlock", "t", "never-held")
        self.assertEqual(r.returncode, 0, r.stderr)


class LockCtlUsageTest(BlackboxTest):
    def test_not_running_exits_3(self):
        d = self.make_dir()
        marker = os.path.join(d, "ran")
        for args in (["lock", "ghost", "L", "--", "touch", marker], ["locks", "ghost"], ["unlock", "ghost", "L"]):
            with self.subTest(args=args):
                r = ctl(d, *args)
                self.assertEqual(r.returncode, 3, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertFalse(os.path.exists(marker))

    def test_usage_errors_exit_2(self):
        d = self.make_dir()
        for args in (["lock"], ["lock", "t"], ["lock", "t", "L"], ["lock", "t", "L", "--"],
                     ["lock", "t", "L", "--ttl", "soon", "--", "true"], ["lock", "t", "L", "--ttl", "0", "--", "true"],
                     ["lock", "t", "L", "--ttl", "8d", "--", "true"], ["lock", "t", "L", "--wait", "25h", "--", "true"],
                     ["lock", "bad/name", "L", "--", "true"], ["locks"], ["unlock", "t"],
                     ["unlock", "t", "L", "--session", ""]):
            with self.subTest(args=args):
                r = ctl(d, *args)
                self.assertEqual(r.returncode, 2, f"stdout={r.stdout!r} stderr={r.stderr!r}")

    def test_help(self):
        d = self.make_dir()
        for command in ("lock", "locks", "unlock"):
            with self.subTest(command=command):
                r = ctl(d, command, "--help")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(command, r.stdout)
        r = ctl(d, "lock", "--help")
        self.assertIn("75", r.stdout)
        self.assertIn("lost", r.stdout)


if __name__ == "__main__":
    unittest.main()
