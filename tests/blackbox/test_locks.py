# Named locks over the real socket: reply shapes, holders, re-entrancy, exact lease expiry, FIFO waiters,
# waits that run out, release on disconnect, fencing tokens across restarts, validation, limits, idle timeout.
# Leases, waits and the idle timeout run on the daemon's test clock (--test-clock): a test moves it
# to 1 ms before a deadline and to the deadline, and checks what happened at each, never how long
# anything took.
import re
import threading
import time
import unittest

from harness import TIMEOUT, BlackboxTest, assert_nothing_before_pong, encode, wait_until

ACQUIRED_KEYS = {"acquired", "lockName", "holder", "acquiredAt", "expiresAt", "token"}
REFUSED_KEYS = {"acquired", "lockName", "holder", "expiresAt", "reason"}
LOCK_KEYS = {"name", "holder", "acquiredAt", "expiresAt", "token", "waiters"}
TIMED_OUT = re.compile(r"tim(ed|e)[ -]?out", re.IGNORECASE)


def lock_request(name, ident="l", session=None, lease=None, wait=None, release_on_disconnect=None):
    request = {"type": "lock", "id": ident, "lockName": name}
    if session is not None:
        request["sessionId"] = session
    if lease is not None:
        request["lockTimeout"] = lease
    if wait is not None:
        request["lockWait"] = wait
    if release_on_disconnect is not None:
        request["releaseOnDisconnect"] = release_on_disconnect
    return request


class LockTestCase(BlackboxTest):
    """Helpers shared by the lock tests: each asserts the reply's shape as well as its outcome."""

    def conn(self, d=None):
        return self.client(d or self.d)

    def assert_acquired(self, reply, ident, name, holder, extended=False):
        self.assertEqual(reply.get("type"), "result", reply)
        self.assertEqual(reply.get("id"), ident, reply)
        self.assertIs(reply.get("success"), True, reply)
        data = reply["data"]
        self.assertEqual(set(data), ACQUIRED_KEYS | ({"extended"} if extended else set()), reply)
        self.assertIs(data["acquired"], True, reply)
        self.assertEqual(data["lockName"], name, reply)
        self.assertEqual(data["holder"], holder, reply)
        for key in ("acquiredAt", "expiresAt", "token"):
            self.assertIs(type(data[key]), int, f"{key} must be an integer: {reply!r}")
        self.assertGreater(data["token"], 0, reply)
        self.assertGreaterEqual(data["expiresAt"], data["acquiredAt"], reply)
        if extended:
            self.assertIs(data["extended"], True, reply)
        return data

    def assert_refused(self, reply, ident, name, holder, timed_out=False):
        self.assertEqual(reply.get("type"), "result", reply)
        self.assertEqual(reply.get("id"), ident, reply)
        self.assertIs(reply.get("success"), False, reply)
        data = reply["data"]
        self.assertEqual(set(data), REFUSED_KEYS, reply)
        self.assertIs(data["acquired"], False, reply)
        self.assertEqual(data["lockName"], name, reply)
        self.assertEqual(data["holder"], holder, reply)
        self.assertIs(type(data["expiresAt"]), int, reply)
        self.assertIsInstance(data["reason"], str, reply)
        self.assertIn(f'lock "{name}" is held by {holder}', data["reason"], reply)
        if timed_out:
            self.assertRegex(data["reason"], TIMED_OUT, reply)
        else:
            self.assertNotRegex(data["reason"], TIMED_OUT, reply)
        return data

    def acquire(self, c, name, holder, ident="l", extended=False, **fields):
        """A lock that must be granted at once (or, with wait=, when the queue reaches it)."""
        session = fields.pop("session", holder)
        reply = c.call(lock_request(name, ident, session=session, **fields))
        return self.assert_acquired(reply, ident, name, holder, extended)

    def release(self, c, name, session, ident="u"):
        request = {"type": "unlock", "id": ident, "lockName": name}
        if session is not None:
            request["sessionId"] = session
        reply = c.call(request)
        self.assertEqual(reply, {"type": "result", "id": ident, "success": True,
                                 "data": {"released": True, "lockName": name}})

    def query(self, c, name, ident="q"):
        reply = c.call({"type": "query_lock", "id": ident, "lockName": name})
        self.assertEqual(reply.get("type"), "result", reply)
        self.assertEqual(reply.get("id"), ident, reply)
        self.assertIs(reply.get("success"), True, reply)
        self.assertEqual(set(reply["data"]), {"lock"}, reply)
        lock = reply["data"]["lock"]
        if lock is not None:
            self.assertEqual(set(lock), LOCK_KEYS, reply)
            self.assertEqual(lock["name"], name, reply)
        return lock

    def list_locks(self, c, ident="ls"):
        reply = c.call({"type": "list_locks", "id": ident})
        self.assertEqual(reply.get("type"), "result", reply)
        self.assertEqual(reply.get("id"), ident, reply)
        self.assertIs(reply.get("success"), True, reply)
        self.assertEqual(set(reply["data"]), {"locks"}, reply)
        locks = reply["data"]["locks"]
        self.assertIsInstance(locks, list, reply)
        for lock in locks:
            self.assertEqual(set(lock), LOCK_KEYS, reply)
        return locks

    def now(self):
        """The daemon's wall clock in epoch ms: the test clock, which only advance() moves."""
        return self.d.clock()["wallMs"]

    def assert_running(self, d):
        """The daemon is still serving after what the last clock move made due (the idle check runs
        just after the move's reply, so a second round trip follows it)."""
        d.clock()
        self.assertIsNone(d.proc.poll(), d.output())

    def wait_waiters(self, c, name, count):
        wait_until(lambda: (self.query(c, name) or {}).get("waiters") == count,
                   message=f"{count} waiter(s) on {name!r}")


