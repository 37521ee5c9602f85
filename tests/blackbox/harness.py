# Shared fixtures for the black-box tests: a real photond in a temporary PHOTON_DIR, and a line client.
"""Every wait here has a deadline, so a broken daemon fails a test instead of hanging it.

PHOTOND and PHOTONCTL name the binaries (ctest sets them); BLACKBOX_TIMEOUT scales the deadlines.
"""

import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PHOTOND = os.environ.get("PHOTOND", os.path.join(_REPO, "build", "asan", "photond"))
PHOTONCTL = os.environ.get("PHOTONCTL", os.path.join(_REPO, "build", "asan", "photonctl"))
# The kanban example: a C++ photon whose program is its own daemon.
KANBAN = os.environ.get("KANBAN", os.path.join(_REPO, "build", "asan", "examples", "kanban"))

# Generous: the suite runs under ASan on a loaded 2-core machine.
TIMEOUT = float(os.environ.get("BLACKBOX_TIMEOUT", "20"))


class ConnectionClosed(Exception):
    """The daemon closed the connection (EOF or reset)."""


def wait_until(predicate, timeout=TIMEOUT, interval=0.02, message="condition"):
    """Polls predicate until it returns a truthy value, which is returned; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ConnectionClosed, TimeoutError, ValueError) as error:
            last_error = error
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {message}{detail}")
        time.sleep(interval)


def encode(obj):
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class Client:
    """A line-oriented connection to the daemon. Every read has a deadline.

    call() sends a request and returns its reply; channel_message lines that arrive meanwhile are kept
    for next_message(), so a subscriber can also make requests.
    """

    def __init__(self, path, timeout=TIMEOUT, connect=True):
        self.path = path
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.buf = bytearray()
        self.pending = collections.deque()
        self.eof = False
        if connect:
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(path)
            except OSError:
                self.sock.close()
                raise

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, obj):
        self.send_raw(encode(obj))

    def send_raw(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def _fill(self, deadline):
        if self.eof:
            raise ConnectionClosed("connection closed by daemon")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from daemon before the deadline")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            raise TimeoutError("no data from daemon before the deadline") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise ConnectionClosed("connection closed by daemon")
        self.buf += chunk

    def read_line(self, timeout=None):
        """Returns the next line without its newline; raises TimeoutError or ConnectionClosed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            index = self.buf.find(b"\n")
            if index >= 0:
                line = bytes(self.buf[:index])
                del self.buf[: index + 1]
                return line
            self._fill(deadline)

    def read_json(self, timeout=None):
        """Returns the next line parsed; the daemon must only ever write JSON objects, one per line."""
        line = self.read_line(timeout)
        obj = json.loads(line.decode("utf-8"))
        if not isinstance(obj, dict):
            raise AssertionError(f"daemon wrote a non-object line: {line!r}")
        return obj

    def recv(self, timeout=None):
        """Returns the next object: a kept channel_message first, else the next line."""
        if self.pending:
            return self.pending.popleft()
        return self.read_json(timeout)

    def reply(self, timeout=None):
        """Returns the next line that is not a channel_message (those are kept for next_message)."""
        while True:
            obj = self.read_json(timeout)
            if obj.get("type") == "channel_message":
                self.pending.append(obj)
            else:
                return obj

    def call(self, obj, timeout=None):
        self.send(obj)
        return self.reply(timeout)

    def next_message(self, timeout=None):
        """Returns the next channel_message; any other line here is a protocol violation."""
        obj = self.recv(timeout)
        if obj.get("type") != "channel_message":
            raise AssertionError(f"expected a channel_message, got {obj!r}")
        return obj

    def wait_closed(self, timeout=None):
        """Reads until EOF and returns the lines read meanwhile; raises TimeoutError if never closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        lines = []
        while True:
            try:
                lines.append(self.read_line(max(0.0, deadline - time.monotonic())))
            except ConnectionClosed:
                if self.buf:
                    lines.append(bytes(self.buf))
                    self.buf.clear()
                return lines

    def assert_silent(self, seconds):
        """Asserts nothing arrives for `seconds` (only for checking an absence)."""
        try:
            line = self.read_line(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"expected silence, got {line!r}")

    def status(self):
        reply = self.call({"type": "status", "id": "status"})
        if reply.get("type") != "result" or reply.get("success") is not True:
            raise AssertionError(f"status failed: {reply!r}")
        return reply["data"]

    def ping(self, ident="ping"):
        reply = self.call({"type": "ping", "id": ident})
        if reply != {"type": "pong", "id": ident}:
            raise AssertionError(f"bad pong: {reply!r}")

    def subscribe(self, channel, ident=None):
        ident = ident or f"sub:{channel}"
        reply = self.call({"type": "subscribe", "id": ident, "channel": channel})
        expected = {"type": "result", "id": ident, "success": True,
                    "data": {"subscribed": True, "channel": channel}}
        if reply != expected:
            raise AssertionError(f"subscribe {channel!r}: expected {expected!r}, got {reply!r}")
        return reply

    def publish(self, channel, message, ident="pub"):
        reply = self.call({"type": "publish", "id": ident, "channel": channel, "message": message})
        if reply.get("type") != "result" or reply.get("success") is not True:
            raise AssertionError(f"publish {channel!r} failed: {reply!r}")
        return reply


def subscriber_counts(status):
    """(channel, subscribers) of each entry of a status reply's `channels`."""
    return [(entry["channel"], entry["subscribers"]) for entry in status["channels"]]


