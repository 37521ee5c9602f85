"""Persistent channels (--persist) of a real photond: a subscriber resumes across a clean restart and
across a SIGKILL in the middle of a flood; every publish acknowledged before the kill is replayed
once, in order; a message lost with the crash is never passed over silently (refresh_needed); and
only subscriptions the persistent patterns cover resume across a restart."""
import json
import os
import socket
import sqlite3
import threading

from harness import TIMEOUT, BlackboxTest, assert_nothing_before_pong, wait_until

# Large enough that nothing a test publishes leaves the window or the database.
ROOMY = ["--replay-channel-messages", "100000", "--replay-messages", "100000"]


class PersistTest(BlackboxTest):
    def serve(self, *args, photon_dir=None):
        self.d = self.daemon(args=["--persist", "board:*", *ROOMY, *args], photon_dir=photon_dir)
        return self.d

    def kill(self):
        """SIGKILL: the daemon gets no chance to write what waits."""
        self.d.kill()
        self.d.proc = None  # killed on purpose: its exit status is no failure

    def restart(self):
        """The same daemon again, in the same PHOTON_DIR, after a SIGTERM (or after kill())."""
        photon_dir, args = self.d.photon_dir, self.d.args
        if self.d.proc is not None:
            self.assertEqual(self.d.stop(), 0)
        self.d = self.daemon(args=args, photon_dir=photon_dir)
        return self.d

    def conn(self):
        return self.client(self.d)

    def publish(self, c, channel, message, ident="pub"):
        reply = c.call({"type": "publish", "id": ident, "channel": channel, "message": message})
        self.assertEqual((reply.get("type"), reply.get("id")), ("result", ident), reply)
        return reply["data"]["eventId"]

    def resume(self, c, channel, last, ident="resume"):
        c.send({"type": "subscribe", "id": ident, "channel": channel, "lastEventId": last})
        self.assertEqual(c.read_json(), {"type": "result", "id": ident, "success": True,
                                         "data": {"subscribed": True, "channel": channel}})

    def replayed_until_pong(self, c):
        """The lines that came before a ping's pong (the replay, since nothing else is published)."""
        c.send({"type": "ping", "id": "marker"})
        lines = []
        while True:
            line = c.recv()
            if line == {"type": "pong", "id": "marker"}:
                return lines
            lines.append(line)

    def test_a_subscriber_resumes_across_a_restart_with_the_same_ids(self):
        self.serve()
        pub = self.conn()
        ids = [self.publish(pub, "board:a", {"n": n}) for n in range(5)]
        plain = self.publish(pub, "chat", "not kept")
        self.restart()
        a = self.conn()
        self.resume(a, "board:a", ids[1])
        replayed = self.replayed_until_pong(a)
        self.assertEqual([(m["eventId"], m["message"], m.get("replay")) for m in replayed],
                         [(ids[n], {"n": n}, True) for n in range(2, 5)])
        # New messages follow, with this run's ids, after the kept ones.
        live = self.publish(self.conn(), "board:a", {"n": 5})
        self.assertEqual(a.next_message()["eventId"], live)
        self.assertNotEqual(live.split("-")[0], ids[0].split("-")[0])
        # ch_ ids stay unique in the new run: the replayed lines have fresh ones.
        ch_ids = [m["id"] for m in replayed]
        self.assertEqual(len(set(ch_ids)), 3)
        self.assertLess(max(int(i[3:]) for i in ch_ids), int(live.split("-")[1]))
        # A plain channel's id from the earlier run cannot be vouched for.
        b = self.conn()
        self.resume(b, "chat", plain, "plain")
        self.assertEqual(b.recv(), {"type": "refresh_needed", "id": "plain", "channel": "chat"})

    def test_only_subscriptions_the_patterns_cover_resume_across_a_restart(self):
        self.serve()
        pub = self.conn()
        first = self.publish(pub, "board:a", {"n": 0})
        self.publish(pub, "board:b", {"n": 1})
        self.restart()
        for channel, covered in (("board:a", True), ("board:*", True), ("board:a:*", True),
                                 ("*", False), ("boa*", False), ("chat", False)):
            c = self.conn()
            self.resume(c, channel, first, channel)
            got = self.replayed_until_pong(c)
            if covered:
                self.assertTrue(all(m.get("replay") is True for m in got), (channel, got))
            else:
                self.assertEqual(got, [{"type": "refresh_needed", "id": channel, "channel": channel}])
        reply = self.conn().call({"type": "get_events_since", "id": "g", "channel": "board:*", "lastEventId": first})
        self.assertEqual([e["message"] for e in reply["data"]["events"]], [{"n": 1}])
        self.assertIs(reply["data"]["refreshNeeded"], False)

    def test_a_sigkill_mid_flood_loses_no_acknowledged_publish(self):
        self.serve()
        pub, watcher = self.conn(), self.conn()
        watcher.subscribe("board:*")
        start = self.publish(pub, "board:a", {"n": -1}, "start")
        acked = []  # (n, eventId) in the order the acknowledgements came
        total = 3000
        killed = threading.Event()

        def read_acks():
            try:
                while len(acked) < total:
                    reply = pub.read_json()
                    self.assertEqual(reply.get("type"), "result", reply)
                    acked.append((int(reply["id"][1:]), reply["data"]["eventId"]))
            except Exception:
                pass  # the daemon went away

        reader = threading.Thread(target=read_acks, daemon=True)
        reader.start()
        for n in range(total):
            try:
                pub.send({"type": "publish", "id": f"p{n}", "channel": "board:a", "message": {"n": n}})
            except OSError:
                break
            if n == total // 3:
                # Some acknowledged, many in flight: now.
                wait_until(lambda: len(acked) >= 50, message="some publishes acknowledged")
                self.kill()
                killed.set()
                break
        reader.join(TIMEOUT)
        self.assertTrue(killed.is_set())
        # Acknowledgements come in publish order.
        self.assertEqual([n for n, _ in acked], list(range(len(acked))))
        # What the live subscriber had seen last, possibly a message that was never acknowledged.
        seen = []
        try:
            while True:  # until the end of what the dead daemon wrote
                seen.append(watcher.next_message()["eventId"])
        except Exception:
            pass
        self.restart()
        back = self.conn()
        self.resume(back, "board:a", start)
        replayed = self.replayed_until_pong(back)
        numbers = [m["message"]["n"] for m in replayed]
        # Every acknowledged publish, once, in order; perhaps a few more that were written but not
        # yet acknowledged, never a gap.
        self.assertEqual(numbers, list(range(len(numbers))))
        self.assertGreaterEqual(len(numbers), len(acked))
        self.assertEqual([m["eventId"] for m in replayed[:len(acked)]], [event for _, event in acked])
        # The live subscriber resumes from its last message: replayed if it was kept, else told.
        if seen:
            last = seen[-1]
            again = self.conn()
            self.resume(again, "board:a", last, "again")
            kept_ids = [m["eventId"] for m in replayed]
            got = self.replayed_until_pong(again)
            if last in kept_ids:
                self.assertEqual([m["eventId"] for m in got], kept_ids[kept_ids.index(last) + 1:])
            else:
                self.assertEqual(got, [{"type": "refresh_needed", "id": "again", "channel": "board:a"}])

    def hold_database(self):
        """Takes the daemon's database's write lock, as another program might: its writer waits."""
        db = sqlite3.connect(os.path.join(self.d.photon_dir, "daemons", self.d.name + ".db"),
                             timeout=TIMEOUT, isolation_level=None)
        self.addCleanup(db.close)
        db.execute("BEGIN EXCLUSIVE")
        return db

    def test_a_publish_on_a_persistent_channel_is_acknowledged_once_written(self):
        self.serve()
        pub, sub = self.conn(), self.conn()
        sub.subscribe("board:a")
        db = self.hold_database()
        pub.send({"type": "publish", "id": "kept", "channel": "board:a", "message": 1})
        # Delivered at once; acknowledged only once on disk, after a plain publish and a ping.
        self.assertEqual(sub.next_message()["message"], 1)
        self.assertEqual(pub.call({"type": "publish", "id": "plain", "channel": "chat", "message": 2})["id"],
                         "plain")
        self.assertEqual(pub.call({"type": "ping", "id": "p"}), {"type": "pong", "id": "p"})
        db.execute("COMMIT")
        reply = pub.reply()
        self.assertEqual((reply["type"], reply["id"]), ("result", "kept"))

    def test_a_publish_that_cannot_be_written_is_answered_with_an_error(self):
        self.serve()
        pub = self.conn()
        db = self.hold_database()
        # The writer gives up after its busy timeout (5 s): the publisher is told, not left waiting.
        reply = pub.call({"type": "publish", "id": "lost", "channel": "board:a", "message": 1})
        self.assertEqual((reply["type"], reply["id"]), ("error", "lost"))
        self.assertIn("could not be written", reply["error"])
        db.execute("COMMIT")
        self.assertEqual(pub.call({"type": "publish", "id": "ok", "channel": "board:a", "message": 2})["type"],
                         "result")

    def test_an_event_stream_resumes_across_a_restart(self):
        d = self.serve("--ui-port", "0")
        pub = self.conn()
        ids = [self.publish(pub, "board:a", {"n": n}) for n in range(3)]
        d = self.restart()
        with open(os.path.join(d.photon_dir, "daemons", d.name + ".ui")) as f:
            ui = json.load(f)
        s = socket.create_connection(("127.0.0.1", ui["port"]), timeout=TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(f"GET /events?channel=board:*&token={ui['token']} HTTP/1.1\r\nHost: 127.0.0.1:{ui['port']}\r\n"
                  f"Last-Event-ID: {ids[0]}\r\n\r\n".encode())
        received = b""
        while received.count(b"\ndata: ") + received.startswith(b"data: ") < 2:
            chunk = s.recv(65536)
            self.assertTrue(chunk, "event stream ended")
            received += chunk
        events = [block for block in received.split(b"\n\n") if b"data: " in block]
        ids_seen = [dict(line.split(": ", 1) for line in block.decode().split("\n")
                         if ": " in line and not line.startswith("HTTP"))["id"] for block in events]
        self.assertEqual(ids_seen[:2], ids[1:])

    def test_a_bad_persist_pattern_is_a_usage_error(self):
        for pattern in ("a*b", "", "x" * 300):
            d = self.daemon(args=["--persist", pattern], start=False, check_exit=False)
            d.spawn()
            self.assertEqual(d.wait(), 2, pattern)
            self.assertIn("--persist", d.output())