class ShapesTest(LockTestCase):
    def setUp(self):
        self.d = self.daemon(test_clock=True)

    def test_acquired_reply_matches_spec(self):
        c = self.conn()
        now = self.now()
        reply = c.call({"type": "lock", "id": "l1", "sessionId": "cli-1-ab", "lockName": "board:write",
                        "lockTimeout": 30000})
        data = self.assert_acquired(reply, "l1", "board:write", "cli-1-ab")
        self.assertEqual((data["acquiredAt"], data["expiresAt"]), (now, now + 30000), reply)

    def test_expires_at_is_acquired_at_plus_the_lease_for_every_token(self):
        # The daemon persists a high-water mark before it issues the first token of each block of 1000
        # (locks.md): those acquisitions, slowed by the write, must show the same lease as the others.
        # On the test clock no time passes, so every one is exact: acquiredAt is now, expiresAt now + lease.
        c = self.conn()
        now = self.now()
        lines = []
        for i in range(1002):
            lines.append(encode(lock_request(f"n{i % 3}", f"l{i}", session="s", lease=20000 + i)))
            lines.append(encode({"type": "unlock", "id": f"u{i}", "sessionId": "s", "lockName": f"n{i % 3}"}))
        c.send_raw(b"".join(lines))
        wrong = []
        first_of_block = 0
        for i in range(1002):
            data = self.assert_acquired(c.reply(), f"l{i}", f"n{i % 3}", "s")
            first_of_block += data["token"] % 1000 == 1
            if (data["acquiredAt"], data["expiresAt"]) != (now, now + 20000 + i):
                wrong.append((data["token"], data["acquiredAt"] - now, data["expiresAt"] - now, 20000 + i))
            self.assertIs(c.reply()["data"]["released"], True)
        self.assertEqual(first_of_block, 2, "a fresh daemon's tokens 1..1002 include 1 and 1001")
        self.assertEqual(wrong, [], "(token, acquiredAt - now, expiresAt - now, lockTimeout)")

    def test_default_lease_is_30_seconds(self):
        c = self.conn()
        data = self.acquire(c, "default", "s")
        self.assertEqual(data["expiresAt"], data["acquiredAt"] + 30000, data)
        self.d.advance(29999)
        self.assertEqual(self.query(c, "default")["token"], data["token"])
        self.d.advance(1)
        self.assertIsNone(self.query(c, "default"))

    def test_refused_reply_matches_spec(self):
        a, b = self.conn(), self.conn()
        held = self.acquire(a, "board:write", "mcp-5678-xyz")
        reply = b.call(lock_request("board:write", "l2", session="cli-1-ab"))
        data = self.assert_refused(reply, "l2", "board:write", "mcp-5678-xyz")
        self.assertEqual(data["reason"], 'lock "board:write" is held by mcp-5678-xyz')
        self.assertEqual(data["expiresAt"], held["expiresAt"], (held, reply))

    def test_holder_is_the_id_without_a_session(self):
        a, b = self.conn(), self.conn()
        self.assert_acquired(a.call(lock_request("by-id", "req-1")), "req-1", "by-id", "req-1")
        # Another request id is another holder, even on the same connection.
        self.assert_refused(a.call(lock_request("by-id", "req-2")), "req-2", "by-id", "req-1")
        self.assert_refused(b.call(lock_request("by-id", "req-3", session="other")), "req-3", "by-id", "req-1")
        self.assertEqual(self.query(b, "by-id")["holder"], "req-1")
        # The same id again, from another connection, is the holder.
        self.assert_acquired(b.call(lock_request("by-id", "req-1")), "req-1", "by-id", "req-1", extended=True)
        self.release(b, "by-id", None, ident="req-1")
        self.assertIsNone(self.query(a, "by-id"))

    def test_session_wins_over_id(self):
        c = self.conn()
        self.assert_acquired(c.call(lock_request("s", "id-a", session="sess")), "id-a", "s", "sess")
        self.assertEqual(self.query(c, "s")["holder"], "sess")

    def test_reentrant_lock_extends_and_keeps_the_token(self):
        a, b = self.conn(), self.conn()
        first = self.acquire(a, "re", "sess", ident="l1", lease=5000)
        self.assertEqual(first["expiresAt"], first["acquiredAt"] + 5000, first)
        self.d.advance(50)  # so the new lease starts later than the first
        reply = b.call(lock_request("re", "l2", session="sess", lease=20000))  # same session, other connection
        second = self.assert_acquired(reply, "l2", "re", "sess", extended=True)
        self.assertEqual(second["token"], first["token"])
        self.assertEqual(second["acquiredAt"], first["acquiredAt"])
        self.assertEqual(second["expiresAt"], first["acquiredAt"] + 50 + 20000, (first, second))
        lock = self.query(a, "re")
        self.assertEqual((lock["token"], lock["acquiredAt"], lock["holder"], lock["expiresAt"]),
                         (first["token"], first["acquiredAt"], "sess", second["expiresAt"]))
        # Past the first lease's end it is still held: the extension replaced it.
        self.d.advance(5000)
        self.assertEqual(self.query(a, "re")["token"], first["token"])
        # A shorter lease on extension shortens it: the lease is lockTimeout from now.
        third = self.assert_acquired(a.call(lock_request("re", "l3", session="sess", lease=1000)), "l3", "re",
                                     "sess", extended=True)
        self.assertEqual(third["expiresAt"], first["acquiredAt"] + 5050 + 1000, (second, third))
        self.assertEqual(third["token"], first["token"])
        self.d.advance(999)
        self.assertEqual(self.query(a, "re")["token"], first["token"])
        self.d.advance(1)
        self.assertIsNone(self.query(a, "re"), "the shortened lease ended")

    def test_extension_is_not_a_new_acquisition(self):
        c = self.conn()
        first = self.acquire(c, "x", "sess")
        for i in range(3):
            c.call(lock_request("x", f"again{i}", session="sess"))
        self.release(c, "x", "sess")
        again = self.acquire(c, "x", "sess")
        self.assertGreater(again["token"], first["token"])

    def test_only_the_holder_releases(self):
        a, b = self.conn(), self.conn()
        held = self.acquire(a, "board:write", "mcp-5678-xyz")
        reply = b.call({"type": "unlock", "id": "u1", "sessionId": "cli-1-ab", "lockName": "board:write"})
        self.assertEqual(reply, {"type": "result", "id": "u1", "success": False,
                                 "data": {"released": False, "lockName": "board:write",
                                          "reason": 'lock "board:write" is held by mcp-5678-xyz'}})
        # Without a session the holder is the unlock's id, which is not the holder either.
        reply = b.call({"type": "unlock", "id": "u2", "lockName": "board:write"})
        self.assertIs(reply["success"], False, reply)
        self.assertIs(reply["data"]["released"], False, reply)
        lock = self.query(b, "board:write")
        self.assertEqual((lock["holder"], lock["token"]), ("mcp-5678-xyz", held["token"]))
        # The holder's session releases it from any connection.
        self.release(b, "board:write", "mcp-5678-xyz")
        self.assertIsNone(self.query(a, "board:write"))
        self.acquire(b, "board:write", "cli-1-ab")

    def test_unlock_of_an_unheld_lock_reports_released(self):
        c = self.conn()
        self.assertEqual(c.call({"type": "unlock", "id": "u1", "sessionId": "cli-1-ab", "lockName": "never"}),
                         {"type": "result", "id": "u1", "success": True,
                          "data": {"released": True, "lockName": "never"}})
        self.acquire(c, "once", "s")
        self.release(c, "once", "s", ident="u2")
        self.release(c, "once", "s", ident="u3")  # twice: still released
        self.release(c, "once", "someone-else", ident="u4")  # not held: anyone may "release" it

    def test_query_lock(self):
        a, b = self.conn(), self.conn()
        self.assertEqual(a.call({"type": "query_lock", "id": "q", "lockName": "board:write"}),
                         {"type": "result", "id": "q", "success": True, "data": {"lock": None}})
        held = self.acquire(a, "board:write", "cli-1-ab")
        b.send(lock_request("board:write", "w", session="waiter", wait=60000))
        self.wait_waiters(a, "board:write", 1)
        lock = self.query(a, "board:write")
        self.assertEqual(lock, {"name": "board:write", "holder": "cli-1-ab", "acquiredAt": held["acquiredAt"],
                                "expiresAt": held["expiresAt"], "token": held["token"], "waiters": 1})
        self.release(a, "board:write", "cli-1-ab")
        self.assert_acquired(b.reply(), "w", "board:write", "waiter")
        self.assertEqual(self.query(a, "board:write")["waiters"], 0)

    def test_list_locks_sorted_with_waiters(self):
        a, b = self.conn(), self.conn()
        self.assertEqual(self.list_locks(a), [])
        tokens = {}
        for name in ("b", "a", "c:1", "C"):
            tokens[name] = self.acquire(a, name, f"holder-{name}", lease=60000)["token"]
        b.send(lock_request("c:1", "w1", session="w1", wait=60000))
        b.send(lock_request("c:1", "w2", session="w2", wait=60000))
        self.wait_waiters(a, "c:1", 2)
        locks = self.list_locks(a)
        self.assertEqual([lock["name"] for lock in locks], sorted(tokens))
        for lock in locks:
            self.assertEqual(lock["holder"], f"holder-{lock['name']}")
            self.assertEqual(lock["token"], tokens[lock["name"]])
            self.assertEqual(lock["waiters"], 2 if lock["name"] == "c:1" else 0, lock)
            self.assertEqual(lock["expiresAt"], lock["acquiredAt"] + 60000, lock)
        self.assertEqual(self.list_locks(a), locks, "listing changed nothing")

    def test_tokens_increase_across_locks(self):
        c = self.conn()
        tokens = []
        for i in range(20):
            name = f"n{i % 4}"
            tokens.append(self.acquire(c, name, "s")["token"])
            self.release(c, name, "s")
        self.assertEqual(tokens, sorted(set(tokens)), "tokens must strictly increase")

    def test_status_counts_locks(self):
        c = self.conn()
        self.assertEqual(c.status()["locks"], 0)
        self.acquire(c, "one", "s")
        self.acquire(c, "two", "s")
        self.acquire(c, "two", "s", extended=True)  # an extension is no new lock
        self.assertEqual(c.status()["locks"], 2)
        self.release(c, "one", "s")
        self.assertEqual(c.status()["locks"], 1)
        # A lease that ends is uncounted exactly when it ends.
        self.acquire(c, "short", "s", lease=1000)
        self.assertEqual(c.status()["locks"], 2)
        self.d.advance(999)
        self.assertEqual(c.status()["locks"], 2)
        self.d.advance(1)
        self.assertEqual(c.status()["locks"], 1)
        self.assertIsInstance(c.status()["locks"], int)

    def test_a_waiter_does_not_block_its_connection(self):
        a, b = self.conn(), self.conn()
        self.acquire(a, "busy", "A")
        b.send(lock_request("busy", "w", session="B", wait=60000))
        b.send({"type": "ping", "id": "meanwhile"})
        self.assertEqual(b.reply(), {"type": "pong", "id": "meanwhile"})
        self.assertIsNone(self.query(b, "other"))
        self.release(a, "busy", "A")
        self.assert_acquired(b.reply(), "w", "busy", "B")

    def test_waiting_on_a_free_lock_is_granted_at_once(self):
        # At once: the reply comes while the test clock stands still, so no part of the wait passed.
        c = self.conn()
        now = self.now()
        data = self.acquire(c, "free", "s", wait=86400000)
        self.assertEqual(data["acquiredAt"], now, data)
        self.assertEqual(self.now(), now)


