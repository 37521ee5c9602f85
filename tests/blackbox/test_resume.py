# Resuming a subscription (docs/protocol.md): eventId on publish and channel_message, lastEventId on subscribe, refresh_needed, get_events_since.
import json
import os
import signal
import threading
import unittest

from harness import TIMEOUT, BlackboxTest, assert_nothing_before_pong, subscriber_counts, wait_until

FOREIGN = "000000000000-1"


def epoch(event_id):
    """The text before the last '-': the daemon's epoch, all the structure the tests assume."""
    prefix, dash, _ = event_id.rpartition("-")
    if not dash or not prefix:
        raise AssertionError(f"event id without an epoch prefix: {event_id!r}")
    return prefix


class ResumeTest(BlackboxTest):
    def serve(self, *args):
        self.d = self.daemon(args=list(args))
        return self.d

    def conn(self):
        return self.client(self.d)

    def publish(self, c, channel, message, ident="pub", delivered=None):
        """Publishes and returns the reply's eventId, checking the reply's shape."""
        reply = c.call({"type": "publish", "id": ident, "channel": channel, "message": message})
        self.assertEqual(reply.get("type"), "result", reply)
        self.assertEqual(reply.get("id"), ident, reply)
        self.assertIs(reply.get("success"), True, reply)
        data = reply["data"]
        self.assertEqual(set(data), {"published", "channel", "delivered", "eventId"}, reply)
        self.assertIs(data["published"], True)
        self.assertEqual(data["channel"], channel)
        if delivered is not None:
            self.assertEqual(data["delivered"], delivered, reply)
        self.assertIsInstance(data["eventId"], str, reply)
        self.assertTrue(data["eventId"], reply)
        return data["eventId"]

    def assert_message(self, got, channel, message, event_id=None, replay=False):
        self.assertEqual(got.get("type"), "channel_message", got)
        keys = {"type", "id", "channel", "eventId", "message"} | ({"replay"} if replay else set())
        self.assertEqual(set(got), keys, got)
        self.assertTrue(got["id"].startswith("ch_"), got)
        self.assertEqual(got["channel"], channel, got)
        self.assertEqual(got["message"], message, got)
        self.assertIsInstance(got["eventId"], str, got)
        if event_id is not None:
            self.assertEqual(got["eventId"], event_id, got)
        if replay:
            self.assertIs(got["replay"], True, got)
        return got

    def resume(self, c, channel, last, ident="resume"):
        """Subscribes with lastEventId; the subscribe's result must be the very next line."""
        self.assertFalse(c.pending, "messages left unread before the resume")
        c.send({"type": "subscribe", "id": ident, "channel": channel, "lastEventId": last})
        self.assertEqual(c.read_json(), {"type": "result", "id": ident, "success": True,
                                         "data": {"subscribed": True, "channel": channel}})

    def assert_refresh(self, c, ident, channel):
        self.assertEqual(c.recv(), {"type": "refresh_needed", "id": ident, "channel": channel})

    def seen_then_gone(self, channel, message, pub, published_on=None):
        """A subscriber to `channel` that saw one message (published on `published_on`, by default
        the channel) and left; returns that message's eventId once the daemon has seen it go."""
        published_on = published_on or channel
        connections = pub.status()["connections"]
        a = self.conn()
        a.subscribe(channel)
        event_id = self.publish(pub, published_on, message, delivered=1)
        self.assert_message(a.next_message(), published_on, message, event_id)
        a.close()
        wait_until(lambda: pub.status()["connections"] == connections, message="the subscriber gone")
        return event_id

    def events_since(self, c, channel, last=None, limit=None, ident="g"):
        request = {"type": "get_events_since", "id": ident, "channel": channel}
        if last is not None:
            request["lastEventId"] = last
        if limit is not None:
            request["limit"] = limit
        reply = c.call(request)
        self.assertEqual(reply.get("type"), "result", reply)
        self.assertEqual(reply.get("id"), ident, reply)
        self.assertIs(reply.get("success"), True, reply)
        self.assertEqual(set(reply["data"]), {"events", "refreshNeeded"}, reply)
        self.assertIsInstance(reply["data"]["refreshNeeded"], bool, reply)
        return reply["data"]

    def assert_error(self, reply, ident, word):
        self.assertEqual(reply.get("type"), "error", reply)
        self.assertEqual(reply.get("id"), ident, reply)
        self.assertIsInstance(reply.get("error"), str, reply)
        self.assertIn(word.lower(), reply["error"].lower(), reply)

    # ---- eventId

    def test_publish_and_channel_message_carry_the_same_event_id(self):
        self.serve()
        exact, pattern, pub = self.conn(), self.conn(), self.conn()
        exact.subscribe("board:x")
        pattern.subscribe("board:*")
        ids = []
        for n in range(5):
            event_id = self.publish(pub, "board:x", {"n": n}, delivered=2)
            self.assert_message(exact.next_message(), "board:x", {"n": n}, event_id)
            self.assert_message(pattern.next_message(), "board:x", {"n": n}, event_id)
            ids.append(event_id)
        # Kept whether or not anyone receives it: a publish nobody hears has an id too.
        ids.append(self.publish(pub, "nobody", {"n": 5}, delivered=0))
        ids.append(self.publish(pub, "board:y", {"n": 6}, delivered=1))
        self.assert_message(pattern.next_message(), "board:y", {"n": 6}, ids[-1])
        self.assertEqual(len(set(ids)), len(ids), ids)
        self.assertEqual({epoch(i) for i in ids}, {epoch(ids[0])}, ids)

    # ---- lastEventId on subscribe

    def test_a_returning_subscriber_gets_exactly_what_it_missed_then_live(self):
        self.serve()
        pub = self.conn()
        last = self.seen_then_gone("board:x", {"seq": 0}, pub)
        missed = [self.publish(pub, "board:x", {"seq": seq}, delivered=0) for seq in range(1, 21)]
        a = self.conn()
        self.resume(a, "board:x", last, "s2")
        for seq, event_id in zip(range(1, 21), missed):
            self.assert_message(a.next_message(), "board:x", {"seq": seq}, event_id, replay=True)
        assert_nothing_before_pong(a, what="nothing after the replay")
        live = self.publish(pub, "board:x", {"seq": 21}, delivered=1)
        self.assert_message(a.next_message(), "board:x", {"seq": 21}, live)
        assert_nothing_before_pong(a, what="no duplicate of the live message")

    def test_a_subscriber_up_to_date_gets_no_replay_and_no_refresh(self):
        self.serve()
        pub = self.conn()
        self.publish(pub, "board:x", {"seq": 0})
        last = self.seen_then_gone("board:x", {"seq": 1}, pub)
        a = self.conn()
        self.resume(a, "board:x", last)
        assert_nothing_before_pong(a, what="nothing: nothing was missed")
        live = self.publish(pub, "board:x", {"seq": 2}, delivered=1)
        self.assert_message(a.next_message(), "board:x", {"seq": 2}, live)

    def test_a_wildcard_resume_replays_every_matching_channel_in_publish_order(self):
        self.serve()
        pub = self.conn()
        last = self.seen_then_gone("board:*", {"seq": 0}, pub, published_on="board:a")
        channels = ["board:a", "board:b", "other:c", "board:a:deep"]
        published = []  # (channel, seq, eventId)
        for seq in range(1, 25):
            channel = channels[seq % len(channels)] if seq % 5 else "board:b"
            published.append((channel, seq, self.publish(pub, channel, {"seq": seq})))
        a = self.conn()
        self.resume(a, "board:*", last, "s2")
        expected = [p for p in published if p[0].startswith("board:")]
        for channel, seq, event_id in expected:
            self.assert_message(a.next_message(), channel, {"seq": seq}, event_id, replay=True)
        assert_nothing_before_pong(a, what="nothing but board:* in the replay")
        self.publish(pub, "other:c", {"seq": 25}, delivered=0)
        live = self.publish(pub, "board:b", {"seq": 26}, delivered=1)
        self.assert_message(a.next_message(), "board:b", {"seq": 26}, live)
        # An exact channel from the same id replays that channel's alone.
        b = self.conn()
        self.resume(b, "board:b", last, "s3")
        for channel, seq, event_id in [p for p in published if p[0] == "board:b"] + [("board:b", 26, live)]:
            self.assert_message(b.next_message(), "board:b", {"seq": seq}, event_id, replay=True)
        assert_nothing_before_pong(b, what="nothing but board:b in the replay")

    def test_an_existing_subscription_gets_the_replay_too(self):
        self.serve()
        sub, pub = self.conn(), self.conn()
        sub.subscribe("board:x")
        ids = []
        for seq in range(4):
            ids.append(self.publish(pub, "board:x", {"seq": seq}, delivered=1))
            self.assert_message(sub.next_message(), "board:x", {"seq": seq}, ids[-1])
        self.resume(sub, "board:x", ids[1], "again")
        for seq in (2, 3):
            self.assert_message(sub.next_message(), "board:x", {"seq": seq}, ids[seq], replay=True)
        assert_nothing_before_pong(sub, what="nothing after the replay")
        # Still one subscription.
        live = self.publish(pub, "board:x", {"seq": 4}, delivered=1)
        self.assert_message(sub.next_message(), "board:x", {"seq": 4}, live)
        assert_nothing_before_pong(sub, what="one copy of the live message")

    # ---- refresh_needed

    def test_ids_this_daemon_cannot_vouch_for_get_refresh_needed_then_live(self):
        self.serve()
        pub = self.conn()
        known = [self.publish(pub, "board:x", {"seq": seq}) for seq in range(3)]
        here = epoch(known[0])
        cases = [
            ("foreign epoch", FOREIGN),
            ("future", f"{here}-999999999999"),
            ("future past 64 bits", f"{here}-99999999999999999999999"),
            ("malformed", "nonsense"),
            ("empty", ""),
            ("epoch alone", f"{here}-"),
            ("bad sequence", f"{here}-x1"),
        ]
        for i, (what, last) in enumerate(cases):
            with self.subTest(what):
                c = self.conn()
                ident = f"s{i}"
                self.resume(c, "board:x", last, ident)
                self.assert_refresh(c, ident, "board:x")
                assert_nothing_before_pong(c, what="no replay after refresh_needed")
                live = self.publish(pub, "board:x", {"live": i})
                self.assert_message(c.next_message(), "board:x", {"live": i}, live)
                c.close()

    def test_a_last_event_id_that_is_not_a_string_is_refused_and_nothing_subscribed(self):
        self.serve()
        pub = self.conn()
        last = self.publish(pub, "board:x", {"seq": 0})
        for i, value in enumerate([5, 0, 1.5, None, True, {"eventId": last}, [last]]):
            with self.subTest(value=value):
                c = self.conn()
                ident = f"bad{i}"
                self.assert_error(c.call({"type": "subscribe", "id": ident, "channel": "board:x",
                                          "lastEventId": value}), ident, "lastEventId")
                self.publish(pub, "board:x", {"after": i}, delivered=0)
                assert_nothing_before_pong(c, what="no subscription, no replay")
                c.close()

    def test_a_subscriber_further_back_than_the_window_is_told_to_refresh(self):
        self.serve("--replay-messages", "5")
        pub = self.conn()
        last = self.seen_then_gone("board:x", {"seq": 0}, pub)
        for seq in range(1, 21):
            self.publish(pub, "board:x", {"seq": seq})
        a = self.conn()
        self.resume(a, "board:x", last, "s2")
        self.assert_refresh(a, "s2", "board:x")
        assert_nothing_before_pong(a, what="no replay after refresh_needed")
        live = self.publish(pub, "board:x", {"seq": 21}, delivered=1)
        self.assert_message(a.next_message(), "board:x", {"seq": 21}, live)

    def test_within_a_small_window_the_replay_is_whole(self):
        self.serve("--replay-messages", "5")
        pub = self.conn()
        last = self.seen_then_gone("board:x", {"seq": 0}, pub)
        # With the message seen, 5 in all: everything after it is still kept.
        missed = [self.publish(pub, "board:x", {"seq": seq}) for seq in range(1, 5)]
        a = self.conn()
        self.resume(a, "board:x", last)
        for seq, event_id in zip(range(1, 5), missed):
            self.assert_message(a.next_message(), "board:x", {"seq": seq}, event_id, replay=True)
        assert_nothing_before_pong(a, what="nothing after the replay")

    def test_a_busy_channel_does_not_push_a_quiet_ones_messages_out(self):
        self.serve("--replay-messages", "10")
        pub = self.conn()
        last = self.seen_then_gone("quiet", {"seq": 0}, pub)
        quiet = [self.publish(pub, "quiet", {"seq": seq}) for seq in (1, 2)]
        busy_first = self.publish(pub, "busy", {"n": 0})
        for n in range(1, 60):
            self.publish(pub, "busy", {"n": n})
        a = self.conn()
        self.resume(a, "quiet", last, "q")
        for seq, event_id in zip((1, 2), quiet):
            self.assert_message(a.next_message(), "quiet", {"seq": seq}, event_id, replay=True)
        assert_nothing_before_pong(a, what="the quiet channel's replay only")
        b = self.conn()
        self.resume(b, "busy", busy_first, "b")
        self.assert_refresh(b, "b", "busy")

    def test_a_window_in_bytes_tells_a_subscriber_too_far_back_to_refresh(self):
        self.serve("--replay-bytes", "65536")
        pub = self.conn()
        last = self.seen_then_gone("board:x", {"seq": 0}, pub)
        padding = "p" * 8192
        ids = [self.publish(pub, "board:x", {"seq": seq, "pad": padding}) for seq in range(1, 21)]
        a = self.conn()
        self.resume(a, "board:x", last, "far")
        self.assert_refresh(a, "far", "board:x")
        # The last two (16 KiB and a little) are kept.
        b = self.conn()
        self.resume(b, "board:x", ids[-3], "near")
        for seq, event_id in zip((19, 20), ids[-2:]):
            self.assert_message(b.next_message(), "board:x", {"seq": seq, "pad": padding}, event_id, replay=True)
        assert_nothing_before_pong(b, what="nothing after the replay")

    def test_a_channel_keeps_its_own_last_messages_by_default(self):
        # photon's bound: 500 per channel. A channel over it gives up its own oldest; another
        # channel's stay.
        self.serve()
        pub = self.conn()
        other = self.seen_then_gone("other", {"seq": 0}, pub)
        kept = self.publish(pub, "other", {"seq": 1})
        busy = [self.publish(pub, "busy", {"n": n}) for n in range(502)]
        a = self.conn()
        self.resume(a, "busy", busy[0], "far")
        self.assert_refresh(a, "far", "busy")
        b = self.conn()
        self.resume(b, "busy", busy[1], "edge")  # the 500 after it are exactly the ones kept
        replayed = [b.next_message() for _ in range(500)]
        self.assertEqual([m["message"]["n"] for m in replayed], list(range(2, 502)))
        assert_nothing_before_pong(b, what="nothing after the replay")
        c = self.conn()
        self.resume(c, "other", other, "quiet")
        self.assert_message(c.next_message(), "other", {"seq": 1}, kept, replay=True)

    def test_a_replay_too_large_for_the_output_bound_is_refresh_needed_not_a_cut(self):
        # Queued at once, 100 KiB would pass the 64 KiB bound and get the connection cut.
        self.serve("--output-hard-limit", "65536", "--output-soft-limit", "32768")
        pub = self.conn()
        last = self.seen_then_gone("board:x", {"seq": 0}, pub)
        pad = "p" * 1024
        ids = [self.publish(pub, "board:x", {"seq": seq, "pad": pad}) for seq in range(1, 101)]
        a = self.conn()
        self.resume(a, "board:x", last, "far")
        self.assert_refresh(a, "far", "board:x")
        live = self.publish(pub, "board:x", {"seq": 101}, delivered=1)
        self.assert_message(a.next_message(), "board:x", {"seq": 101}, live)  # still connected
        b = self.conn()
        self.resume(b, "board:x", ids[-3], "near")  # 2 KiB owed: replayed
        for seq, event_id in zip((99, 100), ids[-2:]):
            self.assert_message(b.next_message(), "board:x", {"seq": seq, "pad": pad}, event_id, replay=True)

    def test_messages_older_than_the_age_bound_are_not_replayed(self):
        d = self.daemon(args=["--replay-age", "5m"], test_clock=True)
        self.d = d
        pub = self.conn()
        last = self.seen_then_gone("board:x", {"seq": 0}, pub)
        old = self.publish(pub, "board:x", {"seq": 1})
        d.advance(4 * 60 * 1000)
        recent = self.publish(pub, "board:x", {"seq": 2})
        d.advance(60 * 1000 + 1)  # seq 1 is 5 minutes and 1 ms old now; seq 2, 1 minute
        a = self.conn()
        self.resume(a, "board:x", last, "old")
        self.assert_refresh(a, "old", "board:x")
        b = self.conn()
        self.resume(b, "board:x", old, "recent")
        self.assert_message(b.next_message(), "board:x", {"seq": 2}, recent, replay=True)
        since = self.events_since(pub, "board:x", last)
        self.assertIs(since["refreshNeeded"], True)
        self.assertEqual([e["eventId"] for e in since["events"]], [recent])

    def test_an_event_id_from_before_a_restart_gets_refresh_needed(self):
        d = self.serve()
        pub = self.conn()
        first = [self.publish(pub, "board:x", {"run": 1, "seq": seq}) for seq in range(3)]
        pub.close()
        self.assertEqual(d.stop(), 0)
        d.start()
        pub = self.conn()
        # More messages on the channel than before the restart, so a sequence alone would match.
        second = [self.publish(pub, "board:x", {"run": 2, "seq": seq}) for seq in range(6)]
        self.assertNotEqual(epoch(first[0]), epoch(second[0]))
        self.assertEqual({epoch(i) for i in second}, {epoch(second[0])})
        a = self.conn()
        self.resume(a, "board:x", first[0], "old")
        self.assert_refresh(a, "old", "board:x")
        assert_nothing_before_pong(a, what="no replay after refresh_needed")
        live = self.publish(pub, "board:x", {"run": 2, "seq": 6}, delivered=1)
        self.assert_message(a.next_message(), "board:x", {"run": 2, "seq": 6}, live)
        self.assertTrue(self.events_since(pub, "board:x", first[0])["refreshNeeded"])

    # ---- get_events_since

    def test_get_events_since_reads_back_a_message_as_deep_as_a_publish_may_be(self):
        # --max-json-depth is 64 by default; the kept line is one level deeper than the message.
        self.serve()
        c = self.conn()
        deep = 0
        for _ in range(60):
            deep = [deep]
        event_id = self.publish(c, "deep", deep)
        self.assertEqual(self.events_since(c, "deep"),
                         {"events": [{"eventId": event_id, "channel": "deep", "message": deep}],
                          "refreshNeeded": False})

    def test_get_events_since_answers_from_the_window_without_subscribing(self):
        self.serve()
        c = self.conn()
        published = []  # {eventId, channel, message}, in publish order
        for seq in range(12):
            channel = ["board:a", "board:b", "other:c"][seq % 3]
            message = {"seq": seq}
            published.append({"eventId": self.publish(c, channel, message), "channel": channel,
                              "message": message})
        on_a = [e for e in published if e["channel"] == "board:a"]
        on_board = [e for e in published if e["channel"].startswith("board:")]
        self.assertEqual(self.events_since(c, "board:a"), {"events": on_a, "refreshNeeded": False})
        self.assertEqual(self.events_since(c, "board:*"), {"events": on_board, "refreshNeeded": False})
        since = published[4]["eventId"]  # on board:b
        self.assertEqual(self.events_since(c, "board:a", since),
                         {"events": [e for e in on_a if published.index(e) > 4], "refreshNeeded": False})
        self.assertEqual(self.events_since(c, "board:*", since),
                         {"events": [e for e in on_board if published.index(e) > 4], "refreshNeeded": False})
        self.assertEqual(self.events_since(c, "*", since),
                         {"events": published[5:], "refreshNeeded": False})
        self.assertEqual(self.events_since(c, "board:*", published[-1]["eventId"]),
                         {"events": [], "refreshNeeded": False})
        self.assertEqual(self.events_since(c, "nothing:here"), {"events": [], "refreshNeeded": False})
        # Nothing was subscribed.
        self.publish(c, "board:a", {"seq": 12}, delivered=0)
        other = self.conn()
        self.publish(other, "board:a", {"seq": 13}, delivered=0)
        assert_nothing_before_pong(c, what="no message: get_events_since does not subscribe")

    def test_get_events_since_limit_takes_the_oldest_and_reading_on_gets_the_rest(self):
        self.serve()
        c = self.conn()
        start = self.publish(c, "board:x", {"seq": 0})
        events = []
        for seq in range(1, 11):
            message = {"seq": seq}
            channel = "board:x" if seq % 2 else "board:y"
            events.append({"eventId": self.publish(c, channel, message), "channel": channel, "message": message})
        first = self.events_since(c, "board:*", start, limit=4)
        self.assertEqual(first, {"events": events[:4], "refreshNeeded": False})
        second = self.events_since(c, "board:*", first["events"][-1]["eventId"], limit=4)
        self.assertEqual(second, {"events": events[4:8], "refreshNeeded": False})
        rest = self.events_since(c, "board:*", second["events"][-1]["eventId"], limit=4)
        self.assertEqual(rest, {"events": events[8:], "refreshNeeded": False})
        self.assertEqual(self.events_since(c, "board:*", start, limit=1)["events"], events[:1])
        self.assertEqual(self.events_since(c, "board:*", start, limit=1000)["events"], events)

    def test_get_events_since_says_refresh_where_subscribe_would(self):
        self.serve("--replay-messages", "5")
        c = self.conn()
        ids = [self.publish(c, "board:x", {"seq": seq}) for seq in range(20)]
        kept = [{"eventId": ids[seq], "channel": "board:x", "message": {"seq": seq}} for seq in range(15, 20)]
        here = epoch(ids[0])
        for what, last in [("evicted", ids[0]), ("foreign epoch", FOREIGN), ("future", f"{here}-999999999999"),
                           ("malformed", "nonsense")]:
            with self.subTest(what):
                self.assertEqual(self.events_since(c, "board:x", last), {"events": kept, "refreshNeeded": True})
        self.assertEqual(self.events_since(c, "board:x", ids[16]), {"events": kept[2:], "refreshNeeded": False})
        self.assertEqual(self.events_since(c, "board:x"), {"events": kept, "refreshNeeded": False})

    def test_get_events_since_refuses_bad_limits_and_channels(self):
        self.serve()
        c = self.conn()
        self.publish(c, "board:x", {"seq": 0})
        for i, limit in enumerate([0, 1001, -1, 1.5, "10", True]):
            with self.subTest(limit=limit):
                ident = f"l{i}"
                self.assert_error(c.call({"type": "get_events_since", "id": ident, "channel": "board:x",
                                          "limit": limit}), ident, "limit")
        self.assert_error(c.call({"type": "get_events_since", "id": "c1"}), "c1", "channel")
        self.assert_error(c.call({"type": "get_events_since", "id": "c2", "channel": "a*b"}), "c2", "channel")
        self.assert_error(c.call({"type": "get_events_since", "id": "c3", "channel": 5}), "c3", "channel")
        c.ping("still-usable")

    # ---- the seam between replay and live

    def test_resuming_while_a_publisher_goes_on_loses_and_repeats_nothing(self):
        # A window larger than what the publisher gets through while the subscriber is away.
        self.serve("--replay-channel-messages", "100000", "--replay-messages", "100000")
        sub, pub = self.conn(), self.conn()
        sub.subscribe("board:seam")
        minimum = 300
        ids = {}
        published = [0]  # how many the publisher has had answered
        last = [None]
        errors = []
        resumed, stop = threading.Event(), threading.Event()

        def publish_all():
            try:
                k = 0
                after_resume = None
                while not stop.is_set():
                    reply = pub.call({"type": "publish", "id": f"p{k}", "channel": "board:seam",
                                      "message": {"k": k}})
                    if reply.get("type") != "result" or reply.get("id") != f"p{k}":
                        errors.append(reply)
                        return
                    ids[k] = reply["data"]["eventId"]
                    published[0] = k + 1
                    if resumed.is_set():
                        after_resume = k if after_resume is None else after_resume
                        # Enough published after the resume that some must arrive live.
                        if k >= minimum - 1 and k - after_resume >= 50:
                            last[0] = k
                            return
                    k += 1
            except Exception as error:
                errors.append(error)

        thread = threading.Thread(target=publish_all, daemon=True)
        thread.start()

        def finish():
            stop.set()
            thread.join(TIMEOUT)

        self.addCleanup(finish)
        # The subscriber reads live up to k = 20, then goes away while the publishes go on.
        while True:
            m = sub.next_message()
            if m["message"]["k"] == 20:
                break
        seen = m["eventId"]
        sub.close()
        wait_until(lambda: published[0] >= 60, message="publishes made while the subscriber was away")
        again = self.conn()
        self.resume(again, "board:seam", seen, "back")
        resumed.set()
        thread.join(TIMEOUT * 3)
        self.assertFalse(thread.is_alive(), "the publisher did not finish")
        self.assertEqual(errors, [])
        self.assertIsNotNone(last[0])
        got = []
        while not got or got[-1]["message"]["k"] != last[0]:
            m = again.next_message()
            self.assertEqual(m["channel"], "board:seam", m)
            got.append(m)
        ks = [m["message"]["k"] for m in got]
        self.assertEqual(ks, list(range(21, last[0] + 1)), "no gap, no duplicate")
        self.assertEqual([m["eventId"] for m in got], [ids[k] for k in ks])
        replayed = [m.get("replay") is True for m in got]
        count = replayed.count(True)
        self.assertEqual(replayed, [True] * count + [False] * (len(got) - count), "the replay, then live")
        self.assertGreaterEqual(count, 60 - 21, "what was published while away is replayed")
        self.assertGreaterEqual(len(got) - count, 50, "what was published after the resume is live")
        for m in got[count:]:
            self.assertNotIn("replay", m)
        assert_nothing_before_pong(again, what="nothing after the last message")


