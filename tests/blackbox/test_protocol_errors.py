# Framing, validation errors, id echo rules and input limits of the wire protocol, against the real daemon.
import json
import socket
import threading
import unittest

from harness import (TIMEOUT, BlackboxTest, Client, assert_nothing_before_pong, encode, unread_by_daemon,
                     wait_until)



def nested(depth):
    """A publish request whose JSON nesting depth is exactly `depth` (the request object counts as 1)."""
    return (b'{"type":"publish","id":"deep","channel":"c","message":' + b"[" * (depth - 1) + b"]" * (depth - 1)
            + b"}\n")


class ErrorsTest(BlackboxTest):
    def setUp(self):
        self.d = self.daemon()
        self.c = self.client(self.d)

    def assert_error(self, reply, ident, *words):
        self.assertEqual(reply.get("type"), "error", reply)
        self.assertEqual(reply.get("id"), ident, reply)
        self.assertIsInstance(reply.get("error"), str, reply)
        self.assertTrue(reply["error"], reply)
        for word in words:
            self.assertIn(word.lower(), reply["error"].lower(), reply)

    def assert_usable(self):
        self.c.ping("still-usable")

    def test_invalid_requests_get_errors_and_the_connection_stays(self):
        cases = [
            # raw line, expected id, words the message must contain
            (b'{"type":"ping",', "unknown"),
            (b"not json at all", "unknown"),
            (b'{"type":"ping","id":"a"} trailing', "unknown"),
            (b"[1,2,3]", "unknown"),
            (b'"ping"', "unknown"),
            (b"42", "unknown"),
            (b"null", "unknown"),
            (b'{"type":"ping","id":"\xff\xfe"}', "unknown"),
            (b'{"id":"m1"}', "m1", "type"),
            (b'{"type":5,"id":"m2"}', "m2", "type"),
            (b'{"type":null,"id":"m3"}', "m3", "type"),
            (b'{"type":["ping"],"id":"m3b"}', "m3b", "type"),
            (b'{"type":"lokc","id":"m4"}', "m4", "lokc"),
            (b'{"type":"PING","id":"m5"}', "m5", "PING"),
            (b'{"type":"","id":"m6"}', "m6"),
            (b'{"type":"ping"}', "unknown", "id"),
            (b'{"type":"ping","id":7}', "unknown", "id"),
            (b'{"type":"ping","id":null}', "unknown", "id"),
            (b'{"type":"ping","id":{"x":"y"}}', "unknown", "id"),
            (b'{"type":"ping","id":["a"]}', "unknown", "id"),
            (b'{"type":"ping","id":true}', "unknown", "id"),
            (b'{"type":"subscribe","id":"s1"}', "s1", "channel"),
            (b'{"type":"subscribe","id":"s2","channel":5}', "s2", "channel"),
            (b'{"type":"subscribe","id":"s3","channel":""}', "s3", "channel"),
            (b'{"type":"subscribe","id":"s4","channel":null}', "s4", "channel"),
            (encode({"type": "subscribe", "id": "s5", "channel": "a" * 257}).rstrip(b"\n"), "s5", "channel"),
            (b'{"type":"subscribe","id":"s6","channel":"a\\u0001b"}', "s6", "channel"),
            (b'{"type":"subscribe","id":"s7","channel":"a\\nb"}', "s7", "channel"),
            (b'{"type":"subscribe","id":"s8","channel":"a*b"}', "s8", "channel"),
            (b'{"type":"subscribe","id":"s9","channel":"**"}', "s9", "channel"),
            (b'{"type":"unsubscribe","id":"u1"}', "u1", "channel"),
            (b'{"type":"unsubscribe","id":"u2","channel":3}', "u2", "channel"),
            (b'{"type":"publish","id":"p1","message":{}}', "p1", "channel"),
            (b'{"type":"publish","id":"p2","channel":"c"}', "p2", "message"),
            (b'{"type":"publish","id":"p3","channel":"board:*","message":1}', "p3", "channel"),
            (b'{"type":"publish","id":"p4","channel":"*","message":1}', "p4", "channel"),
            (b'{"type":"publish","id":"p5","channel":{"a":1},"message":1}', "p5", "channel"),
            (b'{"type":"subscribe","id":"x1","channel":"c","sessionId":5}', "x1", "sessionId"),
            (encode({"type": "publish", "id": "x2", "channel": "c", "message": 1, "sessionId": "s" * 257})
             .rstrip(b"\n"), "x2", "sessionId"),
        ]
        for raw, ident, *words in cases:
            with self.subTest(line=raw[:80]):
                self.c.send_raw(raw + b"\n")
                self.assert_error(self.c.reply(), ident, *words)
                self.assert_usable()

    def test_session_id_rule_holds_for_every_request_type(self):
        # docs/protocol.md: sessionId, "when present, a string of at most 256 bytes", for any request.
        for kind in ("ping", "status", "unsubscribe"):
            for value in (5, "s" * 257):
                with self.subTest(kind=kind, value=str(value)[:8]):
                    reply = self.c.call({"type": kind, "id": "sid", "channel": "c", "sessionId": value})
                    self.assert_error(reply, "sid", "sessionId")

    def test_over_long_id_is_refused(self):
        self.c.send({"type": "ping", "id": "i" * 257})
        reply = self.c.reply()
        self.assertEqual(reply["type"], "error", reply)
        self.assertIn("id", reply["error"])
        self.assert_usable()

    def test_a_daemon_without_methods_says_so(self):
        reply = self.c.call({"type": "command", "id": "c", "method": "m"})
        self.assertEqual(reply["type"], "error")
        self.assertIn("has no methods", reply["error"])
        reply = self.c.call({"type": "schedule", "id": "s", "jobId": "j", "method": "m", "cron": "* * * * *"})
        self.assertEqual(reply["success"], False)
        self.assertEqual(reply["data"]["reason"], "this photon has no methods to schedule")
        self.assertEqual(self.c.call({"type": "list_jobs", "id": "l"})["data"], {"jobs": []})
        self.assertEqual(self.c.call({"type": "list_methods", "id": "m"})["data"], {"photon": self.d.name, "methods": []})
        reply = self.c.call({"type": "prompt_response", "id": "c", "promptValue": True})
        self.assertEqual(reply["type"], "error")
        self.assert_usable()

    def test_boundary_values_are_accepted(self):
        self.assertEqual(self.c.call({"type": "ping", "id": ""}), {"type": "pong", "id": ""})
        long_id = "i" * 256
        self.assertEqual(self.c.call({"type": "ping", "id": long_id}), {"type": "pong", "id": long_id})
        self.c.subscribe("c" * 256, "long")
        self.c.subscribe("board:\u00e9t\u00e9 \U0001F600", "unicode")
        self.assertEqual(self.c.call({"type": "ping", "id": "sid", "sessionId": "s" * 256}),
                         {"type": "pong", "id": "sid"})
        self.assertEqual(self.c.call({"type": "ping", "id": "sid2", "sessionId": ""}), {"type": "pong", "id": "sid2"})

    def test_id_is_echoed_verbatim(self):
        for ident in ["sub_123", "with space", "\u00e9\u4e2d\U0001F600", "quote\"back\\slash", "0", "null"]:
            with self.subTest(ident=ident):
                self.assertEqual(self.c.call({"type": "ping", "id": ident}), {"type": "pong", "id": ident})
                reply = self.c.call({"type": "bogus", "id": ident})
                self.assert_error(reply, ident)

    def test_nothing_is_sent_on_connect(self):
        fresh = self.client(self.d)
        assert_nothing_before_pong(fresh, what="nothing before the first reply")

    def test_crlf_and_blank_lines(self):
        self.c.send_raw(b'{"type":"ping","id":"crlf"}\r\n')
        self.assertEqual(self.c.read_json(), {"type": "pong", "id": "crlf"})
        self.c.send_raw(b'\n\r\n\n{"type":"ping","id":"after-blank"}\n\n\r\n{"type":"ping","id":"next"}\r\n')
        self.assertEqual(self.c.read_json(), {"type": "pong", "id": "after-blank"})
        self.assertEqual(self.c.read_json(), {"type": "pong", "id": "next"})
        self.c.send_raw(b"\r\n\n")
        assert_nothing_before_pong(self.c, what="no reply to blank lines")

    def test_pipelined_requests_reply_in_order(self):
        sub = self.client(self.d)
        sub.subscribe("pipe")
        requests, expected = [], []
        for i in range(120):
            kind = i % 4
            if kind == 0:
                requests.append({"type": "ping", "id": f"r{i}"})
                expected.append(("pong", f"r{i}"))
            elif kind == 1:
                requests.append({"type": "publish", "id": f"r{i}", "channel": "pipe", "message": i})
                expected.append(("result", f"r{i}"))
            elif kind == 2:
                requests.append({"type": "nope", "id": f"r{i}"})
                expected.append(("error", f"r{i}"))
            else:
                requests.append({"type": "subscribe", "id": f"r{i}", "channel": f"own{i}"})
                expected.append(("result", f"r{i}"))
        self.c.send_raw(b"".join(encode(r) for r in requests))
        got = [self.c.read_json() for _ in requests]
        self.assertEqual([(g["type"], g["id"]) for g in got], expected)
        self.assertEqual([sub.next_message()["message"] for _ in range(30)], list(range(1, 120, 4)))

    def test_request_split_across_writes(self):
        data = b'{"type":"ping","id":"split"}\n'
        for i in range(len(data)):
            self.c.send_raw(data[i:i + 1])
        self.assertEqual(self.c.read_json(), {"type": "pong", "id": "split"})

    def test_no_reply_before_the_newline(self):
        # A complete request without its newline, read by the daemon; then a tail that makes the
        # whole line invalid. The one reply is the error for the whole line: no pong for its start.
        self.c.send_raw(b'{"type":"ping","id":"wait"}')
        wait_until(lambda: unread_by_daemon(self.c) == 0, message="the daemon to read the partial line")
        self.c.send_raw(b" trailing\n")
        self.assert_error(self.c.read_json(), "unknown")
        self.c.send_raw(b'{"type":"ping","id":"wait"}')
        wait_until(lambda: unread_by_daemon(self.c) == 0, message="the daemon to read the partial line")
        self.c.send_raw(b"\n")
        self.assertEqual(self.c.read_json(), {"type": "pong", "id": "wait"})

    def test_default_depth_limit_is_64(self):
        self.c.send_raw(nested(64))
        self.assertEqual(self.c.reply()["type"], "result")
        self.c.send_raw(nested(65))
        reply = self.c.reply()
        self.assertEqual(reply["type"], "error", reply)
        self.assertIn(reply["id"], ("deep", "unknown"))
        self.assert_usable()

    def test_default_line_limit_closes_the_connection(self):
        # 3 MiB with no newline: the error must come once 1 MiB is crossed, without the rest being read.
        payload = b'{"type":"publish","id":"big","channel":"c","message":"' + b"x" * (3 << 20)

        def writer():
            try:
                self.c.sock.settimeout(TIMEOUT)
                self.c.sock.sendall(payload)
            except OSError:
                pass  # the daemon closed the connection: expected

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        lines = self.c.wait_closed(TIMEOUT * 2)
        t.join(TIMEOUT)
        self.assertEqual(len(lines), 1, lines)
        reply = json.loads(lines[0])
        self.assertEqual(reply["type"], "error")
        self.assertIn("1048576", reply["error"])
        self.assertIn(reply["id"], ("unknown", "big"))
        # The daemon itself is fine.
        self.client(self.d).ping()