class ExpiryTest(LockTestCase):
    def setUp(self):
        self.d = self.daemon(test_clock=True)

    # "Frees the lock when its lease ends": on the test clock, held 1 ms before expiresAt and free at
    # expiresAt, for a waiter, for query_lock, for a plain lock and for list_locks.

    def test_300ms_lease_frees_the_lock_for_a_waiter(self):
        a, b = self.conn(), self.conn()
        held = self.acquire(a, "lease", "A", lease=300)
        self.assertEqual(held["expiresAt"], held["acquiredAt"] + 300, held)
        b.send(lock_request("lease", "w", session="B", wait=5000))
        self.wait_waiters(a, "lease", 1)
        self.d.advance(299)
        assert_nothing_before_pong(b, what="no grant 1 ms before the lease ends")
        self.assertEqual(self.query(a, "lease")["token"], held["token"])
        # The grant is written before the clock's reply: it is there to read now.
        self.d.advance(1)
        granted = self.assert_acquired(b.reply(), "w", "lease", "B")
        self.assertGreater(granted["token"], held["token"])
        self.assertEqual(granted["acquiredAt"], held["expiresAt"], (held, granted))
        self.assertEqual(granted["expiresAt"], granted["acquiredAt"] + 30000, granted)

    def test_300ms_lease_seen_by_query_lock(self):
        a, q = self.conn(), self.conn()
        held = self.acquire(a, "lease", "A", lease=300)
        self.assertEqual(self.query(q, "lease")["token"], held["token"])
        self.d.advance(299)
        lock = self.query(q, "lease")
        self.assertEqual((lock["holder"], lock["token"], lock["expiresAt"]), ("A", held["token"], held["expiresAt"]))
        self.d.advance(1)
        self.assertIsNone(self.query(q, "lease"), "still held when its lease ended")
        # Free means free for everyone: another holder gets it at once, with a new token.
        self.assertGreater(self.acquire(q, "lease", "B")["token"], held["token"])

    def test_expired_lock_is_free_for_a_plain_lock(self):
        a, b = self.conn(), self.conn()
        held = self.acquire(a, "x", "A", lease=150)
        self.assert_refused(b.call(lock_request("x", "r", session="B")), "r", "x", "A")
        self.d.advance(149)
        self.assert_refused(b.call(lock_request("x", "r2", session="B")), "r2", "x", "A")
        self.d.advance(1)
        self.assert_acquired(b.call(lock_request("x", "l", session="B")), "l", "x", "B")
        self.assertEqual(self.query(a, "x")["holder"], "B")
        # The old holder's unlock no longer touches it.
        reply = a.call({"type": "unlock", "id": "u", "sessionId": "A", "lockName": "x"})
        self.assertIs(reply["data"]["released"], False, reply)
        self.assertEqual(self.query(a, "x")["holder"], "B")
        self.assertGreater(self.query(a, "x")["token"], held["token"])

    def test_list_locks_never_shows_an_expired_lock(self):
        a, q = self.conn(), self.conn()
        long_lived = self.acquire(a, "long", "A", lease=60000)
        short = self.acquire(a, "short", "A", lease=200)
        self.d.advance(199)
        self.assertEqual([(lock["name"], lock["token"]) for lock in self.list_locks(q)],
                         [("long", long_lived["token"]), ("short", short["token"])])
        self.d.advance(1)
        self.assertEqual([(lock["name"], lock["token"]) for lock in self.list_locks(q)],
                         [("long", long_lived["token"])], "listed at its expiresAt")
        self.assertIsNone(self.query(q, "short"))
        self.d.advance(10000)
        self.assertEqual([(lock["name"], lock["token"]) for lock in self.list_locks(q)],
                         [("long", long_lived["token"])], "an expired lock came back")
        self.assertGreater(short["token"], long_lived["token"])


