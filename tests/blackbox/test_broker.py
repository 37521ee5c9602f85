"""Several photond "hosts" (separate PHOTON_DIRs) of one photon joined through a real redis-server
on a temporary Unix socket: cross-daemon delivery, shared locks and tokens, a job firing once per
slot across three daemons, and Redis killed and restarted under them."""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest
import urllib.request

from harness import PHOTOND, TIMEOUT, BlackboxTest, ctl, encode, wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    """A redis-server without persistence listening on `sock` only; restartable on the same path."""

    def __init__(self, directory, extra=()):
        self.dir = directory
        self.sock = os.path.join(directory, "redis.sock")
        self.proc = None
        self.extra = list(extra)

    def start(self):
        out = open(os.path.join(self.dir, "redis.out"), "ab")
        try:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", "0", "--unixsocket", self.sock, "--unixsocketperm", "700",
                 "--save", "", "--appendonly", "no", "--dir", self.dir, *self.extra],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()
        wait_until(self.answers, message="redis-server answering on its socket")

    def answers(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(self.sock)
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        self.proc = None

    @property
    def url(self):
        return "unix://" + self.sock


class BrokerTest(BlackboxTest):
    def setUp(self):
        self.redis = Redis(self.make_dir())
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
        production = self.connected(self.host())
        listeners = [self.client(d) for d in (production, staging[1])]
        for listener in listeners:
            listener.subscribe("board:a")
        self.client(staging[0]).publish("board:a", "staging")
        self.assertEqual(listeners[1].next_message()["message"], "staging")
        listeners[0].assert_silent(0.5)

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
        self.assertEqual(fields["id"], message["id"].removeprefix("ch_"))

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
            self.assertEqual(set(message), {"type", "id", "channel", "message"})
            self.assertEqual((message["type"], message["channel"], message["message"]),
                             ("channel_message", "board:a", {"event": "task-moved", "n": 1}))
            self.assertTrue(message["id"].startswith("ch_"))
        self.assertEqual(set(first), {"type", "id", "channel", "message"})
        pub.send({"type": "ping", "id": "after"})
        self.assertEqual(pub.read_json(), {"type": "pong", "id": "after"})
        nothing.assert_silent(0.3)
        everything.assert_silent(0.1)

        # And back the other way: a daemon drops its own echo, so `local` gets one copy.
        b_pub = self.client(b)
        b_pub.publish("board:a", "from-b")
        self.assertEqual(local.next_message()["message"], "from-b")
        self.assertEqual(pub.next_message()["message"], "from-b")
        local.assert_silent(0.3)
        # Nesting as deep as the daemon accepts from a client crosses too.
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

    def test_waiter_on_another_daemon_gets_a_released_or_expired_lock(self):
        a, b = self.hosts(2)
        holder = self.client(a)
        waiter = self.client(b)
        self.assertTrue(holder.call({"type": "lock", "id": "l", "sessionId": "h", "lockName": "w",
                                     "releaseOnDisconnect": True})["success"])
        waiter.send({"type": "lock", "id": "w1", "sessionId": "w", "lockName": "w", "lockWait": 10000})
        waiter.assert_silent(0.3)
        holder.close()  # releaseOnDisconnect: the lock goes with the connection
        reply = waiter.reply()
        self.assertEqual((reply["id"], reply["data"]["acquired"], reply["data"]["holder"]), ("w1", True, "w"))
        # Expiry sends no notification: the waiter asks again when the lease ends.
        self.assertTrue(waiter.call({"type": "lock", "id": "e", "sessionId": "short", "lockName": "exp",
                                     "lockTimeout": 500})["success"])
        other = self.client(a)
        started = time.monotonic()
        reply = other.call({"type": "lock", "id": "e2", "sessionId": "later", "lockName": "exp", "lockWait": 10000})
        self.assertTrue(reply["data"]["acquired"], reply)
        self.assertLess(time.monotonic() - started, 5)
        timed_out = waiter.call({"type": "lock", "id": "t", "sessionId": "x", "lockName": "exp", "lockWait": 300})
        self.assertFalse(timed_out["success"])
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
        replica = Redis(self.make_dir(), extra=["--replicaof", "127.0.0.1", "1"])
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


class JobsAcrossDaemons(BrokerTest):
    def test_no_slot_older_than_the_last_claimed_one_runs(self):
        # What a daemon waking from a long pause would try: claiming slots before the last one
        # claimed. Moving the job's marker ahead stands for the slots the others ran meanwhile.
        state = self.make_dir()
        photon_dir = self.make_dir()
        manifest = os.path.join(photon_dir, "photon.toml")
        with open(manifest, "w") as f:
            f.write(MANIFEST.replace("@STATE@", state).replace("@WHO@", "a"))
        d = self.connected(self.host("jb", args=["--manifest", manifest], photon_dir=photon_dir))
        c = self.client(d)
        self.assertTrue(c.call({"type": "schedule", "id": "s", "jobId": "every", "method": "tick",
                                "cron": "* * * * * *"})["success"])
        ticks = os.path.join(state, "ticks")
        wait_until(lambda: os.path.exists(ticks), message="a first run")
        ahead = int(time.time() * 1000) + 4000
        subprocess.run(["redis-cli", "-s", self.redis.sock, "HSET", "photon:jb:fired:every", "slot", str(ahead)],
                       check=True, capture_output=True)
        time.sleep(1.2)  # a run started before the marker moved may end
        with open(ticks) as f:
            before = len(f.read().split())
        time.sleep(2)
        with open(ticks) as f:
            self.assertEqual(len(f.read().split()), before, "slots before the marker ran")
        wait_until(lambda: len(open(ticks).read().split()) > before, message="slots after the marker run")

    def test_a_seconds_job_fires_once_per_slot_over_30_slots_with_three_daemons(self):
        state = self.make_dir()
        daemons = []
        for who in ("a", "b", "c"):
            photon_dir = self.make_dir()
            manifest = os.path.join(photon_dir, "photon.toml")
            with open(manifest, "w") as f:
                f.write(MANIFEST.replace("@STATE@", state).replace("@WHO@", who))
            daemons.append(self.connected(self.host("jb", args=["--manifest", manifest], photon_dir=photon_dir)))
        first = self.client(daemons[0])
        reply = first.call({"type": "schedule", "id": "s", "jobId": "every", "method": "tick", "cron": "* * * * * *"})
        self.assertTrue(reply["success"], reply)
        # The definition is everyone's.
        for d in daemons[1:]:
            with d.client() as c:
                wait_until(lambda: [j["id"] for j in c.call({"type": "list_jobs", "id": "j"})["data"]["jobs"]] == ["every"],
                           message="job listed on every daemon")
        time.sleep(31)
        runs = self.client(daemons[2]).call({"type": "job_history", "id": "h", "jobId": "every",
                                             "limit": 100})["data"]["runs"]
        # Every daemon lists the job's shared record (a run may be ending meanwhile).
        counts = []
        for d in daemons:
            with d.client() as c:
                counts.append(c.call({"type": "list_jobs", "id": "j"})["data"]["jobs"][0]["runCount"])
        self.assertGreaterEqual(min(counts), 27, counts)
        self.assertLessEqual(max(counts) - min(counts), 2, counts)
        self.assertTrue(first.call({"type": "unschedule", "id": "u", "jobId": "every"})["success"])
        for d in daemons[1:]:
            with d.client() as c:
                wait_until(lambda: c.call({"type": "list_jobs", "id": "j"})["data"]["jobs"] == [],
                           message="job gone from every daemon")
        time.sleep(1.5)  # the last runs finish
        # Each slot ran once: no slot twice in the shared history, one trace line per slot.
        slots = [r["scheduledFor"] for r in runs]
        self.assertEqual(len(slots), len(set(slots)), runs)
        self.assertGreaterEqual(len(slots), 28, runs)
        self.assertTrue(all(r["status"] == "ok" for r in runs), runs)
        with open(os.path.join(state, "ticks")) as f:
            ticks = f.read().split()
        self.assertGreaterEqual(len(ticks), len(slots))
        self.assertLessEqual(len(ticks), len(slots) + 3, (ticks, slots))
        self.assertGreater(len(set(ticks)), 1, "the slots are spread over the daemons")


SLOW_MANIFEST = """
[methods.slow]
command = 'read -r args; echo start >> "$STATE/slow"; sleep @SECONDS@; echo end >> "$STATE/slow"'
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
    with open(path) as f:
        return f.read().split()


class SharedJobRecords(BrokerTest):
    """What a job's shared record goes through when daemons finish runs, start and remove jobs."""

    def slow_hosts(self, count, seconds, extra=""):
        state = self.make_dir()
        daemons = []
        for _ in range(count):
            photon_dir = self.make_dir()
            manifest = os.path.join(photon_dir, "photon.toml")
            with open(manifest, "w") as f:
                f.write(SLOW_MANIFEST.replace("@STATE@", state).replace("@SECONDS@", str(seconds)) + extra)
            daemons.append(self.connected(self.host("jr", args=["--manifest", manifest], photon_dir=photon_dir)))
        return state, daemons

    def redis_cli(self, *args):
        return subprocess.run(["redis-cli", "-s", self.redis.sock, *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    def job_ids(self, d):
        with d.client() as c:
            return [j["id"] for j in c.call({"type": "list_jobs", "id": "j"})["data"]["jobs"]]

    def test_a_job_removed_while_another_daemon_runs_it_does_not_come_back(self):
        state, (a, b) = self.slow_hosts(2, 2)
        ca, cb = self.client(a), self.client(b)
        self.assertTrue(ca.call({"type": "schedule", "id": "s", "jobId": "report", "method": "slow",
                                 "cron": "0 0 1 1 *"})["success"])
        wait_until(lambda: self.job_ids(b) == ["report"], message="the job listed on b")
        events = self.client(a)
        events.subscribe("jobs:jr")
        self.assertTrue(cb.call({"type": "run_job", "id": "r", "jobId": "report"})["success"])
        slow = os.path.join(state, "slow")
        wait_until(lambda: os.path.exists(slow), message="the run started on b")
        # b is paused (a GC pause, a swapped-out host) while the job is removed and its run ends, so
        # b learns of both at once: the removal must win whichever it handles first.
        b.signal(signal.SIGSTOP)
        try:
            self.assertTrue(ca.call({"type": "unschedule", "id": "u", "jobId": "report"})["success"])
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
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            self.assertEqual((self.job_ids(a), self.job_ids(b)), ([], []))
            time.sleep(0.1)
        self.assertEqual(b.stop(), 0)
        b.start()
        self.connected(b)
        self.assertEqual((self.job_ids(a), self.job_ids(b)), ([], []))

    def test_overlap_skip_holds_across_daemons(self):
        _, daemons = self.slow_hosts(3, 2.5)
        c = self.client(daemons[0])
        self.assertTrue(c.call({"type": "schedule", "id": "s", "jobId": "slow", "method": "slow",
                                "cron": "* * * * * *", "overlap": "skip"})["success"])

        def finished():
            runs = c.call({"type": "job_history", "id": "h", "jobId": "slow", "limit": 100})["data"]["runs"]
            done = [r for r in runs if r["status"] == "ok"]
            return runs if len(done) >= 3 else None

        runs = wait_until(finished, timeout=30, message="three runs of the slow job")
        done = sorted((r["startedAt"], r["endedAt"], r["daemon"]) for r in runs if r["status"] == "ok")
        for earlier, later in zip(done, done[1:]):
            self.assertGreaterEqual(later[0], earlier[1], f"runs overlap: {done}")
        # The slots that came while a run lasted were skipped, by whichever daemon claimed them.
        self.assertTrue(any(r["status"] == "skipped" for r in runs), runs)

    def test_a_daemon_starting_keeps_the_shared_run_count_of_a_declared_job(self):
        _, (a, b) = self.slow_hosts(2, 0, extra=DECLARED_BEAT)

        def run_count(d):
            with d.client() as c:
                jobs = c.call({"type": "list_jobs", "id": "j"})["data"]["jobs"]
            return jobs[0]["runCount"] if jobs else -1

        before = wait_until(lambda: (lambda n: n if n >= 3 else None)(run_count(a)), message="three runs")
        self.assertEqual(b.stop(), 0)
        b.spawn()
        seen_on_a = []

        def b_connected():
            seen_on_a.append(run_count(a))
            with b.client() as c:
                return c.status()["broker"]["state"] == "connected"

        wait_until(b_connected, message="b started and connected")
        # b shows the shared count once it has read it; from then on neither daemon shows it going
        # back, and a never did while b started.
        wait_until(lambda: run_count(b) >= before, message="b showing the shared count")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            seen_on_a.append(run_count(a))
            self.assertGreaterEqual(run_count(b), before)
            time.sleep(0.05)
        self.assertGreaterEqual(min(seen_on_a), before, seen_on_a)


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
        sub_b.assert_silent(0.3)

        self.redis.start()
        for c in (ca, cb):
            wait_until(lambda: c.status()["broker"]["state"] == "connected", message="broker back")
        self.assertGreaterEqual(ca.status()["broker"]["reconnects"], 1)
        ca.publish("x", "after")
        self.assertEqual(sub_b.next_message()["message"], "after")
        self.assertTrue(cb.call({"type": "lock", "id": "l2", "sessionId": "s", "lockName": "n"})["success"])
        for d in (a, b):
            self.assertIsNone(d.proc.poll())
        with open(a.log_path) as f:
            log = f.read()
        self.assertIn("unreachable", log)
        self.assertIn("connected to redis", log)


class JobsWhileRedisIsAway(BrokerTest):
    def test_no_fire_while_down_and_jobs_survive_a_redis_that_lost_its_data(self):
        state = self.make_dir()
        daemons = []
        for who in ("a", "b"):
            photon_dir = self.make_dir()
            manifest = os.path.join(photon_dir, "photon.toml")
            with open(manifest, "w") as f:
                f.write(MANIFEST.replace("@STATE@", state).replace("@WHO@", who))
            daemons.append(self.connected(self.host("jd", args=["--manifest", manifest], photon_dir=photon_dir)))
        a, b = (self.client(d) for d in daemons)
        self.assertTrue(a.call({"type": "schedule", "id": "s", "jobId": "tick", "method": "tick",
                                "cron": "* * * * * *"})["success"])
        ticks = os.path.join(state, "ticks")

        def count():
            try:
                with open(ticks) as f:
                    return len(f.read().split())
            except FileNotFoundError:
                return 0

        wait_until(lambda: count() >= 2, message="the job firing")
        self.redis.stop()
        for c in (a, b):
            wait_until(lambda: c.status()["broker"]["state"] != "connected", message="broker down")
        time.sleep(1.2)  # a run started just before may still end
        before = count()
        time.sleep(2.5)
        self.assertEqual(count(), before, "no slot runs while no claim can be made")

        # Redis comes back empty (no persistence): the daemons write their jobs back.
        self.redis.start()
        for c in (a, b):
            wait_until(lambda: c.status()["broker"]["state"] == "connected", message="broker back")
            self.assertEqual([j["id"] for j in c.call({"type": "list_jobs", "id": "j"})["data"]["jobs"]], ["tick"])
        start = count()
        time.sleep(3.5)
        self.assertGreaterEqual(count() - start, 2, "firing again")
        self.assertLessEqual(count() - start, 5, "once per slot")
        for d in daemons:
            self.assertIsNone(d.proc.poll())


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
        self.assertIn("broker       redis://u:***@127.0.0.1:1/2 down", shown.stdout)
        self.assertNotIn("hunter2", shown.stdout)


if __name__ == "__main__":
    unittest.main()
