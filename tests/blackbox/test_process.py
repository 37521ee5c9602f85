# photond as a process: files and modes, one instance per name, stale files, signals, shutdown, idle timeout.
import json
import os
import resource
import signal
import stat
import subprocess
import unittest

from harness import (PHOTOND, TIMEOUT, BlackboxTest, Client, Daemon, daemon_env, kill_from_pid_file, pid_alive,
                     try_ping, wait_until)


def read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


class FilesTest(BlackboxTest):
    def test_files_and_modes(self):
        root = self.make_dir()
        photon_dir = os.path.join(root, "p")  # does not exist yet: the daemon creates it
        d = self.daemon(photon_dir=photon_dir)
        daemons = os.path.join(photon_dir, "daemons")
        self.assertEqual(stat.S_IMODE(os.stat(daemons).st_mode), 0o700)
        st = os.stat(d.sock_path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(read_pid(d.pid_path), d.pid)
        wait_until(lambda: os.path.exists(d.log_path), message="NAME.log created")

    def test_log_level_is_accepted(self):
        d = self.daemon(args=["--log-level", "debug"])
        self.client(d).ping()

    def test_longest_valid_name(self):
        name = "A" + "b.c_d-9" * 9  # 64 characters
        self.assertEqual(len(name), 64)
        d = self.daemon(name=name)
        self.assertTrue(os.path.exists(d.sock_path))
        self.assertEqual(self.client(d).status()["name"], name)


class PeerUidTest(BlackboxTest):
    def test_other_uid_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to connect as another uid")
        d = self.daemon()
        # Open the path up, so only the daemon's SO_PEERCRED check stands in the way.
        os.chmod(d.photon_dir, 0o755)
        os.chmod(os.path.dirname(d.sock_path), 0o755)
        os.chmod(d.sock_path, 0o666)
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # connect as uid 65534, report what the daemon said over the pipe
            code = 1
            try:
                os.close(read_end)
                os.setgid(65534)
                os.setuid(65534)
                c = Client(d.sock_path)
                try:
                    c.send({"type": "ping", "id": "x"})
                except BrokenPipeError:
                    pass  # the daemon may have refused and closed before the request got there
                data = b"\n".join(c.wait_closed()) + b"\n"
                os.write(write_end, data)
                code = 0
            except BaseException as error:
                os.write(write_end, f"child failed: {error!r}".encode())
            finally:
                os._exit(code)
        os.close(write_end)
        output = b""
        with os.fdopen(read_end, "rb") as f:
            output = f.read()
        _, status = os.waitpid(child, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, output)
        lines = output.decode().splitlines()
        self.assertEqual(len(lines), 1, output)
        reply = json.loads(lines[0])
        self.assertEqual(reply["type"], "error")
        self.assertIn("permission denied", reply["error"])
        self.assertIn("65534", reply["error"])
        self.client(d).ping()  # the owner still gets in


class InvalidNameTest(BlackboxTest):
    def test_invalid_names_exit_2(self):
        photon_dir = self.make_dir()
        names = ["-x", ".hidden", "_under", "a/b", "../escape", "a b", "caf\u00e9", "a" * 65, "x:y", "a*"]
        for name in names:
            with self.subTest(name=name):
                r = subprocess.run([PHOTOND, "serve", name], env=daemon_env(photon_dir), capture_output=True,
                                   text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertTrue(r.stderr.strip(), "a clear error on stderr")
        leftovers = [f for f in os.listdir(os.path.join(photon_dir, "daemons"))] \
            if os.path.isdir(os.path.join(photon_dir, "daemons")) else []
        self.assertEqual([f for f in leftovers if f.endswith(".sock")], [])
        self.assertFalse(os.path.exists(os.path.join(photon_dir, "escape.sock")))

    def test_empty_name_is_usage_error(self):
        photon_dir = self.make_dir()
        r = subprocess.run([PHOTOND, "serve", ""], env=daemon_env(photon_dir), capture_output=True, text=True,
                           timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_help(self):
        for args in (["--help"], ["serve", "--help"]):
            with self.subTest(args=args):
                r = subprocess.run([PHOTOND, *args], capture_output=True, text=True, timeout=TIMEOUT,
                                   stdin=subprocess.DEVNULL)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("serve", r.stdout + r.stderr)


class SingleInstanceTest(BlackboxTest):
    def test_second_instance_is_refused_and_names_the_pid(self):
        d = self.daemon()
        r = subprocess.run([PHOTOND, "serve", d.name], env=d.env, capture_output=True, text=True,
                           timeout=TIMEOUT * 2, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertIn(str(d.pid), r.stderr)
        # The running daemon keeps its socket and pid file and still answers on the path.
        self.assertEqual(read_pid(d.pid_path), d.pid)
        self.assertTrue(try_ping(d.sock_path, timeout=TIMEOUT))
        self.assertIsNone(d.proc.poll())

    def test_different_names_run_side_by_side(self):
        a = self.daemon(name="one")
        b = self.daemon(name="two", photon_dir=a.photon_dir)
        ca, cb = self.client(a), self.client(b)
        self.assertEqual(ca.status()["pid"], a.pid)
        self.assertEqual(cb.status()["pid"], b.pid)
        cb.subscribe("x")
        self.assertEqual(ca.publish("x", 1)["data"]["delivered"], 0)

    def test_stale_socket_and_pid_file_after_sigkill_are_replaced(self):
        first = self.daemon(check_exit=False)
        first.proc.send_signal(signal.SIGKILL)
        first.wait()
        self.assertTrue(os.path.exists(first.sock_path), "SIGKILL leaves the socket behind")
        second = self.daemon(photon_dir=first.photon_dir)
        self.assertNotEqual(second.pid, first.pid)
        self.assertEqual(read_pid(second.pid_path), second.pid)
        self.assertEqual(self.client(second).status()["pid"], second.pid)

    def test_start_race_on_stale_leftovers_names_the_winner(self):
        # A SIGKILLed daemon leaves its socket and a pid file naming a dead process; then many
        # daemons start at once. One serves; every other one says it is already running and names
        # the winner's pid (never none, never the dead one's).
        first = self.daemon(name="race", check_exit=False)
        first.proc.send_signal(signal.SIGKILL)
        first.wait()
        self.assertEqual(read_pid(first.pid_path), first.pid)
        racers = [Daemon(first.photon_dir, name="race") for _ in range(24)]
        for index, racer in enumerate(racers):
            racer.out_path += f".{index}"
            self.addCleanup(racer.stop)
        for racer in racers:
            racer.spawn()

        def one_left():
            running = [r for r in racers if r.proc.poll() is None]
            if not running:
                raise AssertionError("no racer serves:\n" + "\n".join(r.output() for r in racers))
            return running[0] if len(running) == 1 else None

        # The winner serves until stopped, so once one is left every loser has exited.
        winner = wait_until(one_left, timeout=TIMEOUT * 3, message="all racers but one to exit")
        wait_until(lambda: try_ping(winner.sock_path), message="the winner to answer")
        self.assertEqual(self.client(winner).status()["pid"], winner.pid)
        for racer in racers:
            if racer is winner:
                continue
            with self.subTest(pid=racer.pid):
                self.assertEqual(racer.wait(), 1)
                with open(racer.out_path) as f:
                    output = f.read()
                self.assertIn(f'photon "race" is already running (pid {winner.pid})', output)

    def test_stale_files_with_garbage_are_replaced(self):
        photon_dir = self.make_dir()
        daemons = os.path.join(photon_dir, "daemons")
        os.makedirs(daemons, mode=0o700)
        with open(os.path.join(daemons, "t.pid"), "w") as f:
            f.write("not a pid\n")
        with open(os.path.join(daemons, "t.sock"), "w") as f:
            f.write("")  # a regular file where the socket should be
        d = self.daemon(photon_dir=photon_dir)
        self.assertTrue(stat.S_ISSOCK(os.stat(d.sock_path).st_mode))
        self.assertEqual(read_pid(d.pid_path), d.pid)


class SignalTest(BlackboxTest):
    def check_clean_exit(self, signum):
        d = self.daemon()
        sub = self.client(d)
        sub.subscribe("x")
        d.signal(signum)
        self.assertEqual(d.wait(), 0, d.output())
        self.assertFalse(os.path.exists(d.sock_path), "socket removed")
        self.assertFalse(os.path.exists(d.pid_path), "pid file removed")
        sub.wait_closed()  # connected clients see the connection end

    def test_sigterm_removes_socket_and_pid_file(self):
        self.check_clean_exit(signal.SIGTERM)

    def test_sigint_removes_socket_and_pid_file(self):
        self.check_clean_exit(signal.SIGINT)

    def test_shutdown_request_replies_then_exits(self):
        d = self.daemon()
        c = self.client(d)
        self.assertEqual(c.call({"type": "shutdown", "id": "x"}),
                         {"type": "result", "id": "x", "success": True, "data": {"message": "Shutting down"}})
        self.assertEqual(d.wait(), 0, d.output())
        self.assertFalse(os.path.exists(d.sock_path))
        self.assertFalse(os.path.exists(d.pid_path))
        # The name is free again.
        again = self.daemon(photon_dir=d.photon_dir)
        self.client(again).ping()


class DetachTest(BlackboxTest):
    def test_detach_returns_once_the_socket_answers(self):
        photon_dir = self.make_dir()
        d = Daemon(photon_dir)
        self.addCleanup(kill_from_pid_file, d.pid_path)
        r = subprocess.run([PHOTOND, "serve", "t", "--detach"], env=d.env, capture_output=True, text=True,
                           timeout=TIMEOUT * 2, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        # No waiting: it must answer right away.
        self.assertTrue(try_ping(d.sock_path, timeout=TIMEOUT), "detached daemon answers at once")
        pid = read_pid(d.pid_path)
        self.assertTrue(pid_alive(pid))
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists(d.sock_path) and not os.path.exists(d.pid_path),
                   message="detached daemon cleaned up after SIGTERM")
        wait_until(lambda: not pid_alive(pid), message="detached daemon exited")


class DescriptorExhaustionTest(BlackboxTest):
    def test_running_out_of_descriptors_is_survived(self):
        def low_fd_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

        d = self.daemon(preexec_fn=low_fd_limit, test_clock=True)
        d.clock()  # the clock's own connection, made while descriptors are left

        def out_of_descriptors():
            return len(os.listdir(f"/proc/{d.pid}/fd")) >= 64

        first = self.client(d)
        first.ping()
        # Each connection is answered before the next is made, so once the daemon holds all 64
        # descriptors every further connection waits in the listen backlog.
        served, pending = [], []
        while not out_of_descriptors():
            self.assertLess(len(served), 200, "the 64-descriptor limit was never reached")
            c = self.client(d)
            c.ping(f"c{len(served)}")
            served.append(c)
        for i in range(6):
            c = self.client(d)
            c.send({"type": "ping", "id": f"late{i}"})
            pending.append(c)

        def exhaustion_logged():
            with open(d.log_path, errors="replace") as f:
                text = f.read().lower()
            return "too many open files" in text or "descriptor" in text

        wait_until(exhaustion_logged, message="descriptor exhaustion logged")

        def pauses():
            return first.status()["counters"]["acceptPauses"]

        # Exhausted: existing clients keep working and the accept loop does not spin: it pauses
        # for 100 ms of the daemon's clock, and retries only when that much time has passed.
        wait_until(lambda: pauses() >= 1, message="accepting paused")
        paused = pauses()
        for i in range(20):
            first.ping(f"while-exhausted-{i}")
        self.assertEqual(pauses(), paused, "accept retried while no time passed: it spins")
        d.advance(99)
        self.assertEqual(pauses(), paused, "accept retried before its 100 ms back-off ended")
        d.advance(1)
        wait_until(lambda: pauses() == paused + 1, message="one retry, still out of descriptors, one more pause")
        for i in range(20):
            first.ping(f"after-retry-{i}")
        self.assertEqual(pauses(), paused + 1, "more than one retry for one back-off")
        self.assertIsNone(d.proc.poll())
        # Freed descriptors: once the back-off ends, the waiting connections are served.
        for c in served:
            c.close()
        wait_until(lambda: len(os.listdir(f"/proc/{d.pid}/fd")) < 32, message="the closed connections' descriptors freed")
        d.advance(100)
        for c in pending:
            reply = c.read_json()
            self.assertEqual(reply["type"], "pong", reply)
        first.ping("after")


class IdleTimeoutTest(BlackboxTest):
    # The idle timeout counts on the daemon's test clock from the last client's disconnect: the
    # daemon serves 1 ms before it and exits at it.

    def assert_running(self, d):
        d.clock()  # the idle check runs just after a clock move's reply: this round trip follows it
        self.assertIsNone(d.proc.poll(), d.output())

    def test_exits_after_idle_timeout(self):
        d = self.daemon(args=["--idle-timeout", "1s"], start=False, test_clock=True)
        c = d.start(hold=True)
        c.close()
        d.wait_connections(0)
        d.advance(999)
        self.assert_running(d)
        d.advance(1)
        self.assertEqual(d.wait(), 0, d.output())
        self.assertFalse(os.path.exists(d.sock_path))
        self.assertFalse(os.path.exists(d.pid_path))

    def test_milliseconds_and_plain_seconds(self):
        for value, ms in (("500ms", 500), ("1", 1000)):
            with self.subTest(value=value):
                d = self.daemon(args=["--idle-timeout", value], test_clock=True)
                d.wait_connections(0)
                d.advance(ms - 1)
                self.assert_running(d)
                d.advance(1)
                self.assertEqual(d.wait(), 0, d.output())

    def test_exits_after_idle_timeout_on_the_real_clock(self):
        # The system clock's timer, which the test clock replaces: the daemon exits by itself once
        # its last client has gone (when exactly is the test clock tests' business).
        d = self.daemon(args=["--idle-timeout", "200ms"], start=False)
        c = d.start(hold=True)
        c.ping()
        c.close()
        self.assertEqual(d.wait(), 0, d.output())
        self.assertFalse(os.path.exists(d.sock_path))

    def test_open_connection_keeps_it_alive(self):
        d = self.daemon(args=["--idle-timeout", "1s"], start=False, test_clock=True)
        c = self.hold(d.start(hold=True))
        d.advance(3000)  # three timeouts over, with the connection open
        self.assert_running(d)
        c.ping()
        c.close()
        d.wait_connections(0)
        d.advance(1000)
        self.assertEqual(d.wait(), 0, d.output())

    def test_zero_means_never(self):
        d = self.daemon(args=["--idle-timeout", "0"], test_clock=True)
        d.wait_connections(0)
        d.advance(365 * 24 * 3600 * 1000)  # a year without a client
        self.assert_running(d)
        self.client(d).ping()


if __name__ == "__main__":
    unittest.main()