class RenewalTest(LockTestCase):
    """`renewToken`: a renewal extends only the lease under its token and never takes the lock again."""

    def setUp(self):
        self.d = self.daemon(test_clock=True)

    def renew(self, c, name, session, token, ident="r", lease=300):
        return c.call({"type": "lock", "id": ident, "sessionId": session, "lockName": name,
                       "lockTimeout": lease, "renewToken": token})

    def assert_lease_ended(self, reply, ident, name, token, holder=""):
        self.assertEqual((reply.get("type"), reply.get("id"), reply.get("success")), ("result", ident, False), reply)
        data = reply["data"]
        self.assertEqual(set(data), {"acquired", "lockName", "holder", "reason"} | ({"expiresAt"} if holder else set()),
                         reply)
        self.assertEqual((data["acquired"], data["lockName"], data["holder"]), (False, name, holder), reply)
        self.assertEqual(data["reason"],
                         f'the lease of lock "{name}" under token {token} has ended: the lock was not taken again', reply)

    def test_a_renewal_extends_the_lease_it_names(self):
        a = self.conn()
        held = self.acquire(a, "r", "A", lease=300)
        self.d.advance(299)
        renewed = self.assert_acquired(self.renew(a, "r", "A", held["token"]), "r", "r", "A", extended=True)
        self.assertEqual((renewed["token"], renewed["acquiredAt"]), (held["token"], held["acquiredAt"]), renewed)
        self.assertEqual(renewed["expiresAt"], held["expiresAt"] - 1 + 300, renewed)
        self.d.advance(299)
        self.assertEqual(self.query(a, "r")["token"], held["token"])

    def test_a_renewal_after_the_lease_ended_takes_nothing(self):
        a, q = self.conn(), self.conn()
        held = self.acquire(a, "r", "A", lease=300)
        self.d.advance(300)
        self.assert_lease_ended(self.renew(a, "r", "A", held["token"]), "r", "r", held["token"])
        self.assertIsNone(self.query(q, "r"), "a renewal took a free lock")
        self.assertEqual(self.list_locks(q), [])

    def test_a_renewal_after_an_unlock_in_the_holders_name_takes_nothing(self):
        a, other = self.conn(), self.conn()
        held = self.acquire(a, "r", "A", lease=30000)
        self.release(other, "r", "A")
        self.assert_lease_ended(self.renew(a, "r", "A", held["token"]), "r", "r", held["token"])
        self.assertIsNone(self.query(other, "r"))

    def test_a_renewal_names_only_its_own_token(self):
        a, b = self.conn(), self.conn()
        first = self.acquire(a, "r", "A", lease=300)
        self.d.advance(300)
        again = self.acquire(a, "r", "A", lease=300)  # a plain lock takes it anew
        self.assertGreater(again["token"], first["token"])
        reply = self.renew(a, "r", "A", first["token"])
        self.assert_lease_ended(reply, "r", "r", first["token"], holder="A")
        self.assertEqual(reply["data"]["expiresAt"], again["expiresAt"], "a refused renewal moved the lease")
        self.d.advance(300)
        self.acquire(b, "r", "B")
        self.assert_lease_ended(self.renew(a, "r", "A", again["token"]), "r", "r", again["token"], holder="B")
        self.assertEqual(self.query(a, "r")["holder"], "B")


