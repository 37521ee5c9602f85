"""Fencing tokens never go backwards: daemons of one photon on a real redis-server (no persistence)
that loses its data under them (restarted empty, FLUSHALL, an older copy of the data as a lagging
replica would bring), daemons restarted, and a daemon moving between the broker and local locks.
Each new acquisition's token must be greater than every token issued before it, by any daemon."""
import os
import socket
import unittest

from harness import TIMEOUT, wait_until
from test_broker import BrokerTest

# What JavaScript numbers hold exactly: every token must stay at or below it.
MAX_SAFE_INTEGER = 2**53 - 1


def redis_time_us(sock_path):
    """Redis's clock, in microseconds since the epoch (TIME)."""
    lines = redis_command(sock_path, "TIME", whole=True).split("\r\n")
    # *2, $n, seconds, $n, microseconds
    return int(lines[2]) * 1_000_000 + int(lines[4])


def redis_command(sock_path, *args, whole=False):
    """Sends one command to the redis-server on sock_path; returns its reply's first line (the
    whole reply with `whole`, for a reply that fits one read)."""
    request = b"*%d\r\n" % len(args)
    for arg in args:
        data = arg.encode()
        request += b"$%d\r\n%s\r\n" % (len(data), data)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        s.connect(sock_path)
        s.sendall(request)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.decode() if whole else reply.decode().split("\r\n")[0]


class TokensAcrossRedisDataLoss(BrokerTest):
    def setUp(self):
        super().setUp()
        self.issued = []  # every token handed out in this test, in order

    def acquire(self, client, label):
        """A new acquisition (then released); its token is checked against every earlier one."""
        reply = client.call({"type": "lock", "id": "l-" + label, "sessionId": "s-" + label,
                             "lockName": "fenced"})
        self.assertTrue(reply.get("success"), reply)
        token = reply["data"]["token"]
        self.assertIsInstance(token, int)
        self.assertLessEqual(token, MAX_SAFE_INTEGER)
        if self.issued:
            self.assertGreater(token, max(self.issued),
                               f"{label}: token {token} after {self.issued[-1]} (all: {self.issued})")
        self.issued.append(token)
        released = client.call({"type": "unlock", "id": "u-" + label, "sessionId": "s-" + label,
                                "lockName": "fenced"})
        self.assertTrue(released.get("success"), released)
        return token

    def wait_connected(self, *clients):
        for c in clients:
            wait_until(lambda: c.status()["broker"]["state"] == "connected", message="broker connected")

    def restart_redis_empty(self, *clients):
        self.redis.stop()  # SIGKILL: nothing saved, and it was started without persistence
        self.assertFalse(os.path.exists(os.path.join(self.redis.dir, "dump.rdb")))
        self.redis.start()
        # Connected daemons may have written their epoch already, but no token counter.
        self.assertEqual(redis_command(self.redis.sock, "EXISTS", "photon:br:fence"), ":0")
        self.wait_connected(*clients)

    def test_a_daemon_that_never_issued_a_token_after_redis_restarted_empty(self):
        a, b = self.hosts(2)
        ca, cb = self.client(a), self.client(b)
        for i in range(51):
            self.acquire(ca, f"a{i}")
        self.restart_redis_empty(ca, cb)
        # b has issued nothing and seen nothing; the counter is gone.
        self.acquire(cb, "b-after-restart")
        self.acquire(ca, "a-after-restart")
        self.acquire(cb, "b-again")

    def test_a_token_from_an_empty_redis_is_its_clock_in_microseconds(self):
        (a,) = self.hosts(1)
        ca = self.client(a)
        before = redis_time_us(self.redis.sock)
        token = self.acquire(ca, "first")
        after = redis_time_us(self.redis.sock)
        self.assertLessEqual(before, token)
        self.assertLessEqual(token, after)

    def test_flushall_between_acquisitions_of_two_daemons(self):
        a, b = self.hosts(2)
        ca, cb = self.client(a), self.client(b)
        self.acquire(ca, "a0")
        for i in range(20):
            self.assertEqual(redis_command(self.redis.sock, "FLUSHALL"), "+OK")
            self.acquire(cb if i % 2 == 0 else ca, f"after-flush-{i}")
        self.assertEqual(redis_command(self.redis.sock, "FLUSHALL"), "+OK")
        # Also while a lock is held: the flush frees it, and the next holder gets a greater token.
        held = ca.call({"type": "lock", "id": "h", "sessionId": "holder", "lockName": "fenced"})
        self.assertTrue(held["success"], held)
        self.assertGreater(held["data"]["token"], max(self.issued))
        self.issued.append(held["data"]["token"])
        self.assertEqual(redis_command(self.redis.sock, "FLUSHALL"), "+OK")
        self.acquire(cb, "b-while-a-thinks-it-holds")

    def test_daemons_restarted_with_redis_restarted_empty_in_between(self):
        a, b = self.hosts(2)
        ca = self.client(a)
        for i in range(5):
            self.acquire(ca, f"a{i}")
        ca.close()
        self.assertEqual(a.stop(), 0)
        b.stop()
        self.restart_redis_empty()
        b.start()
        cb = self.client(self.connected(b))
        self.acquire(cb, "b-restarted")  # b never issued a token, and Redis is empty
        a.start()
        ca = self.client(self.connected(a))
        self.acquire(ca, "a-restarted")
        # Killed outright this time, and Redis empty again: a's next token is still greater.
        a.kill()
        self.restart_redis_empty(cb)
        a.start()
        ca = self.client(self.connected(a))
        self.acquire(ca, "a-after-kill")
        self.acquire(cb, "b-last")

    def test_a_redis_that_comes_back_with_older_data_as_a_lagging_replica(self):
        a, b = self.hosts(2)
        ca, cb = self.client(a), self.client(b)
        self.acquire(cb, "b0")
        # The copy a replica holds: taken now, promoted after the primary issued more tokens.
        self.assertEqual(redis_command(self.redis.sock, "SAVE"), "+OK")
        for i in range(30):
            self.acquire(ca, f"a{i}")
        self.redis.stop()
        self.redis.start()  # loads the older dump.rdb: the counter is back where it was at b0
        self.assertEqual(redis_command(self.redis.sock, "EXISTS", "photon:br:fence"), ":1")
        self.wait_connected(ca, cb)
        self.acquire(cb, "b-after-failover")
        self.acquire(ca, "a-after-failover")

    def test_tokens_keep_increasing_when_a_daemon_leaves_the_broker_and_comes_back(self):
        a = self.connected(self.host())
        ca = self.client(a)
        self.acquire(ca, "shared")
        ca.close()
        a.stop()
        local = self.daemon("br", photon_dir=a.photon_dir)  # same PHOTON_DIR, no --broker
        cl = self.client(local)
        self.acquire(cl, "local")
        cl.close()
        local.stop()
        self.restart_redis_empty()
        a.start()
        ca = self.client(self.connected(a))
        self.acquire(ca, "shared-again")