class PhotonctlSubReconnectTest(BlackboxTest):
    """`photonctl sub --reconnect`: the library's reconnection (ReconnectOptions) seen from outside."""

    def subscribed(self, watcher, channel, count=1):
        return (channel, count) in subscriber_counts(watcher.status())

    def test_a_subscriber_cut_off_mid_flood_prints_every_message_once(self):
        # Cut off when its queue stays over 64 KiB for a second; every message stays in the window.
        d = self.daemon(args=["--output-soft-limit", "65536", "--output-soft-seconds", "1",
                              "--replay-messages", "100000", "--replay-bytes", "64m",
                              "--replay-channel-messages", "100000", "--replay-channel-bytes", "64m"])
        pub = self.client(d)
        flood, total = 600, 650
        sub = self.spawn_photonctl(d.photon_dir, "sub", d.name, "flood", "--reconnect",
                                   "--count", str(total), "--timeout", "120s")
        # Read as it prints: a full pipe would stall it, and the daemon would cut it off again.
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(sub.stdout), daemon=True)
        reader.start()
        wait_until(lambda: self.subscribed(pub, "flood"), message="photonctl subscribed")
        # Stopped, it reads nothing: the daemon's queue for it grows until it is cut off.
        os.kill(sub.pid, signal.SIGSTOP)
        self.addCleanup(lambda: sub.poll() is None and os.kill(sub.pid, signal.SIGCONT))
        pad = "p" * 1024
        for n in range(flood):
            pub.publish("flood", {"n": n, "pad": pad}, ident=f"p{n}")
        wait_until(lambda: pub.status()["counters"]["droppedSlowConsumers"] == 1,
                   message="photonctl cut off as a slow consumer")
        wait_until(lambda: not self.subscribed(pub, "flood"), message="its subscription gone")
        os.kill(sub.pid, signal.SIGCONT)
        wait_until(lambda: self.subscribed(pub, "flood"), message="photonctl subscribed again")
        for n in range(flood, total):
            pub.publish("flood", {"n": n, "pad": pad}, ident=f"p{n}")
        reader.join(TIMEOUT * 3)
        self.assertFalse(reader.is_alive(), "photonctl did not finish")
        err = sub.stderr.read()
        self.assertEqual(sub.wait(TIMEOUT), 0, err)
        printed = [json.loads(line) for line in lines]
        self.assertEqual([m["message"]["n"] for m in printed], list(range(total)), "each once, in order")
        self.assertEqual({m["channel"] for m in printed}, {"flood"})
        self.assertEqual(err.count("photonctl: lost the connection to t"), 1, err)
        self.assertEqual(err.count("photonctl: reconnected to t"), 1, err)
        self.assertNotIn("refresh needed", err)

    def test_a_daemon_restart_is_survived_and_reported_as_refresh_needed(self):
        d = self.daemon()
        pub = self.client(d)
        sub = self.spawn_photonctl(d.photon_dir, "sub", d.name, "board:*", "--reconnect",
                                   "--count", "2", "--timeout", "60s")
        wait_until(lambda: self.subscribed(pub, "board:*"), message="photonctl subscribed")
        pub.publish("board:x", {"run": 1})
        first = sub.stdout.readline()
        self.assertEqual(json.loads(first)["message"], {"run": 1}, first)
        pub.close()
        self.assertEqual(d.stop(), 0)
        d.start()
        pub = self.client(d)
        wait_until(lambda: self.subscribed(pub, "board:*"), message="photonctl subscribed again")
        pub.publish("board:y", {"run": 2})
        out, err = sub.communicate(timeout=TIMEOUT * 2)
        self.assertEqual(sub.returncode, 0, err)
        printed = [json.loads(line) for line in out.splitlines()]
        self.assertEqual([(m["channel"], m["message"]) for m in printed], [("board:y", {"run": 2})])
        # The new daemon cannot replay from the old one's event id: photonctl says so, once.
        self.assertEqual(err.count("photonctl: refresh needed on board:*"), 1, err)
        self.assertEqual(err.count("photonctl: lost the connection to t"), 1, err)
        self.assertEqual(err.count("photonctl: reconnected to t"), 1, err)

    def test_without_reconnect_a_cut_ends_sub_as_before(self):
        d = self.daemon()
        pub = self.client(d)
        sub = self.spawn_photonctl(d.photon_dir, "sub", d.name, "c", "--timeout", "60s")
        wait_until(lambda: self.subscribed(pub, "c"), message="photonctl subscribed")
        pub.close()
        self.assertEqual(d.stop(), 0)
        out, err = sub.communicate(timeout=TIMEOUT)
        self.assertNotEqual(sub.returncode, 0, err)
        self.assertEqual(out, "")
        self.assertNotIn("reconnect", err)


if __name__ == "__main__":
    unittest.main()