class SystemClockTest(LockTestCase):
    """The daemon's own timer on the system clock, which the test clock stands in for elsewhere:
    a lease that ends grants its waiter, and a wait that runs out is refused. Only the order of
    the daemon's timestamps is checked (1 ms of rounding between its clocks), no duration."""

    def test_a_lease_ends_and_a_wait_runs_out(self):
        self.d = self.daemon()
        a, b, c = self.conn(), self.conn(), self.conn()
        held = self.acquire(a, "lease", "A", lease=200)
        b.send(lock_request("lease", "w", session="B", wait=60000))
        granted = self.assert_acquired(b.reply(), "w", "lease", "B")
        self.assertGreater(granted["token"], held["token"])
        self.assertGreaterEqual(granted["acquiredAt"], held["expiresAt"] - 1, (held, granted))
        kept = self.acquire(a, "kept", "A", lease=600000)
        data = self.assert_refused(c.call(lock_request("kept", "r", session="C", wait=200)), "r", "kept", "A",
                                   timed_out=True)
        self.assertEqual(data["expiresAt"], kept["expiresAt"])
        self.assertEqual(self.query(a, "kept")["waiters"], 0)


class WaitersTest(LockTestCase):
    def setUp(self):
        self.d = self.daemon(test_clock=True)

    def test_waiters_are_served_first_come_first_served(self):
        holder = self.conn()
        first = self.acquire(holder, "fifo", "A")
        waiters = []
        for count, session in enumerate(("B", "C", "D"), start=1):
            c = self.conn()
            c.send(lock_request("fifo", f"w{session}", session=session, wait=60000))
            self.wait_waiters(holder, "fifo", count)  # so the arrival order is known
            waiters.append((session, c))
        tokens = [first["token"]]
        previous_conn, previous_session = holder, "A"
        for remaining, (session, c) in zip((2, 1, 0), waiters):
            self.release(previous_conn, "fifo", previous_session)
            granted = self.assert_acquired(c.reply(), f"w{session}", "fifo", session)
            tokens.append(granted["token"])
            lock = self.query(holder, "fifo")
            self.assertEqual((lock["holder"], lock["waiters"]), (session, remaining), lock)
            previous_conn, previous_session = c, session
        self.assertEqual(tokens, sorted(set(tokens)), "tokens must strictly increase in grant order")
        self.release(previous_conn, "fifo", previous_session)
        self.assertIsNone(self.query(holder, "fifo"))

    def test_waiter_whose_connection_closes_leaves_the_queue(self):
        holder, gone, next_waiter = self.conn(), self.conn(), self.conn()
        self.acquire(holder, "q", "A")
        gone.send(lock_request("q", "wB", session="B", wait=60000))
        self.wait_waiters(holder, "q", 1)
        next_waiter.send(lock_request("q", "wC", session="C", wait=60000))
        self.wait_waiters(holder, "q", 2)
        gone.close()
        self.wait_waiters(holder, "q", 1)
        self.release(holder, "q", "A")
        self.assert_acquired(next_waiter.reply(), "wC", "q", "C")
        lock = self.query(holder, "q")
        self.assertEqual((lock["holder"], lock["waiters"]), ("C", 0), lock)

    def test_last_waiter_leaving_leaves_the_lock_free_after_release(self):
        holder, gone = self.conn(), self.conn()
        self.acquire(holder, "q", "A")
        gone.send(lock_request("q", "wB", session="B", wait=60000))
        self.wait_waiters(holder, "q", 1)
        gone.close()
        self.wait_waiters(holder, "q", 0)
        self.release(holder, "q", "A")
        self.assertIsNone(self.query(holder, "q"))

    def test_wait_that_runs_out_is_refused_at_the_right_time(self):
        holder, patient, impatient = self.conn(), self.conn(), self.conn()
        held = self.acquire(holder, "slow", "A", lease=60000)
        patient.send(lock_request("slow", "wB", session="B", wait=60000))
        self.wait_waiters(holder, "slow", 1)
        impatient.send(lock_request("slow", "wC", session="C", wait=1000))
        self.wait_waiters(holder, "slow", 2)
        self.d.advance(999)
        assert_nothing_before_pong(impatient, what="no refusal before its lockWait ran out")
        self.assertEqual(self.query(holder, "slow")["waiters"], 2)
        self.d.advance(1)
        data = self.assert_refused(impatient.reply(), "wC", "slow", "A", timed_out=True)
        self.assertEqual(data["expiresAt"], held["expiresAt"], (held, data))
        # It left the queue; the patient waiter, whose wait has not run out, did not.
        self.assertEqual(self.query(holder, "slow")["waiters"], 1)
        assert_nothing_before_pong(patient, what="the patient waiter still waiting")
        self.release(holder, "slow", "A")
        self.assert_acquired(patient.reply(), "wB", "slow", "B")
        assert_nothing_before_pong(impatient, what="nothing more for the refused waiter")

    def test_wait_zero_refuses_at_once(self):
        a, b = self.conn(), self.conn()
        self.acquire(a, "z", "A")
        self.assert_refused(b.call(lock_request("z", "r", session="B", wait=0)), "r", "z", "A")
        self.assertEqual(self.query(a, "z")["waiters"], 0)

    def test_waiter_granted_when_the_lease_ends(self):
        a, b = self.conn(), self.conn()
        held = self.acquire(a, "exp", "A", lease=500)
        b.send(lock_request("exp", "w", session="B", wait=60000, lease=60000))
        self.wait_waiters(a, "exp", 1)
        self.d.advance(499)
        assert_nothing_before_pong(b, what="no grant before the lease ends")
        self.d.advance(1)
        granted = self.assert_acquired(b.reply(), "w", "exp", "B")
        self.assertGreater(granted["token"], held["token"])
        self.assertEqual(granted["acquiredAt"], held["expiresAt"], (held, granted))
        self.assertEqual(granted["expiresAt"], granted["acquiredAt"] + 60000, granted)

    def test_releasing_the_lock_grants_the_waiters_own_lease(self):
        a, b = self.conn(), self.conn()
        self.acquire(a, "own", "A", lease=60000)
        b.send(lock_request("own", "w", session="B", wait=60000, lease=400))
        self.wait_waiters(a, "own", 1)
        self.release(a, "own", "A")
        granted = self.assert_acquired(b.reply(), "w", "own", "B")
        self.assertEqual(granted["expiresAt"], granted["acquiredAt"] + 400, granted)

    def test_too_many_waiters_on_one_connection(self):
        holder, flood = self.conn(), self.conn()
        self.acquire(holder, "full", "A", lease=120000)
        flood.send_raw(b"".join(encode(lock_request("full", f"w{i}", session=f"s{i}", wait=120000))
                                for i in range(1025)))
        reply = flood.reply()
        self.assertEqual(reply.get("type"), "error", reply)
        self.assertEqual(reply.get("id"), "w1024", reply)
        flood.ping("still-usable")
        self.assertEqual(self.query(holder, "full")["waiters"], 1024)
        # Another connection still may wait.
        other = self.conn()
        other.send(lock_request("full", "other", session="other", wait=120000))
        self.wait_waiters(holder, "full", 1025)
        flood.close()
        self.wait_waiters(holder, "full", 1)
        self.release(holder, "full", "A")
        self.assert_acquired(other.reply(), "other", "full", "other")


