#!/usr/bin/python3
# The soak and chaos run: mixed traffic from many processes against real daemons while faults are injected.
"""Three daemons of one exec photon ("soak"): S alone (SQLite jobs, local locks, a browser listener
and a webhook endpoint, a lowered RLIMIT_NOFILE), and P1 and P2 sharing one redis-server on a
temporary Unix socket. Worker processes publish (0 B to 1 MiB, exact and wildcard subscriptions),
subscribe, contend for locks, call a method that prompts, send signed webhooks, and follow channels
as a browser does (Server-Sent Events with Last-Event-ID, a WebSocket). Cron jobs fire every second
on S and on the pair. Meanwhile a chaos schedule SIGKILLs and restarts S and P2, restarts Redis
under the pair, exhausts S's descriptors, and stalls a subscriber.

Invariants are checked as events happen; each violation is printed at once. The run ends with a
report (checks and violations per invariant, faults injected) and exits 1 on any violation, 0
otherwise. docs/testing.md ("Soak and chaos") names the invariants, the faults and their excuses.

Environment: PHOTOND (default build/default/photond), SOAK_SECONDS (600),
SOAK_SEED (random), SOAK_DIR (kept when given; else a temporary directory, kept only on failure),
SOAK_SCHEDULE ("kill-S:0,redis-restart:2": only these faults, in turn) and SOAK_ROUND (seconds
between faults), SOAK_INJECT (comma-separated checker self-tests, each planting one fake violation:
dup, gap, order, exclusion, lock, token, reentry, jobdup, jobgap, catchup, fd, rss, unanswered,
prompt, webhook, sse, silentcut, linelimit, availability)."""

import collections
import fcntl
import hashlib
import hmac
import http.client
import json
import multiprocessing as mp
import os
import queue
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

try:
    import websocket  # Debian's python3-websocket (websocket-client)
except ImportError:  # pragma: no cover - reported as a setup error below
    websocket = None

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


PHOTOND = os.environ.get("PHOTOND") or os.path.join(_REPO, "build", "default", "photond")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
SEED = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(1 << 31))
INJECT = {kind for kind in os.environ.get("SOAK_INJECT", "").split(",") if kind}

NAME = "soak"
# Every wait has a deadline this long (a daemon that never answers fails the run, never hangs it).
DEADLINE = float(os.environ.get("SOAK_DEADLINE", "60"))
# S's descriptor limit: low, so that the chaos can take every descriptor with a few hundred connections.
S_NOFILE = 256
# Output bounds of every daemon: a stalled subscriber crosses them within a long stall.
SOFT_LIMIT = 2 << 20
SOFT_SECONDS = 3
HARD_LIMIT = 8 << 20
# --max-line-bytes (its default): a publish request of exactly this many bytes (newline apart) is
# served; one byte more gets an error and the connection is closed (docs/protocol.md).
LINE_LIMIT = 1 << 20
MAX_PAD = LINE_LIMIT - 512
# Resource bounds between rounds, per daemon process (against its first sample).
FD_SLACK = 32      # descriptors beyond its connections
RSS_SLACK = 96 << 20  # bytes
WEBHOOK_SECRET = "soak-webhook-secret"
# An effect may trail its fault a little (a reply in flight, a slot computed before the kill).
MARGIN = 2.0

INVARIANTS = [
    ("delivery", "no message lost, duplicated or reordered for a subscriber that kept reading"),
    ("exclusion", "a publisher never receives its own message"),
    ("sse-resume", "an event stream resumed with Last-Event-ID misses and repeats nothing (or is told)"),
    ("slow-consumer", "a stalled subscriber is either served in full or closed and counted"),
    ("lock-exclusion", "a lock is never held by two clients at once"),
    ("lock-tokens", "fencing tokens increase"),
    ("lock-reentry", "re-locking extends with the same token"),
    ("methods", "a prompting method gets its caller's answer and returns it"),
    ("webhooks", "a signed webhook runs its method; a bad signature is refused with 401"),
    ("job-slots", "every job slot runs once; no slot skipped while the daemon and Redis were up"),
    ("job-catch-up", "slots missed while S was down give at most one run, and one when any was missed"),
    ("answered", "every request is answered, in request order, or its connection closed by an injected fault"),
    ("line-limit", "a line over 1 MiB gets the documented error, then the connection closes"),
    ("resources", f"descriptors (beyond connections) grow < {FD_SLACK}, RSS < {RSS_SLACK >> 20} MiB"),
    ("availability", "the daemons answer again within the deadline after each fault"),
]
FAULTS = ["kill-S", "kill-P2", "redis-restart", "fd-exhaustion", "stall-long", "stall-short"]
# Daemon bugs this run knows of: (invariant, a piece of the violation's text, the finding's name).
# A violation that matches is reported under that name, and still fails the run. docs/testing.md
# says how to reproduce each.
KNOWN_FINDINGS = [
    # The restart right after a SIGKILL found the dead daemon's socket still accepting, and refused.
    ("availability", "a process answers on", "restart-refused-after-kill"),
]


def mono():
    return time.monotonic()


def wall_ms():
    return int(time.time() * 1000)


def encode(obj):
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


# ----------------------------------------------------------------------------------------------
# Shared state between the main process (chaos, classification) and the workers.


class Shared:
    def __init__(self, workdir):
        self.workdir = workdir
        self.events = mp.Queue()
        self.stop = mp.Event()
        # Fault counters: workers compare them around a lock grant (a fault in between may free it).
        self.kills = mp.Value("q", 0)
        self.redis_restarts = mp.Value("q", 0)
        self.stall_until = mp.Value("d", 0.0)
        self.stall_seq = mp.Value("q", 0)

    def socket_path(self, target):
        return os.path.join(self.workdir, target.lower(), "daemons", f"{NAME}.sock")

    def photon_dir(self, target):
        return os.path.join(self.workdir, target.lower())


class Closed(Exception):
    """The daemon closed the connection."""


class Reporter:
    """A worker's side of the event queue: counts are summed locally and flushed each second."""

    def __init__(self, shared, worker):
        self.shared = shared
        self.worker = worker
        self.counts = collections.Counter()
        self.last_flush = mono()

    def check(self, invariant, n=1):
        self.counts[invariant] += n
        if mono() - self.last_flush > 1.0:
            self.flush()

    def note(self, figure, n=1):
        self.counts["note:" + figure] += n

    def flush(self):
        if self.counts:
            self.shared.events.put(("counts", dict(self.counts)))
            self.counts.clear()
        self.last_flush = mono()

    def violation(self, invariant, detail):
        self.shared.events.put(("violation", invariant, f"[{self.worker}] {detail}", mono()))

    def excusable(self, invariant, kinds, target, t0, t1, detail):
        """A failure that an injected fault of `kinds` on `target` during [t0, t1] explains."""
        self.shared.events.put(("excusable", invariant, tuple(kinds), target, t0, t1,
                                f"[{self.worker}] {detail}"))


class Conn:
    """A line connection to a daemon's socket that tracks the ids it awaits a reply for."""

    def __init__(self, path, rcvbuf=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.buf = bytearray()
        self.pending = {}  # id -> (sent at, deadline)
        self.opened = mono()
        self.last_io = self.opened  # the last time the daemon was heard: a loss happened after it

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, obj, deadline=DEADLINE / 2):
        ident = obj.get("id")
        if ident is not None and obj.get("type") != "prompt_response":
            self.pending[ident] = (mono(), mono() + deadline)
        self.sock.settimeout(DEADLINE)
        try:
            self.sock.sendall(encode(obj))
        except (BrokenPipeError, ConnectionResetError, socket.timeout) as error:
            raise Closed(str(error)) from None

    def read(self, timeout):
        """The next object, or None when nothing came within timeout; raises Closed at EOF."""
        deadline = mono() + timeout
        while True:
            index = self.buf.find(b"\n")
            if index >= 0:
                line = bytes(self.buf[:index])
                del self.buf[: index + 1]
                return json.loads(line)
            remaining = deadline - mono()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                return None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("connection closed by the daemon")
            self.last_io = mono()
            self.buf += chunk

    def settle(self, obj, reporter):
        """Marks a reply's id answered; a reply to nothing awaited is a violation."""
        ident = obj.get("id")
        if obj.get("type") in ("channel_message", "emit", "prompt"):
            return
        if ident in self.pending:
            if "unanswered" in INJECT and str(ident).endswith("-30"):
                INJECT.discard("unanswered")  # self-test: pretend this reply never came
                return
            del self.pending[ident]
            reporter.check("answered")
        else:
            reporter.violation("answered", f"a reply for id {ident!r} that was not awaited: {str(obj)[:200]}")

    def overdue(self, reporter):
        now = mono()
        for ident, (sent, deadline) in list(self.pending.items()):
            if now > deadline:
                reporter.violation("answered", f"no reply to id {ident!r} within {deadline - sent:.0f} s "
                                               f"on an open connection")
                del self.pending[ident]


