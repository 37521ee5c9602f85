# The resume model test's connections: a subscriber on the socket, the WebSocket or /events that resumes from an eventId and can be cut at any point, and a pipelining publisher.
"""Each subscriber connection turns what arrives into resume_model.Received items, whole lines (or
whole events) only: what a connection cut off mid-line had not fully received does not count. Reads
either take what has already arrived (never waiting) or wait for an event with a deadline
(BLACKBOX_TIMEOUT); nothing here sleeps for time to pass."""

import json
import select
import socket
import time

import websocket

from harness import TIMEOUT
from resume_model import Received


class Closed(Exception):
    """The daemon closed the connection."""


class Unexpected(AssertionError):
    """A line the protocol does not allow here (an error, a wrong status, bad framing)."""


def _readable(sock):
    return bool(select.select([sock], [], [], 0)[0])


class _Subscriber:
    """What the three transports share: items parsed from what arrived, and the two ways to read."""

    transport = ""

    def __init__(self, subscription, resume_from):
        self.subscription = subscription
        self.resume_from = resume_from
        self.closed = False

    def read_available(self, out):
        """Appends to `out` the items that have arrived by now (possibly none), without waiting."""
        while not self.closed and self._arrived():
            out.extend(self._read_unit())

    def read_until(self, done, deadline, out):
        """Appends items to `out` until done(out) holds; fails at the deadline. (Into `out`, so
        that what came before a close by the daemon is kept.)"""
        while not done(out):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.transport} {self.subscription!r}: not done before the deadline; read {out}")
            if select.select([self._socket()], [], [], remaining)[0]:
                out.extend(self._read_unit())

    def _arrived(self):
        return _readable(self._socket())

    def _receive(self, what):
        """Appends what arrived on the socket to self.buf; Closed when the daemon closed it."""
        try:
            chunk = self.sock.recv(1 << 16)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise Closed(f"{what} {self.subscription!r} closed by the daemon")
        self.buf += chunk


class _LineSubscriber(_Subscriber):
    """Socket and WebSocket: the protocol's lines; the subscribe's result first."""

    def __init__(self, subscription, resume_from, request_id):
        super().__init__(subscription, resume_from)
        self.request_id = request_id

    def subscribe(self):
        self._send({"type": "subscribe", "id": self.request_id, "channel": self.subscription,
                    "lastEventId": self.resume_from})

    def send_marker(self, ident):
        """A ping: its pong comes after every line queued to this connection before it."""
        self._send({"type": "ping", "id": ident})

    def _item(self, obj):
        kind = obj.get("type")
        if kind == "channel_message":
            if obj.get("replay") not in (None, True):
                raise Unexpected(f"a replay mark that is not true: {obj}")
            return Received("message", obj, replay=obj.get("replay") is True)
        if kind == "result" and obj == {"type": "result", "id": self.request_id, "success": True,
                                        "data": {"subscribed": True, "channel": self.subscription}}:
            return Received("ack", obj)
        if obj == {"type": "refresh_needed", "id": self.request_id, "channel": self.subscription}:
            return Received("refresh", obj)
        if kind == "pong":
            return Received("pong", obj)
        raise Unexpected(f"{self.transport} {self.subscription!r}: unexpected line {obj}")


class SocketSubscriber(_LineSubscriber):
    transport = "socket"

    def __init__(self, path, subscription, resume_from, request_id):
        super().__init__(subscription, resume_from, request_id)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.buf = bytearray()
        self.subscribe()

    def _socket(self):
        return self.sock

    def _send(self, obj):
        self.sock.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def _read_unit(self):
        self._receive("socket")
        items = []
        while (index := self.buf.find(b"\n")) >= 0:
            line = bytes(self.buf[:index])
            del self.buf[: index + 1]
            items.append(self._item(json.loads(line)))
        return items

    def abort(self):
        """Closes at once, whatever is unread (the kernel resets the connection then)."""
        self.closed = True
        self.sock.close()


class WebSocketSubscriber(_LineSubscriber):
    transport = "websocket"

    def __init__(self, port, token, subscription, resume_from, request_id):
        super().__init__(subscription, resume_from, request_id)
        # websocket-client reads exactly the bytes of the frame it parses (the handshake byte by
        # byte), so select() on its socket tells whether a frame has begun to arrive.
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws?token={token}", timeout=TIMEOUT)
        self.subscribe()

    def _socket(self):
        return self.ws.sock

    def _send(self, obj):
        self.ws.send(json.dumps(obj, separators=(",", ":")))

    def _read_unit(self):
        try:
            opcode, data = self.ws.recv_data(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionResetError):
            self.closed = True
            raise Closed(f"WebSocket {self.subscription!r} closed by the daemon") from None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            self.closed = True
            raise Closed(f"WebSocket {self.subscription!r} closed by the daemon: {data!r}")
        if opcode != websocket.ABNF.OPCODE_TEXT:
            return []  # a ping (answered by the library) or a pong
        return [self._item(json.loads(data))]

    def abort(self):
        """Closes the TCP connection without a close frame."""
        self.closed = True
        self.ws.shutdown()