class MutualExclusionTest(LockTestCase):
    CLIENTS = 32
    CYCLES = 200

    def test_32_clients_200_cycles_never_overlap(self):
        # On the test clock the 15 s leases cannot run out however slow the machine: every overlap
        # seen would be the daemon's.
        d = self.daemon(test_clock=True)
        guard = threading.Lock()
        state = {"owner": None, "overlaps": [], "tokens": [], "cycles": 0}
        errors = []

        def client_loop(index):
            session = f"client-{index}"
            try:
                with d.client() as c:
                    for cycle in range(self.CYCLES):
                        ident = f"{index}-{cycle}"
                        reply = c.call(lock_request("hot", ident, session=session, lease=15000, wait=60000))
                        if reply.get("success") is not True or reply.get("data", {}).get("acquired") is not True:
                            raise AssertionError(f"{session} cycle {cycle}: not acquired: {reply!r}")
                        with guard:
                            if state["owner"] is not None:
                                state["overlaps"].append((state["owner"], session, cycle))
                            state["owner"] = session
                            state["tokens"].append(reply["data"]["token"])
                        time.sleep(0)  # let another client run while this one is inside
                        with guard:
                            if state["owner"] != session:
                                state["overlaps"].append((session, state["owner"], cycle))
                            state["owner"] = None
                            state["cycles"] += 1
                        reply = c.call({"type": "unlock", "id": f"u{ident}", "sessionId": session, "lockName": "hot"})
                        if reply != {"type": "result", "id": f"u{ident}", "success": True,
                                     "data": {"released": True, "lockName": "hot"}}:
                            raise AssertionError(f"{session} cycle {cycle}: unlock failed: {reply!r}")
            except BaseException as error:  # reported by the main thread
                errors.append(f"{session}: {error!r}")

        threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(self.CLIENTS)]
        started = time.monotonic()
        for t in threads:
            t.start()
        deadline = started + TIMEOUT * 6
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.assertFalse([t for t in threads if t.is_alive()], f"clients still running after {TIMEOUT * 6}s")
        self.assertEqual(errors, [])
        self.assertEqual(state["overlaps"], [], "two clients held the lock at once")
        self.assertEqual(state["cycles"], self.CLIENTS * self.CYCLES)
        tokens = state["tokens"]
        bad = [(i, a, b) for i, (a, b) in enumerate(zip(tokens, tokens[1:])) if b <= a]
        self.assertEqual(bad, [], "tokens not strictly increasing in grant order")
        with d.client() as c:
            self.assertIsNone(self.query(c, "hot"))
            self.assertEqual(c.status()["locks"], 0)