def connect(shared, target, reporter, rcvbuf=None):
    """A connection that answered a ping; retried until DEADLINE (the daemon may be restarting or
    out of descriptors). Returns None when the run stops meanwhile."""
    start = mono()
    complained = False
    while not shared.stop.is_set():
        conn = None
        try:
            conn = Conn(shared.socket_path(target), rcvbuf)
            conn.send({"type": "ping", "id": "hello"})
            while True:
                reply = conn.read(5)
                if reply is None:
                    raise OSError("no pong within 5 s")
                if reply.get("id") == "hello":
                    break
            conn.pending.clear()
            reporter.note(f"connections to {target}")
            return conn
        except (OSError, Closed, ValueError):
            if conn is not None:
                conn.close()
        if mono() - start > DEADLINE and not complained:
            reporter.violation("availability", f"{target} did not answer a new connection for {DEADLINE:.0f} s")
            complained = True
        time.sleep(0.05)
    return None


def request(conn, obj, reporter, on_message=None, timeout=DEADLINE / 2):
    """Sends obj and returns its reply; other lines go to on_message. Raises Closed."""
    conn.send(obj, timeout)
    deadline = mono() + timeout
    while True:
        reply = conn.read(max(0.0, deadline - mono()))
        if reply is None:
            conn.overdue(reporter)
            if obj["id"] not in conn.pending:
                return None
            continue
        if reply.get("id") == obj["id"] and reply.get("type") not in ("channel_message", "emit", "prompt"):
            conn.settle(reply, reporter)
            return reply
        if reply.get("type") in ("channel_message", "emit", "prompt"):
            if on_message:
                on_message(reply)
        else:
            conn.settle(reply, reporter)


def lost_connection(reporter, target, conn, why, invariant="answered"):
    """A connection ended: excused only by a fault on its daemon since the daemon was last heard on it."""
    pending = len(conn.pending) if conn else 0
    heard = conn.last_io if conn else mono()
    # Only a kill ends a connection: running out of descriptors must not close the ones accepted.
    kinds = {"S": ("kill-S",), "P2": ("kill-P2",)}.get(target, ())
    reporter.excusable(invariant, kinds, target, heard, mono(),
                       f"connection to {target} ended ({why}) with {pending} request(s) unanswered")
    if conn:
        conn.close()


# ----------------------------------------------------------------------------------------------
# Sequence checks shared by every kind of subscriber.


class StreamChecker:
    """Checks the messages one subscription stream receives: per (publisher, channel) sequence
    numbers with no gap and no repeat, per publisher increasing global numbers, no message twice."""

    def __init__(self, reporter, target, cross=False, label="subscriber", inject=None):
        self.reporter = reporter
        self.target = target
        self.cross = cross  # messages arrive through Redis: gaps are excused by Redis restarts
        self.label = label
        self.inject = set(inject or ())
        self.reset()

    def reset(self):
        self.last = {}   # (publisher, channel) -> (s, t)
        self.last_g = {}  # publisher -> g

    def message(self, channel, body):
        if not isinstance(body, dict) or "p" not in body:
            return
        publisher, g, s, t = body["p"], body["g"], body["s"], body["t"]
        if "gap" in self.inject and s > 5:
            self.inject.discard("gap")
            return  # self-test: pretend this one never arrived
        key = (publisher, channel)
        self.reporter.check("delivery")
        previous = self.last.get(key)
        if previous is not None:
            if s <= previous[0]:
                self.reporter.violation("delivery", f"{self.label} on {self.target}: {key} seq {s} after "
                                                    f"{previous[0]} (repeated or reordered)")
            elif s > previous[0] + 1:
                detail = (f"{self.label} on {self.target}: {key} seq {previous[0]} then {s}: "
                          f"{s - previous[0] - 1} message(s) lost")
                if self.cross:
                    self.reporter.excusable("delivery", ("redis-restart",), "pair", previous[1], t, detail)
                else:
                    self.reporter.violation("delivery", detail)
        last_g = self.last_g.get(publisher)
        if last_g is not None and g <= last_g:
            self.reporter.violation("delivery", f"{self.label} on {self.target}: publisher {publisher} "
                                                f"message {g} after {last_g} (publish order broken)")
        self.last[key] = (s, t)
        self.last_g[publisher] = g
        if "dup" in self.inject and s > 5:
            self.inject.discard("dup")
            self.message(channel, body)  # self-test: the same message again
        if "order" in self.inject and s > 5:
            self.inject.discard("order")
            self.last_g[publisher] = g + 10


# ----------------------------------------------------------------------------------------------
# Workers (each runs in its own process).


def pad_size(rng):
    """Bytes of padding: 0 to a request of exactly LINE_LIMIT bytes (None)."""
    r = rng.random()
    if r < 0.005:
        return None
    if r < 0.02:
        return rng.randint(256 << 10, MAX_PAD)
    if r < 0.10:
        return rng.randint(16 << 10, 256 << 10)
    if r < 0.35:
        return rng.randint(1 << 10, 16 << 10)
    if r < 0.42:
        return 0
    return rng.randint(1, 1 << 10)


def worker_main(fn, shared, name, *args):
    rng = random.Random(f"{SEED}:{name}")
    reporter = Reporter(shared, name)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        fn(shared, reporter, rng, name, *args)
    except Exception:  # a bug of the soak itself must not pass for a quiet run
        reporter.violation("availability", f"worker crashed: {traceback.format_exc()}")
    finally:
        reporter.flush()


def publisher(shared, reporter, rng, name, target, rate):
    """Publishes on soak:NAME:c0..c3 and listens to soak:* (never hearing itself)."""
    g = 0
    seqs = collections.Counter()
    conn = None
    period = 1.0 / rate
    next_at = mono()

    def heard(message):
        if message.get("type") != "channel_message":
            return
        body = message.get("message")
        if isinstance(body, dict) and body.get("p") == name:
            reporter.violation("exclusion", f"{name} received its own message {body.get('g')}")
        else:
            reporter.check("exclusion")
        if "exclusion" in INJECT and g == 20:
            reporter.violation("exclusion", f"{name}: self-test: planted own message")

    def make(size):
        nonlocal g
        channel = f"soak:{name}:c{rng.randrange(4)}"
        body = {"p": name, "g": g, "s": seqs[channel], "t": mono(), "pad": ""}
        req = {"type": "publish", "id": f"{name}-{g}", "channel": channel, "message": body}
        if size is None:
            size = LINE_LIMIT - (len(encode(req)) - 1)  # the request is exactly LINE_LIMIT bytes long
            reporter.note("publishes of exactly 1 MiB")
        body["pad"] = "x" * size
        # The numbers are used whatever the outcome: a publish cut by a crash may have been delivered.
        g += 1
        seqs[channel] += 1
        return req

    while not shared.stop.is_set():
        if conn is None:
            conn = connect(shared, target, reporter)
            if conn is None:
                break
            try:
                request(conn, {"type": "subscribe", "id": "sub", "channel": "soak:*"}, reporter)
            except Closed as error:
                lost_connection(reporter, target, conn, error)
                conn = None
                continue
        conn.overdue(reporter)
        if rng.random() < 1 / 300:
            over_the_limit(shared, reporter, target)
        # Now and then a burst: twenty 17 KB publishes written at once, replies read afterwards.
        burst = [make(17 << 10) for _ in range(20)] if rng.random() < 1 / 40 else [make(pad_size(rng))]
        try:
            replies = pipeline(conn, burst, reporter, heard)
        except Closed as error:
            lost_connection(reporter, target, conn, error)
            conn = None
            continue
        if len(burst) > 1:
            reporter.note("bursts of 20 pipelined publishes")
        for req, reply in zip(burst, replies):
            if reply is None:
                continue
            if reply.get("type") == "result" and reply.get("success") is True:
                reporter.note(f"published on {target}")
                reporter.note(f"bytes published on {target}", len(req["message"]["pad"]))
            else:
                reporter.violation("answered", f"publish refused: {str(reply)[:300]}")
        next_at = max(next_at + period, mono() - 1)
        while not shared.stop.is_set() and mono() < next_at:  # pacing the traffic, and reading meanwhile
            try:
                message = conn.read(max(0.0, next_at - mono()))
            except Closed as error:
                lost_connection(reporter, target, conn, error)
                conn = None
                break
            if message is not None:
                heard(message)
    if conn:
        conn.close()


