"""photond in a deployment of TypeScript photons: photon-core's own RedisBroker and HttpBroker
(@portel/photon-core from the npm registry, tests/interop), run by Node.js, exchange channel
messages with photond's socket clients in both directions: on a real redis-server with
--broker --photon-core-channels, and over the UI listener's /channels with --photon-core-http.
Counts and order are checked with a last marker message: what comes before it is all there is.
Needs node and tests/interop/node_modules (scripts/install-deps test installs both)."""
import http.client
import json
import os
import queue
import shutil
import subprocess
import threading
import unittest

from harness import TIMEOUT, BlackboxTest, RedisServer, subscriber_counts, wait_until

INTEROP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "interop"))
NODE = shutil.which("node")
PHOTON = "kanban"
CHANNEL_TOKEN = "interop-channel-token-0123456789abcdef"
COUNT = 40


class Peer:
    """A TypeScript photon's broker (tests/interop/peer.mjs) in a Node.js process."""

    def __init__(self, kind, env):
        self.proc = subprocess.Popen([NODE, os.path.join(INTEROP, "peer.mjs"), kind], cwd=INTEROP,
                                     env={**os.environ, **env}, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.errors = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._collect_errors, daemon=True).start()

    def _read(self, stream, into):
        for line in stream:
            into.put(json.loads(line))
        into.put(None)

    def _collect_errors(self):
        for line in self.proc.stderr:
            self.errors.append(line)

    def send(self, request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def next(self, key):
        """The next line that has `key`; a line with "error" fails."""
        while True:
            try:
                line = self.lines.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"peer: no {key!r} line in time; stderr: {''.join(self.errors)}")
            if line is None:
                raise AssertionError(f"peer exited; stderr: {''.join(self.errors)}")
            if "error" in line:
                raise AssertionError(f"peer: {line['error']}")
            if key in line:
                return line

    def subscribe(self, channel):
        self.send({"op": "subscribe", "channel": channel})
        self.assertion(self.next("subscribed") == {"subscribed": channel}, channel)

    @staticmethod
    def assertion(ok, what):
        if not ok:
            raise AssertionError(f"peer: subscribe {what} not confirmed")

    def publish(self, message):
        self.send({"op": "publish", "message": message})
        return self.next("published")["published"]

    def messages_until(self, marker_event):
        """(subscription, message) pairs up to and without the one whose event is `marker_event`."""
        got = []
        while True:
            line = self.next("message")
            if line["message"].get("event") == marker_event:
                return got
            got.append((line["subscription"], line["message"]))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


def socket_messages_until(client, marker_event):
    """The channel_messages a socket client receives before the one whose message's event is
    `marker_event`."""
    got = []
    while True:
        message = client.next_message()
        body = message["message"]
        if isinstance(body, dict) and body.get("event") == marker_event:
            return got
        got.append(message)


def refused(test, name, args, env, words):
    """photond serve NAME ARGS exits with the usage code 2 and says `words`."""
    d = test.daemon(name, args=args, env=env, start=False, check_exit=False)
    d.spawn()
    test.assertEqual(d.wait(), 2, args)
    test.assertIn(words, d.output())


class PhotonCoreTest(BlackboxTest):
    def setUp(self):
        if NODE is None or not os.path.isdir(os.path.join(INTEROP, "node_modules", "@portel", "photon-core")):
            self.fail("photon-core's brokers are not installed: run scripts/install-deps test")

    def peer(self, kind, **env):
        p = Peer(kind, env)
        self.addCleanup(p.stop)
        return p


class WithRedis(PhotonCoreTest):
    """A redis-server on a temporary socket, daemons joined to it, TypeScript photons on it."""

    def setUp(self):
        super().setUp()
        self.redis = RedisServer(self.make_dir())
        self.redis.start()
        self.addCleanup(self.redis.stop)

    def host(self, *args):
        d = self.daemon(PHOTON, args=["--broker", self.redis.url, "--photon-core-channels", *args])
        with d.client() as c:
            wait_until(lambda: c.status()["broker"]["state"] == "connected", message="broker connected")
        return d

    def ts(self, prefix=None):
        env = {"PHOTON_REDIS_URL": self.redis.sock}
        if prefix is not None:
            env["PHOTON_REDIS_PREFIX"] = prefix
        return self.peer("redis", **env)

    def redis_cli(self, *args):
        return subprocess.run(["redis-cli", "-s", self.redis.sock, *args], check=True, capture_output=True,
                              text=True, timeout=TIMEOUT).stdout