def make_tmpdir():
    # Short on purpose: the socket path must stay under 107 bytes even with a 64-byte name.
    return tempfile.mkdtemp(prefix="pb", dir="/tmp")


def daemon_env(photon_dir, extra=None):
    env = dict(os.environ)
    env["PHOTON_DIR"] = photon_dir
    if extra:
        env.update(extra)
    return env


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def try_ping(path, timeout=2.0):
    try:
        with Client(path, timeout=timeout) as c:
            return c.call({"type": "ping", "id": "probe"}) == {"type": "pong", "id": "probe"}
    except (OSError, ConnectionClosed, TimeoutError, ValueError):
        return False


class Daemon:
    """One `photond serve NAME` child process in photon_dir. stop() sends SIGTERM and returns the exit code."""

    def __init__(self, photon_dir, name="t", args=(), env=None, preexec_fn=None, program=None,
                 test_clock=None):
        """program: argv that runs a daemon with NAME and args appended (default: photond serve).

        test_clock: True runs the daemon on a clock that only advance() and set_wall() move, from
        the real time; an RFC 3339 string starts its wall clock there (docs/testing.md).
        """
        self.program = list(program) if program else [PHOTOND, "serve"]
        self.photon_dir = photon_dir
        self.preexec_fn = preexec_fn
        self.name = name
        self.args = list(args)
        if test_clock:
            self.args.append("--test-clock" if test_clock is True else f"--test-clock={test_clock}")
        self.env = daemon_env(photon_dir, env)
        self._controller = None  # the test clock's connection (see move_clock)
        self._controller_pid = None
        self.proc = None
        self.returncode = None
        # stdout+stderr go beside daemons/, or beside PHOTON_DIR when the daemon is to create it.
        out_dir = photon_dir if os.path.isdir(photon_dir) else os.path.dirname(photon_dir)
        self.out_path = os.path.join(out_dir, f"{name}.out")

    def _clock_controller(self):
        """One connection per daemon process moves its clock. Having sent test_clock, it does not
        count as a client for the idle timeout."""
        if self._controller is None or self._controller_pid != self.proc.pid:
            if self._controller is not None:
                self._controller.close()
            self._controller = Client(self.sock_path)
            self._controller_pid = self.proc.pid
        return self._controller

    def move_clock(self, **fields):
        """Sends one test_clock request and returns its data ({"wallMs", "steadyMs"}). The reply
        comes after the daemon has done what is due at the new time."""
        reply = self._clock_controller().call({"type": "test_clock", "id": "clock", **fields})
        if reply.get("type") != "result":
            raise AssertionError(f"test_clock {fields} failed: {reply}")
        return reply["data"]

    def advance(self, ms):
        """Moves the daemon's steady and wall clocks forward by ms (time passes)."""
        return self.move_clock(advanceMs=int(ms))

    def set_wall(self, when):
        """Sets the daemon's wall clock alone to `when` (RFC 3339): a clock jump, forward or back."""
        return self.move_clock(setWall=when)

    def clock(self):
        """The daemon's test clock now: {"wallMs", "steadyMs"}."""
        return self.move_clock()

    def wait_connections(self, count):
        """Waits until the daemon has seen every other connection but `count` close (the clock's
        own is not counted): what a test does before moving the clock past a timeout that counts
        from a close."""
        self.clock()
        wait_until(lambda: self._clock_controller().status()["connections"] == count + 1,
                   message=f"{count} connection(s) besides the clock's")

    @property
    def sock_path(self):
        return os.path.join(self.photon_dir, "daemons", f"{self.name}.sock")

    @property
    def pid_path(self):
        return os.path.join(self.photon_dir, "daemons", f"{self.name}.pid")

    @property
    def log_path(self):
        return os.path.join(self.photon_dir, "daemons", f"{self.name}.log")

    @property
    def pid(self):
        return self.proc.pid

    def spawn(self):
        """Starts the process without waiting for it to answer."""
        out = open(self.out_path, "ab")
        try:
            self.proc = subprocess.Popen([*self.program, self.name, *self.args], env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=self.preexec_fn)
        finally:
            out.close()
        return self.proc

    def start(self, hold=False, timeout=TIMEOUT * 1.5):
        """Spawns and waits until the socket answers a ping. With hold, returns that connection open."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"photond exited with {self.proc.returncode} during start-up:\n{self.output()}")
            try:
                c = Client(self.sock_path, timeout=5)
                try:
                    if c.call({"type": "ping", "id": "ready"}) == {"type": "pong", "id": "ready"}:
                        if hold:
                            c.timeout = TIMEOUT
                            return c
                        return None
                finally:
                    if not hold:
                        c.close()
            except (OSError, ConnectionClosed, TimeoutError, ValueError):
                pass
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError(f"photond did not answer within {timeout}s:\n{self.output()}")
            time.sleep(0.02)

    def client(self, timeout=TIMEOUT):
        return Client(self.sock_path, timeout=timeout)

    def signal(self, signum):
        self.proc.send_signal(signum)

    def wait(self, timeout=TIMEOUT):
        """Waits for the process to exit and returns its exit code; fails the test at the deadline."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"photond (pid {self.proc.pid}) still running after {timeout}s") from None
        return self.returncode

    def stop(self, timeout=TIMEOUT):
        """SIGTERM, then wait; SIGKILL when it does not exit in time. Returns the exit code."""
        if self._controller is not None:
            self._controller.close()
            self._controller = None
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.returncode = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"photond ignored SIGTERM for {timeout}s")
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)

    def output(self):
        parts = []
        for label, path in (("stdout+stderr", self.out_path), ("log", self.log_path)):
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if len(data) > 64000:
                data = b"...\n" + data[-64000:]
            parts.append(f"--- photond {self.name} {label} ({path}) ---\n{data.decode('utf-8', 'replace')}")
        return "\n".join(parts)


REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """A redis-server without persistence listening on `sock` only; restartable on the same path."""

    def __init__(self, directory, extra=()):
        self.dir = directory
        self.sock = os.path.join(directory, "redis.sock")
        self.proc = None
        self.extra = list(extra)

    def start(self):
        out = open(os.path.join(self.dir, "redis.out"), "ab")
        try:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", "0", "--unixsocket", self.sock, "--unixsocketperm", "700",
                 "--save", "", "--appendonly", "no", "--dir", self.dir, *self.extra],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()
        wait_until(self.answers, message="redis-server answering on its socket")

    def answers(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(self.sock)
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        self.proc = None

    @property
    def url(self):
        return "unix://" + self.sock


def photond_has_test_clock(photond=None):
    """Whether this photond was built with the test clock (PHOTON_TEST_CLOCK: --test-clock)."""
    help_text = subprocess.run([photond or PHOTOND, "serve", "--help"], capture_output=True, text=True,
                               timeout=TIMEOUT, stdin=subprocess.DEVNULL).stdout
    return "--test-clock" in help_text


def ctl(photon_dir, *args, input=None, timeout=TIMEOUT * 2, env=None):
    """Runs photonctl with PHOTON_DIR set; returns the CompletedProcess (text mode)."""
    return subprocess.run([PHOTONCTL, *args], env=daemon_env(photon_dir, env), input=input,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=None if input is not None else subprocess.DEVNULL)


def kill_from_pid_file(pid_path, timeout=TIMEOUT):
    """Stops a daemon we did not spawn (--detach, photonctl start) by its pid file; best effort."""
    try:
        with open(pid_path) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.05)
        if not pid_alive(pid):
            return


