# Fan-out at scale: 1000 subscriber connections, wildcards with one copy per connection, publisher exclusion, order.
import threading
import unittest

from harness import BlackboxTest, encode, wait_until, subscriber_counts

N = 1000
# Every one of these matches "fan:x"; several per connection must still give one copy.
PATTERN_SETS = [["fan:x"], ["fan:*"], ["*"], ["f*"], ["fan:x", "fan:*", "*", "f*"], ["fan:*", "fan:x"]]
NOT_MATCHING = ["fan:y", "fan:x:", "fan", "fan:xx", "Fan:x"]


class FanoutTest(BlackboxTest):
    def setUp(self):
        self.d = self.daemon()
        self.pub = self.client(self.d)

    def connect_many(self, n, patterns_of):
        """Opens n connections; connection i subscribes to patterns_of(i), all requests pipelined."""
        conns = [self.client(self.d) for _ in range(n)]
        for i, c in enumerate(conns):
            c.send_raw(b"".join(encode({"type": "subscribe", "id": f"s{i}:{p}", "channel": p})
                                for p in patterns_of(i)))
        for i, c in enumerate(conns):
            for p in patterns_of(i):
                reply = c.reply()
                self.assertEqual(reply["id"], f"s{i}:{p}")
                self.assertEqual(reply["data"], {"subscribed": True, "channel": p})
        return conns

    def test_thousand_subscribers_all_receive(self):
        subs = self.connect_many(N, lambda i: ["fan:x"])
        self.assertGreaterEqual(self.pub.status()["connections"], N + 1)
        self.assertIn(("fan:x", N), subscriber_counts(self.pub.status()))
        message = {"event": "task-moved", "taskId": "123", "pad": "p" * 1000}
        self.assertEqual(self.pub.publish("fan:x", message)["data"]["delivered"], N)
        self.assertEqual(self.pub.publish("fan:x", {"second": True})["data"]["delivered"], N)
        for i, c in enumerate(subs):
            first = c.next_message()
            self.assertEqual((first["channel"], first["message"]), ("fan:x", message), f"subscriber {i}")
            self.assertEqual(c.next_message()["message"], {"second": True}, f"subscriber {i}")
        for c in subs:
            c.close()
        wait_until(lambda: self.pub.publish("fan:x", 0)["data"]["delivered"] == 0,
                   message="all 1000 subscriptions gone after disconnect")
        wait_until(lambda: self.pub.status()["connections"] == 1, message="connections back to one")

    def test_wildcards_one_copy_per_connection_and_publisher_exclusion(self):
        matching = self.connect_many(N, lambda i: PATTERN_SETS[i % len(PATTERN_SETS)])
        others = self.connect_many(20, lambda i: NOT_MATCHING)
        self.pub.subscribe("*")  # the publisher matches too, but never receives its own messages
        reply = self.pub.publish("fan:x", "m1")
        self.assertEqual(reply["data"]["delivered"], N)
        # Nothing was queued to the publisher before the next reply.
        self.pub.send({"type": "ping", "id": "after"})
        self.assertEqual(self.pub.read_json(), {"type": "pong", "id": "after"})
        self.assertEqual(self.pub.publish("fan:y", "m2")["data"]["delivered"],
                         len(others) + sum(1 for i in range(N)
                                           if any(p != "fan:x" for p in PATTERN_SETS[i % len(PATTERN_SETS)])))
        self.pub.publish("fan:x", "m3")
        for i, c in enumerate(others):
            got = c.next_message()
            self.assertEqual((got["channel"], got["message"]), ("fan:y", "m2"), f"non-matching connection {i}")
        for i, c in enumerate(matching):
            patterns = PATTERN_SETS[i % len(PATTERN_SETS)]
            expected = ["m1", "m2", "m3"] if any(p != "fan:x" for p in patterns) else ["m1", "m3"]
            got = [c.next_message()["message"] for _ in expected]
            self.assertEqual(got, expected, f"connection {i} with {patterns}")

    def test_order_of_1000_messages_from_one_publisher(self):
        subs = self.connect_many(5, lambda i: [["seq"], ["s*"], ["*"], ["seq", "*"], ["seq", "s*", "*"]][i])
        self.pub.send_raw(b"".join(encode({"type": "publish", "id": f"p{k}", "channel": "seq", "message": k})
                                   for k in range(1000)))
        for k in range(1000):
            reply = self.pub.reply()
            self.assertEqual((reply["id"], reply["data"]["delivered"]), (f"p{k}", 5))
        for i, c in enumerate(subs):
            msgs = [c.next_message() for _ in range(1000)]
            self.assertEqual([m["message"] for m in msgs], list(range(1000)), f"subscriber {i}")
            self.assertEqual(len({m["id"] for m in msgs}), 1000)

    def test_each_publishers_order_is_kept_when_publishers_interleave(self):
        subs = self.connect_many(3, lambda i: ["mix:*"])
        pubs = [self.client(self.d) for _ in range(4)]
        errors = []

        def publish_all(p, who):
            try:
                p.send_raw(b"".join(encode({"type": "publish", "id": f"{who}-{k}", "channel": f"mix:{who}",
                                            "message": {"who": who, "k": k}}) for k in range(250)))
                for k in range(250):
                    reply = p.reply()
                    if reply.get("id") != f"{who}-{k}" or reply.get("type") != "result":
                        errors.append(reply)
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=publish_all, args=(p, w)) for w, p in enumerate(pubs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        for c in subs:
            last = {w: -1 for w in range(len(pubs))}
            for _ in range(250 * len(pubs)):
                m = c.next_message()["message"]
                self.assertEqual(m["k"], last[m["who"]] + 1, "per-publisher order")
                last[m["who"]] = m["k"]
            self.assertEqual(set(last.values()), {249})


if __name__ == "__main__":
    unittest.main()