def pipeline(conn, requests, reporter, on_message):
    """Writes requests at once; returns their replies, which must come in request order."""
    for req in requests:
        conn.pending[req["id"]] = (mono(), mono() + DEADLINE / 2)
    conn.sock.settimeout(DEADLINE)
    try:
        conn.sock.sendall(b"".join(encode(req) for req in requests))
    except (BrokenPipeError, ConnectionResetError, socket.timeout) as error:
        raise Closed(str(error)) from None
    expected = [req["id"] for req in requests]
    replies = {}

    def awaited():
        return [ident for ident in expected if ident not in replies and ident in conn.pending]

    while awaited():
        reply = conn.read(1.0)
        if reply is None:
            conn.overdue(reporter)  # an id reported overdue is awaited no more
            continue
        if reply.get("type") in ("channel_message", "emit", "prompt"):
            on_message(reply)
            continue
        first = awaited()[0]
        conn.settle(reply, reporter)
        ident = reply.get("id")
        if ident in expected and ident not in replies:
            if ident != first:
                reporter.violation("answered", f"reply for {ident!r} while {first!r} was due first "
                                               f"(replies out of request order)")
            replies[ident] = reply
    return [replies.get(ident) for ident in expected]


def over_the_limit(shared, reporter, target):
    """One line a byte over --max-line-bytes on a connection of its own: the error, then the close."""
    try:
        conn = Conn(shared.socket_path(target))
    except OSError:
        return  # the daemon is away (a fault): nothing to check
    try:
        line = b'{"type":"publish","id":"big","channel":"soak:big","message":"'
        line += b"z" * (LINE_LIMIT + 1 - len(line) - 2) + b'"}'
        conn.sock.settimeout(DEADLINE)
        conn.sock.sendall(line + b"\n")
        reply = conn.read(DEADLINE / 2)
        expected = {"type": "error", "id": "unknown",
                    "error": f"line exceeds {LINE_LIMIT} bytes; closing the connection"}
        if "linelimit" in INJECT:
            INJECT.discard("linelimit")
            expected = dict(expected, error="self-test: another sentence")
        if reply != expected:
            reporter.violation("line-limit", f"a line of {LINE_LIMIT + 1} bytes got {str(reply)[:300]}")
            return
        try:
            extra = conn.read(DEADLINE / 2)
            reporter.violation("line-limit", f"the connection stayed open after the error: {str(extra)[:200]}")
        except Closed:
            reporter.check("line-limit")
    except (Closed, OSError) as error:
        reporter.excusable("line-limit", ("kill-S", "fd-exhaustion"), target, conn.opened, mono(),
                           f"a line over the limit: {error}")
    finally:
        conn.close()


def subscriber(shared, reporter, rng, name, target, patterns, cross, stall):
    """Subscribes to patterns and checks every message; the staller stops reading when told."""
    inject = INJECT & {"dup", "gap", "order"} if name == "sub-S-wild" else set()
    checker = StreamChecker(reporter, target, cross=cross, label=name, inject=inject)
    conn = None
    seen_stall = shared.stall_seq.value
    stalled_at_drops = None  # droppedSlowConsumers when this connection was last stalled
    while not shared.stop.is_set():
        if conn is None:
            conn = connect(shared, target, reporter, rcvbuf=4096 if stall else None)
            if conn is None:
                break
            checker.reset()
            stalled_at_drops = None
            try:
                for i, pattern in enumerate(patterns):
                    reply = request(conn, {"type": "subscribe", "id": f"s{i}", "channel": pattern}, reporter)
                    if not reply or reply.get("success") is not True:
                        reporter.violation("answered", f"subscribe {pattern} refused: {reply}")
            except Closed as error:
                lost_connection(reporter, target, conn, error)
                conn = None
                continue
        if stall and shared.stall_seq.value != seen_stall:
            seen_stall = shared.stall_seq.value
            stalled_at_drops = dropped_slow_consumers(shared, target, reporter)
            # The fault itself: nothing is read until the chaos schedule's stall ends.
            while not shared.stop.is_set() and mono() < shared.stall_until.value:
                time.sleep(0.05)
            reporter.note("stalls observed")
        try:
            message = conn.read(1.0)
        except Closed as error:
            if stall and stalled_at_drops is not None:
                after = dropped_slow_consumers(shared, target, reporter)
                if after is not None and after > stalled_at_drops and "silentcut" not in INJECT:
                    reporter.check("slow-consumer")
                    reporter.note("stalled subscriber closed and counted (droppedSlowConsumers)")
                    conn.close()
                    conn = None
                    continue
                lost_connection(reporter, target, conn, f"{error}; droppedSlowConsumers {stalled_at_drops} -> {after}",
                                invariant="slow-consumer")
            else:
                drops = dropped_slow_consumers(shared, target, reporter)
                lost_connection(reporter, target, conn, f"{error}; droppedSlowConsumers now {drops}",
                                invariant="delivery")
            conn = None
            continue
        except ValueError as error:
            reporter.violation("delivery", f"{name}: a line that is not JSON: {error}")
            continue
        if message is None:
            conn.overdue(reporter)
            continue
        if message.get("type") == "channel_message":
            checker.message(message.get("channel"), message.get("message"))
            if stall and stalled_at_drops is not None and mono() > shared.stall_until.value + 5:
                reporter.check("slow-consumer")  # served in full after its stall
                reporter.note("stalled subscriber served in full after its stall")
                stalled_at_drops = None
        else:
            conn.settle(message, reporter)
    if conn:
        conn.close()


def dropped_slow_consumers(shared, target, reporter):
    try:
        conn = Conn(shared.socket_path(target))
        try:
            reply = request(conn, {"type": "status", "id": "st"}, reporter, timeout=10)
            return reply["data"]["counters"]["droppedSlowConsumers"] if reply else None
        finally:
            conn.close()
    except (OSError, Closed, KeyError, TypeError):
        return None