class RedisBrokerInterop(WithRedis):
    def test_typescript_publishes_reach_exact_and_wildcard_subscribers_in_order(self):
        d = self.host()
        exact, wildcard, everything, other = (self.client(d) for _ in range(4))
        exact.subscribe("board:1")
        wildcard.subscribe("board:*")
        everything.subscribe("*")
        other.subscribe("board:2")
        ts = self.ts()
        sent = []
        for n in range(COUNT):
            message = {"channel": "board:1", "event": "task-moved", "data": {"n": n}, "source": "kanban-ts"}
            ts.publish(message)
            sent.append(message)
        # photond's wildcard is a prefix: board:* has board:1:comments too (photon-core's would not).
        ts.publish({"channel": "board:1:comments", "event": "comment", "data": "hi"})
        ts.publish({"channel": "board:1", "event": "end"})
        ts.publish({"channel": "board:2", "event": "end"})
        for client, extra in ((exact, 0), (wildcard, 1), (everything, 1)):
            got = socket_messages_until(client, "end")
            self.assertEqual(len(got), COUNT + extra)
            for message, expected in zip(got, sent):
                self.assertEqual(message["channel"], "board:1")
                # The message photon-core's DaemonBroker would have published to a daemon: the
                # whole ChannelMessage, with the timestamp photon-core set.
                body = message["message"]
                self.assertEqual({k: body[k] for k in expected}, expected)
                self.assertIsInstance(body["timestamp"], int)
            if extra:
                self.assertEqual(got[-1]["channel"], "board:1:comments")
        self.assertEqual(socket_messages_until(other, "end"), [])  # board:2 had only its marker
        with d.client() as c:
            core = c.status()["broker"]["photonCore"]
        self.assertEqual(core["prefix"], "photon:channel:")
        self.assertEqual(core["received"], COUNT + 3)
        self.assertEqual(core["forwarded"], 0)  # what came from photon-core does not go back

    def test_photond_publishes_reach_typescript_subscribers_in_photon_core_form(self):
        d = self.host()
        # One subscription per peer: photon-core's RedisBroker calls an exact subscription's
        # handler again for a pattern's message when both are in one broker.
        exact, wildcard = self.ts(), self.ts()
        exact.subscribe("board:1")
        wildcard.subscribe("board:*")  # photon-core's wildcard: one segment
        publisher = self.client(d)
        for n in range(COUNT):
            publisher.publish("board:1", {"event": "task-moved", "data": {"n": n}})
        publisher.publish("board:1", 42)  # not an object: photon-core's "message" event
        publisher.publish("board:1", {"taskId": 7})  # no event, no data: all of it is the data
        publisher.publish("board:1:comments", {"event": "comment"})  # two segments after board:
        publisher.publish("board:1", {"event": "end"})
        for peer in (exact, wildcard):
            messages = [message for _, message in peer.messages_until("end")]
            self.assertEqual(len(messages), COUNT + 2)
            for n, message in enumerate(messages[:COUNT]):
                self.assertEqual(message["channel"], "board:1")
                self.assertEqual(message["event"], "task-moved")
                self.assertEqual(message["data"], {"n": n})
                self.assertEqual(message["source"], PHOTON)
                self.assertIsInstance(message["timestamp"], int)
            self.assertEqual((messages[COUNT]["event"], messages[COUNT]["data"]), ("message", 42))
            self.assertEqual((messages[COUNT + 1]["event"], messages[COUNT + 1]["data"]),
                             ("message", {"taskId": 7}))
        with d.client() as c:
            core = c.status()["broker"]["photonCore"]
        self.assertEqual(core["forwarded"], COUNT + 4)
        self.assertEqual(core["dropped"], 0)

    def test_a_message_that_goes_round_comes_back_unchanged(self):
        # A TypeScript message relayed by a photond client is the TypeScript message again.
        d = self.host()
        ts_in, ts_out = self.ts(), self.ts()
        ts_out.subscribe("relay:out")
        relay = self.client(d)
        relay.subscribe("relay:in")
        original = {"channel": "relay:in", "event": "ping", "data": {"deep": [1, {"x": None}]},
                    "timestamp": 1700000000123, "source": "ts-photon"}
        ts_in.publish(original)
        received = relay.next_message()["message"]
        self.assertEqual(received, original)
        relay.publish("relay:out", received)
        relay.publish("relay:out", {"event": "end"})
        [(_, back)] = ts_out.messages_until("end")
        self.assertEqual({k: v for k, v in back.items() if k != "photond"}, {**original, "channel": "relay:out"})

    def test_two_daemons_of_the_photon_deliver_each_message_once_and_exclude_the_publisher(self):
        a, b = self.host(), self.host()
        publisher = self.client(a)
        publisher.subscribe("board:*")
        near, far = self.client(a), self.client(b)
        near.subscribe("board:*")
        far.subscribe("board:*")
        ts = self.ts()
        ts.subscribe("board:*")
        for n in range(COUNT):
            publisher.publish("board:x", {"event": "moved", "data": n})
        publisher.publish("board:x", {"event": "end"})
        for client in (near, far):
            got = socket_messages_until(client, "end")
            self.assertEqual([m["message"]["data"] for m in got], list(range(COUNT)))
        self.assertEqual([m["data"] for _, m in ts.messages_until("end")], list(range(COUNT)))
        # TypeScript's publishes reach every daemon's subscribers once, the photond publisher too;
        # its own messages never came back to it (the first it got are TypeScript's).
        for n in range(COUNT):
            ts.publish({"channel": "board:y", "event": "typed", "data": n})
        ts.publish({"channel": "board:y", "event": "end"})
        for client in (publisher, near, far):
            got = socket_messages_until(client, "end")
            self.assertEqual([(m["channel"], m["message"]["event"], m["message"]["data"]) for m in got],
                             [("board:y", "typed", n) for n in range(COUNT)])
        for d in (a, b):
            with d.client() as c:
                core = c.status()["broker"]["photonCore"]
            self.assertEqual(core["received"], COUNT + 1)
        with a.client() as c:
            self.assertEqual(c.status()["broker"]["photonCore"]["forwarded"], COUNT + 1)
        with b.client() as c:
            self.assertEqual(c.status()["broker"]["photonCore"]["forwarded"], 0)

    def test_both_schemes_come_back_after_redis_restarts(self):
        d = self.host()
        c = self.client(d)
        c.subscribe("after:*")
        self.redis.stop()
        with d.client() as s:
            wait_until(lambda: s.status()["broker"]["state"] != "connected", message="broker down")
        self.redis.start()
        with d.client() as s:
            wait_until(lambda: s.status()["broker"]["state"] == "connected", message="broker back")
        ts = self.ts()
        ts.subscribe("after:*")
        ts.publish({"channel": "after:1", "event": "from-ts"})
        self.assertEqual(c.next_message()["message"]["event"], "from-ts")
        c.publish("after:1", {"event": "end"})
        self.assertEqual([m["event"] for _, m in ts.messages_until("end")], ["from-ts"])

    def test_another_photons_mark_is_removed_and_oversized_payloads_are_refused(self):
        other, d = self.daemon("other", args=["--broker", self.redis.url, "--photon-core-channels"]), \
            self.host("--max-line-bytes", "4096")
        with other.client() as s:
            wait_until(lambda: s.status()["broker"]["state"] == "connected", message="broker connected")
        c = self.client(d)
        c.subscribe("shared")
        self.client(other).publish("shared", {"event": "hello", "data": 1})
        self.assertEqual(c.next_message()["message"]["event"], "hello")
        self.redis_cli("PUBLISH", "photon:channel:shared", json.dumps({"event": "big", "data": "x" * 5000}))
        self.redis_cli("PUBLISH", "photon:channel:shared", '{"event":"end"}')
        self.assertEqual(socket_messages_until(c, "end"), [])
        with d.client() as s:
            self.assertEqual(s.status()["broker"]["photonCore"]["invalid"], 1)

    def test_raw_and_invalid_payloads_follow_the_documented_rule(self):
        d = self.host()
        c = self.client(d)
        c.subscribe("raw:*")
        self.redis_cli("PUBLISH", "photon:channel:raw:1", "42")
        self.redis_cli("PUBLISH", "photon:channel:raw:1", "not json")
        self.redis_cli("PUBLISH", "photon:channel:raw:1", '["a", 1]')
        self.redis_cli("PUBLISH", "photon:channel:raw*bad", '{"event":"x"}')  # no channel of photond's
        self.redis_cli("PUBLISH", "photon:channel:raw:1", '{"event":"end"}')
        got = socket_messages_until(c, "end")
        self.assertEqual([m["message"] for m in got], [
            {"channel": "raw:1", "event": "message", "data": 42},
            {"channel": "raw:1", "event": "message", "data": ["a", 1]},
        ])
        with d.client() as s:
            core = s.status()["broker"]["photonCore"]
        self.assertEqual((core["received"], core["invalid"]), (3, 2))  # not JSON; a refused name

    def test_a_prefix_of_its_own_on_both_sides(self):
        d = self.host("--photon-core-channels=acme:ch:")
        ts = self.ts(prefix="acme:ch:")
        ts.subscribe("news")
        c = self.client(d)
        c.subscribe("news")
        ts.publish({"channel": "news", "event": "hello"})
        self.assertEqual(c.next_message()["message"]["event"], "hello")
        c.publish("news", {"event": "end", "data": "from photond"})
        # Redis hands the TypeScript side its own publish too, then photond's.
        self.assertEqual([m["event"] for _, m in ts.messages_until("end")], ["hello"])
        self.assertIn("acme:ch:news", self.redis_cli("PUBSUB", "CHANNELS", "acme:ch:*").split())

    def test_bad_configurations_are_refused_at_start(self):
        for name, args, words in (
                (PHOTON, ["--photon-core-channels"], "needs --broker"),
                (PHOTON, ["--broker", self.redis.url, "--photon-core-channels=photon:"], "overlaps"),
                # Database 1's deployment would hear database 0's through this one.
                (PHOTON, ["--broker", self.redis.url + "?db=1", f"--photon-core-channels=photon:{PHOTON}:"],
                 "overlaps"),
                # A photon named "channel" has its own channels where photon-core's are.
                ("channel", ["--broker", self.redis.url, "--photon-core-channels"], "overlaps"),
        ):
            refused(self, name, args, {}, words)


