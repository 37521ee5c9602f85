# The test clock of a test build (photond --test-clock): the request, its refusals, and that
# deadlines wait for it rather than for real time.
import harness


class TestClockRequest(harness.BlackboxTest):
    def test_advance_moves_both_clocks_and_set_wall_moves_the_wall_alone(self):
        d = self.daemon(test_clock="2026-03-08T01:59:00Z")
        start = d.clock()
        self.assertEqual(start["wallMs"], 1772935140000)
        moved = d.advance(1500)
        self.assertEqual(moved["wallMs"], start["wallMs"] + 1500)
        self.assertEqual(moved["steadyMs"], start["steadyMs"] + 1500)
        jumped = d.set_wall("2026-03-08T03:00:00.250+01:00")
        self.assertEqual(jumped["wallMs"], 1772935200250)
        self.assertEqual(jumped["steadyMs"], moved["steadyMs"])
        back = d.set_wall("2026-03-08T01:00:00Z")
        self.assertEqual(back["wallMs"], 1772931600000)

    def test_bad_moves_are_refused_and_move_nothing(self):
        d = self.daemon(test_clock=True)
        before = d.clock()
        c = self.client(d)
        for fields, words in [
            ({"advanceMs": -1}, "advanceMs must be an integer"),
            ({"advanceMs": "10"}, "advanceMs must be an integer"),
            ({"advanceMs": 1.5}, "advanceMs must be an integer"),
            ({"advanceMs": 10**15}, "advanceMs must be an integer"),
            ({"setWall": "yesterday"}, "setWall must be an RFC 3339"),
            ({"setWall": "2026-02-30T00:00:00Z"}, "setWall must be an RFC 3339"),
            ({"setWall": "2026-03-08T01:59:00"}, "setWall must be an RFC 3339"),
            ({"setWall": 1772935140000}, "setWall must be an RFC 3339"),
            ({"advanceMs": 1, "setWall": "2026-03-08T01:59:00Z"}, "not both"),
        ]:
            reply = c.call({"type": "test_clock", "id": "bad", **fields})
            self.assertEqual(reply["type"], "error", fields)
            self.assertIn(words, reply["error"], fields)
        self.assertEqual(d.clock(), before)

    def test_a_daemon_on_the_system_clock_serves_no_test_clock(self):
        d = self.daemon()
        c = self.client(d)
        reply = c.call({"type": "test_clock", "id": "t", "advanceMs": 1000})
        self.assertEqual(reply["type"], "error")
        self.assertIn("unknown request type", reply["error"].lower())

    def test_a_bad_start_time_is_a_usage_error(self):
        d = self.daemon(test_clock="not-a-time", start=False, check_exit=False)
        d.spawn()
        self.assertEqual(d.wait(), 2)
        self.assertIn("--test-clock", d.output())

    def test_a_lease_ends_exactly_when_the_clock_reaches_it_and_not_with_real_time(self):
        d = self.daemon(test_clock=True)
        holder = self.client(d)
        got = holder.call({"type": "lock", "id": "l", "lockName": "job", "lockTimeout": 1000})
        self.assertTrue(got["data"]["acquired"])
        waiter = self.client(d)
        waiter.send({"type": "lock", "id": "w", "lockName": "job", "lockTimeout": 1000, "lockWait": 60000})
        d.advance(999)
        query = self.client(d)
        self.assertEqual(query.call({"type": "query_lock", "id": "q", "lockName": "job"})["data"]["lock"]["holder"], "l")
        # The waiter's grant is written before the clock's reply: it is there to read now.
        d.advance(1)
        granted = waiter.reply()
        self.assertEqual(granted["id"], "w")
        self.assertTrue(granted["data"]["acquired"])
        self.assertGreater(granted["data"]["token"], got["data"]["token"])

    def test_the_idle_timeout_counts_on_the_test_clock_and_the_controller_does_not_hold_it_off(self):
        d = self.daemon(test_clock=True, args=["--idle-timeout", "30s"])
        with d.client() as c:
            c.ping()
        d.wait_connections(0)  # the count starts at its close
        d.advance(29999)
        self.assertIsNone(d.proc.poll())
        with d.client() as c:
            c.ping()
        d.wait_connections(0)  # and starts again at this one's
        d.advance(29999)
        self.assertIsNone(d.proc.poll())
        d.advance(1)
        self.assertEqual(d.wait(), 0)

if __name__ == "__main__":
    import unittest

    unittest.main()
