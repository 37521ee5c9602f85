"""Several photond "hosts" (separate PHOTON_DIRs) of one photon joined through a real redis-server
on a temporary Unix socket: cross-daemon delivery, shared locks and tokens, a job firing once per
slot across daemons, and Redis killed and restarted under them. The job tests run the daemons on
test clocks (photond --test-clock) that the test moves alike, so each slot is claimed when the
test says; leases of locks live in Redis, on its own clock, so the lock tests wait for events with
no bound on how long Redis takes."""
import json
import os
import signal
import socket
import subprocess
import threading
import unittest
import urllib.request

from harness import (PHOTOND, TIMEOUT, BlackboxTest, RedisServer, advance_to, ctl, encode, epoch_ms,
                     messages_before_pong, rfc3339, wait_until)

# Where the job tests' clocks start.
T0 = "2026-03-08T12:00:00Z"
T0_MS = epoch_ms(T0)
SECOND = 1000


class BrokerTest(BlackboxTest):
    def setUp(self):
        self.redis = RedisServer(self.make_dir())
        self.redis.start()
        self.addCleanup(self.redis.stop)

    def host(self, name="br", args=(), **kwargs):
        """One more daemon of the photon, in a PHOTON_DIR of its own, joined to the Redis."""
        d = self.daemon(name, args=["--broker", self.redis.url, "--log-level", "info", *args], **kwargs)
        return d

    def connected(self, d):
        with d.client() as c:
            wait_until(lambda: c.status()["broker"]["state"] == "connected", message="broker connected")
        return d

    def hosts(self, n, **kwargs):
        return [self.connected(self.host(**kwargs)) for _ in range(n)]


class ChannelsAcrossDaemons(BrokerTest):
    def test_databases_of_one_redis_keep_their_channels_apart(self):
        # Pub/sub ignores Redis's database number; the daemons put it in their channel names.
        staging = [self.connected(self.daemon("br", args=["--broker", self.redis.url + "?db=1"]))
                   for _ in range(2)]
        production = [self.connected(self.host()) for _ in range(2)]
        listeners = [self.client(d) for d in (production[1], staging[1])]
        for listener in listeners:
            listener.subscribe("board:a")
        self.client(staging[0]).publish("board:a", "staging")
        self.assertEqual(listeners[1].next_message()["message"], "staging")
        # Redis pushes messages in the order it runs the publishes: a production publish made now
        # reaches production's listener after staging's would have.
        self.client(production[0]).publish("board:a", "production")
        self.assertEqual(listeners[0].next_message()["message"], "production")

    def test_the_dashboards_api_lists_the_locks_of_every_daemon(self):
        # list_locks answers later when the locks are in Redis: /api/locks waits for it.
        a = self.connected(self.host())
        b = self.connected(self.host(args=["--ui-port", "0"]))
        with open(os.path.join(b.photon_dir, "daemons", "br.ui")) as f:
            ui = json.load(f)
        holder = self.client(a)
        reply = holder.call({"type": "lock", "id": "l", "lockName": "deploy", "lockTimeout": 60000})
        self.assertTrue(reply["success"], reply)
        request = urllib.request.Request(f"{ui['url']}api/locks",
                                         headers={"Authorization": "Bearer " + ui["token"]})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            locks = json.load(response)["locks"]
        self.assertEqual([(lock["name"], lock["token"]) for lock in locks], [("deploy", reply["data"]["token"])])
        # Released: gone from the index the list reads; a short lease: gone once it has passed.
        self.assertTrue(holder.call({"type": "unlock", "id": "l", "lockName": "deploy"})["success"])
        self.assertTrue(holder.call({"type": "lock", "id": "l2", "lockName": "brief", "lockTimeout": 300})["success"])
        listed = lambda: [lock["name"] for lock in self.client(b).call({"type": "list_locks", "id": "x"})["data"]["locks"]]
        self.assertEqual(listed(), ["brief"])
        wait_until(lambda: listed() == [], message="the expired lock unlisted")

    def test_a_browser_on_one_daemon_follows_publishes_on_another(self):
        a = self.connected(self.host())
        b = self.connected(self.host(args=["--ui-port", "0"]))
        with open(os.path.join(b.photon_dir, "daemons", "br.ui")) as f:
            ui = json.load(f)
        events = socket.create_connection(("127.0.0.1", ui["port"]), timeout=TIMEOUT)
        self.addCleanup(events.close)
        events.sendall(f"GET /events?channel=board:*&token={ui['token']} HTTP/1.1\r\n"
                       f"Host: 127.0.0.1:{ui['port']}\r\n\r\n".encode())
        watcher = self.client(b)
        wait_until(lambda: watcher.status()["channelCount"] == 1, message="the event stream subscribed")
        self.client(a).publish("board:a", {"from": "a"})
        received = b""
        while b"data: " not in received or not received.endswith(b"\n\n"):
            chunk = events.recv(65536)
            self.assertTrue(chunk, "event stream ended")
            received += chunk
        block = received.split(b"\r\n\r\n", 1)[1].split(b"\n\n")[-2].decode()
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        message = json.loads(fields["data"])
        self.assertEqual((message["channel"], message["message"]), ("board:a", {"from": "a"}))
        self.assertEqual(fields["id"], message["eventId"])  # this daemon's id for it

    def test_exact_wildcard_and_publisher_exclusion(self):
        a, b = self.hosts(2)
        pub = self.client(a)
        local = self.client(a)
        exact = self.client(b)
        pattern = self.client(b)
        everything = self.client(b)
        nothing = self.client(b)
        pub.subscribe("*")  # matches, but a publisher never receives its own message
        local.subscribe("board:a")
        exact.subscribe("board:a")
        pattern.subscribe("board:*")
        everything.subscribe("*")
        nothing.subscribe("board:b")
        everything.subscribe("board:a")  # one copy however many subscriptions match

        reply = pub.publish("board:a", {"event": "task-moved", "n": 1})
        self.assertEqual(reply["data"]["delivered"], 1)  # local deliveries only
        first = local.next_message()
        for c in (exact, pattern, everything):
            message = c.next_message()
            self.assertEqual(set(message), {"type", "id", "channel", "eventId", "message"})
            self.assertEqual((message["type"], message["channel"], message["message"]),
                             ("channel_message", "board:a", {"event": "task-moved", "n": 1}))
            self.assertTrue(message["id"].startswith("ch_"))
        self.assertEqual(set(first), {"type", "id", "channel", "eventId", "message"})
        # One publisher's messages arrive in order: after its next one, nothing more of the first
        # can come (`nothing` got none, `everything` one copy).
        pub.publish("board:b", "marker")
        for c in (nothing, everything):
            message = c.next_message()
            self.assertEqual((message["channel"], message["message"]), ("board:b", "marker"))

        # And back the other way: a daemon drops its own echo, so `local` gets one copy, and `pub`
        # (subscribed to *) got none of its own: b's publish, which Redis ran after them, comes
        # first to both.
        b_pub = self.client(b)
        b_pub.publish("board:a", "from-b")
        self.assertEqual(local.next_message()["message"], "from-b")
        self.assertEqual(pub.next_message()["message"], "from-b")
        # Nesting as deep as the daemon accepts from a client crosses too (and is local's next).
        deep = "x"
        for _ in range(60):
            deep = [deep]
        b_pub.publish("board:a", deep)
        self.assertEqual(local.next_message()["message"], deep)
        status = pub.status()["broker"]
        self.assertGreaterEqual(status["forwarded"], 1)
        self.assertGreaterEqual(status["received"], 1)

    def test_ten_thousand_messages_in_publish_order(self):
        a, b, c = self.hosts(3)
        subs = [self.client(b), self.client(c)]
        for s in subs:
            s.subscribe("order:*")
        pub = self.client(a)
        total, batch = 10_000, 500
        for start in range(0, total, batch):
            pub.send_raw(b"".join(encode({"type": "publish", "id": f"p{i}", "channel": "order:x",
                                          "message": i}) for i in range(start, start + batch)))
            for i in range(start, start + batch):
                self.assertEqual(pub.reply()["id"], f"p{i}")
        for s in subs:
            got = [s.next_message()["message"] for _ in range(total)]
            self.assertEqual(got, list(range(total)))
        self.assertEqual(pub.status()["broker"]["dropped"], 0)


