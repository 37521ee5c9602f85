# The model test's side of the socket: connections that sort what arrives by id, daemons and a Redis to run them.
"""Every read has a deadline (BLACKBOX_TIMEOUT, as the black-box tests), so a daemon that stops
answering fails the test instead of hanging it; nothing here sleeps for time to pass."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "blackbox"))

from harness import PHOTOND, TIMEOUT, Daemon, RedisServer, make_tmpdir, wait_until  # noqa: E402



class Closed(Exception):
    """The daemon closed the connection."""


class Conn:
    """One client connection. Lines are filed as they arrive: channel messages in `inbox` (in order),
    every other line in `replies` by id, so a reply that comes late (a lock waiter's) is kept until
    asked for."""

    def __init__(self, path, marker_channel=None, aside=()):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.buf = bytearray()
        self.inbox = []  # channel_message objects, in arrival order (markers excluded)
        self.markers = []  # messages on the marker channel
        self.replies = {}  # id -> reply object
        self.marker_channel = marker_channel
        self.aside = set(aside)  # channels whose messages go to `set_aside` (job events)
        self.set_aside = []
        self.next_id = 0
        self.eof = False

    def new_id(self, prefix="r"):
        self.next_id += 1
        return f"{prefix}{self.next_id}"

    def send(self, obj):
        self.sock.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def _pump(self, deadline):
        """Reads and files one line; raises TimeoutError at the deadline, Closed at end of input."""
        while True:
            index = self.buf.find(b"\n")
            if index >= 0:
                line = bytes(self.buf[:index])
                del self.buf[: index + 1]
                self._file(line)
                return
            if self.eof:
                raise Closed("connection closed by the daemon")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no line from the daemon before the deadline")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                raise TimeoutError("no line from the daemon before the deadline") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk

    def _file(self, line):
        obj = json.loads(line.decode("utf-8"))
        if not isinstance(obj, dict):
            raise AssertionError(f"the daemon wrote a line that is not an object: {line!r}")
        if obj.get("type") == "channel_message":
            if obj.get("channel") == self.marker_channel:
                self.markers.append(obj)
            elif obj.get("channel") in self.aside:
                self.set_aside.append(obj)
            else:
                self.inbox.append(obj)
            return
        ident = obj.get("id")
        if ident in self.replies:
            raise AssertionError(f"a second line with id {ident!r}: {obj!r} after {self.replies[ident]!r}")
        self.replies[ident] = obj

    def wait_reply(self, ident, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while ident not in self.replies:
            self._pump(deadline)
        return self.replies.pop(ident)

    def request(self, obj):
        obj = dict(obj)
        obj.setdefault("id", self.new_id())
        self.send(obj)
        return self.wait_reply(obj["id"])

    def sync(self):
        """Everything the daemon queued to this connection before now has arrived once this returns:
        a ping is answered after every line queued before it."""
        ident = self.new_id("sync")
        self.send({"type": "ping", "id": ident})
        reply = self.wait_reply(ident)
        if reply != {"type": "pong", "id": ident}:
            raise AssertionError(f"bad pong: {reply!r}")

    def wait_for(self, predicate, timeout=TIMEOUT):
        """Reads until predicate(self) holds."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            self._pump(deadline)

    def wait_marker(self, nonce, timeout=TIMEOUT):
        """Reads until the marker message `nonce` arrives (messages published before it by the same
        publisher are in `inbox` by then)."""
        deadline = time.monotonic() + timeout
        while not any(m.get("message") == nonce for m in self.markers):
            self._pump(deadline)
        self.markers = [m for m in self.markers if m.get("message") != nonce]

    def close_graceful(self):
        """Shuts down the sending side, reads until the daemon closes (it has then dropped the
        connection: its waiters and bound locks), and closes."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + TIMEOUT
            while True:
                self._pump(deadline)
        except Closed:
            pass
        finally:
            self.sock.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Redis(RedisServer):
    """A redis-server without persistence on a Unix socket in a directory of its own, started now
    and removed with its directory by stop()."""

    def __init__(self):
        super().__init__(make_tmpdir())
        self.start()

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def has_test_clock():
    """True when this photond was built with PHOTON_TEST_CLOCK (MODEL_TEST_CLOCK=0/1 overrides)."""
    forced = os.environ.get("MODEL_TEST_CLOCK")
    if forced in ("0", "1"):
        return forced == "1"
    help_text = subprocess.run([PHOTOND, "serve", "--help"], capture_output=True, text=True,
                               timeout=TIMEOUT, stdin=subprocess.DEVNULL).stdout
    return "--test-clock" in help_text


def start_daemon(name, args, manifest=None):
    """A photond serve NAME in a fresh PHOTON_DIR (with `manifest`'s text as its --manifest),
    answering; the caller stops it."""
    photon_dir = make_tmpdir()
    if manifest is not None:
        path = os.path.join(photon_dir, "photon.toml")
        with open(path, "w") as f:
            f.write(manifest)
        args = [*args, "--manifest", path]
    d = Daemon(photon_dir, name, args)
    d.start()
    return d


def restart_daemon(d, args):
    """Stops `d` (SIGTERM) and starts photond serve again in the same PHOTON_DIR with `args` (and
    the same manifest); returns (exit code of the old one, its output if not 0, the new daemon)."""
    code = d.stop()
    output = d.output() if code not in (None, 0) else None
    manifest = os.path.join(d.photon_dir, "photon.toml")
    if os.path.exists(manifest):
        args = [*args, "--manifest", manifest]
    new = Daemon(d.photon_dir, d.name, args)
    new.start()
    return code, output, new


def finish_daemon(d):
    """Stops the daemon (SIGTERM); returns its output when it did not exit 0 (crash, ASan report)."""
    code = d.stop()
    output = d.output() if code not in (None, 0) else None
    shutil.rmtree(d.photon_dir, ignore_errors=True)
    return code, output