class DisconnectTest(LockTestCase):
    def setUp(self):
        self.d = self.daemon(test_clock=True)

    def test_release_on_disconnect_frees_the_lock(self):
        holder, waiter, observer = self.conn(), self.conn(), self.conn()
        held = self.acquire(holder, "rod", "A", lease=60000, release_on_disconnect=True)
        waiter.send(lock_request("rod", "w", session="B", wait=60000))
        self.wait_waiters(observer, "rod", 1)
        holder.close()
        granted = self.assert_acquired(waiter.reply(), "w", "rod", "B")
        self.assertGreater(granted["token"], held["token"])
        self.assertEqual(self.query(observer, "rod")["holder"], "B")

    def test_release_on_disconnect_without_waiters(self):
        holder, observer = self.conn(), self.conn()
        self.acquire(holder, "rod", "A", lease=60000, release_on_disconnect=True)
        holder.close()
        wait_until(lambda: self.query(observer, "rod") is None, message="lock released on disconnect")
        self.assertEqual(observer.status()["locks"], 0)

    def test_lock_stays_after_disconnect_until_its_lease_ends(self):
        holder, waiter, observer = self.conn(), self.conn(), self.conn()
        held = self.acquire(holder, "kept", "A", lease=1500, release_on_disconnect=False)
        waiter.send(lock_request("kept", "w", session="B", wait=60000))
        self.wait_waiters(observer, "kept", 1)
        holder.close()
        self.d.wait_connections(2)  # the holder's disconnect seen
        lock = self.query(observer, "kept")
        self.assertEqual((lock["holder"], lock["token"]), ("A", held["token"]))
        self.d.advance(1499)
        assert_nothing_before_pong(waiter, what="no grant before the lease ends")
        self.assertEqual(self.query(observer, "kept")["holder"], "A")
        self.d.advance(1)
        granted = self.assert_acquired(waiter.reply(), "w", "kept", "B")
        self.assertEqual(granted["acquiredAt"], held["expiresAt"], (held, granted))
        self.assertGreater(granted["token"], held["token"])

    def test_default_does_not_release_on_disconnect(self):
        holder, observer = self.conn(), self.conn()
        held = self.acquire(holder, "kept", "A", lease=60000)
        holder.close()
        wait_until(lambda: observer.status()["connections"] == 1, message="the holder's disconnect seen")
        self.assertEqual(self.query(observer, "kept")["token"], held["token"])
        # The session can still release it from a new connection.
        self.release(observer, "kept", "A")

    def test_release_on_disconnect_belongs_to_the_connection_that_asked(self):
        first, second, observer = self.conn(), self.conn(), self.conn()
        self.acquire(first, "mine", "S", lease=60000)
        # The same session extends it from another connection with releaseOnDisconnect.
        self.assert_acquired(second.call(lock_request("mine", "x", session="S", lease=60000,
                                                      release_on_disconnect=True)),
                             "x", "mine", "S", extended=True)
        second.close()
        wait_until(lambda: self.query(observer, "mine") is None, message="lock released with the connection")


class RestartTest(LockTestCase):
    def issue_tokens(self, d, count):
        """`count` acquire+release cycles, pipelined; returns the tokens."""
        with d.client() as c:
            lines = []
            for i in range(count):
                lines.append(encode(lock_request(f"t{i % 7}", f"l{i}", session="s")))
                lines.append(encode({"type": "unlock", "id": f"u{i}", "sessionId": "s", "lockName": f"t{i % 7}"}))
            c.send_raw(b"".join(lines))
            tokens = []
            for i in range(count):
                data = self.assert_acquired(c.reply(), f"l{i}", f"t{i % 7}", "s")
                tokens.append(data["token"])
                self.assertIs(c.reply()["data"]["released"], True)
        self.assertEqual(tokens, sorted(set(tokens)))
        return tokens

    def check_restart(self, stop):
        """Tokens before a stop, after it, and after a second stop that follows more than a block of tokens.
        `stop` checks how the daemon ended, so the cleanup does not."""
        photon_dir = self.make_dir()
        d = self.daemon(photon_dir=photon_dir, check_exit=False)
        before = self.issue_tokens(d, 5)
        with d.client() as c:
            still_held = self.acquire(c, "held", "s", lease=60000)["token"]
        before.append(still_held)
        stop(d)
        d = self.daemon(photon_dir=photon_dir, check_exit=False)
        after = self.issue_tokens(d, 3)
        self.assertGreater(after[0], max(before), (before, after))
        self.assertLessEqual(after[0], max(before) + 1000, "a restart skips at most 999 numbers")
        # A second restart, after more than a block of tokens.
        more = self.issue_tokens(d, 1200)
        self.assertGreater(more[0], after[-1])
        stop(d)
        d = self.daemon(photon_dir=photon_dir)
        last = self.issue_tokens(d, 2)
        self.assertGreater(last[0], more[-1], (more[-1], last))
        self.assertLessEqual(last[0], more[-1] + 1000, "a restart skips at most 999 numbers")

    def test_tokens_increase_across_a_restart(self):
        def sigterm(d):
            self.assertEqual(d.stop(), 0, d.output())
        self.check_restart(sigterm)

    def test_tokens_increase_across_a_kill(self):
        def sigkill(d):
            d.kill()
            self.assertFalse(d.proc.poll() is None)
        self.check_restart(sigkill)