class LocksAcrossDaemons(BrokerTest):
    def test_no_overlap_32_clients_100_cycles(self):
        daemons = self.hosts(2)
        inside = [0]
        overlaps = []
        errors = []
        guard = threading.Lock()

        def worker(index):
            try:
                with daemons[index % len(daemons)].client(timeout=TIMEOUT * 3) as c:
                    for cycle in range(100):
                        reply = c.call({"type": "lock", "id": f"l{cycle}", "sessionId": f"w{index}",
                                        "lockName": "shared", "lockWait": 60000, "lockTimeout": 30000},
                                       timeout=TIMEOUT * 3)
                        if reply.get("success") is not True:
                            errors.append(reply)
                            return
                        with guard:
                            inside[0] += 1
                            if inside[0] != 1:
                                overlaps.append((index, cycle))
                        with guard:
                            inside[0] -= 1
                        reply = c.call({"type": "unlock", "id": f"u{cycle}", "sessionId": f"w{index}",
                                        "lockName": "shared"})
                        if reply.get("success") is not True:
                            errors.append(reply)
                            return
            except Exception as error:  # reported below, with the thread's index
                errors.append((index, repr(error)))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        self.assertFalse(any(t.is_alive() for t in threads), "workers still running")
        self.assertEqual(errors, [])
        self.assertEqual(overlaps, [])

    def test_tokens_increase_across_daemons_and_every_lock_listed(self):
        a, b, c = self.hosts(3)
        clients = [self.client(a), self.client(b), self.client(c)]
        last = 0
        for i in range(30):
            client = clients[i % 3]
            reply = client.call({"type": "lock", "id": f"l{i}", "sessionId": f"s{i}", "lockName": f"t{i % 4}"})
            self.assertTrue(reply["success"], reply)
            self.assertGreater(reply["data"]["token"], last)
            last = reply["data"]["token"]
            self.assertTrue(client.call({"type": "unlock", "id": f"u{i}", "sessionId": f"s{i}",
                                         "lockName": f"t{i % 4}"})["success"])
        self.assertTrue(clients[0].call({"type": "lock", "id": "x", "sessionId": "on-a", "lockName": "a-lock"})["success"])
        self.assertTrue(clients[1].call({"type": "lock", "id": "y", "sessionId": "on-b", "lockName": "b-lock"})["success"])
        refused = clients[2].call({"type": "lock", "id": "z", "sessionId": "on-c", "lockName": "a-lock"})
        self.assertFalse(refused["success"])
        self.assertEqual(refused["data"]["holder"], "on-a")
        self.assertEqual(refused["data"]["reason"], 'lock "a-lock" is held by on-a')
        for client in clients:
            locks = client.call({"type": "list_locks", "id": "ls"})["data"]["locks"]
            self.assertEqual([(l["name"], l["holder"]) for l in locks], [("a-lock", "on-a"), ("b-lock", "on-b")])
        query = clients[2].call({"type": "query_lock", "id": "q", "lockName": "b-lock"})["data"]["lock"]
        self.assertEqual(query["holder"], "on-b")
        self.assertIsNone(clients[2].call({"type": "query_lock", "id": "q", "lockName": "none"})["data"]["lock"])
        other = clients[2].call({"type": "unlock", "id": "u", "sessionId": "on-c", "lockName": "a-lock"})
        self.assertEqual(other["data"]["released"], False)

    def test_a_renewal_on_any_daemon_extends_only_the_lease_under_its_token(self):
        a, b = self.hosts(2)
        on_a, on_b = self.client(a), self.client(b)

        def lock(client, ident, session, **fields):
            return client.call({"type": "lock", "id": ident, "sessionId": session, "lockName": "rn", **fields})

        first = lock(on_a, "l1", "h")
        self.assertTrue(first["success"], first)
        token = first["data"]["token"]
        renewed = lock(on_b, "r1", "h", renewToken=token)
        self.assertEqual((renewed["success"], renewed["data"].get("extended"), renewed["data"]["token"]),
                         (True, True, token), renewed)
        self.assertTrue(on_b.call({"type": "unlock", "id": "u", "sessionId": "h", "lockName": "rn"})["success"])
        ended = lock(on_a, "r2", "h", renewToken=token)
        self.assertEqual(ended["data"], {"acquired": False, "lockName": "rn", "holder": "",
                                         "reason": f'the lease of lock "rn" under token {token} has ended: '
                                                   "the lock was not taken again"}, ended)
        self.assertIsNone(on_b.call({"type": "query_lock", "id": "q", "lockName": "rn"})["data"]["lock"])
        other = lock(on_b, "l2", "g")
        self.assertTrue(other["success"], other)
        refused = lock(on_a, "r3", "g", renewToken=token)
        self.assertEqual((refused["success"], refused["data"]["holder"]), (False, "g"), refused)
        self.assertEqual(on_a.call({"type": "query_lock", "id": "q", "lockName": "rn"})["data"]["lock"]["token"],
                         other["data"]["token"])

    def test_waiter_on_another_daemon_gets_a_released_or_expired_lock(self):
        a, b = self.hosts(2)
        holder = self.client(a)
        waiter = self.client(b)
        self.assertTrue(holder.call({"type": "lock", "id": "l", "sessionId": "h", "lockName": "w",
                                     "releaseOnDisconnect": True})["success"])
        # Leases and waits here are Redis's and the real clock's: the waits are long enough never to
        # run out, so only the events decide.
        waiter.send({"type": "lock", "id": "w1", "sessionId": "w", "lockName": "w", "lockWait": 600000})
        watch = self.client(b)
        wait_until(lambda: [(lock["name"], lock["waiters"]) for lock in
                            watch.call({"type": "list_locks", "id": "ls"})["data"]["locks"]] == [("w", 1)],
                   message="the waiter refused and waiting on b")
        holder.close()  # releaseOnDisconnect: the lock goes with the connection
        reply = waiter.reply()
        self.assertEqual((reply["id"], reply["data"]["acquired"], reply["data"]["holder"]), ("w1", True, "w"))
        # Expiry sends no notification: the waiter asks again when the lease ends.
        self.assertTrue(waiter.call({"type": "lock", "id": "e", "sessionId": "short", "lockName": "exp",
                                     "lockTimeout": 500})["success"])
        other = self.client(a)
        reply = other.call({"type": "lock", "id": "e2", "sessionId": "later", "lockName": "exp", "lockWait": 600000})
        self.assertEqual((reply["id"], reply["data"]["acquired"], reply["data"]["holder"]), ("e2", True, "later"))

    def test_a_wait_for_a_shared_lock_runs_out_on_the_daemons_clock(self):
        a, b = self.hosts(2, test_clock=T0)
        holder = self.client(a)
        self.assertTrue(holder.call({"type": "lock", "id": "l", "sessionId": "h", "lockName": "exp",
                                     "lockTimeout": 600000})["success"])
        waiter = self.client(b)
        waiter.send({"type": "lock", "id": "t", "sessionId": "x", "lockName": "exp", "lockWait": 300})
        watch = self.client(b)
        wait_until(lambda: [lock["waiters"] for lock in
                            watch.call({"type": "list_locks", "id": "ls"})["data"]["locks"]] == [1],
                   message="the waiter refused and waiting on b")
        b.advance(299)
        self.assertEqual(waiter.call({"type": "ping", "id": "p"}), {"type": "pong", "id": "p"}, "still waiting")
        b.advance(1)  # its last ask, then the refusal
        timed_out = waiter.reply()
        self.assertEqual((timed_out["id"], timed_out["success"]), ("t", False), timed_out)
        self.assertTrue(timed_out["data"]["reason"].startswith("timed out after 300 ms"), timed_out)


    def test_a_daemon_stopping_releases_its_connection_bound_locks(self):
        a, b = self.hosts(2)
        holder = self.client(a)
        self.assertTrue(holder.call({"type": "lock", "id": "l", "sessionId": "h", "lockName": "bound",
                                     "lockTimeout": 60000, "releaseOnDisconnect": True})["success"])
        self.assertTrue(holder.call({"type": "lock", "id": "l2", "sessionId": "h", "lockName": "kept",
                                     "lockTimeout": 60000})["success"])
        self.assertEqual(a.stop(), 0)
        other = self.client(b)
        self.assertIsNone(other.call({"type": "query_lock", "id": "q", "lockName": "bound"})["data"]["lock"])
        # A lock not bound to its connection outlives the daemon, for its lease.
        self.assertEqual(other.call({"type": "query_lock", "id": "q", "lockName": "kept"})["data"]["lock"]["holder"], "h")


    def test_max_locks_counts_the_locks_of_every_daemon(self):
        a, b = self.hosts(2, args=["--max-locks", "3"])
        ca, cb = self.client(a), self.client(b)
        lock = lambda c, name, lease=60000, holder="h": c.call(
            {"type": "lock", "id": name, "sessionId": holder, "lockName": name, "lockTimeout": lease})
        self.assertTrue(lock(ca, "one")["success"])
        self.assertTrue(lock(ca, "brief", lease=500)["success"])
        self.assertTrue(lock(cb, "two")["success"])
        refused = lock(cb, "three")
        self.assertEqual(refused["type"], "error", refused)
        self.assertEqual(refused["error"], "too many locks held (limit 3)")
        # A held lock is still extended; another holder of a held lock is refused as usual.
        self.assertTrue(lock(cb, "two")["success"])
        self.assertEqual(lock(self.client(a), "two", holder="other")["data"]["acquired"], False)
        # An expired lease and a release each make room.
        wait_until(lambda: lock(cb, "three").get("success"), message="room after the brief lease ended")
        self.assertEqual(lock(cb, "four")["error"], "too many locks held (limit 3)")
        self.assertTrue(ca.call({"type": "unlock", "id": "u", "sessionId": "h", "lockName": "one"})["success"])
        self.assertTrue(lock(cb, "four")["success"])