class LockState:
    """The critical section's shared record, in a file every locker of a domain opens under flock."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        data = os.pread(self.fd, 1 << 20, 0)
        self.state = json.loads(data) if data else {"holder": None, "grants": []}
        return self.state

    def __exit__(self, *exc):
        data = json.dumps(self.state).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def fault_count(shared, domain):
    return shared.kills.value if domain == "S" else shared.redis_restarts.value


def locker(shared, reporter, rng, name, target, domain):
    state_file = LockState(os.path.join(shared.workdir, f"lock-{domain}.json"))
    conn = None
    n = 0
    while not shared.stop.is_set():
        if conn is None:
            conn = connect(shared, target, reporter)
            if conn is None:
                break
        n += 1
        session = f"{name}-{n}"
        faults_before = fault_count(shared, domain)
        sent = mono()
        try:
            reply = request(conn, {"type": "lock", "id": f"l{n}", "sessionId": session, "lockName": "soak-lock",
                                   "lockTimeout": 15000, "lockWait": 5000}, reporter, timeout=5 + DEADLINE / 2)
            if reply is None:
                continue
            received = mono()
            if reply.get("type") == "error":
                reporter.excusable("lock-exclusion",
                                   ("redis-restart", "kill-P2") if domain == "pair" else ("kill-S", "fd-exhaustion"),
                                   target, sent, received,
                                   f"lock refused with an error: {reply.get('error')}")
                time.sleep(0.1)  # pacing: the lock service is away (Redis restarting)
                continue
            data = reply.get("data") or {}
            if not data.get("acquired"):
                reporter.note(f"lock waits timed out ({domain})")
                continue
            token = data["token"]
            with state_file as state:
                holder = state["holder"]
                if "lock" in INJECT and n == 10:
                    holder = {"name": "planted", "faults": faults_before, "token": 0}
                if holder is not None:
                    if fault_count(shared, domain) > holder["faults"]:
                        reporter.note(f"lock holders overlapping across a fault ({domain}, excused)")
                    else:
                        reporter.violation("lock-exclusion", f"{session} got soak-lock (token {token}) on "
                                                             f"{target} while {holder['name']} held it "
                                                             f"(token {holder['token']})")
                else:
                    reporter.check("lock-exclusion")
                earlier = [t for r, t in state["grants"] if r < sent]
                floor = max(earlier) if earlier else 0
                if "token" in INJECT and n == 12:
                    floor = token
                if token <= floor:
                    reporter.violation("lock-tokens", f"{session} got token {token} on {target}, not above "
                                                      f"{floor} granted before it asked")
                else:
                    reporter.check("lock-tokens")
                state["holder"] = {"name": session, "faults": faults_before, "token": token}
                state["grants"] = (state["grants"] + [[received, token]])[-500:]
            if rng.random() < 0.3:
                again = request(conn, {"type": "lock", "id": f"r{n}", "sessionId": session, "lockName": "soak-lock",
                                       "lockTimeout": 15000}, reporter)
                if again is not None:
                    got = again.get("data") or {}
                    if again.get("type") == "error" and domain == "pair":
                        reporter.excusable("lock-reentry", ("redis-restart",), "pair", sent, mono(),
                                           f"re-lock refused: {again.get('error')}")
                    elif got.get("acquired") and got.get("extended") and got.get("token") == token \
                            and not ("reentry" in INJECT and n == 14):
                        reporter.check("lock-reentry")
                    elif fault_count(shared, domain) > faults_before:
                        reporter.note(f"re-lock after a fault ({domain}, excused)")
                    else:
                        reporter.violation("lock-reentry", f"re-lock by {session} (token {token}): {again}")
            time.sleep(rng.random() * 0.01)  # the work done holding the lock
            with state_file as state:
                if state["holder"] and state["holder"]["name"] == session:
                    state["holder"] = None
            request(conn, {"type": "unlock", "id": f"u{n}", "sessionId": session, "lockName": "soak-lock"}, reporter)
        except Closed as error:
            with state_file as state:
                if state["holder"] and state["holder"]["name"] == session:
                    state["holder"] = None
            lost_connection(reporter, target, conn, error)
            conn = None


def prompter(shared, reporter, rng, name, target):
    """Two concurrent calls of the prompting method on one connection; each must get its own answer."""
    conn = None
    n = 0
    while not shared.stop.is_set():
        if conn is None:
            conn = connect(shared, target, reporter)
            if conn is None:
                break
        n += 1
        nonces = {f"c{n}{x}": f"{name}-{n}{x}-{rng.randrange(1 << 30)}" for x in "ab"}
        started = mono()
        try:
            for ident, nonce in nonces.items():
                conn.send({"type": "command", "id": ident, "method": "ask", "args": {"nonce": nonce},
                           "clientType": "cli"}, deadline=DEADLINE)
            open_calls = set(nonces)
            while open_calls and not shared.stop.is_set():
                message = conn.read(1.0)
                if message is None:
                    conn.overdue(reporter)
                    open_calls &= set(conn.pending)
                    continue
                ident = message.get("id")
                kind = message.get("type")
                if kind == "emit":
                    reporter.note("method progress emits")
                elif kind == "prompt" and ident in nonces:
                    answer = nonces[ident] + "!"
                    if "prompt" in INJECT and n == 5 and ident.endswith("a"):
                        answer = "wrong"
                    conn.send({"type": "prompt_response", "id": ident, "promptValue": answer})
                    reporter.note("prompts answered")
                elif ident in nonces:
                    conn.settle(message, reporter)
                    open_calls.discard(ident)
                    expected = {"args": {"nonce": nonces[ident]}, "answer": nonces[ident] + "!"}
                    if kind == "result" and message.get("data") == expected:
                        reporter.check("methods")
                    elif kind == "error":
                        reporter.excusable("methods", ("kill-S", "fd-exhaustion") if target == "S" else ("kill-P2",),
                                           target, started, mono(), f"ask failed: {message.get('error')}")
                    else:
                        reporter.violation("methods", f"ask {ident} expected {expected}, got {str(message)[:300]}")
                else:
                    conn.settle(message, reporter)
        except Closed as error:
            lost_connection(reporter, target, conn, error)
            conn = None
            continue
        time.sleep(0.2)  # pacing


def status_of(shared, target, reporter):
    conn = connect(shared, target, reporter)
    if conn is None:
        return None
    try:
        reply = request(conn, {"type": "status", "id": "st"}, reporter)
        return reply.get("data") if reply else None
    finally:
        conn.close()


def webhooks(shared, reporter, rng, name, target):
    """Signed POSTs to the echo method (GitHub's scheme); one in ten signed wrongly, refused with 401."""
    url = None
    n = 0
    while not shared.stop.is_set():
        if url is None:
            try:
                status = status_of(shared, target, reporter)
            except Closed:
                continue
            if status is None:
                break
            url = status["webhook"]["url"]
        n += 1
        nonce = f"{name}-{n}-{rng.randrange(1 << 30)}"
        body = json.dumps({"nonce": nonce, "pad": "y" * rng.choice([0, 10, 1000, 100000])}).encode()
        signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        forged = n % 10 == 0
        if forged:
            signature = "sha256=" + "0" * 64
        host_port = url.split("//", 1)[1].split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        started = mono()
        try:
            web = http.client.HTTPConnection(host, int(port), timeout=DEADLINE / 2)
            try:
                web.request("POST", "/webhook/echo", body=body,
                            headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature})
                response = web.getresponse()
                status, text = response.status, response.read()
            finally:
                web.close()
        except (OSError, http.client.HTTPException) as error:
            reporter.excusable("webhooks", ("kill-S", "fd-exhaustion"), target, started, mono(),
                               f"webhook POST failed: {error!r}")
            url = None
            continue
        if forged:
            if status == 401 and not ("webhook" in INJECT and n == 20):
                reporter.check("webhooks")
            else:
                reporter.violation("webhooks", f"a forged signature got {status}: {text[:200]!r}")
        elif status == 200:
            data = json.loads(text).get("data", {})
            if data.get("nonce") == nonce:
                reporter.check("webhooks")
            else:
                reporter.violation("webhooks", f"echo returned another call's data: {str(data)[:200]}")
        else:
            reporter.excusable("webhooks", ("kill-S", "fd-exhaustion"), target, started, mono(),
                               f"webhook got {status}: {text[:200]!r}")
        time.sleep(0.2)  # pacing


def read_ui_file(shared, target):
    try:
        with open(os.path.join(shared.photon_dir(target), "daemons", f"{NAME}.ui")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def wait_ui_file(shared, reporter, target, not_pid=None):
    deadline = mono() + DEADLINE
    while not shared.stop.is_set():
        ui = read_ui_file(shared, target)
        if ui and ui.get("pid") != not_pid:
            return ui
        if mono() > deadline:
            reporter.violation("availability", f"no browser listener file for {target} within {DEADLINE:.0f} s")
            deadline = mono() + DEADLINE
        time.sleep(0.05)
    return None


class EventStream:
    """A raw /events connection: yields (id, event, data) blocks."""

    def __init__(self, ui, channels, last_event_id=None):
        self.sock = socket.create_connection(("127.0.0.1", ui["port"]), timeout=10)
        query = "&".join(f"channel={c}" for c in channels) + f"&token={ui['token']}"
        extra = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id is not None else ""
        self.sock.sendall(f"GET /events?{query} HTTP/1.1\r\nHost: 127.0.0.1:{ui['port']}\r\n{extra}\r\n".encode())
        self.buf = bytearray()
        self.header = None
        self.last_io = mono()

    def next(self, timeout):
        deadline = mono() + timeout
        while True:
            if self.header is None:
                index = self.buf.find(b"\r\n\r\n")
                if index >= 0:
                    self.header = bytes(self.buf[:index])
                    del self.buf[: index + 4]
                    if not self.header.startswith(b"HTTP/1.1 200"):
                        raise Closed(f"event stream refused: {self.header[:100]!r}")
                    continue
            else:
                index = self.buf.find(b"\n\n")
                if index >= 0:
                    block = bytes(self.buf[:index]).decode()
                    del self.buf[: index + 2]
                    fields = {}
                    for line in block.split("\n"):
                        if line.startswith(":") or ":" not in line:
                            continue
                        key, _, value = line.partition(":")
                        fields[key] = value[1:] if value.startswith(" ") else value
                    if "data" in fields:
                        return fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])
                    continue
            remaining = deadline - mono()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                return None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("event stream ended")
            self.last_io = mono()
            self.buf += chunk

    def close(self):
        self.sock.close()