class EventStreamSubscriber(_Subscriber):
    """/events: Server-Sent Events; resumes with Last-Event-ID (or ?lastEventId= for clients that
    cannot set headers); a gap is an `event: photon-gap`."""

    transport = "events"

    def __init__(self, port, token, subscription, resume_from, in_query):
        super().__init__(subscription, resume_from)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = bytearray()
        self.headers_done = False
        query = f"channel={subscription}&token={token}"
        headers = f"Host: 127.0.0.1:{port}\r\n"
        if in_query:
            query += f"&lastEventId={resume_from}"
        else:
            headers += f"Last-Event-ID: {resume_from}\r\n"
        self.sock.sendall(f"GET /events?{query} HTTP/1.1\r\n{headers}\r\n".encode())

    def _socket(self):
        return self.sock

    def _read_unit(self):
        self._receive("/events")
        if not self.headers_done:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return []
            status = bytes(self.buf[: self.buf.find(b"\r\n")])
            if not status.startswith(b"HTTP/1.1 200 "):
                raise Unexpected(f"/events {self.subscription!r}: {bytes(self.buf)!r}")
            del self.buf[: end + 4]
            self.headers_done = True
        items = []
        while (end := self.buf.find(b"\n\n")) >= 0:
            block = bytes(self.buf[:end]).decode()
            del self.buf[: end + 2]
            item = self._event(block)
            if item is not None:
                items.append(item)
        return items

    def _event(self, block):
        fields = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                continue  # a keep-alive comment
            key, _, value = line.partition(":")
            fields[key] = value[1:] if value.startswith(" ") else value
        if "data" not in fields:
            return None  # `retry: 2000`
        data = json.loads(fields["data"])
        kind = fields.get("event", "message")
        if kind == "message" and data.get("type") == "channel_message" and fields.get("id") == data.get("eventId"):
            return Received("message", data)
        if kind == "photon-gap" and data.get("type") == "events_gap" and data.get("lastEventId") == self.resume_from:
            return Received("refresh", data)
        raise Unexpected(f"/events {self.subscription!r}: unexpected event {fields}")

    def abort(self):
        self.closed = True
        self.sock.close()


class Publisher:
    """A socket connection that publishes `{"p": NAME, "n": N}`, N counting up, pipelined: replies
    are read when they have arrived, or waited for at a sync."""

    def __init__(self, path, name, log):
        self.name = name
        self.log = log
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.buf = bytearray()
        self.sent = 0  # messages sent; the next is numbered `sent`
        self.pending = {}  # n -> channel, sent and not yet answered

    def publish(self, channel, count):
        lines = []
        for _ in range(count):
            n = self.sent
            self.sent += 1
            self.pending[n] = channel
            lines.append(json.dumps({"type": "publish", "id": f"{self.name}:{n}", "channel": channel,
                                     "message": {"p": self.name, "n": n}}, separators=(",", ":")))
        self.sock.sendall(("\n".join(lines) + "\n").encode())
        return range(self.sent - count, self.sent)

    def read_replies(self, wait):
        """Reads the replies that have arrived; with wait, until every publish is answered."""
        deadline = time.monotonic() + TIMEOUT
        while self.pending and (wait or _readable(self.sock)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"publisher {self.name}: {len(self.pending)} publishes unanswered")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise Closed(f"publisher {self.name}: closed by the daemon")
            self.buf += chunk
            while (index := self.buf.find(b"\n")) >= 0:
                reply = json.loads(bytes(self.buf[:index]))
                del self.buf[: index + 1]
                self._answered(reply)

    def _answered(self, reply):
        _, _, number = str(reply.get("id")).rpartition(":")
        n = int(number) if number.isdigit() else -1
        channel = self.pending.pop(n, None)
        if (channel is None or reply.get("type") != "result" or reply.get("success") is not True
                or reply["data"].get("channel") != channel):
            raise Unexpected(f"publisher {self.name}: unexpected reply {reply}")
        self.log.add(reply["data"]["eventId"], channel, self.name, n)

    def close(self):
        self.sock.close()