class LineLimitTest(BlackboxTest):
    def setUp(self):
        self.d = self.daemon(args=["--max-line-bytes", "4096"])

    def test_line_within_limit_is_served(self):
        c = self.client(self.d)
        c.publish("c", "x" * 3000)
        c.ping()

    def test_over_long_line_gets_error_then_close(self):
        c = self.client(self.d)
        c.ping()
        big = encode({"type": "publish", "id": "big", "channel": "c", "message": "x" * 6000})
        c.send_raw(big + b'{"type":"ping","id":"never"}\n')
        lines = c.wait_closed()
        self.assertEqual(len(lines), 1, f"expected only the error, got {lines!r}")
        reply = json.loads(lines[0])
        self.assertEqual(reply["type"], "error", reply)
        self.assertIn("4096", reply["error"])

    def test_limit_is_enforced_without_waiting_for_a_newline(self):
        c = self.client(self.d)
        try:
            c.send_raw(b'{"type":"publish","id":"big","channel":"c","message":"' + b"y" * 5000)
        except OSError:
            pass
        lines = c.wait_closed()
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(json.loads(lines[0])["type"], "error")
        self.client(self.d).ping()


class DepthLimitTest(BlackboxTest):
    def test_depth_flag(self):
        d = self.daemon(args=["--max-json-depth", "8"])
        c = self.client(d)
        c.send_raw(nested(8))
        self.assertEqual(c.reply()["type"], "result")
        c.send_raw(nested(9))
        self.assertEqual(c.reply()["type"], "error")
        c.send_raw(nested(40))
        self.assertEqual(c.reply()["type"], "error")
        # Deep objects too, not only arrays.
        deep_obj = {"type": "publish", "id": "o", "channel": "c", "message": {}}
        node = deep_obj["message"]
        for _ in range(20):
            node["k"] = {}
            node = node["k"]
        self.assertEqual(c.call(deep_obj)["type"], "error")
        c.ping()