MANIFEST = """
[methods.tick]
command = 'read -r args; echo "$WHO" >> "$STATE/ticks"'
env = { STATE = "@STATE@", WHO = "@WHO@" }
"""


class ReadOnlyRedis(BlackboxTest):
    def test_a_read_only_replica_is_left_for_a_new_connection(self):
        # What a daemon finds after a failover demoted its Redis: writes refused with READONLY.
        replica = RedisServer(self.make_dir(), extra=["--replicaof", "127.0.0.1", "1"])
        replica.start()
        self.addCleanup(replica.stop)
        d = self.daemon("br", args=["--broker", replica.url])
        c = self.client(d)
        # It answers, but would refuse every write: the daemon does not count it as connected, and
        # keeps trying (with a growing backoff) until the address leads to a primary.
        wait_until(lambda: "read-only replica" in c.status()["broker"].get("lastError", ""),
                   message="the replica recognized")
        self.assertNotEqual(c.status()["broker"]["state"], "connected")
        reply = c.call({"type": "lock", "id": "l", "lockName": "deploy"})
        self.assertEqual(reply["type"], "error")
        self.assertIn("lock service unavailable", reply["error"])
        c.ping()  # and the daemon serves on


class JobHosts(BrokerTest):
    """Daemons of one photon with an exec manifest, on test clocks from T0, and what the job tests
    read of them."""

    def job_hosts(self, name, whos, manifest, state=None):
        """One daemon per entry of `whos` (its WHO), sharing the directory `state` (made when not
        given); returns (state, daemons)."""
        state = state or self.make_dir()
        daemons = []
        for who in whos:
            photon_dir = self.make_dir()
            path = os.path.join(photon_dir, "photon.toml")
            with open(path, "w") as f:
                f.write(manifest.replace("@STATE@", state).replace("@WHO@", who))
            daemons.append(self.connected(self.host(name, args=["--manifest", path], photon_dir=photon_dir,
                                                    test_clock=T0)))
        return state, daemons

    def settled(self, d):
        """A round trip through d's connection to Redis: once it is answered, d has handled the
        answers to everything it sent Redis before (its claims of slots, the end of its runs), so
        what those claims started has started and was announced."""
        with d.client() as c:
            reply = c.call({"type": "list_locks", "id": "settle"})
        self.assertIn(reply["type"], ("result", "error"), reply)

    def redis_cli(self, *args):
        return subprocess.run(["redis-cli", "-s", self.redis.sock, *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    def job_ids(self, d):
        with d.client() as c:
            return [j["id"] for j in c.call({"type": "list_jobs", "id": "j"})["data"]["jobs"]]

    def job(self, d, job_id):
        with d.client() as c:
            jobs = {j["id"]: j for j in c.call({"type": "list_jobs", "id": "j"})["data"]["jobs"]}
        return jobs.get(job_id)

    def instance(self, d):
        with d.client() as c:
            return c.status()["broker"]["instance"]

    def next_event(self, sub, channel):
        """The next job event on `sub`, which must come on `channel`."""
        message = sub.next_message()
        self.assertEqual(message["channel"], channel, message)
        return message["message"]

    def quiet(self, sub, daemons):
        """Asserts that no job event is on its way to `sub` (a connection of daemons[0]) from any
        of `daemons`: each settles, then publishes a marker that Redis (or, for daemons[0], the
        daemon itself) delivers after whatever that daemon published before."""
        for index, d in enumerate(daemons):
            self.settled(d)
            with d.client() as c:
                c.publish(f"mark:{index}", index)
        marks = set()
        while marks != set(range(len(daemons))):
            message = sub.next_message()
            self.assertTrue(message["channel"].startswith("mark:"), f"a job event came: {message}")
            marks.add(message["message"])


class JobsAcrossDaemons(JobHosts):
    def test_each_slot_runs_once_across_daemons_whose_clocks_move_alike(self):
        state, (a, b) = self.job_hosts("jb", "ab", MANIFEST)
        who = {self.instance(a): "a", self.instance(b): "b"}
        sub = self.client(a)
        sub.subscribe("jobs:jb")
        sub.subscribe("mark:*")
        ca = self.client(a)
        reply = ca.call({"type": "schedule", "id": "s", "jobId": "every", "method": "tick", "cron": "* * * * * *",
                         "overlap": "allow"})
        self.assertEqual((reply["success"], reply["data"]["nextRun"]), (True, T0_MS + SECOND), reply)
        # The definition is everyone's, with the same next slot.
        wait_until(lambda: (self.job(b, "every") or {}).get("nextRun") == T0_MS + SECOND, message="the job on b")

        # Both clocks pass each slot; the first to get there wins its claim (a on odd slots, b on
        # even ones), the other's claim of the same slot is lost.
        runs = []
        for n in range(1, 11):
            slot = T0_MS + n * SECOND
            first, second = (a, b) if n % 2 else (b, a)
            advance_to(first, slot)
            started = self.next_event(sub, "jobs:jb")
            self.assertEqual((started["event"], started["data"]["scheduledFor"], started["data"]["trigger"]),
                             ("job-started", slot, "schedule"), started)
            advance_to(second, slot)
            ended = self.next_event(sub, "jobs:jb")
            self.assertEqual((ended["event"], ended["data"]["runId"]), ("job-completed", started["data"]["runId"]),
                             ended)
            self.settled(first)  # its run is in the shared history before the next one ends
            runs.append(started["data"]["runId"])
        # No claim of either daemon is still unanswered, and nothing else ran.
        self.quiet(sub, [a, b])
        self.assertEqual(read_words(os.path.join(state, "ticks")), ["a", "b"] * 5)

        history = wait_until(lambda: (lambda h: h if len(h) == 10 else None)(
            ca.call({"type": "job_history", "id": "h", "jobId": "every", "limit": 100})["data"]["runs"]),
            message="ten runs in the shared history")
        self.assertEqual([(r["scheduledFor"], who[r["daemon"]], r["status"]) for r in history],
                         [(T0_MS + n * SECOND, "ab"[(n + 1) % 2], "ok") for n in range(10, 0, -1)])
        self.assertEqual([r["runId"] for r in history], runs[::-1])
        for name in "ab":
            ids = [r["runId"] for r in history if who[r["daemon"]] == name]
            self.assertEqual(ids, sorted(ids, reverse=True), "run ids increase per daemon")
        for d in (a, b):
            wait_until(lambda: self.job(d, "every")["runCount"] == 10, message="the shared count of 10 runs")

        # Removed on a, gone from b: its next slot runs nowhere.
        self.assertTrue(ca.call({"type": "unschedule", "id": "u", "jobId": "every"})["success"])
        wait_until(lambda: self.job_ids(b) == [], message="the job gone from b")
        for d in (a, b):
            advance_to(d, T0_MS + 11 * SECOND)
        self.quiet(sub, [a, b])
        self.assertEqual(len(read_words(os.path.join(state, "ticks"))), 10)

    def test_no_slot_older_than_the_last_claimed_one_runs(self):
        # What a daemon waking from a long pause would try: claiming slots before the last one
        # claimed. Moving the job's marker ahead stands for the slots the others ran meanwhile.
        state, (d,) = self.job_hosts("jb", "a", MANIFEST)
        c = self.client(d)
        c.subscribe("jobs:jb")
        self.assertTrue(c.call({"type": "schedule", "id": "s", "jobId": "every", "method": "tick",
                                "cron": "* * * * * *", "overlap": "allow"})["success"])
        advance_to(d, T0_MS + SECOND)
        started = self.next_event(c, "jobs:jb")
        self.assertEqual((started["event"], started["data"]["scheduledFor"]), ("job-started", T0_MS + SECOND))
        self.assertEqual(self.next_event(c, "jobs:jb")["event"], "job-completed")
        subprocess.run(["redis-cli", "-s", self.redis.sock, "HSET", "photon:jb:fired:every", "slot",
                        str(T0_MS + 4 * SECOND)], check=True, capture_output=True)
        for n in (2, 3, 4):
            advance_to(d, T0_MS + n * SECOND)
            self.settled(d)  # the claim was answered: lost
            self.assertEqual(messages_before_pong(c), [], f"slot {n}, not after the marker, ran")
        advance_to(d, T0_MS + 5 * SECOND)
        started = self.next_event(c, "jobs:jb")
        self.assertEqual((started["event"], started["data"]["scheduledFor"]), ("job-started", T0_MS + 5 * SECOND))
        self.assertEqual(self.next_event(c, "jobs:jb")["event"], "job-completed")
        self.assertEqual(read_words(os.path.join(state, "ticks")), ["a", "a"])


SLOW_MANIFEST = """
[methods.slow]
command = 'read -r args; echo start >> "$STATE/slow"; while [ ! -e "$STATE/gate" ]; do sleep 0.02; done; echo end >> "$STATE/slow"'
env = { STATE = "@STATE@" }

[methods.tick]
command = 'read -r args; echo tick >> "$STATE/ticks"'
env = { STATE = "@STATE@" }
"""

DECLARED_BEAT = """
[jobs.beat]
method = "tick"
cron = "* * * * * *"
"""


def read_words(path):
    try:
        with open(path) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


class SharedJobRecords(JobHosts):
    """What a job's shared record goes through when daemons finish runs, start and remove jobs.
    Runs of `slow` last until the test creates the file `gate` in the state directory."""

    def slow_hosts(self, count, extra=""):
        state, daemons = self.job_hosts("jr", "abcdef"[:count], SLOW_MANIFEST + extra)
        self.state = state
        return state, daemons

    def open_gate(self):
        open(os.path.join(self.state, "gate"), "w").close()

    def test_a_job_removed_while_another_daemon_runs_it_does_not_come_back(self):
        state, (a, b) = self.slow_hosts(2)
        ca, cb = self.client(a), self.client(b)
        self.assertTrue(ca.call({"type": "schedule", "id": "s", "jobId": "report", "method": "slow",
                                 "cron": "0 0 1 1 *"})["success"])
        wait_until(lambda: self.job_ids(b) == ["report"], message="the job listed on b")
        events = self.client(a)
        events.subscribe("jobs:jr")
        self.assertTrue(cb.call({"type": "run_job", "id": "r", "jobId": "report"})["success"])
        slow = os.path.join(state, "slow")
        wait_until(lambda: read_words(slow) == ["start"], message="the run started on b")
        # b is paused (a GC pause, a swapped-out host) while the job is removed and its run ends, so
        # b learns of both at once: the removal must win whichever it handles first.
        b.signal(signal.SIGSTOP)
        try:
            self.assertTrue(ca.call({"type": "unschedule", "id": "u", "jobId": "report"})["success"])
            self.open_gate()
            wait_until(lambda: read_words(slow) == ["start", "end"], message="the run ended")
        finally:
            b.signal(signal.SIGCONT)
        while True:
            event = events.next_message()["message"]
            if event["event"] in ("job-completed", "job-failed"):
                break
        # b published the end after whatever it wrote for the run: Redis has seen that by now. Nothing
        # of the job is left there: no definition, record, history or slot marker.
        self.assertEqual(self.redis_cli("HEXISTS", "photon:jr:jobs", "report"), "0")
        self.assertEqual(self.redis_cli("EXISTS", "photon:jr:job:report", "photon:jr:runs:report",
                                        "photon:jr:fired:report"), "0")
        # Whatever b read from Redis after its run has been answered: the job is gone for both.
        for d in (a, b):
            self.settled(d)
        self.assertEqual((self.job_ids(a), self.job_ids(b)), ([], []))
        self.assertEqual(b.stop(), 0)
        b.start()
        self.connected(b)
        self.assertEqual((self.job_ids(a), self.job_ids(b)), ([], []))

    def test_overlap_skip_holds_across_daemons(self):
        _, (a, b, c) = self.slow_hosts(3)
        sub = self.client(a)
        sub.subscribe("jobs:jr")
        sub.subscribe("mark:*")
        self.assertTrue(self.client(a).call({"type": "schedule", "id": "s", "jobId": "slow", "method": "slow",
                                             "cron": "* * * * * *", "overlap": "skip"})["success"])
        for d in (b, c):
            wait_until(lambda: self.job_ids(d) == ["slow"], message="the job on every daemon")
        who = {self.instance(d): name for d, name in ((a, "a"), (b, "b"), (c, "c"))}

        def slot(n, order, expected):
            """Moves the daemons' clocks to slot n, in this order; the first wins the slot and
            sends the `expected` event."""
            advance_to(order[0], T0_MS + n * SECOND)
            event = self.next_event(sub, "jobs:jr")
            self.assertEqual((event["event"], event["data"]["scheduledFor"]), (expected, T0_MS + n * SECOND), event)
            for d in order[1:]:
                advance_to(d, T0_MS + n * SECOND)
            return event

        first = slot(1, (a, b, c), "job-started")  # runs on a until the gate opens
        # Slots won while a's run holds the job, by b then c: skipped.
        skipped = [slot(2, (b, c, a), "job-skipped"), slot(3, (c, a, b), "job-skipped")]
        self.assertEqual([e["data"] for e in skipped],
                         [{"jobId": "slow", "method": "slow", "scheduledFor": T0_MS + n * SECOND} for n in (2, 3)])
        self.quiet(sub, [a, b, c])
        self.open_gate()
        ended = self.next_event(sub, "jobs:jr")
        self.assertEqual((ended["event"], ended["data"]["runId"]), ("job-completed", first["data"]["runId"]))
        self.settled(a)  # the end of a's run, which frees the job, reached Redis
        fourth = slot(4, (b, c, a), "job-started")  # b runs it (the gate is open: it ends at once)
        self.assertEqual(self.next_event(sub, "jobs:jr")["event"], "job-completed")
        self.quiet(sub, [a, b, c])

        history = wait_until(lambda: (lambda h: h if len(h) == 4 else None)(
            sub.call({"type": "job_history", "id": "h", "jobId": "slow", "limit": 100})["data"]["runs"]),
            message="four entries in the shared history")
        # Newest finished first: a's run ended after the two skips.
        self.assertEqual([(r["status"], r["scheduledFor"], who[r["daemon"]]) for r in history],
                         [("ok", T0_MS + 4 * SECOND, "b"), ("ok", T0_MS + SECOND, "a"),
                          ("skipped", T0_MS + 3 * SECOND, "c"), ("skipped", T0_MS + 2 * SECOND, "b")])
        self.assertEqual(history[0]["runId"], fourth["data"]["runId"])

    def test_a_daemon_starting_keeps_the_shared_run_count_of_a_declared_job(self):
        state, (a, b) = self.slow_hosts(2, extra=DECLARED_BEAT)
        sub = self.client(a)
        sub.subscribe("jobs:jr")
        for n in (1, 2, 3):
            for d in (a, b):
                advance_to(d, T0_MS + n * SECOND)
            self.assertEqual(self.next_event(sub, "jobs:jr")["event"], "job-started")
            self.assertEqual(self.next_event(sub, "jobs:jr")["event"], "job-completed")
        for d in (a, b):
            wait_until(lambda: self.job(d, "beat")["runCount"] == 3, message="three runs counted")
        self.assertEqual(b.stop(), 0)

        # b starts again, where its clock had got to, and declares its job again.
        again = self.host("jr", args=["--manifest", os.path.join(b.photon_dir, "photon.toml")],
                          photon_dir=b.photon_dir, start=False, test_clock=rfc3339(T0_MS + 3 * SECOND))
        again.spawn()
        seen_on_a = []

        def b_connected():
            seen_on_a.append(self.job(a, "beat")["runCount"])
            with again.client() as c:
                return c.status()["broker"]["state"] == "connected"

        wait_until(b_connected, message="b started and connected")
        # b shows the shared count once it has read it, and a never showed less while b started.
        wait_until(lambda: (self.job(again, "beat") or {}).get("runCount") == 3, message="b showing the shared count")
        self.settled(again)  # whatever b wrote as it started has reached Redis
        self.assertEqual([self.job(d, "beat")["runCount"] for d in (a, again)], [3, 3])
        self.assertEqual(min(seen_on_a), 3, seen_on_a)
        # And the next run counts from there, on both (a's last run freed the job in Redis).
        self.settled(a)
        for d in (again, a):
            advance_to(d, T0_MS + 4 * SECOND)
        self.assertEqual(self.next_event(sub, "jobs:jr")["event"], "job-started")
        self.assertEqual(self.next_event(sub, "jobs:jr")["event"], "job-completed")
        for d in (a, again):
            wait_until(lambda: self.job(d, "beat")["runCount"] == 4, message="four runs counted")
        self.assertEqual(read_words(os.path.join(state, "ticks")), ["tick"] * 4)


class RedisGoesAway(BrokerTest):
    def test_locks_refused_while_down_and_delivery_resumes(self):
        a, b = self.hosts(2)
        ca, cb = self.client(a), self.client(b)
        sub_a, sub_b = self.client(a), self.client(b)
        sub_a.subscribe("x")
        sub_b.subscribe("x")
        ca.publish("x", "before")
        self.assertEqual(sub_a.next_message()["message"], "before")
        self.assertEqual(sub_b.next_message()["message"], "before")

        self.redis.stop()
        wait_until(lambda: ca.status()["broker"]["state"] != "connected", message="broker down")
        reply = ca.call({"type": "lock", "id": "l", "sessionId": "s", "lockName": "n"})
        self.assertEqual(reply["type"], "error")
        self.assertTrue(reply["error"].startswith("lock service unavailable: redis at unix://"), reply)
        self.assertEqual(cb.call({"type": "list_locks", "id": "ls"})["type"], "error")
        # Local pub/sub goes on.
        self.assertEqual(ca.publish("x", "local")["data"]["delivered"], 1)
        self.assertEqual(sub_a.next_message()["message"], "local")
        self.assertGreaterEqual(ca.status()["broker"]["dropped"], 1)

        self.redis.start()
        for c in (ca, cb):
            wait_until(lambda: c.status()["broker"]["state"] == "connected", message="broker back")
        self.assertGreaterEqual(ca.status()["broker"]["reconnects"], 1)
        ca.publish("x", "after")
        self.assertEqual(sub_b.next_message()["message"], "after", "what a published while down never reaches b")
        self.assertTrue(cb.call({"type": "lock", "id": "l2", "sessionId": "s", "lockName": "n"})["success"])
        for d in (a, b):
            self.assertIsNone(d.proc.poll())
        with open(a.log_path) as f:
            log = f.read()
        self.assertIn("unreachable", log)
        self.assertIn("connected to redis", log)


class JobsWhileRedisIsAway(JobHosts):
    def test_no_fire_while_down_and_jobs_survive_a_redis_that_lost_its_data(self):
        state, (a, b) = self.job_hosts("jd", "ab", MANIFEST)
        ca, cb = self.client(a), self.client(b)
        subs = [self.client(a), self.client(b)]  # each hears its own daemon's runs, Redis or not
        for sub in subs:
            sub.subscribe("jobs:jd")
        self.assertTrue(ca.call({"type": "schedule", "id": "s", "jobId": "tick", "method": "tick",
                                 "cron": "* * * * * *", "overlap": "allow"})["success"])
        wait_until(lambda: self.job_ids(b) == ["tick"], message="the job on b")
        advance_to(a, T0_MS + SECOND)  # a gets there first: a's run
        for sub in subs:  # heard on a at once, on b through Redis
            self.assertEqual(self.next_event(sub, "jobs:jd")["event"], "job-started")
            self.assertEqual(self.next_event(sub, "jobs:jd")["event"], "job-completed")
        advance_to(b, T0_MS + SECOND)
        for d in (a, b):
            self.settled(d)
        ticks = os.path.join(state, "ticks")
        self.assertEqual(read_words(ticks), ["a"])

        self.redis.stop()
        for c in (ca, cb):
            wait_until(lambda: c.status()["broker"]["state"] != "connected", message="broker down")
        # No claim can be made: the slots pass on both daemons and run nowhere. A request that
        # needs Redis, refused after the claims were, marks their end.
        for n in (2, 3):
            for d in (a, b):
                advance_to(d, T0_MS + n * SECOND)
        for d, sub in zip((a, b), subs):
            self.settled(d)
            self.assertEqual([m["message"] for m in messages_before_pong(sub)], [])
        self.assertEqual(read_words(ticks), ["a"])

        # Redis comes back empty (no persistence): the daemons write their jobs back.
        self.redis.start()
        for c in (ca, cb):
            wait_until(lambda: c.status()["broker"]["state"] == "connected", message="broker back")
        wait_until(lambda: self.redis_has_job("jd", "tick"), message="the job written back to Redis")
        for d in (a, b):
            self.settled(d)  # both have read the jobs since (their syncs after reconnecting were answered)
            self.assertEqual(
                self.job_ids(d), ["tick"],
                "after Redis lost its data, a daemon forgot a job that Redis has again (its two "
                "connections came back one after the other and their job syncs overlapped; see "
                "test_overlapping_syncs_after_redis_lost_its_data_keep_the_jobs_written_back)")
        # The slots missed while Redis was away stay missed; the next one runs once.
        advance_to(b, T0_MS + 4 * SECOND)
        started = self.next_event(subs[1], "jobs:jd")
        self.assertEqual((started["event"], started["data"]["scheduledFor"]), ("job-started", T0_MS + 4 * SECOND))
        advance_to(a, T0_MS + 4 * SECOND)
        self.assertEqual(self.next_event(subs[1], "jobs:jd")["event"], "job-completed")
        for d, sub in zip((a, b), subs):
            self.settled(d)
        self.assertEqual(read_words(ticks), ["a", "b"])
        for d in (a, b):
            self.assertIsNone(d.proc.poll())

    def test_overlapping_syncs_after_redis_lost_its_data_keep_the_jobs_written_back(self):
        # A daemon reads every job when its command connection to Redis is made again, and again
        # when its subscriber connection is (notices were missed meanwhile). Redis lost its data
        # (flushed) and holds every script (CLIENT PAUSE WRITE) while the daemon's two connections
        # come back one after the other, so the second read is sent before the first is answered:
        # the first answer finds no job and writes the daemon's job back, after the second read
        # went. That read's answer, without the job, must not make the daemon forget it.
        _, (a,) = self.job_hosts("jl", "a", MANIFEST)
        ca = self.client(a)
        self.assertTrue(ca.call({"type": "schedule", "id": "s", "jobId": "yearly", "method": "tick",
                                 "cron": "0 0 1 1 *"})["success"])
        wait_until(lambda: self.redis_has_job("jl", "yearly"), message="the job in Redis")
        before = ca.status()["broker"]["reconnects"]

        def reconnected(count):
            broker = ca.status()["broker"]
            return broker["state"] == "connected" and broker["reconnects"] == before + count

        self.redis_cli("FLUSHALL")
        self.redis_cli("CLIENT", "PAUSE", "600000", "WRITE")
        try:
            self.redis_cli("CLIENT", "KILL", "TYPE", "normal")  # the command connection
            wait_until(lambda: reconnected(1), message="the command connection back (its sync held)")
            self.redis_cli("CLIENT", "KILL", "TYPE", "pubsub")
            wait_until(lambda: reconnected(2), message="the subscriber back (a second sync held)")
        finally:
            self.redis_cli("CLIENT", "UNPAUSE")
        wait_until(lambda: self.redis_has_job("jl", "yearly"), message="the job written back to Redis")
        self.settled(a)  # both syncs answered
        self.assertEqual(self.job_ids(a), ["yearly"])
        with open(a.log_path) as f:
            self.assertIn("lost its data (restarted without persistence?); writing this daemon's jobs back", f.read())

    def redis_has_job(self, photon, job_id):
        return subprocess.run(["redis-cli", "-s", self.redis.sock, "HEXISTS", f"photon:{photon}:jobs", job_id],
                              capture_output=True, text=True).stdout.strip() == "1"


class Configuration(BlackboxTest):
    def run_photond(self, *args, env=None):
        directory = self.make_dir()
        e = dict(os.environ, PHOTON_DIR=directory)
        if env:
            e.update(env)
        return subprocess.run([PHOTOND, "serve", "cfg", *args], env=e, capture_output=True, text=True,
                              timeout=TIMEOUT)

    def test_bad_urls_are_usage_errors_without_the_password(self):
        for url, needle in (("http://h:1", "unknown scheme"), ("redis://:hunter2@h:99999", "port"),
                            ("redis://:hunter2@h:1/x", "database number"), ("unix://relative", "absolute")):
            result = self.run_photond("--broker", url)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn(needle, result.stderr)
            self.assertNotIn("hunter2", result.stderr)

    def test_environment(self):
        result = self.run_photond(env={"PHOTON_CHANNEL_BROKER": "redis", "PHOTON_REDIS_URL": "", "REDIS_URL": ""})
        self.assertEqual(result.returncode, 2)
        self.assertIn("PHOTON_REDIS_URL or REDIS_URL", result.stderr)
        result = self.run_photond(env={"PHOTON_CHANNEL_BROKER": "http"})
        self.assertEqual(result.returncode, 2)
        self.assertIn("redis", result.stderr)

    def test_unreachable_redis_at_start_still_serves_and_hides_the_password(self):
        d = self.daemon("cfg", env={"PHOTON_CHANNEL_BROKER": "redis",
                                    "REDIS_URL": "redis://u:hunter2@127.0.0.1:1/2"})
        c = self.client(d)
        status = c.status()["broker"]
        self.assertEqual(status["url"], "redis://u:***@127.0.0.1:1/2")
        wait_until(lambda: c.status()["broker"]["state"] == "down", message="broker down")
        reply = c.call({"type": "lock", "id": "l", "lockName": "n"})
        self.assertIn("lock service unavailable", reply["error"])
        self.assertNotIn("hunter2", reply["error"])
        c.subscribe("here")
        c2 = self.client(d)
        self.assertEqual(c2.publish("here", 1)["data"]["delivered"], 1)
        with open(d.log_path) as f:
            self.assertNotIn("hunter2", f.read())
        shown = ctl(d.photon_dir, "status", "cfg")
        self.assertEqual(shown.returncode, 0, shown.stderr)
        # It keeps retrying on its own (a real timer, not the test clock), so the line shows the
        # attempt of the moment: down between attempts, connecting during one.
        self.assertRegex(shown.stdout, r"broker       redis://u:\*\*\*@127\.0\.0\.1:1/2 (down|connecting)")
        self.assertNotIn("hunter2", shown.stdout)


if __name__ == "__main__":
    unittest.main()