class ValidationTest(LockTestCase):
    def setUp(self):
        self.d = self.daemon(test_clock=True)
        self.c = self.conn()

    def assert_error(self, request, field):
        reply = self.c.call(request)
        self.assertEqual(set(reply), {"type", "id", "error"}, reply)
        self.assertEqual(reply["type"], "error", reply)
        self.assertEqual(reply["id"], request["id"], reply)
        self.assertIsInstance(reply["error"], str, reply)
        self.assertIn(field, reply["error"], reply)

    def test_invalid_lock_fields(self):
        cases = [
            ({"lockTimeout": 0}, "lockTimeout"),
            ({"lockTimeout": -1}, "lockTimeout"),
            ({"lockTimeout": -30000}, "lockTimeout"),
            ({"lockTimeout": 1.5}, "lockTimeout"),
            ({"lockTimeout": "30000"}, "lockTimeout"),
            ({"lockTimeout": None}, "lockTimeout"),
            ({"lockTimeout": True}, "lockTimeout"),
            ({"lockTimeout": 604800001}, "lockTimeout"),
            ({"lockTimeout": 10 ** 20}, "lockTimeout"),
            ({"lockWait": 86400001}, "lockWait"),
            ({"lockWait": -1}, "lockWait"),
            ({"lockWait": 0.5}, "lockWait"),
            ({"lockWait": "100"}, "lockWait"),
            ({"lockName": ""}, "lockName"),
            ({"lockName": "x" * 257}, "lockName"),
            ({"lockName": "a\nb"}, "lockName"),
            ({"lockName": "a\x01b"}, "lockName"),
            ({"lockName": "tab\there"}, "lockName"),
            ({"lockName": "del\x7f"}, "lockName"),
            ({"lockName": 5}, "lockName"),
            ({"lockName": None}, "lockName"),
            ({"lockName": ["a"]}, "lockName"),
            ({"releaseOnDisconnect": "true"}, "releaseOnDisconnect"),
            ({"releaseOnDisconnect": 1}, "releaseOnDisconnect"),
            ({"releaseOnDisconnect": None}, "releaseOnDisconnect"),
            ({"renewToken": 0}, "renewToken"),
            ({"renewToken": -1}, "renewToken"),
            ({"renewToken": 1.5}, "renewToken"),
            ({"renewToken": "17"}, "renewToken"),
            ({"renewToken": None}, "renewToken"),
            ({"renewToken": 2 ** 53}, "renewToken"),
            ({"renewToken": 1, "lockWait": 1}, "renewToken"),
        ]
        for i, (fields, field) in enumerate(cases):
            with self.subTest(fields=repr(fields)[:60]):
                request = {"type": "lock", "id": f"bad{i}", "sessionId": "s", "lockName": "valid"}
                request.update(fields)
                self.assert_error(request, field)
        missing = {"type": "lock", "id": "missing", "sessionId": "s"}
        self.assert_error(missing, "lockName")
        self.c.ping("still-usable")
        self.assertEqual(self.list_locks(self.c), [], "an invalid request took a lock")

    def test_invalid_lock_name_in_unlock_and_query(self):
        for kind in ("unlock", "query_lock"):
            for i, name in enumerate(["", "x" * 257, "a\nb", 7]):
                with self.subTest(kind=kind, name=repr(name)[:20]):
                    self.assert_error({"type": kind, "id": f"{kind}{i}", "lockName": name}, "lockName")
            with self.subTest(kind=kind, name="missing"):
                self.assert_error({"type": kind, "id": f"{kind}-missing"}, "lockName")
        self.c.ping("still-usable")

    def test_an_invalid_field_leaves_a_held_lock_alone(self):
        held = self.acquire(self.c, "kept", "s", lease=60000)
        self.assert_error(lock_request("kept", "bad", session="s", lease=0), "lockTimeout")
        self.assert_error({"type": "lock", "id": "bad2", "sessionId": "s", "lockName": "kept",
                           "releaseOnDisconnect": "yes"}, "releaseOnDisconnect")
        lock = self.query(self.c, "kept")
        self.assertEqual((lock["token"], lock["expiresAt"]), (held["token"], held["expiresAt"]), (held, lock))

    def test_bounds_are_accepted(self):
        self.acquire(self.c, "max", "s", lease=604800000, wait=86400000)
        self.acquire(self.c, "x" * 256, "s", lease=1)
        self.acquire(self.c, "unicode:é中😀", "s", lease=1000, wait=0, release_on_disconnect=False)
        self.acquire(self.c, "rod", "s", release_on_disconnect=True)
        lock = self.query(self.c, "max")
        self.assertEqual(lock["expiresAt"], lock["acquiredAt"] + 604800000, lock)


class LimitTest(LockTestCase):
    def test_max_locks(self):
        self.d = self.daemon(args=["--max-locks", "3"])
        c = self.conn()
        for name in ("a", "b", "c"):
            self.acquire(c, name, "s")
        reply = c.call(lock_request("d", "over", session="s"))
        self.assertEqual(reply.get("type"), "error", reply)
        self.assertEqual(reply.get("id"), "over", reply)
        self.assert_acquired(c.call(lock_request("a", "ext", session="s")), "ext", "a", "s", extended=True)
        self.release(c, "a", "s")
        self.acquire(c, "d", "s")
        self.assertEqual(c.status()["locks"], 3)


class IdleTimeoutTest(LockTestCase):
    # The idle timeout counts on the test clock from the last disconnect; when it passes while a lock
    # is still held it counts again from then.

    def test_held_lock_keeps_the_daemon_until_its_lease_ends(self):
        d = self.daemon(args=["--idle-timeout", "1s"], start=False, test_clock=True)
        c = self.hold(d.start(hold=True))
        self.acquire(c, "keep-alive", "A", lease=3000)
        c.close()
        d.wait_connections(0)
        d.advance(1000)  # the idle timeout, with the lock held
        self.assert_running(d)
        d.advance(1999)  # 1 ms before the lease ends
        self.assert_running(d)
        d.advance(1)  # the lease ends; the idle timeout counts on from its last check
        d.advance(1000)
        self.assertEqual(d.wait(), 0, d.output())

    def test_released_lock_lets_the_daemon_go_idle(self):
        d = self.daemon(args=["--idle-timeout", "1s"], start=False, test_clock=True)
        c = self.hold(d.start(hold=True))
        self.acquire(c, "brief", "A", lease=60000)
        self.release(c, "brief", "A")
        c.close()
        d.wait_connections(0)
        d.advance(999)
        self.assert_running(d)
        d.advance(1)
        self.assertEqual(d.wait(), 0, d.output())


if __name__ == "__main__":
    unittest.main()
