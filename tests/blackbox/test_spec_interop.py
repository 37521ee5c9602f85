# Interop: a standard-library client that talks to photond exactly as the spec's TypeScript client does.
"""The spec's client (src/daemon/client.ts) opens one connection per request, writes one JSON line, parses
the first chunk it reads as one JSON object and closes. subscribeChannel keeps a connection open and splits
what arrives on newlines. This file is that client, in Python, with nothing from the test harness on the
wire path, so it only passes if each one-shot reply arrives in one write and nothing precedes it.
"""
import json
import os
import random
import socket
import threading
import time
import unittest

from harness import TIMEOUT, BlackboxTest, wait_until


def request_id(prefix):
    return f"{prefix}_{int(time.time() * 1000)}_{random.randrange(36 ** 6):06x}"


def send_command(socket_path, request, timeout=TIMEOUT):
    """One connection, one line out, the first chunk in parsed as one JSON object, close."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(socket_path)
        s.sendall((json.dumps(request) + "\n").encode())
        chunk = s.recv(1 << 16)
    finally:
        s.close()
    if not chunk:
        raise AssertionError(f"daemon closed without replying to {request!r}")
    return json.loads(chunk.decode("utf-8"))  # raises if the chunk is not exactly one JSON value


def ping_daemon(socket_path):
    reply = send_command(socket_path, {"type": "ping", "id": request_id("ping")})
    return reply.get("type") == "pong"


def publish_to_channel(socket_path, channel, message):
    req = {"type": "publish", "id": request_id("pub"), "channel": channel, "message": message}
    reply = send_command(socket_path, req)
    if reply.get("type") == "error":
        raise RuntimeError(reply.get("error"))
    if reply.get("id") != req["id"]:
        raise AssertionError(f"reply id {reply.get('id')!r} does not match {req['id']!r}")
    return reply


class ChannelSubscription:
    """subscribeChannel: the subscribe reply is the first chunk; messages follow as lines."""

    def __init__(self, socket_path, channel):
        self.messages = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(socket_path)
        req = {"type": "subscribe", "id": request_id("sub"), "channel": channel}
        self.sock.sendall((json.dumps(req) + "\n").encode())
        first = json.loads(self.sock.recv(1 << 16).decode())  # nothing is published yet: one object
        if not (first.get("type") == "result" and first.get("id") == req["id"] and first.get("success")):
            raise AssertionError(f"subscribe failed: {first!r}")
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        buffer = ""
        self.sock.settimeout(None)
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    break
                buffer += chunk.decode("utf-8")
                *lines, buffer = buffer.split("\n")
                for line in lines:
                    if line.strip():
                        msg = json.loads(line)
                        if msg.get("type") == "channel_message":
                            with self.lock:
                                self.messages.append(msg)
        except OSError:
            pass
        self.closed = True

    def received(self):
        with self.lock:
            return list(self.messages)

    def unsubscribe(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class SpecInteropTest(BlackboxTest):
    def setUp(self):
        self.d = self.daemon(name="kanban")
        self.path = os.path.join(self.d.photon_dir, "daemons", "kanban.sock")

    def subscribe(self, channel):
        sub = ChannelSubscription(self.path, channel)
        self.addCleanup(sub.unsubscribe)
        return sub

    def test_ping(self):
        for _ in range(20):
            self.assertTrue(ping_daemon(self.path))
        ident = request_id("ping")
        self.assertEqual(send_command(self.path, {"type": "ping", "id": ident}), {"type": "pong", "id": ident})

    def test_publish_reaches_a_long_lived_subscriber(self):
        sub = self.subscribe("board:my-board")
        events = [{"event": "task-moved", "taskId": str(i), "newColumn": "Done"} for i in range(10)]
        for event in events:
            reply = publish_to_channel(self.path, "board:my-board", event)
            self.assertEqual(reply["type"], "result")
            self.assertTrue(reply["success"])
            self.assertEqual(reply["data"]["published"], True)
            self.assertEqual(reply["data"]["channel"], "board:my-board")
            self.assertEqual(reply["data"]["delivered"], 1)
        wait_until(lambda: len(sub.received()) >= len(events), message="all events at the subscriber")
        got = sub.received()
        self.assertEqual([m["message"] for m in got], events)
        self.assertTrue(all(m["channel"] == "board:my-board" and m["id"].startswith("ch_") for m in got))

    def test_several_subscribers_and_wildcard(self):
        exact = self.subscribe("board:a")
        wildcard = self.subscribe("board:*")
        publish_to_channel(self.path, "board:a", {"n": 1})
        publish_to_channel(self.path, "board:b", {"n": 2})
        wait_until(lambda: len(wildcard.received()) == 2 and len(exact.received()) == 1,
                   message="deliveries to both subscribers")
        self.assertEqual([m["message"]["n"] for m in wildcard.received()], [1, 2])
        self.assertEqual(exact.received()[0]["message"], {"n": 1})

    def test_one_shot_subscribe_ends_with_its_connection(self):
        reply = send_command(self.path, {"type": "subscribe", "id": "sub_123", "channel": "board:gone"})
        self.assertEqual(reply, {"type": "result", "id": "sub_123", "success": True,
                                 "data": {"subscribed": True, "channel": "board:gone"}})
        wait_until(lambda: publish_to_channel(self.path, "board:gone", {})["data"]["delivered"] == 0,
                   message="subscription dropped with its connection")

    def test_unsubscribe_by_closing(self):
        sub = self.subscribe("board:c")
        publish_to_channel(self.path, "board:c", 1)
        wait_until(lambda: len(sub.received()) == 1, message="first message")
        sub.unsubscribe()
        wait_until(lambda: publish_to_channel(self.path, "board:c", 2)["data"]["delivered"] == 0,
                   message="subscription gone after close")

    def test_errors_and_status_arrive_as_one_chunk(self):
        reply = send_command(self.path, {"type": "publish", "id": "bad_1", "channel": "board:x"})
        self.assertEqual(reply["type"], "error")
        self.assertEqual(reply["id"], "bad_1")
        reply = send_command(self.path, {"type": "status", "id": "st_1"})
        self.assertEqual((reply["type"], reply["id"], reply["data"]["name"]), ("result", "st_1", "kanban"))
        reply = send_command(self.path, {"type": "lock", "id": "lock_123", "sessionId": "cli-1234-abc",
                                         "lockName": "board:kanban:write", "lockTimeout": 30000})
        self.assertEqual((reply["type"], reply["id"], reply["data"]["acquired"]), ("result", "lock_123", True))
        reply = send_command(self.path, {"type": "schedule", "id": "sched_123", "jobId": "j", "method": "m",
                                         "cron": "0 * * * *"})
        # This daemon has no methods, so the job is refused: success false, with the reason.
        self.assertEqual((reply["type"], reply["id"], reply["success"]), ("result", "sched_123", False))
        self.assertEqual(reply["data"]["scheduled"], False)

    def test_large_message_round_trip(self):
        sub = self.subscribe("big")
        message = {"blob": "z" * 300000, "list": list(range(1000))}
        publish_to_channel(self.path, "big", message)
        wait_until(lambda: len(sub.received()) == 1, message="large message")
        self.assertEqual(sub.received()[0]["message"], message)

    def test_many_concurrent_one_shot_clients(self):
        sub = self.subscribe("burst")
        errors = []

        def worker(w):
            try:
                for k in range(15):
                    if not ping_daemon(self.path):
                        errors.append(("ping", w, k))
                    publish_to_channel(self.path, "burst", {"w": w, "k": k})
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT * 3)
        self.assertEqual(errors, [])
        wait_until(lambda: len(sub.received()) == 16 * 15, message="every burst message")
        by_worker = {}
        for m in sub.received():
            by_worker.setdefault(m["message"]["w"], []).append(m["message"]["k"])
        self.assertEqual(by_worker, {w: list(range(15)) for w in range(16)})

    def test_stop_daemon_with_shutdown(self):
        sub = self.subscribe("board:z")
        reply = send_command(self.path, {"type": "shutdown", "id": "shutdown_1"})
        self.assertEqual(reply, {"type": "result", "id": "shutdown_1", "success": True,
                                 "data": {"message": "Shutting down"}})
        self.assertEqual(self.d.wait(), 0)
        wait_until(lambda: sub.closed, message="subscription connection closed by shutdown")
        self.assertFalse(os.path.exists(self.path))


if __name__ == "__main__":
    unittest.main()