def sse(shared, reporter, rng, name, target):
    """Follows soak:* as Server-Sent Events, leaving and coming back with Last-Event-ID now and then:
    within one daemon's life the resumed stream must continue with no gap and no repeat, unless it
    is told of one (photon-gap)."""
    checker = StreamChecker(reporter, target, label=name)
    ui = None
    stream = None
    last_id = None
    resumed = False
    while not shared.stop.is_set():
        if stream is None:
            fresh = wait_ui_file(shared, reporter, target)
            if fresh is None:
                break
            if ui is None or fresh["pid"] != ui["pid"]:
                checker.reset()  # a new daemon: nothing is promised across its restart
                last_id = None
            ui = fresh
            try:
                stream = EventStream(ui, ["soak:*"], last_id)
            except OSError:
                time.sleep(0.05)
                continue
            leave_at = mono() + rng.uniform(2, 6)
            resumed = last_id is not None
        try:
            event = stream.next(1.0)
        except (Closed, OSError, ValueError) as error:
            reporter.excusable("sse-resume", ("kill-S", "fd-exhaustion"), target, stream.last_io, mono(),
                               f"event stream ended: {error}")
            stream.close()
            stream = None
            continue
        if event is not None:
            ident, kind, data = event
            if kind == "photon-gap":
                reporter.note("event streams told of a gap (photon-gap)")
                checker.reset()
            elif kind == "message":
                # The id is the eventId, EPOCH-SEQUENCE: within one daemon's life the sequence grows.
                number = int(ident.rsplit("-", 1)[1])
                last_number = int(last_id.rsplit("-", 1)[1]) if last_id is not None else None
                if last_number is not None and number <= last_number:
                    reporter.violation("sse-resume", f"event {ident} after {last_id} (repeated)")
                if "sse" in INJECT and resumed:
                    INJECT.discard("sse")
                    reporter.violation("sse-resume", "self-test: planted repeat after a resume")
                last_id = ident
                if resumed:
                    reporter.check("sse-resume")
                    resumed = False
                checker.message(data["channel"], data["message"])
        if mono() > leave_at:
            stream.close()  # the browser goes away, and comes back with the last id it saw
            stream = None
            reporter.note("event stream resumes")
    if stream:
        stream.close()


def browser_ws(shared, reporter, rng, name, target):
    """A WebSocket of the dashboard: follows one publisher's channels and calls the prompting method."""
    checker = StreamChecker(reporter, target, label=name)
    conn = None
    pending = {}
    n = 0
    while not shared.stop.is_set():
        if conn is None:
            ui = wait_ui_file(shared, reporter, target)
            if ui is None:
                break
            try:
                conn = websocket.create_connection(f"ws://127.0.0.1:{ui['port']}/ws?token={ui['token']}", timeout=10)
                heard = mono()
                conn.send(json.dumps({"type": "subscribe", "id": "s", "channel": "soak:pub-S2:*"}))
                pending = {"s": mono()}
                checker.reset()
                next_call = mono() + 1
            except (OSError, websocket.WebSocketException):
                conn = None
                time.sleep(0.05)
                continue
        try:
            if mono() > next_call and not any(k.startswith("c") for k in pending):
                n += 1
                nonce = f"{name}-{n}"
                conn.send(json.dumps({"type": "command", "id": f"c{n}", "method": "ask", "args": {"nonce": nonce},
                                      "clientType": "beam"}))
                pending[f"c{n}"] = mono()
                next_call = mono() + 2
            conn.settimeout(1.0)
            try:
                message = json.loads(conn.recv())
                heard = mono()
            except websocket.WebSocketTimeoutException:
                message = None
        except (OSError, websocket.WebSocketException, ValueError) as error:
            reporter.excusable("answered", ("kill-S", "fd-exhaustion"), target, heard, mono(),
                               f"WebSocket ended ({error!r}) with {len(pending)} request(s) unanswered")
            try:
                conn.close()
            except Exception:
                pass
            conn = None
            continue
        now = mono()
        for ident, sent in list(pending.items()):
            if now - sent > DEADLINE:
                reporter.violation("answered", f"WebSocket request {ident} unanswered for {DEADLINE:.0f} s")
                del pending[ident]
        if message is None:
            continue
        kind, ident = message.get("type"), message.get("id")
        if kind == "channel_message":
            checker.message(message["channel"], message["message"])
        elif kind == "prompt":
            conn.send(json.dumps({"type": "prompt_response", "id": ident, "promptValue": f"{name}-{ident[1:]}!"}))
        elif kind == "emit":
            reporter.note("method progress emits")
        elif ident in pending:
            sent = pending.pop(ident)
            reporter.check("answered")
            if ident.startswith("c"):
                expected = {"args": {"nonce": f"{name}-{ident[1:]}"}, "answer": f"{name}-{ident[1:]}!"}
                if kind == "result" and message.get("data") == expected:
                    reporter.check("methods")
                elif kind == "error":
                    reporter.excusable("methods", ("kill-S", "fd-exhaustion"), target, sent, now,
                                       f"ask over WebSocket failed: {message.get('error')}")
                else:
                    reporter.violation("methods", f"ask {ident} over WebSocket: {str(message)[:300]}")
        else:
            reporter.violation("answered", f"WebSocket reply for an id not awaited: {str(message)[:200]}")
    if conn:
        conn.close()


# ----------------------------------------------------------------------------------------------
# Daemons and Redis, driven by the main process.


class Daemon:
    def __init__(self, workdir, target, args, env=None, nofile=None):
        self.target = target
        self.photon_dir = os.path.join(workdir, target.lower())
        os.makedirs(self.photon_dir, exist_ok=True)
        self.args = args
        self.env = dict(os.environ, PHOTON_DIR=self.photon_dir, **(env or {}))
        self.nofile = nofile
        self.proc = None
        self.out = os.path.join(self.photon_dir, f"{target}.out")
        self.expected_exit = False

    @property
    def sock_path(self):
        return os.path.join(self.photon_dir, "daemons", f"{NAME}.sock")

    def _limit(self):
        if self.nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def spawn(self):
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen([PHOTOND, "serve", NAME, *self.args], env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, preexec_fn=self._limit)
        self.expected_exit = False

    def ready(self, deadline=DEADLINE):
        end = mono() + deadline
        while mono() < end:
            if self.proc.poll() is not None:
                return False
            try:
                conn = Conn(self.sock_path)
                try:
                    conn.send({"type": "ping", "id": "ready"})
                    if conn.read(5) == {"type": "pong", "id": "ready"}:
                        return True
                finally:
                    conn.close()
            except (OSError, Closed, ValueError):
                pass
            time.sleep(0.02)
        return False

    def call(self, obj, timeout=DEADLINE / 2):
        conn = Conn(self.sock_path)
        try:
            conn.send(obj)
            deadline = mono() + timeout
            while mono() < deadline:
                reply = conn.read(max(0.0, deadline - mono()))
                if reply is not None and reply.get("id") == obj["id"]:
                    return reply
            return None
        finally:
            conn.close()

    def tail(self):
        try:
            with open(self.out, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""


class Redis:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "redis.sock")
        self.proc = None

    def start(self):
        with open(os.path.join(self.dir, "redis.out"), "ab") as out:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", "0", "--unixsocket", self.sock, "--unixsocketperm", "700",
                 "--save", "", "--appendonly", "no", "--dir", self.dir],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        end = mono() + DEADLINE
        while mono() < end:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(2)
                    s.connect(self.sock)
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE)

    @property
    def url(self):
        return "unix://" + self.sock


SCRIPTS = {
    "tick.sh": "#!/bin/sh\ncat >/dev/null\necho '{\"result\":{\"ok\":true}}'\n",
    "ask.sh": "#!/bin/sh\n"
              "IFS= read -r args\n"
              "echo '{\"emit\":{\"message\":\"asking\",\"percent\":50}}'\n"
              "echo '{\"prompt\":{\"type\":\"text\",\"message\":\"Your answer?\"}}'\n"
              "IFS= read -r answer || answer=null\n"
              "printf '{\"result\":{\"args\":%s,\"answer\":%s}}\\n' \"$args\" \"$answer\"\n",
    "echo.sh": "#!/bin/sh\n"
               "args=$(cat)\n"
               "printf '%s' \"$args\" | /usr/bin/python3 -c 'import json,sys; a=json.load(sys.stdin); "
               "print(json.dumps({\"result\":{\"nonce\":a.get(\"nonce\")}}))'\n",
}