class TokensWhenTheClockIsNoFloor(BrokerTest):
    """A counter ahead of Redis's clock (as one set ahead, or a clock set back, leaves it): after
    the counter is lost, the daemons' own marks keep their tokens increasing."""

    def lock(self, client, label, name="fenced"):
        reply = client.call({"type": "lock", "id": "l-" + label, "sessionId": "s-" + label,
                             "lockName": name})
        self.assertTrue(reply.get("success"), reply)
        self.assertTrue(client.call({"type": "unlock", "id": "u-" + label, "sessionId": "s-" + label,
                                     "lockName": name})["success"])
        return reply["data"]["token"]

    def test_a_daemon_stays_above_what_it_handed_out_and_saw_across_restarts(self):
        a, b = self.hosts(2)
        ca, cb = self.client(a), self.client(b)
        ahead = redis_time_us(self.redis.sock) + 10**12  # about 11.6 days ahead of Redis's clock
        self.assertEqual(redis_command(self.redis.sock, "SET", "photon:br:fence", str(ahead)), "+OK")
        handed_out = self.lock(ca, "a-ahead")
        self.assertEqual(handed_out, ahead + 1)
        # b sees a's token (a holder it is refused by), without handing one out.
        held = ca.call({"type": "lock", "id": "h", "sessionId": "a-holds", "lockName": "seen"})
        self.assertTrue(held["success"], held)
        seen = held["data"]["token"]
        self.assertGreater(seen, handed_out)
        refused = cb.call({"type": "lock", "id": "r", "sessionId": "b", "lockName": "seen"})
        self.assertFalse(refused["success"], refused)
        self.assertEqual(redis_command(self.redis.sock, "FLUSHALL"), "+OK")
        self.assertGreater(self.lock(cb, "b-after-flush"), seen)
        self.assertEqual(redis_command(self.redis.sock, "FLUSHALL"), "+OK")
        a_next = self.lock(ca, "a-after-flush")
        self.assertGreater(a_next, seen)
        # Killed, Redis empty: what a wrote to its token file before replying keeps it above.
        a.kill()
        self.assertEqual(redis_command(self.redis.sock, "FLUSHALL"), "+OK")
        a.start()
        ca = self.client(self.connected(a))
        self.assertGreater(self.lock(ca, "a-restarted"), a_next)

    def test_no_token_above_what_javascript_reads_exactly(self):
        (a,) = self.hosts(1)
        ca = self.client(a)
        self.assertEqual(redis_command(self.redis.sock, "SET", "photon:br:fence", str(2**53 - 2)), "+OK")
        self.assertEqual(self.lock(ca, "last"), 2**53 - 1)
        reply = ca.call({"type": "lock", "id": "over", "sessionId": "s", "lockName": "other"})
        self.assertEqual(reply, {"type": "error", "id": "over", "error":
                                 "cannot issue a fencing token: the next token would exceed 9007199254740991 "
                                 "(2^53 - 1, the largest integer a JavaScript number holds exactly)"})
        self.assertIsNone(ca.call({"type": "query_lock", "id": "q", "lockName": "other"})["data"]["lock"])
        ca.ping()


if __name__ == "__main__":
    unittest.main()