class HttpBrokerInterop(PhotonCoreTest):
    def serve(self, *args, env=None):
        d = self.daemon(PHOTON, args=["--ui-port", "0", "--photon-core-http", *args],
                        env={"PHOTON_CHANNEL_AUTH_TOKEN": CHANNEL_TOKEN, **(env or {})})
        with open(os.path.join(d.photon_dir, "daemons", PHOTON + ".ui")) as f:
            ui = json.load(f)
        self.port, self.ui_token = ui["port"], ui["token"]
        self.url = f"http://127.0.0.1:{self.port}/channels"
        return d

    def ts(self, token=CHANNEL_TOKEN):
        # One URL for both: photon-core subscribes at PHOTON_CHANNEL_HTTP_URL when no SSE URL is set.
        return self.peer("http", PHOTON_CHANNEL_HTTP_URL=self.url, PHOTON_CHANNEL_AUTH_TOKEN=token)

    def request(self, method, path, body=None, token=CHANNEL_TOKEN, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        self.addCleanup(conn.close)
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = "Bearer " + token
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.read()

    def wait_subscribers(self, d, channel, count):
        with d.client() as c:
            wait_until(lambda: (channel, count) in subscriber_counts(c.status()),
                       message=f"{count} subscribers of {channel}")

    def test_typescript_publishes_reach_photond_subscribers_in_order(self):
        d = self.serve()
        exact, wildcard = self.client(d), self.client(d)
        exact.subscribe("board:1")
        wildcard.subscribe("board:*")
        ts = self.ts()
        sent = []
        for n in range(COUNT):
            message = {"channel": "board:1", "event": "task-moved", "data": {"n": n}}
            ts.publish(message)
            sent.append(message)
        ts.publish({"channel": "board:1", "event": "end"})
        for client in (exact, wildcard):
            got = socket_messages_until(client, "end")
            self.assertEqual(len(got), COUNT)
            for message, expected in zip(got, sent):
                body = message["message"]
                self.assertEqual({k: body[k] for k in expected}, expected)
                self.assertIsInstance(body["timestamp"], int)

    def test_photond_publishes_reach_typescript_subscribers_as_server_sent_events(self):
        d = self.serve()
        # One peer per subscription: each is an event stream of its own, in no order with another.
        peers = {"board:1": self.ts(), "*": self.ts()}  # photon-core passes all to a "*" subscription
        for channel, peer in peers.items():
            peer.subscribe(channel)
        self.wait_subscribers(d, "board:1", 1)
        self.wait_subscribers(d, "*", 1)
        publisher = self.client(d)
        for n in range(COUNT):
            publisher.publish("board:1", {"event": "task-moved", "data": {"n": n}})
        publisher.publish("board:2", {"event": "elsewhere"})
        publisher.publish("board:1", "plain")
        publisher.publish("board:1", {"event": "end"})
        for subscription, extra in (("board:1", 0), ("*", 1)):
            messages = [m for _, m in peers[subscription].messages_until("end")]
            self.assertEqual(len(messages), COUNT + 1 + extra, subscription)
            moved = [m for m in messages if m["event"] == "task-moved"]
            self.assertEqual([m["data"] for m in moved], [{"n": n} for n in range(COUNT)])
            self.assertTrue(all(m["channel"] == "board:1" and m["source"] == PHOTON for m in moved))
            self.assertEqual((messages[-1]["event"], messages[-1]["data"]), ("message", "plain"))

    def test_typescript_photons_reach_each_other_through_photond(self):
        d = self.serve()
        subscriber, publisher = self.ts(), self.ts()
        subscriber.subscribe("chat")
        self.wait_subscribers(d, "chat", 1)
        for n in range(COUNT):
            publisher.publish({"channel": "chat", "event": "said", "data": n})
        publisher.publish({"channel": "chat", "event": "end"})
        self.assertEqual([m["data"] for _, m in subscriber.messages_until("end")], list(range(COUNT)))

    def test_the_channel_token_is_required_and_grants_nothing_else(self):
        self.serve()
        body = json.dumps({"channel": "x", "event": "e"})
        for token in (None, "wrong-token-wrong-token", self.ui_token):
            self.assertEqual(self.request("POST", "/channels", body, token=token)[0], 401)
            self.assertEqual(self.request("GET", "/channels?channel=x", token=token)[0], 401)
        # Not in the query string either: a token in a URL ends up in logs.
        self.assertEqual(self.request("POST", f"/channels?token={CHANNEL_TOKEN}", body, token=None)[0], 401)
        self.assertEqual(self.request("GET", "/api/status", token=CHANNEL_TOKEN)[0], 401)
        # The listener's Host and Origin checks come first, token or not.
        self.assertEqual(self.request("POST", "/channels", body, headers={"Host": "evil.example"})[0], 403)
        self.assertEqual(self.request("GET", "/channels?channel=x",
                                      headers={"Origin": "http://evil.example"})[0], 403)
        status, answer = self.request("POST", "/channels", body)
        self.assertEqual(status, 200, answer)
        self.assertEqual(json.loads(answer)["delivered"], 0)

    def test_an_allowed_origin_may_publish_and_follow_through_cors(self):
        self.serve("--ui-allow-origin", "http://localhost:5173")
        origin = {"Origin": "http://localhost:5173"}
        status, _ = self.request("OPTIONS", "/channels", token=None, headers=origin)
        self.assertEqual(status, 204)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        self.addCleanup(conn.close)
        conn.request("OPTIONS", "/channels", headers=origin)
        self.assertIn("POST", conn.getresponse().getheader("Access-Control-Allow-Methods"))
        for method, path, body in (("POST", "/channels", '{"channel":"c"}'), ("GET", "/channels?channel=c", None)):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
            self.addCleanup(conn.close)
            conn.request(method, path, body=body, headers={**origin, "Authorization": "Bearer " + CHANNEL_TOKEN})
            response = conn.getresponse()
            self.assertEqual(response.status, 200, method)
            self.assertEqual(response.getheader("Access-Control-Allow-Origin"), "http://localhost:5173", method)

    def test_bad_publishes_get_clear_refusals_and_the_daemon_carries_on(self):
        d = self.serve("--max-json-depth", "8")
        for body, status in (
                ("not json", 400),
                ('["channel"]', 400),
                ('{"event":"no channel"}', 400),
                ('{"channel":5}', 400),
                ('{"channel":"a*b","event":"x"}', 400),
                ('{"channel":"deep","data":' + "[" * 20 + "]" * 20 + "}", 400),
                ('{"channel":"deeper","data":' + "[" * 5000 + "]" * 5000 + "}", 400),
        ):
            code, answer = self.request("POST", "/channels", body)
            self.assertEqual(code, status, body[:40])
            self.assertIn("error", json.loads(answer))
            if body.startswith('{"channel":"deep'):
                self.assertIn("nesting is too deep", json.loads(answer)["error"])
        self.assertEqual(self.request("POST", "/channels", '{"channel":"big","data":"' + "x" * (1 << 20) + '"}')[0],
                         413)
        self.assertEqual(self.request("PUT", "/channels", "{}")[0], 405)
        self.assertEqual(self.request("GET", "/channels")[0], 400)  # no channel
        c = self.client(d)
        c.subscribe("ok")
        self.assertEqual(self.request("POST", "/channels", '{"channel":"ok","event":"fine"}')[0], 200)
        self.assertEqual(c.next_message()["message"], {"channel": "ok", "event": "fine"})

    def test_the_endpoint_is_off_unless_asked_for_and_needs_a_token(self):
        d = self.daemon(PHOTON, args=["--ui-port", "0"], env={"PHOTON_CHANNEL_AUTH_TOKEN": CHANNEL_TOKEN})
        with open(os.path.join(d.photon_dir, "daemons", PHOTON + ".ui")) as f:
            self.port = json.load(f)["port"]
        self.assertEqual(self.request("POST", "/channels", "{}")[0], 405)
        self.assertEqual(self.request("GET", "/channels?channel=x")[0], 404)
        for args, env, words in (
                (["--photon-core-http"], {"PHOTON_CHANNEL_AUTH_TOKEN": CHANNEL_TOKEN}, "--ui-port"),
                (["--photon-core-http", "--ui-port", "0"], {"PHOTON_CHANNEL_AUTH_TOKEN": ""}, "PHOTON_CHANNEL_AUTH_TOKEN"),
                (["--photon-core-http", "--ui-port", "0"], {"PHOTON_CHANNEL_AUTH_TOKEN": "short"}, "at least 16"),
        ):
            refused(self, PHOTON, args, env, words)


class BothBrokers(WithRedis):
    def test_a_typescript_photon_on_http_reaches_one_on_redis_through_photond(self):
        d = self.daemon(PHOTON, args=["--broker", self.redis.url, "--photon-core-channels", "--ui-port", "0",
                                      "--photon-core-http"],
                        env={"PHOTON_CHANNEL_AUTH_TOKEN": CHANNEL_TOKEN})
        with d.client() as c:
            wait_until(lambda: c.status()["broker"]["state"] == "connected", message="broker connected")
        with open(os.path.join(d.photon_dir, "daemons", PHOTON + ".ui")) as f:
            port = json.load(f)["port"]
        on_redis = self.ts()
        on_redis.subscribe("orders:*")
        on_http = self.peer("http", PHOTON_CHANNEL_HTTP_URL=f"http://127.0.0.1:{port}/channels",
                            PHOTON_CHANNEL_AUTH_TOKEN=CHANNEL_TOKEN)
        for n in range(COUNT):
            on_http.publish({"channel": "orders:new", "event": "placed", "data": n})
        on_http.publish({"channel": "orders:new", "event": "end"})
        got = on_redis.messages_until("end")
        self.assertEqual([m["data"] for _, m in got], list(range(COUNT)))
        self.assertTrue(all(m["event"] == "placed" and m["channel"] == "orders:new" for _, m in got))


if __name__ == "__main__":
    unittest.main()
