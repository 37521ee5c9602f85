"""The browser listener of a real photond (--ui-port): the token file, the Host, Origin and token
checks, /api snapshots, the daemon protocol over a WebSocket (pub/sub both ways with the Unix
socket, a command with a prompt, bad input, the slow-consumer cut-off), Server-Sent Events, the
shutdown of open streams, and `photonctl ui`. Needs Debian's python3-websocket (websocket-client)."""
import http.client
import json
import os
import socket
import stat
import struct
import threading
import time
import unittest

import websocket

from harness import TIMEOUT, BlackboxTest, ctl, subscriber_counts, wait_until

MANIFEST = r"""
[methods.ask]
command = "read args; echo '{\"emit\":{\"channel\":\"board:progress\",\"event\":\"asking\"}}'; echo '{\"prompt\":{\"type\":\"text\",\"message\":\"Name?\"}}'; read answer; echo \"{\\\"result\\\":$answer}\""
interactive = true

[methods.echo]
command = "cat"
"""


def close_code(conn):
    """Reads frames until the peer's close frame; returns its status code."""
    while True:
        frame = conn.recv_frame()  # unlike recv(), does not answer the close itself
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            return struct.unpack("!H", frame.data[:2])[0]


class UiTest(BlackboxTest):
    def serve(self, *args, name="t", log_level="warn", test_clock=None):
        photon_dir = self.make_dir()
        manifest = os.path.join(photon_dir, "photon.toml")
        with open(manifest, "w") as f:
            f.write(MANIFEST)
        d = self.daemon(name, args=["--manifest", manifest, "--ui-port", "0", "--log-level", log_level, *args],
                        photon_dir=photon_dir, test_clock=test_clock)
        with open(self.ui_file(d)) as f:
            self.ui = json.load(f)
        self.port = self.ui["port"]
        self.token = self.ui["token"]
        return d

    _event_buffers = {}

    def ui_file(self, d):
        return os.path.join(d.photon_dir, "daemons", d.name + ".ui")

    def get(self, path, headers=None, method="GET"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        self.addCleanup(conn.close)
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response, body

    def api(self, path):
        response, body = self.get(path, {"Authorization": "Bearer " + self.token})
        self.assertEqual(response.status, 200, body)
        self.assertEqual(response.getheader("Content-Type"), "application/json")
        return json.loads(body)

    def ws(self, token=None, **options):
        url = f"ws://127.0.0.1:{self.port}/ws?token={self.token if token is None else token}"
        conn = websocket.create_connection(url, timeout=TIMEOUT, **options)
        self.addCleanup(conn.close)
        return conn

    def ws_call(self, conn, request):
        conn.send(json.dumps(request))
        return json.loads(conn.recv())

    def events(self, query, headers=""):
        """A raw event-stream connection; returns the socket after the response header."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(f"GET /events?{query} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{headers}\r\n".encode())
        return s

    def read_events(self, s, count):
        """The next `count` events as (id, data) pairs; comments and retry lines are skipped."""
        buffered = self._event_buffers.get(s, b"")
        events = []
        deadline = time.monotonic() + TIMEOUT
        while len(events) < count:
            while b"\n\n" not in buffered:
                self.assertLess(time.monotonic(), deadline, f"events: got {events}")
                chunk = s.recv(65536)
                self.assertTrue(chunk, "event stream ended")
                buffered += chunk
            block, buffered = buffered.split(b"\n\n", 1)
            fields = {}
            for line in block.decode().split("\n"):
                if line.startswith(":") or line.startswith("HTTP/") or ": " not in line and not line.startswith("retry"):
                    continue
                key, _, value = line.partition(": ")
                fields[key] = value
            if "data" in fields:
                events.append((fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])))
        self._event_buffers[s] = buffered
        return events

    # ---- the token file and the page

    def test_the_token_file_is_private_and_goes_away_with_the_daemon(self):
        d = self.serve()
        path = self.ui_file(d)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(self.ui["url"], f"http://127.0.0.1:{self.port}/")
        self.assertRegex(self.token, r"^[0-9a-f]{64}$")
        with d.client() as c:
            self.assertEqual(c.status()["ui"]["url"], self.ui["url"])
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(path))

    def test_each_start_has_a_new_token_and_a_stale_file_is_removed(self):
        d = self.serve()
        first = self.token
        d.stop()
        d2 = self.daemon("t", args=["--ui-port", "0"], photon_dir=d.photon_dir)
        with open(self.ui_file(d2)) as f:
            self.assertNotEqual(json.load(f)["token"], first)
        d2.stop()
        with open(self.ui_file(d2), "w") as f:
            f.write('{"url":"http://127.0.0.1:1/","token":"old"}')
        self.daemon("t", photon_dir=d.photon_dir)  # no listener this time
        self.assertFalse(os.path.exists(self.ui_file(d2)))

    def test_the_page_needs_no_token_and_forbids_framing(self):
        self.serve()
        response, body = self.get("/")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.getheader("Content-Type"), "text/html; charset=utf-8")
        self.assertIn("frame-ancestors 'none'", response.getheader("Content-Security-Policy"))
        self.assertEqual(response.getheader("X-Frame-Options"), "DENY")
        self.assertEqual(response.getheader("Referrer-Policy"), "no-referrer")
        self.assertIn(b"<html", body[:500].lower())
        head, _ = self.get("/", method="HEAD")
        self.assertEqual(head.status, 200)

    def test_unknown_paths_and_other_methods_are_refused(self):
        self.serve()
        response, body = self.get("/nope")
        self.assertEqual(response.status, 404)
        self.assertIn("no such page", json.loads(body)["error"])
        response, body = self.get("/api/status", {"Authorization": "Bearer " + self.token}, method="POST")
        self.assertEqual(response.status, 405)
        self.assertEqual(response.getheader("Allow"), "GET, HEAD")

    # ---- the checks

    def test_api_requires_the_token(self):
        self.serve()
        for path, headers in [("/api/status", {}),
                              ("/api/status", {"Authorization": "Bearer " + "0" * 64}),
                              ("/api/status?token=wrong", {}),
                              ("/api/locks", {"Authorization": "Basic " + self.token})]:
            response, body = self.get(path, headers)
            self.assertEqual(response.status, 401, path)
            self.assertEqual(response.getheader("WWW-Authenticate"), "Bearer")
            self.assertIn("token", json.loads(body)["error"])
        response, body = self.get("/api/status?token=" + self.token)
        self.assertEqual(response.status, 200)
        self.assertEqual(json.loads(body)["name"], "t")

    def test_only_loopback_host_names_with_this_port_are_served(self):
        self.serve()
        auth = {"Authorization": "Bearer " + self.token}
        for host in ["evil.example", f"evil.example:{self.port}", f"127.0.0.1.nip.io:{self.port}",
                     f"127.0.0.1:{self.port + 1 if self.port < 65535 else 1}", "192.168.1.2"]:
            response, body = self.get("/api/status", {**auth, "Host": host})
            self.assertEqual(response.status, 403, host)
            self.assertIn("loopback", json.loads(body)["error"])
            response, _ = self.get("/", {"Host": host})
            self.assertEqual(response.status, 403, f"the page itself, Host {host}")
        for host in [f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"LOCALHOST:{self.port}",
                     f"[::1]:{self.port}", "localhost"]:
            response, _ = self.get("/api/status", {**auth, "Host": host})
            self.assertEqual(response.status, 200, host)

    def test_foreign_origins_are_refused_on_every_path(self):
        d = self.serve("--ui-allow-origin", "http://localhost:5173")
        auth = {"Authorization": "Bearer " + self.token}
        for origin in ["http://evil.example", "null", f"http://127.0.0.1:{self.port + 1}",
                       f"https://127.0.0.1:{self.port}"]:
            response, body = self.get("/api/status", {**auth, "Origin": origin})
            self.assertEqual(response.status, 403, origin)
            self.assertIn("origin", json.loads(body)["error"])
        with self.assertRaises(websocket.WebSocketBadStatusException) as refused:
            self.ws(origin="http://evil.example")
        self.assertEqual(refused.exception.status_code, 403)
        for origin in [f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}", "http://localhost:5173"]:
            response, _ = self.get("/api/status", {**auth, "Origin": origin})
            self.assertEqual(response.status, 200, origin)
        conn = self.ws(origin=f"http://localhost:{self.port}")
        self.assertEqual(self.ws_call(conn, {"type": "ping", "id": "p"}), {"type": "pong", "id": "p"})
        with d.client() as c:
            self.assertEqual(c.status()["counters"]["connectionsRefused"], 0)

    def test_allowed_origins_may_read_answers_through_cors(self):
        self.serve("--ui-allow-origin", "http://localhost:5173")
        allowed = {"Origin": "http://localhost:5173"}
        response, body = self.get("/api/status", {**allowed, "Access-Control-Request-Method": "GET",
                                                  "Access-Control-Request-Headers": "authorization"},
                                  method="OPTIONS")
        self.assertEqual(response.status, 204, body)
        self.assertEqual(response.getheader("Access-Control-Allow-Origin"), "http://localhost:5173")
        self.assertIn("Authorization", response.getheader("Access-Control-Allow-Headers"))
        response, _ = self.get("/api/status", {**allowed, "Authorization": "Bearer " + self.token})
        self.assertEqual(response.status, 200)
        self.assertEqual(response.getheader("Access-Control-Allow-Origin"), "http://localhost:5173")
        self.assertEqual(response.getheader("Vary"), "Origin")
        # The listener's own page needs no CORS, and other origins get none.
        response, _ = self.get("/api/status", {"Origin": f"http://127.0.0.1:{self.port}",
                                               "Authorization": "Bearer " + self.token})
        self.assertIsNone(response.getheader("Access-Control-Allow-Origin"))
        response, _ = self.get("/api/status", {"Origin": "http://evil.example"}, method="OPTIONS")
        self.assertEqual(response.status, 403)
        response, _ = self.get("/api/status", method="OPTIONS")
        self.assertEqual(response.status, 405)
        s = self.events(f"channel=x&token={self.token}", headers="Origin: http://localhost:5173\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        self.assertIn(b"Access-Control-Allow-Origin: http://localhost:5173\r\n", head)

    def raw_request(self, target, headers=""):
        """Sends one request line as given (a fragment included, as a raw client may) and reads
        the response head."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{headers}Connection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
        s.close()
        return head

    def test_tokens_never_reach_the_log_at_any_level(self):
        for level in ["trace", "debug", "info", "warn", "error", "critical"]:
            with self.subTest(level=level):
                d = self.serve(log_level=level)
                token = self.token
                self.get(f"/api/status?token={token}", {"Host": "evil.example"})
                self.get(f"/api/status?token={token}", {"Origin": "http://evil.example"})
                self.get(f"/api/status?a=1&token={token}")
                self.assertIn(b" 200 ", self.raw_request(f"/api/status?%74oken={token}"))
                for target in [f"/api/status#token={token}", f"/api/status;token={token}",
                               f"/api/{token}", f"/api/status?t={token.upper()}", f"/{token}#x"]:
                    self.assertTrue(self.raw_request(target).startswith(b"HTTP/1.1 "), target)
                self.raw_request("/api/status", f"Authorization: Bearer {token}x\r\n")
                self.ws().close()
                s = self.events(f"channel=x&token={token}")
                s.close()
                d.stop()
                with open(d.log_path) as f:
                    log = f.read()
                self.assertNotIn(token.lower(), log.lower(), f"--log-level {level}")
                if level in ("trace", "debug"):
                    # The request lines are logged, each with the token replaced.
                    self.assertIn("GET /api/status#token=redacted", log)
                    self.assertIn("GET /api/[redacted]", log)

    def test_a_websocket_without_the_token_is_refused(self):
        self.serve()
        for token in ["", "nope"]:
            with self.assertRaises(websocket.WebSocketBadStatusException) as refused:
                self.ws(token=token)
            self.assertEqual(refused.exception.status_code, 401)

    # ---- /api

    def test_api_snapshots_answer_what_the_socket_answers(self):
        d = self.serve()
        with d.client() as c:
            self.assertTrue(c.call({"type": "lock", "id": "l", "lockName": "deploy", "lockTimeout": 60000})["success"])
            c.call({"type": "schedule", "id": "s", "jobId": "nightly", "method": "echo", "cron": "0 3 * * *"})
            c.subscribe("board:*")
            status = self.api("/api/status")
            self.assertEqual(status["name"], "t")
            self.assertEqual(status["locks"], 1)
            self.assertEqual(status["channels"], [{"channel": "board:*", "subscribers": 1, "messages": 0}])
            locks = self.api("/api/locks")["locks"]
            self.assertEqual([lock["name"] for lock in locks], ["deploy"])
            self.assertEqual(locks, c.call({"type": "list_locks", "id": "x"})["data"]["locks"])
            jobs = self.api("/api/jobs")["jobs"]
            self.assertEqual([job["id"] for job in jobs], ["nightly"])
            methods = self.api("/api/methods")
            self.assertEqual(sorted(m["name"] for m in methods["methods"]), ["ask", "echo"])
            c.publish("board:a", {"n": 1})
            wait_until(lambda: self.api("/api/status")["channels"][0]["messages"] == 1,
                       message="the pattern's message count")

    # ---- /ws

    def test_websocket_and_socket_clients_share_channels_both_ways(self):
        d = self.serve()
        browser = self.ws()
        self.assertEqual(self.ws_call(browser, {"type": "subscribe", "id": "s", "channel": "board:*"}),
                         {"type": "result", "id": "s", "success": True,
                          "data": {"subscribed": True, "channel": "board:*"}})
        with d.client() as tool, d.client() as watcher:
            watcher.subscribe("board:a")
            tool.publish("board:a", {"event": "task-moved", "taskId": "123"})
            message = json.loads(browser.recv())
            self.assertEqual(message["type"], "channel_message")
            self.assertEqual(message["channel"], "board:a")
            self.assertEqual(message["message"], {"event": "task-moved", "taskId": "123"})
            watcher.next_message()
            reply = self.ws_call(browser, {"type": "publish", "id": "p", "channel": "board:a", "message": {"from": "ui"}})
            self.assertEqual(reply["data"]["delivered"], 1)  # the watcher; never the publisher itself
            self.assertEqual(watcher.next_message()["message"], {"from": "ui"})
            # The daemon writes a connection's lines in order: its own message would come first.
            self.assertEqual(self.ws_call(browser, {"type": "ping", "id": "after"}), {"type": "pong", "id": "after"})

    def test_websocket_messages_from_one_publisher_arrive_in_order(self):
        d = self.serve()
        browser = self.ws()
        self.ws_call(browser, {"type": "subscribe", "id": "s", "channel": "seq"})
        with d.client() as tool:
            for i in range(2000):
                tool.send({"type": "publish", "id": f"p{i}", "channel": "seq", "message": i})
            received = [json.loads(browser.recv())["message"] for _ in range(2000)]
        self.assertEqual(received, list(range(2000)))

    def test_a_command_prompts_the_browser_and_gets_its_answer(self):
        self.serve()
        browser = self.ws()
        watcher = self.ws()
        self.ws_call(watcher, {"type": "subscribe", "id": "s", "channel": "board:*"})
        browser.send(json.dumps({"type": "command", "id": "c1", "method": "ask", "args": {}, "clientType": "beam"}))
        prompt = json.loads(browser.recv())
        self.assertEqual(prompt["type"], "prompt")
        self.assertEqual(prompt["id"], "c1")
        self.assertEqual(prompt["prompt"], {"type": "text", "message": "Name?"})
        emitted = json.loads(watcher.recv())
        self.assertEqual(emitted["channel"], "board:progress")
        browser.send(json.dumps({"type": "prompt_response", "id": "c1", "promptValue": "Ada"}))
        self.assertEqual(json.loads(browser.recv()), {"type": "result", "id": "c1", "success": True, "data": "Ada"})

    def test_bad_websocket_input_gets_errors_and_an_oversized_message_closes(self):
        self.serve("--max-line-bytes", "4k")
        browser = self.ws()
        reply = self.ws_call(browser, {"type": "lokc", "id": "x"})
        self.assertEqual(reply, {"type": "error", "id": "x", "error": 'unknown request type "lokc"'})
        browser.send("{not json")
        self.assertEqual(json.loads(browser.recv())["type"], "error")
        browser.send_binary(b'{"type":"ping","id":"b"}')
        self.assertIn("binary", json.loads(browser.recv())["error"])
        self.assertEqual(self.ws_call(browser, {"type": "ping", "id": "still"}), {"type": "pong", "id": "still"})
        browser.send(json.dumps({"type": "publish", "id": "big", "channel": "c", "message": "x" * 5000}))
        self.assertEqual(close_code(browser), 1009)  # message too big

    def test_a_websocket_that_does_not_read_is_cut_off_and_others_keep_receiving(self):
        d = self.serve("--output-hard-limit", "256k", "--output-soft-limit", "128k")
        # A small receive buffer, so the daemon's queue (not the kernel's) holds what it does not read.
        stalled = self.ws(sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
        self.ws_call(stalled, {"type": "subscribe", "id": "s", "channel": "flood"})
        reader = self.ws()
        self.ws_call(reader, {"type": "subscribe", "id": "s", "channel": "flood"})
        received = []
        progress = threading.Condition()

        def read():
            for _ in range(12000):
                n = json.loads(reader.recv())["message"]["n"]
                with progress:
                    received.append(n)
                    progress.notify_all()

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        with d.client() as tool:
            for i in range(12000):
                tool.send({"type": "publish", "id": f"p{i}", "channel": "flood", "message": {"n": i, "pad": "x" * 1000}})
                if i % 50 == 49:  # at the reader's pace: it is not the slow one
                    while tool.read_json()["id"] != f"p{i}":
                        pass
                    with progress:  # woken by each message the reader gets
                        self.assertTrue(progress.wait_for(lambda: len(received) >= i - 100, timeout=TIMEOUT),
                                        f"the reader at {len(received)}, not {i - 100}")
            wait_until(lambda: tool.status()["counters"]["droppedSlowConsumers"] == 1,
                       message="the stalled WebSocket cut off")
            thread.join(TIMEOUT)
            self.assertEqual(received, list(range(12000)))
            self.assertEqual(tool.status()["counters"]["droppedSlowConsumers"], 1)

    def test_a_browser_stream_held_over_the_soft_limit_is_cut_off_exactly_at_the_soft_time(self):
        # On a test clock: the soft limit's time is the daemon's, and a queue that stopped growing
        # is dropped when the clock reaches it, not a millisecond before.
        d = self.serve("--output-soft-limit", "64k", "--output-soft-seconds", "5s", "--output-hard-limit", "64m",
                       test_clock=True)
        stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(stalled.close)
        # A small receive buffer, so the daemon's queue (not the kernel's) holds what it does not read.
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.settimeout(TIMEOUT)
        stalled.connect(("127.0.0.1", self.port))
        stalled.sendall(f"GET /events?channel=flood&token={self.token} HTTP/1.1\r\n"
                        f"Host: 127.0.0.1:{self.port}\r\n\r\n".encode())
        with d.client() as tool:
            wait_until(lambda: ("flood", 1) in subscriber_counts(tool.status()), message="the stream subscribed")
            # 8 MiB: more than the kernel's buffers take, so the daemon queues the rest; it stays
            # over the soft limit from the clock's present time on, as nothing more is read.
            pad = "x" * 32768
            for i in range(256):
                tool.send({"type": "publish", "id": f"p{i}", "channel": "flood", "message": {"n": i, "pad": pad}})
            while tool.read_json()["id"] != "p255":
                pass
            dropped = lambda: tool.status()["counters"]["droppedSlowConsumers"]
            d.advance(4999)
            self.assertEqual((dropped(), tool.status()["ui"]["streams"]), (0, 1))
            d.advance(1)
            self.assertEqual(dropped(), 1)
            wait_until(lambda: tool.status()["ui"]["streams"] == 0, message="the stream closed")

    # ---- /events

    def test_events_carry_channel_messages_with_increasing_ids(self):
        d = self.serve()
        s = self.events(f"channel=board:*&channel=alerts&token={self.token}")
        with d.client() as tool:
            wait_until(lambda: tool.status()["channelCount"] == 2, message="the stream subscribed")
            tool.publish("board:a", {"n": 1})
            tool.publish("other", {"n": 2})
            tool.publish("alerts", {"n": 3})
            events = self.read_events(s, 2)
        self.assertEqual([e[2]["message"] for e in events], [{"n": 1}, {"n": 3}])
        self.assertEqual([e[1] for e in events], ["message", "message"])
        self.assertEqual([e[2]["channel"] for e in events], ["board:a", "alerts"])
        # The event's id is the message's eventId, as a socket subscriber receives it.
        self.assertEqual([e[0] for e in events], [e[2]["eventId"] for e in events])
        epoch, first = events[0][0].split("-")
        self.assertEqual(events[1][0], f"{epoch}-{int(first) + 2}")  # "other" was published between

    def test_a_reconnecting_event_stream_gets_what_it_missed_once(self):
        d = self.serve()
        with d.client() as tool:
            start = tool.publish("x", "start")["data"]["eventId"]
            for i in range(4):
                tool.publish("x", {"n": i})
                tool.publish("y", {"other": i})
        # The browser had seen the message with n = 1; it comes back with its id.
        first = self.events(f"channel=x&token={self.token}", headers=f"Last-Event-ID: {start}\r\n")
        seen = self.read_events(first, 4)
        self.assertEqual([e[2]["message"]["n"] for e in seen], [0, 1, 2, 3])
        last_seen = seen[1][0]
        again = self.events(f"channel=x&token={self.token}", headers=f"Last-Event-ID: {last_seen}\r\n")
        with d.client() as tool:
            wait_until(lambda: ("x", 2) in subscriber_counts(tool.status()), message="both streams subscribed")
            tool.publish("x", {"n": 4})
        self.assertEqual([e[2]["message"]["n"] for e in self.read_events(again, 3)], [2, 3, 4])
        # The same through the query, for clients that cannot set headers.
        query = self.events(f"channel=x&lastEventId={seen[2][0]}&token={self.token}")
        self.assertEqual([e[2]["message"]["n"] for e in self.read_events(query, 2)], [3, 4])
        # Another run's id, or none of this daemon's: the stream is told of its gap, then goes live.
        for foreign in ("abc", "0", "000000000000-1", f"{start.split('-')[0]}-999999"):
            stream = self.events(f"channel=x&lastEventId={foreign}&token={self.token}")
            [(_, kind, data)] = self.read_events(stream, 1)
            self.assertEqual((kind, data["lastEventId"]), ("photon-gap", foreign))
        response, body = self.get(f"/events?channel=x&lastEventId={'a' * 257}&token={self.token}")
        self.assertEqual(response.status, 400)

    def test_a_stream_that_was_away_too_long_is_told_it_missed_messages(self):
        d = self.serve("--replay-messages", "1024", "--replay-channel-messages", "2000")
        with d.client() as tool:
            first = tool.publish("x", -1)["data"]["eventId"]
            for i in range(1100):
                tool.send({"type": "publish", "id": f"p{i}", "channel": "x", "message": i})
            while tool.read_json()["id"] != "p1099":
                pass
        s = self.events(f"channel=x&token={self.token}", headers=f"Last-Event-ID: {first}\r\n")
        events = self.read_events(s, 1025)
        self.assertEqual(events[0][1], "photon-gap")
        self.assertEqual(events[0][2]["lastEventId"], first)
        self.assertIn("may have been missed", events[0][2]["message"])
        self.assertEqual([e[2]["message"] for e in events[1:]], list(range(1100 - 1024, 1100)))

    def test_a_busy_channel_does_not_push_a_quiet_ones_messages_out_of_the_replay(self):
        d = self.serve("--replay-messages", "1024", "--replay-channel-messages", "2000")
        with d.client() as tool:
            start = tool.publish("start", "start")["data"]["eventId"]
            for i in range(3):
                tool.publish("quiet", {"n": i})
            for i in range(1100):
                tool.send({"type": "publish", "id": f"p{i}", "channel": "busy", "message": i})
            while tool.read_json()["id"] != "p1099":
                pass
        # Over the 1024 kept in all, but the busy channel gives up its own oldest first.
        s = self.events(f"channel=quiet&token={self.token}", headers=f"Last-Event-ID: {start}\r\n")
        with d.client() as tool:
            wait_until(lambda: ("quiet", 1) in subscriber_counts(tool.status()), message="the stream subscribed")
            tool.publish("quiet", {"n": 3})
        events = self.read_events(s, 4)
        self.assertEqual([e[1] for e in events], ["message"] * 4)
        self.assertEqual([e[2]["message"]["n"] for e in events], [0, 1, 2, 3])
        # The busy channel's stream from the start is told of its loss.
        busy = self.events(f"channel=busy&token={self.token}", headers=f"Last-Event-ID: {start}\r\n")
        self.assertEqual(self.read_events(busy, 1)[0][1], "photon-gap")

    def test_deeply_nested_messages_keep_their_event_id(self):
        d = self.serve()
        s = self.events(f"channel=x&token={self.token}")
        nested = 1
        for _ in range(60):
            nested = {"a": nested}
        with d.client() as tool:
            wait_until(lambda: ("x", 1) in subscriber_counts(tool.status()), message="the stream subscribed")
            tool.publish("x", nested)
        [(event_id, kind, data)] = self.read_events(s, 1)
        self.assertEqual(event_id, data["eventId"])
        self.assertEqual(data["message"], nested)

    def test_a_refused_subscription_ends_the_event_stream_and_repeats_are_one(self):
        d = self.serve("--max-total-subscriptions", "2")
        first = self.events(f"channel=a&channel=a&channel=b&token={self.token}")
        with d.client() as tool:
            wait_until(lambda: tool.status()["channelCount"] == 2, message="a and b subscribed once each")
        second = self.events(f"channel=c&token={self.token}")
        [(_, kind, data)] = self.read_events(second, 1)
        self.assertEqual(kind, "photon-error")
        self.assertIn("subscriptions", data["error"])
        second.settimeout(TIMEOUT)
        rest = self._event_buffers.get(second, b"")
        while True:
            chunk = second.recv(4096)
            if not chunk:
                break
            rest += chunk
        self.assertEqual(rest, b"")  # nothing after the error: the stream ended
        with d.client() as tool:
            tool.publish("a", {"n": 1})
        self.assertEqual(self.read_events(first, 1)[0][2]["message"], {"n": 1})

    def test_events_are_refused_without_token_or_with_bad_channels(self):
        self.serve()
        cases = [(f"channel=a&token=wrong", 401), (f"token={self.token}", 400),
                 (f"channel=a*b&token={self.token}", 400), (f"channel=&token={self.token}", 400),
                 ("&".join(["channel=c"] * 65) + f"&token={self.token}", 400)]
        for query, status in cases:
            response, body = self.get("/events?" + query)
            self.assertEqual(response.status, status, query)
            self.assertIn("error", json.loads(body))

    def test_the_event_stream_closes_when_the_browser_leaves(self):
        d = self.serve()
        s = self.events(f"channel=x&token={self.token}")
        with d.client() as tool:
            wait_until(lambda: tool.status()["channelCount"] == 1, message="the stream subscribed")
            s.close()
            wait_until(lambda: tool.status()["channelCount"] == 0, message="the stream's subscription gone")

    # ---- shutdown, ports, photonctl

    def test_open_streams_are_closed_at_shutdown(self):
        d = self.serve()
        browser = self.ws()
        self.ws_call(browser, {"type": "subscribe", "id": "s", "channel": "x"})
        s = self.events(f"channel=x&token={self.token}")
        with d.client() as c:
            wait_until(lambda: c.status()["ui"]["streams"] == 2, message="both streams open")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(close_code(browser), 1001)  # going away
        s.settimeout(TIMEOUT)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        self.assertIn(b"text/event-stream", data)

    def test_a_port_in_use_stops_the_start_with_a_clear_error(self):
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        d = self.daemon("t", args=["--ui-port", str(port)], start=False, check_exit=False)
        d.spawn()
        self.assertEqual(d.wait(), 1)
        self.assertIn(f"ui listener on 127.0.0.1:{port}", d.output())
        self.assertFalse(os.path.exists(d.sock_path))

    def test_a_bad_ui_port_is_a_usage_error(self):
        for args, env in [(["--ui-port", "70000"], None), (["--ui-port", "x"], None), ([], {"PHOTON_UI_PORT": "-1"}),
                          (["--ui-port", "0", "--ui-allow-origin", "localhost:5173"], None)]:
            d = self.daemon("t", args=args, env=env, start=False, check_exit=False)
            d.spawn()
            self.assertEqual(d.wait(), 2, args)

    def test_photonctl_ui_prints_the_url_with_its_token(self):
        d = self.serve()
        result = ctl(d.photon_dir, "ui", "t", "--print")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), f"{self.ui['url']}#token={self.token}")
        result = ctl(d.photon_dir, "--json", "ui", "t", "--print")
        self.assertEqual(json.loads(result.stdout), {"url": f"{self.ui['url']}#token={self.token}", "opened": False})
        plain = self.daemon("plain")
        result = ctl(plain.photon_dir, "ui", "plain")
        self.assertEqual(result.returncode, 1)
        self.assertIn("--ui-port", result.stderr)
        result = ctl(plain.photon_dir, "ui", "absent")
        self.assertEqual(result.returncode, 3)

    def test_photonctl_ui_opens_a_private_page_not_a_url_on_the_command_line(self):
        d = self.serve()
        recorder = os.path.join(d.photon_dir, "browser.sh")
        with open(recorder, "w") as f:
            f.write('#!/bin/sh\nprintf "%s" "$*" > "$(dirname "$0")/browser.tmp"\n'
                    'mv "$(dirname "$0")/browser.tmp" "$(dirname "$0")/browser.args"\n')
        os.chmod(recorder, 0o700)
        result = ctl(d.photon_dir, "--json", "ui", "t", env={"BROWSER": recorder})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(json.loads(result.stdout)["opened"])
        # photonctl waits up to 1 s for the browser command, then leaves it running: on a loaded
        # machine the recorder may not have written its file yet.
        args_file = os.path.join(d.photon_dir, "browser.args")
        wait_until(lambda: os.path.exists(args_file), message="the browser command's arguments")
        with open(args_file) as f:
            args = f.read()
        page = os.path.join(d.photon_dir, "daemons", "t.ui.html")
        self.assertEqual(args, "file://" + page)
        self.assertNotIn(self.token, args)
        self.assertEqual(stat.S_IMODE(os.stat(page).st_mode), 0o600)
        with open(page) as f:
            self.assertIn(f'{self.ui["url"]}#token={self.token}', f.read())
        d.stop()
        self.assertFalse(os.path.exists(page))

    def test_the_environment_turns_the_listener_on(self):
        d = self.daemon("t", env={"PHOTON_UI_PORT": "0"})
        with d.client() as c:
            self.assertTrue(c.status()["ui"]["url"].startswith("http://127.0.0.1:"))


if __name__ == "__main__":
    unittest.main()
