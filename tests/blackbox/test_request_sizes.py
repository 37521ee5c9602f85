# Requests of every size on one connection, and the framing of the last line, against the real daemon.
import json
import math
import random
import socket
import threading
import unittest

from harness import TIMEOUT, BlackboxTest, encode, wait_until

MAX_LINE = 1 << 20  # the daemon's default --max-line-bytes ("1m")
TEXT = (b"abcdefghijklmnopqrstuvwxyz" * (MAX_LINE // 26 + 1))[:MAX_LINE]
NUMBERS = b"123," * (MAX_LINE // 4)


class RequestMix:
    """A seeded stream of valid requests: payload sizes log-uniform from 0 B up to what fits in one
    line, as strings, arrays of numbers or nested objects, mixed with pings, status, locks.

    A publish's line is built from slices of TEXT and NUMBERS, which are their own JSON (letters
    need no escaping; "123,...,0" is the array's compact form): encoding hundreds of megabytes with
    json.dumps, and parsing the arrays back, took most of the test's time in the client."""

    def __init__(self, seed):
        self.random = random.Random(seed)
        self.count = 0

    def size(self, room):
        if self.random.randrange(50) == 0:
            return 0
        return min(room, int(2 ** self.random.uniform(0, math.log2(room))))

    def next(self):
        """(id, type, the request's line, the publish's channel and message JSON or None)."""
        self.count += 1
        ident = f"r{self.count}"
        kind = self.random.randrange(10)
        if kind == 0:
            return ident, "ping", encode({"type": "ping", "id": ident}), None
        if kind == 1:
            return ident, "status", encode({"type": "status", "id": ident}), None
        if kind in (2, 3):
            request = {"type": "lock" if kind == 2 else "unlock", "id": ident, "lockName": f"mix:{self.count % 4}",
                       "sessionId": "mix"}
            if kind == 2:
                request["timeout"] = 60000
            return ident, request["type"], encode(request), None
        room = MAX_LINE - 200
        size = self.size(room)
        shape = kind % 3
        if shape == 0:
            message = b'"' + TEXT[:size] + b'"'
        elif shape == 1:
            message = b"[" + NUMBERS[: size // 4 * 4] + b"0]"
        else:
            message = b'{"a":{"b":["' + TEXT[:size] + b'",{"c":null}]},"d":true}'
        channel = f"mix:{kind}"
        line = b'{"type":"publish","id":"%s","channel":"%s","message":%s}\n' % (
            ident.encode(), channel.encode(), message)
        return ident, "publish", line, (channel, message)


class Subscriber(threading.Thread):
    """Reads a subscriber connection on its own thread (so its queue never reaches the daemon's bound).

    Counts the channel_message lines and keeps those whose ordinal the test put in `wanted` before
    publishing them (holding every line would hold all the megabytes sent); keeps every other
    line with the count of messages before it."""

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock
        self.wanted = set()
        self.kept = {}
        self.count = 0
        self.others = []
        self.error = None

    def run(self):
        buf = bytearray()
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return
                buf += chunk
                start = 0
                while True:
                    end = buf.find(b"\n", start)
                    if end < 0:
                        break
                    if buf.startswith(b'{"type":"channel_message"', start):
                        if self.count in self.wanted:
                            self.kept[self.count] = bytes(buf[start:end])
                        self.count += 1
                    else:
                        self.others.append((self.count, bytes(buf[start:end])))
                    start = end + 1
                del buf[:start]
        except OSError as error:
            self.error = error


class RequestSizesTest(BlackboxTest):
    def setUp(self):
        self.d = self.daemon()

    def test_twenty_17_kb_publishes_in_a_row(self):
        # The reported reproduction: the connection used to be dropped at about the 20th.
        c = self.client(self.d)
        for i in range(60):
            reply = c.call({"type": "publish", "id": f"p{i}", "channel": "c", "message": "x" * 17000})
            self.assertIsInstance(reply["data"].pop("eventId"), str, reply)
            self.assertEqual(reply, {"type": "result", "id": f"p{i}", "success": True,
                                     "data": {"published": True, "channel": "c", "delivered": 0}})

    def test_ten_thousand_requests_of_any_size_on_one_connection(self):
        sub = self.client(self.d)
        self.assertTrue(sub.call({"type": "subscribe", "id": "s", "channel": "mix:*"})["success"])
        reader = Subscriber(sub.sock)
        sub.sock.settimeout(None)
        reader.start()

        c = self.client(self.d)
        mix = RequestMix(20261207)
        sent = []
        window = 16  # requests in flight: the client pipelines, as the protocol allows
        answered = 0
        publishes = 0
        for _ in range(10000):
            ident, kind, line, published = mix.next()
            sampled = len(sent) % 97 == 0
            if kind == "publish":
                if sampled:
                    reader.wanted.add(publishes)  # before the daemon can deliver it
                publishes += 1
            c.send_raw(line)
            sent.append((ident, kind, published if sampled else None))
            while len(sent) - answered >= window:
                self.check_reply(c.reply(), sent[answered])
                answered += 1
        while answered < len(sent):
            self.check_reply(c.reply(), sent[answered])
            answered += 1

        published = [entry for entry in sent if entry[1] == "publish"]
        # The publisher's replies came after each delivery was queued; a last round trip on the
        # subscriber's connection orders after all of them.
        sub.sock.sendall(encode({"type": "ping", "id": "last"}))

        wait_until(lambda: reader.others, timeout=TIMEOUT * 3, message="the subscriber's pong after every delivery")
        self.assertIsNone(reader.error)
        self.assertEqual([(count, json.loads(line)) for count, line in reader.others],
                         [(len(published), {"type": "pong", "id": "last"})],
                         "the pong, after every message, and no other line")
        self.assertEqual(reader.count, len(published))
        checked = 0
        for ordinal, (ident, _, request) in enumerate(published):
            if request is not None:
                channel, message = request
                delivered = json.loads(reader.kept[ordinal])
                self.assertEqual(delivered["channel"], channel)
                self.assertEqual(delivered["message"], json.loads(message))
                checked += 1
        self.assertEqual(sorted(reader.kept), sorted(reader.wanted))
        self.assertGreater(checked, 50)
        self.assertGreater(len(published), 5000)
        c.ping("still-served")

    def check_reply(self, reply, entry):
        ident, kind, _ = entry
        self.assertEqual(reply.get("id"), ident, reply)
        self.assertNotEqual(reply.get("type"), "error", reply)
        if kind == "ping":
            self.assertEqual(reply["type"], "pong")
        else:
            self.assertEqual(reply["type"], "result", reply)


class LastLineTest(BlackboxTest):
    def setUp(self):
        self.d = self.daemon()

    def half_close_after(self, data):
        """Sends `data`, shuts down the writing side and returns every line read until the daemon closes."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(TIMEOUT)
            s.connect(self.d.sock_path)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            received = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                received += chunk
        self.assertTrue(received.endswith(b"\n") or received == b"", received)
        return [json.loads(line) for line in received.splitlines()]

    def test_a_last_line_without_newline_is_served_then_closed(self):
        self.assertEqual(self.half_close_after(b'{"type":"ping","id":"only"}'), [{"type": "pong", "id": "only"}])

    def test_pipelined_lines_and_an_unterminated_last_one(self):
        lines = self.half_close_after(b'{"type":"ping","id":"a"}\n{"type":"ping","id":"b"}\r\n{"type":"ping","id":"c"}')
        self.assertEqual([line["id"] for line in lines], ["a", "b", "c"])

    def test_an_unterminated_invalid_last_line_gets_its_error(self):
        lines = self.half_close_after(b'{"type":"ping","id":"a"}\n{"type":"ping",')
        self.assertEqual(lines[0], {"type": "pong", "id": "a"})
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines[1]["type"], "error")
        self.assertEqual(lines[1]["id"], "unknown")

    def test_a_blank_last_line_gets_nothing(self):
        self.assertEqual(self.half_close_after(b'{"type":"ping","id":"a"}\n   '), [{"type": "pong", "id": "a"}])


if __name__ == "__main__":
    unittest.main()