class OtherUser:
    """A second local user for the tests that play another user against root's photond.

    create() runs useradd (CI runs as root) and returns the user; remove() runs userdel. The name is
    unique to this process, so concurrent test runs do not share a user.
    """

    def __init__(self):
        self.name = f"photonbb{os.getpid()}"
        self.uid = None
        self.gid = None

    def create(self):
        subprocess.run(["useradd", "--system", "--no-create-home", "--user-group",
                        "--shell", "/usr/sbin/nologin", self.name],
                       check=True, capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        import pwd
        entry = pwd.getpwnam(self.name)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        return self

    def remove(self):
        subprocess.run(["userdel", self.name], capture_output=True, timeout=TIMEOUT,
                       stdin=subprocess.DEVNULL)

    def become(self):
        """For preexec_fn or a forked child: drop to this user for good."""
        os.setgroups([])
        os.setgid(self.gid)
        os.setuid(self.uid)


class BlackboxTest(unittest.TestCase):
    """Gives each test fresh directories and daemons, stops them whatever happens, and prints the
    daemons' output when the test failed. A daemon that exits non-zero on SIGTERM (ASan report,
    crash) fails the test."""

    def run(self, result=None):
        self._captured = []
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            if len(result.failures) + len(result.errors) > before:
                for text in getattr(self, "_captured", []):
                    sys.stderr.write(text + "\n")
                sys.stderr.flush()

    def make_dir(self):
        path = make_tmpdir()
        self.addCleanup(self._remove_dir, path)
        return path

    def _remove_dir(self, path):
        texts = []
        for sub in (path, os.path.join(path, "daemons")):
            try:
                names = sorted(os.listdir(sub))
            except OSError:
                continue
            for name in names:
                if name.endswith((".out", ".log")):
                    try:
                        with open(os.path.join(sub, name), "rb") as f:
                            data = f.read()
                    except OSError:
                        continue
                    if len(data) > 64000:
                        data = b"...\n" + data[-64000:]
                    texts.append(f"--- {os.path.join(sub, name)} ---\n{data.decode('utf-8', 'replace')}")
        self._captured = getattr(self, "_captured", []) + texts
        shutil.rmtree(path, ignore_errors=True)

    def daemon(self, name="t", args=(), photon_dir=None, start=True, check_exit=True, env=None, preexec_fn=None,
               program=None, test_clock=None):
        """A photond serve (or `program`) in its own (or the given) PHOTON_DIR, stopped at the end of the test.

        test_clock: see Daemon."""
        photon_dir = photon_dir or self.make_dir()
        d = Daemon(photon_dir, name, args, env, preexec_fn, program, test_clock)
        self.addCleanup(self._finish_daemon, d, check_exit)
        if start:
            d.start()
        return d

    def _finish_daemon(self, d, check_exit):
        code = d.stop()
        if check_exit and code not in (None, 0) and d.proc is not None:
            raise AssertionError(f"photond {d.name} exited with {code} on SIGTERM:\n{d.output()}")

    def client(self, d, timeout=TIMEOUT):
        c = d.client(timeout)
        self.addCleanup(c.close)
        return c

    def hold(self, c):
        self.addCleanup(c.close)
        return c

    def spawn_photonctl(self, photon_dir, *args, env=None):
        """photonctl in the background (text pipes); killed at the end of the test if still running."""
        p = subprocess.Popen([PHOTONCTL, *args], env=daemon_env(photon_dir, env), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def finish():
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=TIMEOUT)

        self.addCleanup(finish)
        return p


# --- bb-locks helpers (lines_before_pong, assert_nothing_before_pong, unread_by_daemon): an   ---
# --- absence is checked with a marker whose reply proves the daemon has handled everything     ---
# --- before it, and a read by the daemon is waited for as an event, not by letting time pass.  ---


def lines_before_pong(c, ident="marker"):
    """Sends a ping on c and returns every object the daemon wrote to c before the pong (channel
    messages kept by earlier reads first).

    The daemon handles a connection's requests in order on one loop: whatever an earlier request,
    a clock move it replied to, or another connection's acknowledged publish wrote to c is on the
    wire before the pong."""
    c.send({"type": "ping", "id": ident})
    got = list(c.pending)
    c.pending.clear()
    while True:
        obj = c.read_json()
        if obj == {"type": "pong", "id": ident}:
            return got
        got.append(obj)


def assert_nothing_before_pong(c, ident="marker", what="nothing"):
    """Fails unless the daemon wrote nothing to c before the pong of a ping sent now."""
    got = lines_before_pong(c, ident)
    if got:
        raise AssertionError(f"expected {what} before the marker's pong, got {got!r}")


def unread_by_daemon(c):
    """Bytes sent on c that the daemon has not read yet: a Unix stream socket's sent data stays
    charged to the sender (SIOCOUTQ) until the reader has consumed it. Waiting for 0 is waiting
    for the daemon to have read, say, a partial line."""
    import fcntl
    import struct
    import termios

    return struct.unpack("i", fcntl.ioctl(c.sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]


# ---- Helpers of the jobs, broker, webhooks and ui tests: messages_before_pong, epoch_ms,
# rfc3339, advance_to.

def messages_before_pong(client, ident="marker"):
    """Pings on `client` and returns the channel_messages that came before the pong (those an
    earlier call kept first), oldest first, leaving none kept; any other line there fails. It
    covers what the daemon itself sent, e.g. the job events of a clock move whose reply came
    before the ping was sent; not messages that another daemon sends through Redis, which arrive
    when Redis delivers them."""
    got = lines_before_pong(client, ident)
    others = [obj for obj in got if obj.get("type") != "channel_message"]
    if others:
        raise AssertionError(f"expected channel messages, then the pong {ident!r}; got {others!r}")
    return got


def epoch_ms(when):
    """An RFC 3339 date-time ("2026-03-08T01:59:00Z", "...T01:59:00.250+01:00") as epoch
    milliseconds, the unit of the daemon's wallMs and of its times on the wire."""
    import datetime
    moment = datetime.datetime.fromisoformat(when.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{when!r} has no offset")
    return (moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(milliseconds=1)


def rfc3339(ms):
    """Epoch milliseconds as an RFC 3339 UTC date-time with milliseconds, for --test-clock=
    and set_wall."""
    import datetime
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def advance_to(daemon, when):
    """Lets time pass on a test-clock daemon (steady and wall clocks move together) until its wall
    clock reads `when` (epoch ms or RFC 3339); returns the clock's data. Never moves it back."""
    target = epoch_ms(when) if isinstance(when, str) else int(when)
    now = daemon.clock()["wallMs"]
    if target < now:
        raise AssertionError(f"advance_to {target} would move the clock back from {now}")
    return daemon.advance(target - now)
