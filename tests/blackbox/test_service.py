# photond under a service manager: socket activation through systemd-socket-activate (the real
# systemd tool), readiness, watchdog and stopping over a notify socket, the daemon's own checks on
# an inherited socket, the packaged units (systemd-analyze verify), and `photonctl service`.
import json
import os
import shutil
import socket
import stat
import subprocess
import unittest

from harness import PHOTOND, TIMEOUT, BlackboxTest, ctl, wait_until

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNITS = os.path.join(REPO, "packaging", "systemd")
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
ANALYZE = shutil.which("systemd-analyze")


class SocketActivationTest(BlackboxTest):
    def setUp(self):
        if SOCKET_ACTIVATE is None:
            self.skipTest("systemd-socket-activate is missing (scripts/install-deps installs systemd)")
        self.dir = self.make_dir()
        os.makedirs(os.path.join(self.dir, "daemons"), mode=0o700)

    def activated(self, name="t", args=(), listen=None, env=None, mode=0o600, check_exit=True):
        """systemd-socket-activate listening on NAME's socket (or `listen`), not yet connected.

        It makes the socket 0644 whatever the umask and has no SocketMode=: `mode` stands in for it."""
        path = listen or os.path.join(self.dir, "daemons", f"{name}.sock")
        # systemd-socket-activate passes no environment but what -E names, as systemd would.
        passed = [arg for variable in ["PHOTON_DIR", *(env or {})] for arg in ("-E", variable)]
        d = self.daemon(name=name, photon_dir=self.dir, args=args, env=env, start=False, check_exit=check_exit,
                        program=[SOCKET_ACTIVATE, "-l", path, *passed, PHOTOND, "serve"])
        d.spawn()
        wait_until(lambda: os.path.exists(path), message="systemd-socket-activate to listen")
        if mode is not None:
            os.chmod(path, mode)
        return d

    def test_the_first_connect_starts_the_daemon(self):
        d = self.activated()
        self.assertFalse(os.path.exists(d.pid_path), "nothing runs before a client connects")
        r = ctl(self.dir, "ping", "t")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("pong from t"), r.stdout)
        with open(d.pid_path) as f:
            self.assertEqual(int(f.read()), d.pid, "the daemon is the process systemd started")
        status = json.loads(ctl(self.dir, "--json", "status", "t").stdout)
        self.assertIs(status["socketActivated"], True)
        self.assertEqual(stat.S_IMODE(os.stat(d.sock_path).st_mode), 0o600)
        self.assertEqual(d.stop(), 0)
        # The socket is systemd's: the daemon leaves it for the next start.
        self.assertTrue(stat.S_ISSOCK(os.lstat(d.sock_path).st_mode))
        self.assertFalse(os.path.exists(d.pid_path))

    def test_idle_timeout_exits_and_leaves_the_socket(self):
        d = self.activated(args=["--idle-timeout", "10ms"])
        self.assertEqual(ctl(self.dir, "ping", "t").returncode, 0)
        self.assertEqual(d.wait(), 0)
        self.assertTrue(stat.S_ISSOCK(os.lstat(d.sock_path).st_mode))
        self.assertFalse(os.path.exists(d.pid_path))
        with open(d.log_path) as f:
            log = f.read()
        self.assertIn("socket from systemd", log)
        self.assertIn("shutting down", log)

    def test_a_socket_not_0600_is_refused(self):
        d = self.activated(mode=0o640, check_exit=False)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(d.sock_path)  # queued in the backlog; the daemon starts, checks, and refuses
        self.assertEqual(d.wait(), 1)
        self.assertIn("has mode 0640; the photon's socket must be 0600 (SocketMode=0600)", d.output())
        self.assertFalse(os.path.exists(d.pid_path))

    def test_a_socket_on_another_path_is_refused(self):
        d = self.activated(listen=os.path.join(self.dir, "daemons", "other.sock"), check_exit=False)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(os.path.join(self.dir, "daemons", "other.sock"))
        self.assertEqual(d.wait(), 1)
        self.assertIn("is not a listening Unix stream socket on " + d.sock_path, d.output())

    def test_one_daemon_per_name_holds(self):
        d = self.activated()
        self.assertEqual(ctl(self.dir, "ping", "t").returncode, 0)
        second = subprocess.run([PHOTOND, "serve", "t"], env={**os.environ, "PHOTON_DIR": self.dir},
                                capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(second.returncode, 1)
        self.assertIn(f'photon "t" is already running (pid {d.pid})', second.stderr)
        self.assertEqual(ctl(self.dir, "ping", "t").returncode, 0, "the first one still serves")

    def test_readiness_watchdog_and_stopping_are_notified(self):
        notify_path = os.path.join(self.dir, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(notify_path)
            notify.settimeout(TIMEOUT)
            manifest = os.path.join(self.dir, "photon.toml")
            with open(manifest, "w") as f:
                f.write('[methods.env]\ncommand = "env"\n')
            d = self.activated(args=["--manifest", manifest],
                               env={"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "200000"})
            self.assertEqual(ctl(self.dir, "ping", "t").returncode, 0)
            ready = notify.recv(4096).decode()
            self.assertIn("READY=1", ready.split("\n"))
            self.assertIn(f"MAINPID={d.pid}", ready.split("\n"))
            self.assertIn('STATUS=serving "t"', ready)
            self.assertEqual(notify.recv(4096), b"WATCHDOG=1")
            self.assertEqual(notify.recv(4096), b"WATCHDOG=1", "keep-alives repeat")
            # A method's child sees none of the service manager's variables.
            env = ctl(self.dir, "call", "t", "env")
            self.assertEqual(env.returncode, 0, env.stderr)
            for variable in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID"):
                self.assertNotIn(variable + "=", env.stdout)
            self.assertEqual(d.stop(), 0)
            while (message := notify.recv(4096)) == b"WATCHDOG=1":
                pass
            self.assertEqual(message, b"STOPPING=1")


class UnitFilesTest(BlackboxTest):
    def verify(self, directory):
        """systemd-analyze verify on every unit file in `directory`; returns the CompletedProcess."""
        files = sorted(os.path.join(directory, name) for name in os.listdir(directory)
                       if name.endswith((".service", ".socket")))
        # --man=no: the man pages are installed by the package, not in a build tree.
        return subprocess.run([ANALYZE, "verify", "--man=no", *files], capture_output=True, text=True,
                              timeout=TIMEOUT * 3, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})

    def setUp(self):
        if ANALYZE is None:
            self.skipTest("systemd-analyze is missing (scripts/install-deps installs systemd)")
        self.dir = self.make_dir()

    def instance_of(self, source, target_dir, name="t"):
        """The packaged template `source` as instance NAME, naming the photond under test."""
        with open(source) as f:
            text = f.read().replace("/usr/bin/photond", PHOTOND)
        base = os.path.basename(source).replace("@.", f"@{name}.")
        with open(os.path.join(target_dir, base), "w") as f:
            f.write(text)

    def test_packaged_units_verify(self):
        for unit in ("photond@.service", "photond@.socket"):
            self.instance_of(os.path.join(UNITS, unit), self.dir)
        r = self.verify(self.dir)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "", "no warnings")

    def test_packaged_service_is_notify_with_a_watchdog(self):
        with open(os.path.join(UNITS, "photond@.service")) as f:
            service = f.read()
        for line in ("Type=notify", "WatchdogSec=30s", "Requires=photond@%i.socket",
                     "ExecStart=/usr/bin/photond serve %i --idle-timeout 10m"):
            self.assertIn(line + "\n", service)
        with open(os.path.join(UNITS, "photond@.socket")) as f:
            sock = f.read()
        for line in ("ListenStream=%h/.photon/daemons/%i.sock", "SocketMode=0600", "DirectoryMode=0700"):
            self.assertIn(line + "\n", sock)


class ServiceCommandTest(BlackboxTest):
    def setUp(self):
        self.dir = self.make_dir()
        self.config = os.path.join(self.dir, "config")
        self.units = os.path.join(self.config, "systemd", "user")
        self.manifest = os.path.join(self.dir, "photon.toml")
        with open(self.manifest, "w") as f:
            f.write('[methods.hi]\ncommand = "echo hi"\n')

    def ctl(self, *args):
        return ctl(self.dir, *args, env={"XDG_CONFIG_HOME": self.config})

    def read(self, *parts):
        with open(os.path.join(self.units, *parts)) as f:
            return f.read()

    def test_install_writes_the_units_and_says_what_to_run(self):
        r = self.ctl("service", "install", "kb", "--manifest", self.manifest, "--idle-timeout", "5m")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("  systemctl --user daemon-reload\n", r.stdout)
        self.assertIn("  systemctl --user enable --now photond@kb.socket\n", r.stdout)
        photonctl_dir = os.path.dirname(os.path.realpath(PHOTOND))
        service = self.read("photond@.service")
        self.assertIn(f"ExecStart={os.path.join(photonctl_dir, 'photond')} serve %i --idle-timeout 10m\n", service)
        with open(os.path.join(UNITS, "photond@.socket")) as f:
            self.assertEqual(self.read("photond@.socket"), f.read())
        drop_in = self.read("photond@kb.service.d", "photonctl.conf")
        self.assertIn(f"Environment=PHOTON_DIR={self.dir}\n", drop_in)
        self.assertIn("ExecStart=\n", drop_in)
        self.assertIn(f"serve %i --manifest {self.manifest} --idle-timeout 5m\n", drop_in)
        sock = self.read("photond@kb.socket.d", "photonctl.conf")
        self.assertIn(f"ListenStream=\nListenStream={self.dir}/daemons/kb.sock\n", sock)
        # Installing again changes nothing and succeeds.
        self.assertEqual(self.ctl("service", "install", "kb", "--manifest", self.manifest,
                                  "--idle-timeout", "5m").returncode, 0)

    def test_installed_units_verify(self):
        if ANALYZE is None:
            self.skipTest("systemd-analyze is missing")
        self.assertEqual(self.ctl("service", "install", "kb", "--manifest", self.manifest).returncode, 0)
        runtime = os.path.join(self.dir, "runtime")
        os.mkdir(runtime, 0o700)
        # The user manager's view: units found in the directory install wrote, drop-ins included
        # (a wrong ExecStart= in the drop-in fails here: verify checks the program exists).
        r = subprocess.run([ANALYZE, "--user", "verify", "--man=no", "photond@kb.service", "photond@kb.socket"],
                           capture_output=True, text=True, timeout=TIMEOUT * 3,
                           env={**os.environ, "SYSTEMD_UNIT_PATH": self.units + ":", "XDG_RUNTIME_DIR": runtime,
                                "XDG_CONFIG_HOME": self.config, "SYSTEMD_LOG_LEVEL": "warning"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "", "no warnings")

    def test_uninstall_removes_what_install_wrote(self):
        self.assertEqual(self.ctl("service", "install", "kb").returncode, 0)
        self.assertEqual(self.ctl("service", "install", "other").returncode, 0)
        r = self.ctl("service", "uninstall", "kb")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("systemctl --user daemon-reload", r.stdout)
        self.assertEqual(sorted(os.listdir(self.units)),
                         ["photond@.service", "photond@.socket", "photond@other.service.d",
                          "photond@other.socket.d"], "the templates stay for the other photon")
        self.assertEqual(self.ctl("service", "uninstall", "other").returncode, 0)
        self.assertEqual(os.listdir(self.units), [])
        r = self.ctl("service", "uninstall", "kb")
        self.assertEqual(r.returncode, 1)
        self.assertIn("the units of kb are not installed", r.stderr)

    def test_uninstall_refuses_an_enabled_socket(self):
        self.assertEqual(self.ctl("service", "install", "kb").returncode, 0)
        wants = os.path.join(self.units, "sockets.target.wants")
        os.makedirs(wants)
        os.symlink(os.path.join(self.units, "photond@.socket"), os.path.join(wants, "photond@kb.socket"))
        r = self.ctl("service", "uninstall", "kb")
        self.assertEqual(r.returncode, 1)
        self.assertIn("photond@kb.socket is enabled: run `systemctl --user disable --now photond@kb.socket "
                      "photond@kb.service` first", r.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.units, "photond@kb.service.d", "photonctl.conf")))

    def test_usage_errors_exit_2(self):
        for args in (("service", "install", "bad/name"), ("service", "install", "kb", "--manifest", "/nonexistent"),
                     ("service", "install", "kb", "--idle-timeout", "soon"), ("service",), ("service", "restart", "kb")):
            with self.subTest(args=args):
                r = self.ctl(*args)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(self.units))


if __name__ == "__main__":
    unittest.main()
