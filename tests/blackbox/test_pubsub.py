# Pub/sub over the real socket: reply shapes, delivery, exclusion, wildcards, unsubscribe, status counters.
import unittest

from harness import BlackboxTest, wait_until, subscriber_counts


class PubSubTest(BlackboxTest):
    def setUp(self):
        self.d = self.daemon()

    def conn(self):
        return self.client(self.d)

    def without_event_id(self, reply):
        """The reply with its data's eventId (a string; test_resume checks what it names) taken out."""
        self.assertIsInstance(reply["data"].pop("eventId"), str, reply)
        return reply

    def assert_next_message(self, c, channel, message):
        got = c.next_message()
        self.assertEqual(set(got), {"type", "id", "channel", "eventId", "message"}, got)
        self.assertIsInstance(got["eventId"], str)
        self.assertEqual(got["channel"], channel)
        self.assertEqual(got["message"], message)
        self.assertIsInstance(got["id"], str)
        self.assertTrue(got["id"].startswith("ch_"), got)
        return got

    def test_reply_shapes_match_spec(self):
        sub, pub = self.conn(), self.conn()
        self.assertEqual(sub.call({"type": "subscribe", "id": "sub_123", "channel": "board:my-board"}),
                         {"type": "result", "id": "sub_123", "success": True,
                          "data": {"subscribed": True, "channel": "board:my-board"}})
        message = {"event": "task-moved", "taskId": "123"}
        reply = self.without_event_id(
            pub.call({"type": "publish", "id": "pub_789", "channel": "board:my-board", "message": message}))
        self.assertEqual(reply, {"type": "result", "id": "pub_789", "success": True,
                                 "data": {"published": True, "channel": "board:my-board", "delivered": 1}})
        self.assert_next_message(sub, "board:my-board", message)
        self.assertEqual(sub.call({"type": "unsubscribe", "id": "unsub_456", "channel": "board:my-board"}),
                         {"type": "result", "id": "unsub_456", "success": True,
                          "data": {"unsubscribed": True, "channel": "board:my-board"}})

    def test_every_subscriber_receives_and_others_do_not(self):
        a, b, other, pub = self.conn(), self.conn(), self.conn(), self.conn()
        a.subscribe("news")
        b.subscribe("news")
        other.subscribe("sports")
        reply = pub.publish("news", {"n": 1})
        self.assertEqual(reply["data"]["delivered"], 2)
        self.assert_next_message(a, "news", {"n": 1})
        self.assert_next_message(b, "news", {"n": 1})
        # The sentinel on "sports" comes after "news" from the same publisher: if "other" had been sent
        # the "news" message, it would be read first.
        pub.publish("sports", "sentinel")
        self.assert_next_message(other, "sports", "sentinel")

    def test_publisher_does_not_receive_its_own_message(self):
        pub, sub = self.conn(), self.conn()
        pub.subscribe("room")
        sub.subscribe("room")
        self.assertEqual(pub.publish("room", "hello")["data"]["delivered"], 1)
        self.assert_next_message(sub, "room", "hello")
        # Nothing queued to the publisher: the next line it reads is the pong.
        pub.send({"type": "ping", "id": "after"})
        self.assertEqual(pub.read_json(), {"type": "pong", "id": "after"})
        # It still receives messages published by others.
        sub.publish("room", "from-sub")
        self.assert_next_message(pub, "room", "from-sub")

    def test_publish_with_no_subscriber_delivers_zero(self):
        pub = self.conn()
        reply = pub.publish("nobody", {"x": 1})
        self.assertEqual(self.without_event_id(reply)["data"], {"published": True, "channel": "nobody", "delivered": 0})

    def test_any_json_value_is_carried_unchanged(self):
        sub, pub = self.conn(), self.conn()
        sub.subscribe("values")
        values = [
            {"nested": {"a": [1, 2.5, -3, True, False, None, "s"]}, "empty": {}, "list": []},
            [1, "two", {"three": 3}],
            "a string with \"quotes\", \\backslash\\ and \u00e9\u4e2d\U0001F600",
            12345678901234,
            -0.5,
            True,
            None,
            {"big": "x" * 200000},
        ]
        for i, value in enumerate(values):
            self.assertEqual(self.without_event_id(pub.call({"type": "publish", "id": f"v{i}", "channel": "values",
                                                             "message": value})),
                             {"type": "result", "id": f"v{i}", "success": True,
                              "data": {"published": True, "channel": "values", "delivered": 1}})
        for value in values:
            self.assert_next_message(sub, "values", value)

    def test_unknown_fields_are_ignored(self):
        sub, pub = self.conn(), self.conn()
        sub.send({"type": "subscribe", "id": "s", "channel": "c", "clientType": "beam", "extra": [1, {"x": 2}]})
        self.assertEqual(sub.reply()["data"], {"subscribed": True, "channel": "c"})
        reply = pub.call({"type": "publish", "id": "p", "channel": "c", "message": 1, "sessionId": "cli-1-abc",
                          "whatever": {"deep": True}})
        self.assertEqual(reply["data"]["delivered"], 1)
        self.assert_next_message(sub, "c", 1)

    def test_unsubscribe_stops_delivery(self):
        sub, pub = self.conn(), self.conn()
        sub.subscribe("a")
        sub.subscribe("b")
        sub.call({"type": "unsubscribe", "id": "u", "channel": "a"})
        self.assertEqual(pub.publish("a", 1)["data"]["delivered"], 0)
        pub.publish("b", 2)
        self.assert_next_message(sub, "b", 2)

    def test_unsubscribe_when_not_subscribed_succeeds(self):
        c = self.conn()
        self.assertEqual(c.call({"type": "unsubscribe", "id": "u1", "channel": "never"}),
                         {"type": "result", "id": "u1", "success": True,
                          "data": {"unsubscribed": True, "channel": "never"}})

    def test_subscribing_twice_is_one_subscription(self):
        sub, pub = self.conn(), self.conn()
        sub.subscribe("dup", "s1")
        sub.subscribe("dup", "s2")
        self.assertEqual(pub.publish("dup", "once")["data"]["delivered"], 1)
        pub.publish("dup", "twice")
        self.assert_next_message(sub, "dup", "once")
        self.assert_next_message(sub, "dup", "twice")
        self.assertIn(("dup", 1), subscriber_counts(pub.status()))
        # One unsubscribe removes it.
        sub.call({"type": "unsubscribe", "id": "u", "channel": "dup"})
        self.assertEqual(pub.publish("dup", "gone")["data"]["delivered"], 0)

    def test_subscriptions_end_with_the_connection(self):
        sub, pub = self.conn(), self.conn()
        sub.subscribe("ephemeral")
        self.assertEqual(pub.publish("ephemeral", 0)["data"]["delivered"], 1)
        sub.close()
        wait_until(lambda: pub.publish("ephemeral", 1)["data"]["delivered"] == 0,
                   message="subscription removed after disconnect")
        wait_until(lambda: all(ch["channel"] != "ephemeral" for ch in pub.status()["channels"]),
                   message="channel gone from status")

    def test_wildcard_prefix(self):
        sub, pub = self.conn(), self.conn()
        sub.subscribe("board:*")
        self.assertEqual(pub.publish("board:a", 1)["data"]["delivered"], 1)
        self.assertEqual(pub.publish("board:a:b", 2)["data"]["delivered"], 1)
        self.assertEqual(pub.publish("board:", 3)["data"]["delivered"], 1)
        self.assertEqual(pub.publish("boardx", 4)["data"]["delivered"], 0)
        self.assertEqual(pub.publish("other:a", 5)["data"]["delivered"], 0)
        self.assertEqual(pub.publish("board", 6)["data"]["delivered"], 0)
        self.assert_next_message(sub, "board:a", 1)
        self.assert_next_message(sub, "board:a:b", 2)
        self.assert_next_message(sub, "board:", 3)
        pub.publish("board:end", "sentinel")
        self.assert_next_message(sub, "board:end", "sentinel")

    def test_star_receives_everything(self):
        sub, pub = self.conn(), self.conn()
        sub.subscribe("*")
        for i, channel in enumerate(["a", "board:x", "zz:top", "x"]):
            self.assertEqual(pub.publish(channel, i)["data"]["delivered"], 1)
            self.assert_next_message(sub, channel, i)

    def test_exact_subscription_does_not_match_longer_channels(self):
        exact, pub = self.conn(), self.conn()
        exact.subscribe("board:a")
        self.assertEqual(pub.publish("board:ab", 1)["data"]["delivered"], 0)
        self.assertEqual(pub.publish("board:a", 2)["data"]["delivered"], 1)
        self.assert_next_message(exact, "board:a", 2)

    def test_one_copy_per_connection_however_many_subscriptions_match(self):
        sub, pub = self.conn(), self.conn()
        for channel in ("board:a", "board:*", "b*", "*"):
            sub.subscribe(channel)
        self.assertEqual(pub.publish("board:a", "one")["data"]["delivered"], 1)
        pub.publish("zzz", "sentinel")
        self.assert_next_message(sub, "board:a", "one")
        self.assert_next_message(sub, "zzz", "sentinel")

    def test_unsubscribe_names_the_pattern(self):
        sub, pub = self.conn(), self.conn()
        sub.subscribe("board:*")
        sub.call({"type": "unsubscribe", "id": "u1", "channel": "board:a"})
        self.assertEqual(pub.publish("board:a", 1)["data"]["delivered"], 1)
        self.assert_next_message(sub, "board:a", 1)
        self.assertEqual(sub.call({"type": "unsubscribe", "id": "u2", "channel": "board:*"})["data"],
                         {"unsubscribed": True, "channel": "board:*"})
        self.assertEqual(pub.publish("board:a", 2)["data"]["delivered"], 0)

    def test_channel_message_ids_are_unique(self):
        a, b, pub = self.conn(), self.conn(), self.conn()
        a.subscribe("x")
        a.subscribe("y")
        b.subscribe("*")
        seen_a, seen_b = [], []
        for i in range(50):
            pub.publish("x" if i % 2 else "y", i)
        for i in range(50):
            seen_a.append(a.next_message()["id"])
            seen_b.append(b.next_message()["id"])
        self.assertEqual(len(set(seen_a)), 50)
        self.assertEqual(len(set(seen_b)), 50)
        # Later connections never see an id reused.
        c = self.conn()
        c.subscribe("x")
        pub.publish("x", "late")
        self.assertNotIn(c.next_message()["id"], set(seen_a) | set(seen_b))

    def test_order_from_one_publisher(self):
        sub, pub = self.conn(), self.conn()
        sub.subscribe("seq:*")
        sub.subscribe("seq:1")
        for i in range(200):
            pub.send({"type": "publish", "id": f"p{i}", "channel": f"seq:{i % 3}", "message": i})
        for i in range(200):
            self.assertEqual(pub.reply()["id"], f"p{i}")
        self.assertEqual([sub.next_message()["message"] for _ in range(200)], list(range(200)))

    def test_subscriber_can_make_requests_between_messages(self):
        sub, pub = self.conn(), self.conn()
        sub.subscribe("mix")
        pub.publish("mix", 1)
        sub.ping("between")  # channel_message 1 may arrive before the pong; it is kept, not lost
        pub.publish("mix", 2)
        self.assert_next_message(sub, "mix", 1)
        self.assert_next_message(sub, "mix", 2)

    def test_status_reports_state_and_counters(self):
        a, b, pub = self.conn(), self.conn(), self.conn()
        a.subscribe("board:a")
        a.subscribe("board:*")
        b.subscribe("board:*")
        wait_until(lambda: pub.status()["connections"] == 3, message="three connections in status")
        st = pub.status()
        self.assertEqual(st["name"], "t")
        self.assertEqual(st["pid"], self.d.pid)
        self.assertIsInstance(st["version"], str)
        self.assertTrue(st["version"])
        self.assertIsInstance(st["startedAt"], int)
        self.assertIsInstance(st["uptimeMs"], int)
        self.assertGreaterEqual(st["uptimeMs"], 0)
        self.assertEqual(st["channels"], [{"channel": "board:*", "subscribers": 2, "messages": 0},
                                          {"channel": "board:a", "subscribers": 1, "messages": 0}])
        before = st["counters"]
        for key in ("published", "delivered", "droppedSlowConsumers", "connectionsRefused"):
            self.assertIsInstance(before[key], int, key)
        self.assertEqual(before["droppedSlowConsumers"], 0)
        self.assertEqual(pub.publish("board:a", 1)["data"]["delivered"], 2)
        self.assertEqual(pub.publish("board:b", 2)["data"]["delivered"], 2)
        self.assertEqual(pub.publish("nowhere", 3)["data"]["delivered"], 0)
        after = pub.status()["counters"]
        self.assertEqual(after["published"] - before["published"], 3)
        self.assertEqual(after["delivered"] - before["delivered"], 4)
        later = pub.status()
        self.assertGreaterEqual(later["uptimeMs"], st["uptimeMs"])


if __name__ == "__main__":
    unittest.main()
