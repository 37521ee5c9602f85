# photonctl against a real photond: pub/sub between two photonctl processes, start/stop/status, exit codes.
import json
import os
import socket
import unittest

from harness import (TIMEOUT, BlackboxTest, Client, ctl, kill_from_pid_file, try_ping,
                     subscriber_counts, wait_until)

COMMANDS = ["start", "stop", "status", "ping", "pub", "sub"]


def find_daemon_entry(obj, name):
    """Finds, anywhere in status --json output, the object describing daemon `name` (has name and pid)."""
    if isinstance(obj, dict):
        if obj.get("name") == name and isinstance(obj.get("pid"), int):
            return obj
        values = obj.values()
    elif isinstance(obj, list):
        values = obj
    else:
        return None
    for value in values:
        found = find_daemon_entry(value, name)
        if found is not None:
            return found
    return None


class CtlTest(BlackboxTest):
    def ctl(self, photon_dir, *args, input=None):
        return ctl(photon_dir, *args, input=input)

    def sub_process(self, photon_dir, *args):
        return self.spawn_photonctl(photon_dir, "sub", *args)

    def wait_subscribers(self, watcher, channel, count):
        wait_until(lambda: (channel, count) in subscriber_counts(watcher.status()),
                   message=f"{count} subscriber(s) on {channel}")

    def assert_ok(self, r):
        self.assertEqual(r.returncode, 0, f"stdout={r.stdout!r} stderr={r.stderr!r}")


class PubSubTest(CtlTest):
    def setUp(self):
        self.d = self.daemon(name="kanban")
        self.dir = self.d.photon_dir
        self.watch = self.client(self.d)

    def test_pub_reaches_sub(self):
        sub = self.sub_process(self.dir, "kanban", "board:*", "--count", "1", "--timeout", "30s")
        self.wait_subscribers(self.watch, "board:*", 1)
        r = self.ctl(self.dir, "pub", "kanban", "board:x", '{"event":"task-moved","taskId":"123"}')
        self.assert_ok(r)
        out, err = sub.communicate(timeout=TIMEOUT * 2)
        self.assertEqual(sub.returncode, 0, err)
        lines = out.splitlines()
        self.assertEqual(len(lines), 1, out)
        got = json.loads(lines[0])
        self.assertEqual(set(got), {"id", "channel", "message"})
        self.assertTrue(got["id"].startswith("ch_"))
        self.assertEqual(got["channel"], "board:x")
        self.assertEqual(got["message"], {"event": "task-moved", "taskId": "123"})

    def test_sub_several_channels_in_order(self):
        sub = self.sub_process(self.dir, "kanban", "a", "b", "--count", "5", "--timeout", "30s")
        self.wait_subscribers(self.watch, "a", 1)
        self.wait_subscribers(self.watch, "b", 1)
        for i in range(5):
            self.watch.publish("a" if i % 2 else "b", {"i": i})
        out, err = sub.communicate(timeout=TIMEOUT * 2)
        self.assertEqual(sub.returncode, 0, err)
        got = [json.loads(line) for line in out.splitlines()]
        self.assertEqual([g["message"]["i"] for g in got], list(range(5)))
        self.assertEqual([g["channel"] for g in got], ["b", "a", "b", "a", "b"])

    def test_pub_reads_json_from_stdin(self):
        sub = self.hold(self.d.client())
        sub.subscribe("in")
        r = self.ctl(self.dir, "pub", "kanban", "in", input='{"from":"stdin","n":[1,2]}\n')
        self.assert_ok(r)
        self.assertEqual(sub.next_message()["message"], {"from": "stdin", "n": [1, 2]})

    def test_pub_scalar_json(self):
        sub = self.hold(self.d.client())
        sub.subscribe("s")
        self.assert_ok(self.ctl(self.dir, "pub", "kanban", "s", "42"))
        self.assert_ok(self.ctl(self.dir, "pub", "kanban", "s", '"text"'))
        self.assertEqual(sub.next_message()["message"], 42)
        self.assertEqual(sub.next_message()["message"], "text")

    def test_pub_invalid_json_fails_without_publishing(self):
        sub = self.hold(self.d.client())
        sub.subscribe("bad")
        r = self.ctl(self.dir, "pub", "kanban", "bad", "{not json")
        self.assertIn(r.returncode, (1, 2), r.stderr)
        self.assertTrue(r.stderr.strip())
        self.watch.publish("bad", "sentinel")
        self.assertEqual(sub.next_message()["message"], "sentinel")

    def test_pub_refused_by_daemon_exits_1(self):
        r = self.ctl(self.dir, "pub", "kanban", "board:*", "{}")  # wildcard publish is invalid
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertTrue(r.stderr.strip())

    def test_sub_timeout_before_count_exits_1(self):
        r = self.ctl(self.dir, "sub", "kanban", "quiet", "--count", "1", "--timeout", "200ms")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout.strip(), "")

    def test_ping(self):
        r = self.ctl(self.dir, "ping", "kanban")
        self.assert_ok(r)

    def test_status_json_of_one_daemon(self):
        r = self.ctl(self.dir, "status", "kanban", "--json")
        self.assert_ok(r)
        entry = find_daemon_entry(json.loads(r.stdout), "kanban")
        self.assertIsNotNone(entry, r.stdout)
        self.assertEqual(entry["pid"], self.d.pid)

    def test_status_without_name_lists_every_daemon(self):
        other = self.daemon(name="other", photon_dir=self.dir)
        r = self.ctl(self.dir, "status", "--json")
        self.assert_ok(r)
        doc = json.loads(r.stdout)
        self.assertEqual(find_daemon_entry(doc, "kanban")["pid"], self.d.pid)
        self.assertEqual(find_daemon_entry(doc, "other")["pid"], other.pid)

    def test_status_table_without_json(self):
        r = self.ctl(self.dir, "status", "kanban")
        self.assert_ok(r)
        self.assertIn("kanban", r.stdout)


