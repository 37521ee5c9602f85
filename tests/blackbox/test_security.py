# The daemons directory as another user could prepare it (issue 13): photond refuses to run in a
# directory it does not own or others can write, never follows a symlink planted there, and
# photonctl refuses a directory, socket or listener of another user. The tests that play a second
# user create one with useradd and need root (CI runs as root); they skip only when not root.
import os
import signal
import socket
import stat
import subprocess
import unittest

from harness import PHOTONCTL, PHOTOND, TIMEOUT, BlackboxTest, OtherUser, ctl, daemon_env, wait_until

OTHER = None


def setUpModule():
    global OTHER
    if os.geteuid() == 0:
        OTHER = OtherUser().create()


def tearDownModule():
    if OTHER is not None:
        OTHER.remove()


def needs_other_user(test):
    return unittest.skipUnless(os.geteuid() == 0, "needs root to create and play a second user")(test)


def read(path):
    with open(path) as f:
        return f.read()


def serve(photon_dir, name="svc"):
    """photond serve NAME in the foreground; returns the CompletedProcess once it exited (a refusal)
    or raises when it is still running at the deadline (it accepted the directory)."""
    return subprocess.run([PHOTOND, "serve", name], env=daemon_env(photon_dir), capture_output=True,
                          text=True, timeout=TIMEOUT * 2, stdin=subprocess.DEVNULL)