def write_manifest(workdir):
    scripts = os.path.join(workdir, "scripts")
    os.makedirs(scripts, exist_ok=True)
    for name, text in SCRIPTS.items():
        path = os.path.join(scripts, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
    manifest = os.path.join(scripts, "photon.toml")
    with open(manifest, "w") as f:
        f.write(f"""description = "The soak run's photon"

[methods.tick]
command = ["{scripts}/tick.sh"]
timeout = "10s"

[methods.ask]
command = ["{scripts}/ask.sh"]
interactive = true
timeout = "30s"

[[methods.ask.params]]
name = "nonce"
type = "string"

[methods.echo]
command = ["{scripts}/echo.sh"]
timeout = "10s"
webhook = true
""")
    return manifest


# ----------------------------------------------------------------------------------------------
# The main process: classification of excusable events, the chaos schedule, the job audit, resources.


class Window:
    def __init__(self, kind, target):
        self.kind = kind
        self.target = target
        self.start = mono()
        self.start_wall = wall_ms()
        self.spawn_wall = None
        self.end = None
        self.end_wall = None

    def close(self):
        self.end = mono()
        self.end_wall = wall_ms()

    def overlaps(self, t0, t1, margin=MARGIN):
        end = self.end if self.end is not None else float("inf")
        return self.start - margin <= t1 and end + margin >= t0

    def overlaps_wall(self, w0, w1, margin_ms=MARGIN * 1000):
        end = self.end_wall if self.end_wall is not None else float("inf")
        return self.start_wall - margin_ms <= w1 and end + margin_ms >= w0


class Soak:
    def __init__(self, workdir):
        self.workdir = workdir
        self.shared = Shared(workdir)
        self.lock = threading.Lock()
        self.windows = []
        self.checks = collections.Counter()
        self.violations = collections.defaultdict(list)
        self.excused = collections.Counter()
        self.excused_example = {}  # the first failure of each kind of excuse, shown in the report
        self.notes = collections.Counter()
        self.faults = collections.Counter()
        self.resource_samples = {}  # pid -> first (fds beyond connections, rss)
        self.resource_max = {}
        self.known = collections.Counter()
        self.holder_reports = []
        self.processes = []

    # -- findings
    def violate(self, invariant, detail):
        known = next((name for inv, text, name in KNOWN_FINDINGS if inv == invariant and text in detail), None)
        with self.lock:
            self.violations[invariant].append(detail)
            if known:
                self.known[known] += 1
        label = f"VIOLATION {invariant} (known finding: {known})" if known else f"VIOLATION {invariant}"
        print(f"{label}: {detail}", file=sys.stderr, flush=True)

    def check(self, invariant, n=1):
        with self.lock:
            self.checks[invariant] += n

    def consume(self):
        while True:
            try:
                event = self.shared.events.get(timeout=0.5)
            except queue.Empty:
                if self.consumer_done.is_set():
                    return
                continue
            if event[0] == "counts":
                with self.lock:
                    for key, n in event[1].items():
                        if key.startswith("note:"):
                            self.notes[key[5:]] += n
                        else:
                            self.checks[key] += n
            elif event[0] == "violation":
                self.violate(event[1], event[2])
            elif event[0] == "excusable":
                _, invariant, kinds, target, t0, t1, detail = event
                self.classify(invariant, kinds, target, t0, t1, detail)

    def classify(self, invariant, kinds, target, t0, t1, detail):
        with self.lock:
            windows = [w for w in self.windows if w.kind in kinds and (w.target == target or target == "pair"
                                                                          and w.target == "pair")]
            excuse = next((w for w in windows if w.overlaps(t0, t1)), None)
        if excuse is None and "redis-restart" in kinds and target in ("P1", "P2"):
            with self.lock:
                excuse = next((w for w in self.windows if w.kind == "redis-restart" and w.overlaps(t0, t1)), None)
        if excuse is not None:
            with self.lock:
                key = f"{invariant}: excused by {excuse.kind}"
                self.excused[key] += 1
                self.excused_example.setdefault(key, detail)
                self.checks[invariant] += 1
        else:
            self.violate(invariant, detail + " (no injected fault explains it)")

    # -- daemons
    def start(self):
        manifest = write_manifest(self.workdir)
        limits = ["--output-soft-limit", str(SOFT_LIMIT), "--output-soft-seconds", str(SOFT_SECONDS),
                  "--output-hard-limit", str(HARD_LIMIT), "--log-level", "warn", "--manifest", manifest]
        self.redis = Redis(self.workdir)
        if not self.redis.start():
            raise SystemExit("redis-server did not start")
        self.daemons = {
            "S": Daemon(self.workdir, "S", [*limits, "--ui-port", "0", "--webhook-port", "0",
                                             "--webhook-auth", "github"],
                        env={"PHOTON_WEBHOOK_SECRET": WEBHOOK_SECRET}, nofile=S_NOFILE),
            "P1": Daemon(self.workdir, "P1", [*limits, "--broker", self.redis.url]),
            "P2": Daemon(self.workdir, "P2", [*limits, "--broker", self.redis.url]),
        }
        for d in self.daemons.values():
            d.spawn()
        for d in self.daemons.values():
            if not d.ready():
                raise SystemExit(f"photond {d.target} did not start:\n{d.tail()}")
        for target in ("P1", "P2"):
            self.wait_broker(target)
        for target, job in (("S", "tick-s"), ("P1", "tick-p")):
            reply = self.daemons[target].call({"type": "schedule", "id": "j", "jobId": job, "method": "tick",
                                               "cron": "* * * * * *", "timezone": "UTC"})
            if not reply or not (reply.get("data") or {}).get("scheduled"):
                raise SystemExit(f"schedule on {target} refused: {reply}")

    def wait_broker(self, target, deadline=DEADLINE):
        end = mono() + deadline
        while mono() < end:
            try:
                reply = self.daemons[target].call({"type": "status", "id": "b"}, timeout=5)
                if reply and reply["data"]["broker"]["state"] == "connected":
                    self.check("availability")
                    return True
            except (OSError, Closed, KeyError, TypeError):
                pass
            time.sleep(0.05)
        self.violate("availability", f"{target}'s broker not connected {deadline:.0f} s after Redis came back")
        return False

    def cross_probe(self, deadline=DEADLINE):
        """Waits until a message published on P1 reaches a subscriber on P2 (the pair works again)."""
        end = mono() + deadline
        try:
            listener = Conn(self.daemons["P2"].sock_path)
            publisher = Conn(self.daemons["P1"].sock_path)
        except OSError:
            self.violate("availability", "cannot connect to the pair for the probe")
            return False
        try:
            listener.send({"type": "subscribe", "id": "s", "channel": "probe"})
            n = 0
            while mono() < end:
                n += 1
                publisher.send({"type": "publish", "id": f"p{n}", "channel": "probe", "message": n})
                publisher.read(5)
                got = listener.read(0.2)
                while got is not None:
                    if got.get("type") == "channel_message":
                        self.check("availability")
                        return True
                    got = listener.read(0.2)
            self.violate("availability", f"no message from P1 reached P2 within {deadline:.0f} s of Redis's restart")
            return False
        except (Closed, OSError) as error:
            self.violate("availability", f"the cross-daemon probe failed: {error}")
            return False
        finally:
            listener.close()
            publisher.close()

    def watch_daemons(self):
        """A daemon that exits when the chaos did not kill it is a crash: reported, then restarted."""
        for d in self.daemons.values():
            if d.proc.poll() is not None and not d.expected_exit:
                self.violate("availability", f"photond {d.target} exited by itself with {d.proc.returncode}:\n"
                                             f"{d.tail()}")
                window = self.open_window("crash", d.target)
                d.spawn()
                d.ready()
                window.close()

    def open_window(self, kind, target):
        window = Window(kind, target)
        with self.lock:
            self.windows.append(window)
        return window

    # -- faults
    def kill(self, target, pause):
        d = self.daemons[target]
        window = self.open_window(f"kill-{target}", target)
        if target == "S":
            with self.shared.kills.get_lock():
                self.shared.kills.value += 1
        d.expected_exit = True
        inode = socket_inode(d.sock_path)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(timeout=DEADLINE)
        # The daemon is gone: whatever still accepts on its socket is another process holding it.
        holders = socket_holders(inode) if inode and answers(d.sock_path) else []
        if holders:
            self.notes["kills after which another process still held the socket"] += 1
            self.holder_reports.append(f"after SIGKILL of {target} (pid {d.proc.pid}): {holders}")
        if pause:
            time.sleep(pause)  # stays down for a few slots of the every-second job
        window.spawn_wall = wall_ms()
        d.spawn()
        if d.ready() and not ("availability" in INJECT and INJECT.discard("availability") is None):
            self.check("availability")
        else:
            self.violate("availability", f"{target} did not answer within {DEADLINE:.0f} s of its restart:\n"
                                         f"{d.tail()}")
        if target != "S":
            self.wait_broker(target)
        window.close()
        self.faults[f"kill-{target}"] += 1

    def restart_redis(self, pause):
        window = self.open_window("redis-restart", "pair")
        with self.shared.redis_restarts.get_lock():
            self.shared.redis_restarts.value += 1
        self.redis.kill()
        time.sleep(pause)  # Redis stays away for a while
        if not self.redis.start():
            self.violate("availability", "redis-server did not restart")
        for target in ("P1", "P2"):
            self.wait_broker(target)
        self.cross_probe()
        window.close()
        self.faults["redis-restart"] += 1

    def exhaust(self, hold):
        d = self.daemons["S"]
        pid = d.proc.pid
        before = self.connections("S")
        window = self.open_window("fd-exhaustion", "S")
        held = []
        try:
            end = mono() + DEADLINE
            while mono() < end:
                if len(held) < S_NOFILE + 64:
                    try:
                        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                        s.setblocking(False)
                        s.connect(d.sock_path)
                        held.append(s)
                        continue
                    except (BlockingIOError, OSError):
                        s.close()
                if fd_count(pid) >= S_NOFILE:
                    break
                time.sleep(0.02)
            else:
                self.violate("availability", f"S never ran out of descriptors ({fd_count(pid)} of {S_NOFILE})")
            self.notes["descriptors taken at the peak of an exhaustion"] = max(
                self.notes["descriptors taken at the peak of an exhaustion"], fd_count(pid))
            time.sleep(hold)  # the daemon stays out of descriptors for a while
        finally:
            for s in held:
                s.close()
        end = mono() + DEADLINE
        while mono() < end:
            now = self.connections("S")
            if now is not None and (before is None or now <= before + 2):
                self.check("availability")
                break
            time.sleep(0.05)
        else:
            self.violate("availability", f"S kept the exhaustion's connections: {self.connections('S')} "
                                         f"(before: {before})")
        window.close()
        self.faults["fd-exhaustion"] += 1

    def stall(self, seconds, kind):
        window = self.open_window(kind, "S")
        self.shared.stall_until.value = mono() + seconds
        with self.shared.stall_seq.get_lock():
            self.shared.stall_seq.value += 1
        self.faults[kind] += 1
        return window

    def connections(self, target):
        try:
            reply = self.daemons[target].call({"type": "status", "id": "c"}, timeout=10)
            return reply["data"]["connections"]
        except (OSError, Closed, KeyError, TypeError):
            return None

    # -- resources
    def sample_resources(self):
        for target, d in self.daemons.items():
            if d.proc.poll() is not None:
                continue
            pid = d.proc.pid
            try:
                reply = d.call({"type": "status", "id": "r"}, timeout=10)
                connections = reply["data"]["connections"]
                fds = fd_count(pid)
                rss = rss_bytes(pid)
            except (OSError, Closed, KeyError, TypeError, ValueError):
                continue
            beyond = fds - connections
            if "fd" in INJECT and target == "P1" and pid in self.resource_samples:
                INJECT.discard("fd")
                beyond += 100
            if "rss" in INJECT and target == "P2" and pid in self.resource_samples:
                INJECT.discard("rss")
                rss += 200 << 20
            first = self.resource_samples.setdefault(pid, (target, beyond, rss))
            peak = self.resource_max.setdefault(pid, [target, beyond, rss])
            peak[1], peak[2] = max(peak[1], beyond), max(peak[2], rss)
            self.check("resources")
            if beyond > first[1] + FD_SLACK:
                self.violate("resources", f"{target} (pid {pid}) holds {beyond} descriptors beyond its {connections} "
                                          f"connections, first {first[1]}")
            if rss > first[2] + RSS_SLACK:
                self.violate("resources", f"{target} (pid {pid}) RSS {rss >> 20} MiB, first {first[2] >> 20} MiB")

    # -- jobs
    def audit_jobs(self, final=False):
        """Reads each job's history and checks its slots (settled ones: older than a few seconds)."""
        for target, job, domain in (("S", "tick-s", "S"), ("P1", "tick-p", "pair")):
            try:
                reply = self.daemons[target].call({"type": "job_history", "id": "h", "jobId": job, "limit": 100},
                                                  timeout=10)
            except (OSError, Closed):
                continue
            if not reply:
                continue
            if reply.get("type") == "error":
                self.classify("job-slots", ("redis-restart", "kill-S"), "pair" if domain == "pair" else target,
                              mono() - 1, mono(), f"job_history on {target}: {reply.get('error')}")
                continue
            runs = self.job_runs.setdefault(domain, {})
            for run in reply["data"]["runs"]:
                key = (run.get("daemon"), run["runId"], run["scheduledFor"])
                runs[key] = run
            self.check_slots(domain, final)

    def check_slots(self, domain, final):
        runs = self.job_runs[domain]
        horizon = wall_ms() - (0 if final else 5000)
        # Every slot is handled once: run (ok, failed...) or recorded as skipped or missed.
        by_slot = collections.defaultdict(list)
        for run in runs.values():
            if run["trigger"] != "manual":
                by_slot[run["scheduledFor"]].append(run)
        if "jobdup" in INJECT and len(by_slot) > 10:
            INJECT.discard("jobdup")
            slot = sorted(by_slot)[5]
            by_slot[slot].append(dict(by_slot[slot][0], runId=-1))
        if "jobgap" in INJECT and domain == "S" and len(by_slot) > 10:
            with self.lock:  # a slot far from every kill, so that nothing excuses its absence
                checked = self.job_checked.get(domain, set())
                quiet = [s for s in sorted(by_slot)[1:] if s not in checked and s <= horizon - 2000
                         and not any(w.kind in ("kill-S", "crash") and w.overlaps_wall(s - 3000, s + 3000)
                                    for w in self.windows)]
            if quiet:
                INJECT.discard("jobgap")
                del by_slot[quiet[0]]
        slots = sorted(s for s in by_slot if s <= horizon)
        done = self.job_checked.setdefault(domain, set())
        # A run cut short by a kill of P2 never reaches the shared history, and the job's run holds
        # it on the pair until its 30 s lease ends (docs/scaling.md): slots are skipped meanwhile.
        kinds = ("kill-S", "crash") if domain == "S" else ("redis-restart", "kill-P2", "crash")
        previous = None
        for slot in slots:
            if slot in done:
                previous = slot
                continue
            done.add(slot)
            self.check("job-slots")
            entries = by_slot[slot]
            if len(entries) > 1:
                again = " run again after a SIGKILL cut its run short" if any(
                    r.get("interrupted") for r in entries) else ""
                runs_of_slot = [(r.get("daemon"), r["runId"], r["trigger"], r["status"], r["startedAt"])
                                for r in entries]
                detail = f"job slot {slot} ({domain}) handled {len(entries)} times{again}: {runs_of_slot}"
                with self.lock:
                    excuse = domain == "pair" and any(w.kind == "redis-restart" and w.overlaps_wall(slot, slot)
                                                      for w in self.windows)
                if excuse:
                    self.excused["job-slots: a slot claimed again after Redis lost its data"] += 1
                else:
                    self.violate("job-slots", detail)
            if previous is not None and slot - previous > 1000:
                with self.lock:
                    excuse = any(w.kind in kinds and w.overlaps_wall(previous, slot) for w in self.windows)
                if excuse:
                    self.excused[f"job-slots: slots missed during a fault ({domain})"] += (slot - previous) // 1000 - 1
                else:
                    self.violate("job-slots", f"job ({domain}): slots between {previous} and {slot} never handled "
                                              f"({(slot - previous) // 1000 - 1} missed) with no fault then")
            previous = slot
        with self.lock:
            kill_windows = [w for w in self.windows if w.kind == "kill-S" and w.end_wall and w.spawn_wall]
        if domain == "S":
            for w in kill_windows:
                if w.end_wall > horizon or id(w) in self.catch_up_checked:
                    continue
                if not slots or slots[0] > w.start_wall:
                    continue  # the history no longer reaches back to this kill
                self.catch_up_checked.add(id(w))
                down = [s for s in by_slot if w.start_wall < s <= w.spawn_wall]
                around = [s for s, entries in by_slot.items() if w.start_wall < s <= w.end_wall
                          and any(r["status"] not in ("skipped", "missed") for r in entries)]
                missed_any = (w.spawn_wall // 1000) * 1000 > w.start_wall
                self.check("job-catch-up")
                if "catchup" in INJECT and down:
                    INJECT.discard("catchup")
                    down = down + down  # self-test: as if the missed slots ran twice
                if len(down) > 1:
                    self.violate("job-catch-up", f"{len(down)} runs for slots missed while S was down "
                                                 f"({w.start_wall}..{w.spawn_wall}): {sorted(down)}")
                elif missed_any and not around:
                    self.violate("job-catch-up", f"no run for the slots missed while S was down "
                                                 f"({w.start_wall}..{w.spawn_wall}; up at {w.end_wall})")

    # -- the run
    def spawn_workers(self):
        specs = [
            (publisher, "pub-S1", "S", 8),
            (publisher, "pub-S2", "S", 8),
            (publisher, "pub-P1", "P1", 8),
            (subscriber, "sub-S-wild", "S", ["soak:*"], False, False),
            (subscriber, "sub-S-exact", "S", ["soak:pub-S1:c0", "soak:pub-S1:c1", "soak:pub-S1:*"], False, False),
            (subscriber, "sub-S-stall", "S", ["soak:*"], False, True),
            (subscriber, "sub-P1-local", "P1", ["soak:*"], False, False),
            (subscriber, "sub-P2-cross", "P2", ["soak:pub-P1:*", "soak:*"], True, False),
            (locker, "lock-S-a", "S", "S"),
            (locker, "lock-S-b", "S", "S"),
            (locker, "lock-P1", "P1", "pair"),
            (locker, "lock-P2", "P2", "pair"),
            (prompter, "ask-S", "S"),
            (prompter, "ask-P2", "P2"),
            (webhooks, "webhook-S", "S"),
            (sse, "sse-S", "S"),
            (browser_ws, "ws-S", "S"),
        ]
        for fn, name, *args in specs:
            p = mp.Process(target=worker_main, args=(fn, self.shared, name, *args), name=name, daemon=True)
            p.start()
            self.processes.append(p)

    def chaos(self, end):
        schedule = [("kill-S", 0.0), ("stall-long", 12.0), ("redis-restart", 2.0), ("fd-exhaustion", 4.0),
                    ("stall-short", 1.0), ("kill-S", 3.0), ("redis-restart", 0.0), ("kill-P2", 0.0)]
        if os.environ.get("SOAK_SCHEDULE"):  # e.g. "kill-S:0,redis-restart:2" to repeat some faults only
            schedule = [(kind, float(amount)) for kind, _, amount in
                        (item.partition(":") for item in os.environ["SOAK_SCHEDULE"].split(","))]
        round_seconds = float(os.environ.get("SOAK_ROUND") or max(8.0, min(25.0, SECONDS / 24)))
        i = 0
        while mono() + round_seconds <= end:
            round_end = mono() + round_seconds
            # Traffic alone first: the daemons' first resource samples are taken after it.
            kind, amount = schedule[(i - 1) % len(schedule)] if i else ("warm-up", 0.0)
            i += 1
            print(f"[{time.strftime('%H:%M:%S')}] round {i}: {kind} ({amount:g})", flush=True)
            if kind.startswith("kill-"):
                self.kill(kind[5:], amount)
            elif kind == "redis-restart":
                self.restart_redis(amount)
            elif kind == "fd-exhaustion":
                self.exhaust(amount)
            elif kind == "stall-long" or kind == "stall-short":
                window = self.stall(amount, kind)
                threading.Timer(amount, window.close).start()
            while mono() < round_end:  # traffic runs; daemons are watched and jobs audited meanwhile
                self.watch_daemons()
                if mono() - self.last_audit > 10:
                    self.audit_jobs()
                    self.last_audit = mono()
                time.sleep(0.2)
            self.sample_resources()
        while mono() < end:
            self.watch_daemons()
            time.sleep(0.2)

    def run(self):
        print(f"soak: {SECONDS:g} s, seed {SEED}, photond {PHOTOND}, work directory {self.workdir}", flush=True)
        self.job_runs, self.job_checked, self.catch_up_checked = {}, {}, set()
        self.last_audit = mono()
        self.consumer_done = threading.Event()
        consumer = threading.Thread(target=self.consume, daemon=True)
        consumer.start()
        started = mono()
        try:
            self.start()
            self.spawn_workers()
            self.chaos(started + SECONDS)
        finally:
            self.shared.stop.set()
            for p in self.processes:
                p.join(DEADLINE)
                if p.is_alive():
                    self.violate("availability", f"worker {p.name} did not stop within {DEADLINE:.0f} s")
                    p.kill()
            self.audit_jobs(final=True)
            self.sample_resources()
            self.stop_daemons()
            self.consumer_done.set()
            consumer.join(DEADLINE)
        return self.report(mono() - started)

    def stop_daemons(self):
        for d in getattr(self, "daemons", {}).values():
            if d.proc is None or d.proc.poll() is not None:
                continue
            d.expected_exit = True
            d.proc.send_signal(signal.SIGTERM)
            try:
                code = d.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                d.proc.kill()
                code = "none (killed after ignoring SIGTERM)"
            if code != 0:
                self.violate("availability", f"photond {d.target} exited with {code} on SIGTERM:\n{d.tail()}")
        if getattr(self, "redis", None):
            self.redis.kill()

    def report(self, elapsed):
        lines = ["", f"soak report: {elapsed:.0f} s, seed {SEED}, photond {PHOTOND}", "",
                 f"{'invariant':<16} {'checks':>10} {'violations':>10}  meaning"]
        total = 0
        for invariant, meaning in INVARIANTS:
            v = len(self.violations.get(invariant, []))
            total += v
            lines.append(f"{invariant:<16} {self.checks[invariant]:>10} {v:>10}  {meaning}")
        for invariant in self.violations:
            if invariant not in dict(INVARIANTS):
                total += len(self.violations[invariant])
                lines.append(f"{invariant:<16} {'':>10} {len(self.violations[invariant]):>10}")
        lines += ["", f"{'fault':<16} {'injected':>10}"]
        for fault in FAULTS:
            lines.append(f"{fault:<16} {self.faults[fault]:>10}")
        if self.excused:
            lines += ["", "failures explained by an injected fault (not violations):"]
            for what, n in sorted(self.excused.items()):
                lines.append(f"  {n:>8}  {what}")
                if what in self.excused_example:
                    lines.append(f"            e.g. {self.excused_example[what][:160]}")
        lines += ["", "figures:"]
        lines += [f"  {n:>12}  {what}" for what, n in sorted(self.notes.items())]
        for domain, runs in sorted(self.job_runs.items()):
            statuses = collections.Counter(r["status"] + (" (interrupted)" if r.get("interrupted") else "")
                                           for r in runs.values())
            lines.append(f"  job runs seen ({domain}): " + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())))
        for pid, (target, beyond, rss) in sorted(self.resource_samples.items()):
            peak = self.resource_max[pid]
            lines.append(f"  resources {target} pid {pid}: descriptors beyond connections {beyond} -> max {peak[1]}, "
                         f"RSS {rss >> 20} -> max {peak[2] >> 20} MiB")
        if self.holder_reports:
            lines += ["", "processes found holding a killed daemon's socket:"]
            lines += [f"  {text}" for text in self.holder_reports[:10]]
        if self.known:
            lines += ["", "known findings:"] + [f"  {n:>6}  {what}" for what, n in self.known.items()]
        if total:
            lines += ["", f"FAILED: {total} violation(s); the first of each kind:"]
            for invariant, details in self.violations.items():
                lines.append(f"  {invariant}: {details[0][:500]}")
        else:
            lines += ["", "PASSED: no violation"]
        print("\n".join(lines), flush=True)
        return 1 if total else 0