class NotRunningTest(CtlTest):
    def setUp(self):
        self.dir = self.make_dir()

    def test_commands_exit_3_when_not_running(self):
        for args in (["ping", "ghost"], ["pub", "ghost", "c", "{}"], ["sub", "ghost", "c", "--timeout", "1s"],
                     ["status", "ghost"], ["stop", "ghost"]):
            with self.subTest(args=args):
                r = self.ctl(self.dir, *args)
                self.assertEqual(r.returncode, 3, f"stdout={r.stdout!r} stderr={r.stderr!r}")

    def test_stale_socket_is_not_running(self):
        os.makedirs(os.path.join(self.dir, "daemons"), mode=0o700)
        s = socket.socket(socket.AF_UNIX)
        s.bind(os.path.join(self.dir, "daemons", "ghost.sock"))
        s.close()  # bound, never listening: a dead daemon's socket
        r = self.ctl(self.dir, "ping", "ghost")
        self.assertEqual(r.returncode, 3, r.stderr)


class UsageTest(CtlTest):
    def test_help_on_every_command(self):
        d = self.make_dir()
        for args in [["--help"]] + [[c, "--help"] for c in COMMANDS]:
            with self.subTest(args=args):
                r = self.ctl(d, *args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertTrue(r.stdout.strip())

    def test_usage_errors_exit_2(self):
        d = self.make_dir()
        for args in (["frobnicate"], ["pub"], ["pub", "kanban"], ["sub", "kanban"], ["ping"],
                     ["ping", "bad/name"], ["sub", "kanban", "c", "--count", "many"]):
            with self.subTest(args=args):
                r = self.ctl(d, *args)
                self.assertEqual(r.returncode, 2, f"stdout={r.stdout!r} stderr={r.stderr!r}")


class StartStopTest(CtlTest):
    def test_start_status_stop(self):
        d = self.make_dir()
        sock = os.path.join(d, "daemons", "svc.sock")
        pid_path = os.path.join(d, "daemons", "svc.pid")
        self.addCleanup(kill_from_pid_file, pid_path)
        r = self.ctl(d, "start", "svc")
        self.assert_ok(r)
        self.assertTrue(try_ping(sock, timeout=TIMEOUT), "answers as soon as start returns")
        self.assert_ok(self.ctl(d, "ping", "svc"))
        r = self.ctl(d, "status", "svc", "--json")
        self.assert_ok(r)
        entry = find_daemon_entry(json.loads(r.stdout), "svc")
        self.assertIsNotNone(entry, r.stdout)
        with open(pid_path) as f:
            self.assertEqual(entry["pid"], int(f.read().strip()))
        r = self.ctl(d, "stop", "svc")
        self.assert_ok(r)
        wait_until(lambda: not os.path.exists(sock) and not os.path.exists(pid_path),
                   message="socket and pid file removed after stop")
        self.assertEqual(self.ctl(d, "ping", "svc").returncode, 3)

    def test_started_daemon_serves_pub_sub(self):
        d = self.make_dir()
        self.addCleanup(kill_from_pid_file, os.path.join(d, "daemons", "k.pid"))
        self.assert_ok(self.ctl(d, "start", "k"))
        sub = self.sub_process(d, "k", "c", "--count", "1", "--timeout", "30s")
        watch = self.hold(Client(os.path.join(d, "daemons", "k.sock")))
        self.wait_subscribers(watch, "c", 1)
        self.assert_ok(self.ctl(d, "pub", "k", "c", '{"ok":true}'))
        out, err = sub.communicate(timeout=TIMEOUT * 2)
        self.assertEqual(sub.returncode, 0, err)
        self.assertEqual(json.loads(out.splitlines()[0])["message"], {"ok": True})
        watch.close()
        self.assert_ok(self.ctl(d, "stop", "k"))


if __name__ == "__main__":
    unittest.main()