class FakeListener:
    """A process listening on `path` in place of the daemon, as the other user would run it.

    It reports the first line of every connection it accepts over a pipe; lines() connects a
    sentinel last, so everything that connected before it is in the report without waiting."""

    def __init__(self, path, user, bind_as_root=False, chown_socket=False):
        self.path = path
        report_r, report_w = os.pipe()
        ready_r, ready_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                os.close(report_r)
                os.close(ready_r)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                if bind_as_root:
                    s.bind(path)
                    if chown_socket:
                        os.chown(path, user.uid, user.gid)
                    user.become()
                else:
                    user.become()
                    s.bind(path)
                s.listen(16)  # SO_PEERCRED of the listener: the uid in effect now
                os.write(ready_w, b"r")
                while True:
                    conn, _ = s.accept()
                    conn.settimeout(TIMEOUT)
                    data = b""
                    while not data.endswith(b"\n"):
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    os.write(report_w, data.split(b"\n")[0] + b"\n")
                    conn.close()
                    if data.startswith(b"sentinel"):
                        code = 0
                        break
            except BaseException as error:
                os.write(report_w, f"listener failed: {error!r}\n".encode())
            finally:
                os._exit(code)
        os.close(report_w)
        os.close(ready_w)
        self.report = os.fdopen(report_r, "rb")
        with os.fdopen(ready_r, "rb") as ready:
            if ready.read(1) != b"r":
                raise AssertionError("the fake listener did not start")

    def lines(self):
        """Connects the sentinel, waits for the listener to exit; returns the lines it received before."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(TIMEOUT)
            s.connect(self.path)
            s.sendall(b"sentinel\n")
            received = self.report.read().decode().splitlines()
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        if received[-1:] != ["sentinel"] or os.waitstatus_to_exitcode(status) != 0:
            raise AssertionError(f"fake listener: {received!r}, status {status}")
        return received[:-1]

    def stop(self):
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None
        self.report.close()


class AnotherUsersDirectoryTest(BlackboxTest):
    """The reproduction of issue 13, item 3, with a real second user."""

    def prepare(self):
        """PHOTON_DIR (root's, reachable by all) with a daemons/ the other user owns, mode 0777, and
        her symlinks at svc.tokens.tmp and svc.log pointing at root-only files."""
        photon_dir = self.make_dir()
        os.chmod(photon_dir, 0o755)
        daemons = os.path.join(photon_dir, "daemons")
        os.mkdir(daemons)
        os.chown(daemons, OTHER.uid, OTHER.gid)
        os.chmod(daemons, 0o777)
        victims = {}
        for planted, victim, text in (("svc.tokens.tmp", "root-only", "root secret\n"),
                                      ("svc.log", "root-log", "root's log\n")):
            path = os.path.join(photon_dir, victim)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o600)
            os.symlink(path, os.path.join(daemons, planted))
            os.lchown(os.path.join(daemons, planted), OTHER.uid, OTHER.gid)
            victims[path] = text
        return photon_dir, daemons, victims

    @needs_other_user
    def test_root_photond_refuses_the_directory_and_touches_nothing(self):
        photon_dir, daemons, victims = self.prepare()
        before = sorted(os.listdir(daemons))
        r = serve(photon_dir)
        self.assertEqual(r.returncode, 1, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertIn("refusing to run", r.stderr)
        self.assertIn(daemons, r.stderr)
        self.assertIn(f"owned by uid {OTHER.uid} with mode 0777", r.stderr)
        self.assertIn("must be owned by uid 0", r.stderr)
        for path, text in victims.items():
            self.assertEqual(read(path), text, path)
        st = os.stat(daemons)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (OTHER.uid, 0o777), "left as found")
        self.assertEqual(sorted(os.listdir(daemons)), before, "nothing created in it")

    @needs_other_user
    def test_root_photonctl_refuses_her_listener_in_her_directory(self):
        photon_dir, daemons, _ = self.prepare()
        listener = FakeListener(os.path.join(daemons, "svc.sock"), OTHER)
        self.addCleanup(listener.stop)
        r = ctl(photon_dir, "lock", "svc", "L", "--", "true")
        self.assertEqual(r.returncode, 1, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertIn("refusing to connect", r.stderr)
        self.assertIn(f"{daemons} is owned by uid {OTHER.uid} with mode 0777", r.stderr)
        self.assertEqual(listener.lines(), [], "photonctl connected to her listener")

    @needs_other_user
    def test_root_photonctl_refuses_a_socket_she_owns(self):
        photon_dir = self.make_dir()
        daemons = os.path.join(photon_dir, "daemons")
        os.mkdir(daemons, 0o700)
        sock = os.path.join(daemons, "svc.sock")
        listener = FakeListener(sock, OTHER, bind_as_root=True, chown_socket=True)
        self.addCleanup(listener.stop)
        r = ctl(photon_dir, "ping", "svc")
        self.assertEqual(r.returncode, 1, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertIn(f"refusing to connect: {sock} is owned by uid {OTHER.uid}", r.stderr)
        self.assertEqual(listener.lines(), [])

    @needs_other_user
    def test_root_photonctl_refuses_a_listener_running_as_her(self):
        photon_dir = self.make_dir()
        daemons = os.path.join(photon_dir, "daemons")
        os.mkdir(daemons, 0o700)
        sock = os.path.join(daemons, "svc.sock")
        # Root's socket file, her process listening on it: only SO_PEERCRED tells.
        listener = FakeListener(sock, OTHER, bind_as_root=True)
        self.addCleanup(listener.stop)
        self.assertEqual(os.stat(sock).st_uid, 0)
        r = ctl(photon_dir, "ping", "svc")
        self.assertEqual(r.returncode, 1, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertIn(f"refusing to connect: the process listening on {sock} runs as uid {OTHER.uid}",
                      r.stderr)
        # It connected (that is how the uid is learnt) but sent nothing.
        self.assertEqual(listener.lines(), [""])

    @needs_other_user
    def test_her_photonctl_trusts_roots_files_and_meets_the_daemons_peer_check(self):
        # Her photonctl trusts a directory and socket of root's (root can read everything anyway):
        # it gets as far as the daemon, whose peer check refuses her.
        d = self.daemon(name="svc")
        os.chmod(d.photon_dir, 0o755)
        os.chmod(os.path.dirname(d.sock_path), 0o755)
        os.chmod(d.sock_path, 0o666)
        r = subprocess.run([PHOTONCTL, "ping", "svc"], env=d.env, capture_output=True,
                           text=True, timeout=TIMEOUT * 2, stdin=subprocess.DEVNULL,
                           preexec_fn=OTHER.become)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("refusing to connect", r.stderr)
        # (What she reads depends on whether her request was written before the daemon closed.)
        wait_until(lambda: f"refused a connection from uid {OTHER.uid} " in read(d.log_path),
                   message="the daemon's refusal in its log")


class OwnDirectoryTest(BlackboxTest):
    """What holds for any user: a directory of one's own that others can write, or with a planted
    symlink, is refused too."""

    def test_group_writable_directory_is_refused(self):
        photon_dir = self.make_dir()
        daemons = os.path.join(photon_dir, "daemons")
        os.mkdir(daemons)
        os.chmod(daemons, 0o770)
        r = serve(photon_dir)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"refusing to run: {daemons} is owned by uid {os.geteuid()} with mode 0770", r.stderr)
        self.assertEqual(os.listdir(daemons), [])

    def test_symlink_in_place_of_the_directory_is_refused(self):
        photon_dir = self.make_dir()
        target = os.path.join(photon_dir, "elsewhere")
        os.mkdir(target, 0o700)
        os.symlink(target, os.path.join(photon_dir, "daemons"))
        r = serve(photon_dir)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("daemons is a symbolic link", r.stderr)
        self.assertEqual(os.listdir(target), [])

    def test_planted_log_symlink_is_not_followed(self):
        photon_dir = self.make_dir()
        daemons = os.path.join(photon_dir, "daemons")
        os.mkdir(daemons, 0o700)
        victim = os.path.join(photon_dir, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        os.symlink(victim, os.path.join(daemons, "svc.log"))
        r = serve(photon_dir)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("svc.log is a symbolic link", r.stderr)
        self.assertEqual(read(victim), "precious\n")
        self.assertFalse(os.path.exists(os.path.join(daemons, "svc.sock")))
        self.assertFalse(os.path.exists(os.path.join(daemons, "svc.pid")), "pid file removed again")

    def test_planted_token_temporary_is_replaced_not_followed(self):
        d = self.daemon(name="svc", start=False)
        daemons = os.path.join(d.photon_dir, "daemons")
        os.mkdir(daemons, 0o700)
        victim = os.path.join(d.photon_dir, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        os.symlink(victim, os.path.join(daemons, "svc.tokens.tmp"))
        d.start()
        c = self.client(d)
        reply = c.call({"type": "lock", "id": "l", "sessionId": "s", "lockName": "L"})
        self.assertTrue(reply["data"]["acquired"], reply)
        self.assertEqual(read(victim), "precious\n")
        self.assertFalse(os.path.islink(os.path.join(daemons, "svc.tokens")))
        # The mark reserves a block of tokens ahead: at least the one issued.
        self.assertGreaterEqual(int(read(os.path.join(daemons, "svc.tokens"))), reply["data"]["token"])

    def test_photonctl_refuses_a_directory_others_can_write(self):
        d = self.daemon(name="svc")
        daemons = os.path.dirname(d.sock_path)
        self.assertEqual(ctl(d.photon_dir, "ping", "svc").returncode, 0)
        os.chmod(daemons, 0o777)
        r = ctl(d.photon_dir, "ping", "svc")
        self.assertEqual(r.returncode, 1, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertIn(f"refusing to connect: {daemons} is owned by uid {os.geteuid()} with mode 0777",
                      r.stderr)
        os.chmod(daemons, 0o700)
        self.assertEqual(ctl(d.photon_dir, "ping", "svc").returncode, 0)


if __name__ == "__main__":
    unittest.main()