def answers(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def socket_inode(path):
    """The inode of the listening socket bound to path (from /proc/net/unix), or None."""
    try:
        with open("/proc/net/unix") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 8 and fields[7] == path and fields[5] == "01":  # state LISTEN
                    return fields[6]
    except OSError:
        pass
    return None


def socket_holders(inode):
    """(pid, command line) of every process with the socket open."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                    found.append((int(pid), cmd[:120]))
                    break
        except OSError:
            continue
    return found


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ValueError("no VmRSS")


def main():
    if websocket is None:
        print("soak: python3-websocket is missing (scripts/install-deps test installs it)", file=sys.stderr)
        return 2
    if not os.access(PHOTOND, os.X_OK):
        print(f"soak: no photond at {PHOTOND} (set PHOTOND)", file=sys.stderr)
        return 2
    mp.set_start_method("fork")
    keep = os.environ.get("SOAK_DIR")
    workdir = keep or tempfile.mkdtemp(prefix="soak", dir="/tmp")  # short: socket paths stay < 108 bytes
    os.makedirs(workdir, exist_ok=True)
    soak = Soak(workdir)
    code = 1
    try:
        code = soak.run()
    finally:
        for p in soak.processes:
            if p.is_alive():
                p.kill()
        if not keep and code == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not keep:
            print(f"soak: daemons' output kept in {workdir}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
