# Output-queue bounds: a subscriber that never reads is cut off and counted, others keep receiving everything.
# The soft limit's grace period runs on the daemon's test clock: kept at grace - 1 ms, cut at the grace.
import json
import socket
import threading
import time
import unittest

from harness import TIMEOUT, BlackboxTest, Client, encode, subscriber_counts, unread_by_daemon, wait_until

PAD = "x" * 4096
BATCH = 16


class FastReader(threading.Thread):
    """Reads channel messages as fast as it can and records their sequence numbers."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.seqs = []
        self.error = None
        self.stop = False

    def run(self):
        try:
            while not self.stop:
                try:
                    msg = self.client.next_message(timeout=0.5)
                except TimeoutError:
                    continue
                self.seqs.append(msg["message"]["seq"])
        except Exception as error:  # reported by the test
            self.error = error

    def received(self, count):
        if self.error:
            raise AssertionError(f"fast subscriber failed: {self.error!r}")
        return len(self.seqs) >= count


def drain(sock, timeout, already=b""):
    """Reads until EOF; returns the complete lines. Fails the test if the connection is never closed."""
    data = bytearray(already)
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("slow consumer was never disconnected")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return bytes(data).split(b"\n")[:-1]
        data += chunk


class SlowConsumerTest(BlackboxTest):
    def setup_clients(self):
        self.watch = self.client(self.d)
        self.slow = Client(self.d.sock_path, connect=False)
        self.addCleanup(self.slow.close)
        self.slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.slow.sock.settimeout(TIMEOUT)
        self.slow.sock.connect(self.d.sock_path)
        self.slow.subscribe("feed")
        self.fast = self.client(self.d)
        self.fast.subscribe("feed")
        self.reader = FastReader(self.fast)
        self.reader.start()
        self.addCleanup(setattr, self.reader, "stop", True)
        self.pub = self.client(self.d)
        self.seq = 0

    def publish_batch(self, size=BATCH, pad=PAD):
        first = self.seq
        self.pub.send_raw(b"".join(
            encode({"type": "publish", "id": f"p{first + i}", "channel": "feed",
                    "message": {"seq": first + i, "pad": pad}}) for i in range(size)))
        self.seq += size
        replies = [self.pub.reply() for _ in range(size)]
        for i, reply in enumerate(replies):
            self.assertEqual((reply["type"], reply["id"]), ("result", f"p{first + i}"), reply)
        # Keep the fast subscriber's queue small: it must never be mistaken for a slow one.
        wait_until(lambda: self.reader.received(self.seq), message=f"fast subscriber got {self.seq} messages")
        return replies

    def dropped(self):
        return self.watch.status()["counters"]["droppedSlowConsumers"]

    def finish(self):
        """After the cut: more messages still reach the fast subscriber, in order and complete."""
        for _ in range(4):
            replies = self.publish_batch()
        self.assertEqual(replies[-1]["data"]["delivered"], 1, "only the fast subscriber is left")
        self.assertEqual(self.reader.seqs, list(range(self.seq)))
        self.assertEqual(self.dropped(), 1)
        lines = drain(self.slow.sock, TIMEOUT, bytes(self.slow.buf))
        got = [json.loads(line) for line in lines]
        self.assertTrue(all(g.get("type") == "channel_message" for g in got))
        seqs = [g["message"]["seq"] for g in got]
        self.assertEqual(seqs, list(range(len(seqs))), "what the slow consumer got is an in-order prefix")
        self.assertLess(len(seqs), self.seq)
        wait_until(lambda: ("feed", 2) not in subscriber_counts(self.watch.status()),
                   message="the cut-off subscriber's subscription is gone")
        self.assertIn(("feed", 1), subscriber_counts(self.watch.status()))

    def test_hard_limit_cuts_off_a_reader_that_never_reads(self):
        self.d = self.daemon(args=["--output-hard-limit", "262144", "--output-soft-limit", "262144",
                                   "--output-soft-seconds", "60"])
        self.setup_clients()
        self.assertEqual(self.dropped(), 0)
        limit = 32 << 20  # far beyond 256 KiB plus any kernel buffering
        while self.dropped() == 0:
            self.assertLess(self.seq * len(PAD), limit, "never cut off")
            self.publish_batch()
        self.finish()
        self.assertLess(self.seq * len(PAD), 4 << 20, "cut off near the 256 KiB bound, not much later")

    def test_soft_limit_cuts_off_after_its_grace_period(self):
        self.d = self.daemon(args=["--output-hard-limit", "33554432", "--output-soft-limit", "65536",
                                   "--output-soft-seconds", "1"], test_clock=True)
        self.setup_clients()
        # About 1 MiB: well over the soft limit plus kernel buffers, far under the hard limit. The
        # clock stands still meanwhile, so the queue crossed the soft limit at the clock's now.
        for _ in range(16):
            self.publish_batch()
        self.d.advance(999)
        self.publish_batch(size=1, pad="")  # queued 1 ms before the grace ends: kept
        self.assertEqual(self.dropped(), 0, "cut off before its grace period")
        self.d.advance(1)
        self.assertEqual(self.dropped(), 1, "not cut off when its grace period ended")
        self.finish()


    def test_soft_limit_cuts_off_a_queue_that_stopped_growing(self):
        # Regression: the soft limit was only checked when a new line was queued, so a consumer
        # that stalled after one burst kept its queue forever.
        self.d = self.daemon(args=["--output-hard-limit", "33554432", "--output-soft-limit", "65536",
                                   "--output-soft-seconds", "1"], test_clock=True)
        self.setup_clients()
        for _ in range(16):
            self.publish_batch()
        self.d.advance(999)
        self.assertEqual(self.dropped(), 0, "cut off before its grace period")
        self.d.advance(1)  # no publish since the burst: only the clock can cut it off
        self.assertEqual(self.dropped(), 1, "not cut off when its grace period ended")
        self.finish()


    def test_soft_limit_on_the_system_clock(self):
        # The daemon's own timer, which the test clock stands in for above: the stalled consumer is
        # cut off without further publishes (when exactly is the test-clock tests' business).
        self.d = self.daemon(args=["--output-hard-limit", "33554432", "--output-soft-limit", "65536",
                                   "--output-soft-seconds", "1"])
        self.setup_clients()
        for _ in range(16):
            self.publish_batch()
        wait_until(lambda: self.dropped() == 1, message="cut off without further publishes")
        self.finish()


class PipelineThrottleTest(BlackboxTest):
    def test_client_pipelining_without_reading_is_slowed_not_cut(self):
        # Replies total 6 MiB, three times the hard limit: only pausing reads keeps the queue under it.
        d = self.daemon(args=["--output-hard-limit", "2097152", "--output-soft-limit", "2097152",
                              "--output-soft-seconds", "60"])
        watch = self.client(d)
        c = self.client(d)
        count = 200000
        blob = b"".join(b'{"type":"ping","id":"%06d"}\n' % i for i in range(count))
        errors = []

        def writer():
            try:
                c.sock.sendall(blob)
            except OSError as error:
                errors.append(error)

        c.sock.settimeout(TIMEOUT * 3)
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        # Reading starts once the daemon has stopped reading the requests (64 KiB of them left
        # unread) or has read them all: a daemon that does not pause has by then queued far more
        # than the hard limit of replies, and is cut off.
        wait_until(lambda: not t.is_alive() or unread_by_daemon(c) >= 65536,
                   message="the daemon to pause reading or the requests all sent")
        data = bytearray()
        lines_read = 0
        deadline = time.monotonic() + TIMEOUT * 3
        while lines_read < count:
            remaining = deadline - time.monotonic()
            self.assertGreater(remaining, 0, f"only {lines_read} of {count} replies")
            c.sock.settimeout(remaining)
            try:
                chunk = c.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            self.assertTrue(chunk, f"connection closed after {lines_read} of {count} replies")
            data += chunk
            lines_read += chunk.count(b"\n")
        t.join(TIMEOUT)
        self.assertEqual(errors, [])
        lines = bytes(data).split(b"\n")
        self.assertEqual(lines[-1], b"")
        self.assertEqual(len(lines) - 1, count)
        for i, line in enumerate(lines[:-1]):
            if json.loads(line) != {"type": "pong", "id": "%06d" % i}:
                self.fail(f"reply {i} is {line!r}")
        self.assertEqual(watch.status()["counters"]["droppedSlowConsumers"], 0)


if __name__ == "__main__":
    unittest.main()