class SubscriptionLimitTest(BlackboxTest):
    def test_limit_per_connection(self):
        d = self.daemon(args=["--max-subscriptions", "4"])
        c, other = self.client(d), self.client(d)
        for i in range(4):
            c.subscribe(f"ch{i}")
        reply = c.call({"type": "subscribe", "id": "fifth", "channel": "ch4"})
        self.assertEqual(reply["type"], "error", reply)
        self.assertEqual(reply["id"], "fifth")
        reply = c.call({"type": "subscribe", "id": "pattern", "channel": "ch*"})
        self.assertEqual(reply["type"], "error", reply)
        c.ping()
        # Re-subscribing to a channel already held is not a new subscription.
        c.subscribe("ch0", "again")
        # The refused subscription does not exist.
        self.assertEqual(other.publish("ch4", 1)["data"]["delivered"], 0)
        # The limit is per connection.
        for i in range(4):
            other.subscribe(f"other{i}")
        # Freeing one makes room.
        c.call({"type": "unsubscribe", "id": "u", "channel": "ch1"})
        c.subscribe("ch4")
        self.assertEqual(other.publish("ch4", 2)["data"]["delivered"], 1)
        self.assertEqual(c.next_message()["message"], 2)


class ConnectionLimitTest(BlackboxTest):
    def test_connection_over_the_limit_gets_error_and_close(self):
        d = self.daemon(args=["--max-connections", "3"])
        a = self.client(d)
        wait_until(lambda: a.status()["connections"] == 1, message="only one connection left")
        b, c = self.client(d), self.client(d)
        b.ping()
        c.ping()
        refused = self.hold(Client(d.sock_path))
        lines = refused.wait_closed()
        self.assertGreaterEqual(len(lines), 1, "the refused connection gets an error line")
        reply = json.loads(lines[0])
        self.assertEqual(reply["type"], "error", reply)
        a.ping()
        b.ping()
        self.assertGreaterEqual(a.status()["counters"]["connectionsRefused"], 1)
        # A freed slot is usable again.
        c.close()

        def fresh_connection_works():
            with Client(d.sock_path, timeout=5) as fresh:
                return fresh.call({"type": "ping", "id": "fresh"}) == {"type": "pong", "id": "fresh"}

        wait_until(fresh_connection_works, message="a new connection after one closed")


class HalfCloseTest(BlackboxTest):
    def test_replies_still_come_after_the_client_stops_sending(self):
        d = self.daemon()
        c = self.client(d)
        c.send_raw(b"".join(encode({"type": "ping", "id": f"h{i}"}) for i in range(50)))
        c.sock.shutdown(socket.SHUT_WR)
        lines = c.wait_closed()
        self.assertEqual([json.loads(line)["id"] for line in lines], [f"h{i}" for i in range(50)])


if __name__ == "__main__":
    unittest.main()
