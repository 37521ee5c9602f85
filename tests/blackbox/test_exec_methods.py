"""Method hosting through the real socket, with an exec photon: `photond serve NAME --manifest`.
Scripts run beside everything else, their emits reach subscribers and not the caller, prompts are
per command, timeouts kill the whole process group, output is bounded, and nothing is left behind
(no zombie, no descriptor) when a caller leaves.

A script's timeout and kill grace are real timers of the daemon's (not the test clock): those tests
wait for the reply and the processes' end, and bound no duration."""
import os
import textwrap
import unittest

from harness import TIMEOUT, BlackboxTest, pid_alive, wait_until

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE_MANIFEST = os.path.join(_REPO, "examples", "scripts", "photon.toml")

MANIFEST = """
[methods.slow]
command = "while [ ! -e \\"$STATE/go\\" ]; do sleep 0.05; done; echo '{\\"went\\": true}'"
env = { STATE = "@STATE@" }

[methods.ask]
command = "read args; echo '{\\"prompt\\":{\\"type\\":\\"text\\",\\"message\\":\\"Name?\\"}}'; read answer; echo \\"{\\\\\\"result\\\\\\":$answer}\\""
interactive = true

[methods.hang]
command = "echo $$ > \\"$STATE/hang.pid\\"; sleep 100 & echo $! > \\"$STATE/grandchild.pid\\"; sleep 100"
timeout = "300ms"
env = { STATE = "@STATE@" }

[methods.flood]
command = "head -c 50000000 /dev/zero | tr '\\\\0' x"

[methods.garbage]
command = "printf '{\\"emit\\": 3}\\\\n{not json\\\\n{\\"result\\":1,\\"extra\\":2}\\\\n'"

[methods.count]
command = "f=\\"$STATE/count-$PHOTON_SESSION_ID\\"; n=$(( $(cat \\"$f\\" 2>/dev/null || echo 0) + 1 )); echo $n > \\"$f\\"; echo $n"
env = { STATE = "@STATE@" }

[methods.fail]
command = "echo 'the disk is full' >&2; exit 3"
"""


def command(ident, method, args=None, session=None):
    request = {"type": "command", "id": ident, "method": method, "args": args or {}}
    if session is not None:
        request["sessionId"] = session
    return request


def zombie_children(pid):
    """Pids of `pid`'s children that are zombies."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            found.append(int(entry))
    return found


class ExecMethodsTest(BlackboxTest):
    def serve(self, *args):
        photon_dir = self.make_dir()
        self.state = os.path.join(photon_dir, "state")
        os.mkdir(self.state)
        manifest = os.path.join(photon_dir, "photon.toml")
        with open(manifest, "w") as f:
            f.write(MANIFEST.replace("@STATE@", self.state))
        return self.daemon("ex", args=["--manifest", manifest, "--log-level", "warn", *args],
                           photon_dir=photon_dir)

    def test_the_example_moves_a_task_for_every_watcher(self):
        d = self.daemon("scripts", args=["--manifest", EXAMPLE_MANIFEST, "--log-level", "warn"])
        with d.client() as caller, d.client() as watcher:
            caller.subscribe("board:*")
            watcher.subscribe("board:*")
            caller.send(command("m", "moveTask", {"taskId": 1, "column": "Done"}))
            lines = []
            while not lines or lines[-1]["type"] not in ("result", "error"):
                lines.append(caller.read_json())
            self.assertEqual(lines[-1]["type"], "result", lines)
            self.assertTrue(any(line["type"] == "emit" for line in lines[:-1]), "a progress emit")
            self.assertFalse(any(line["type"] == "channel_message" for line in lines), "not to the caller")
            message = watcher.next_message()
            self.assertEqual(message["channel"], "board:scripts")
            self.assertEqual(message["message"]["event"], "task-moved")
            self.assertEqual(message["message"]["data"]["column"], "Done")

    def test_a_slow_script_delays_no_ping(self):
        # The script runs until the test creates its "go" file: every ping is answered while it
        # cannot have finished, and status says it still runs after them.
        d = self.serve()
        with d.client() as caller, d.client() as other:
            caller.send(command("slow", "slow"))
            caller.ping("mine")  # its own connection is served too
            for i in range(100):
                other.ping(f"p{i}")
            self.assertEqual(other.status()["methods"]["running"], 1, "the pings waited for the script")
            open(os.path.join(self.state, "go"), "w").close()
            self.assertEqual(caller.read_json(timeout=TIMEOUT), {"type": "result", "id": "slow", "success": True,
                                                                 "data": {"went": True}})

    def test_two_scripts_prompting_at_once_each_get_their_answer(self):
        d = self.serve()
        with d.client() as client:
            client.send(command("a", "ask"))
            client.send(command("b", "ask"))
            prompted = set()
            while len(prompted) < 2:
                line = client.read_json()
                self.assertEqual(line["type"], "prompt", line)
                prompted.add(line["id"])
            client.send({"type": "prompt_response", "id": "b", "promptValue": "Bea"})
            client.send({"type": "prompt_response", "id": "a", "promptValue": "Ada"})
            results = {}
            while len(results) < 2:
                line = client.read_json()
                results[line["id"]] = line["data"]
            self.assertEqual(results, {"a": "Ada", "b": "Bea"})

    def test_a_caller_that_leaves_mid_prompt_leaves_no_zombie_or_descriptor(self):
        d = self.serve()
        def fds():
            listing = {}
            for fd in os.listdir(f"/proc/{d.pid}/fd"):
                try:
                    listing[fd] = os.readlink(f"/proc/{d.pid}/fd/{fd}")
                except FileNotFoundError:  # closed while listed
                    pass
            return listing

        with d.client() as observer:
            # A connect completes before the daemon accepts it: one round trip, so the observer's
            # own descriptor is in the baseline.
            observer.ping("accepted")
            baseline = fds()
            for i in range(10):
                with d.client() as caller:
                    caller.send(command(f"a{i}", "ask"))
                    self.assertEqual(caller.read_json()["type"], "prompt")
            # Each script got `null` for an answer and exited.
            wait_until(lambda: observer.status()["methods"]["running"] == 0, message="scripts ended")
            try:
                wait_until(lambda: len(fds()) <= len(baseline), message=f"descriptors back to {len(baseline)}")
            except AssertionError as error:
                now = fds()
                extra = {fd: target for fd, target in now.items() if baseline.get(fd) != target}
                raise AssertionError(f"{error}; still open beyond the baseline: {extra}") from None
            self.assertEqual(zombie_children(d.pid), [])

    def test_a_script_past_its_timeout_is_killed_with_its_group(self):
        d = self.serve()
        with d.client() as client:
            # The script sleeps 100 s: a timeout that did not fire would outlast the read's deadline.
            reply = client.call(command("h", "hang"))
            self.assertEqual(reply["type"], "error", reply)
            self.assertIn("timed out", reply["error"])
            for name in ("hang.pid", "grandchild.pid"):
                with open(os.path.join(self.state, name)) as f:
                    pid = int(f.read())
                wait_until(lambda: not pid_alive(pid), message=f"{name} gone")
            self.assertEqual(zombie_children(d.pid), [])
            client.ping()

    def test_huge_and_malformed_output(self):
        d = self.serve()
        with d.client() as client:
            reply = client.call(command("f", "flood"))
            self.assertEqual(reply["type"], "error", str(reply)[:200])
            self.assertIn("exceeded", reply["error"])
            with open(f"/proc/{d.pid}/status") as f:
                rss_kb = int(next(line for line in f if line.startswith("VmRSS")).split()[1])
            self.assertLess(rss_kb, 400_000, "a 50 MB flood must not be buffered")
            reply = client.call(command("g", "garbage"))
            self.assertEqual(reply["type"], "result", reply)
            self.assertEqual(reply["data"], '{"emit": 3}\n{not json\n{"result":1,"extra":2}')
            client.ping()

    def test_sessions_are_told_apart(self):
        d = self.serve()
        with d.client() as client:
            self.assertEqual(client.call(command("1", "count", session="alice"))["data"], 1)
            self.assertEqual(client.call(command("2", "count", session="alice"))["data"], 2)
            self.assertEqual(client.call(command("3", "count", session="bob"))["data"], 1)
            self.assertEqual(client.call(command("4", "count"))["data"], 1)
            self.assertTrue(os.path.exists(os.path.join(self.state, "count-default")))

    def test_a_failing_script_reports_its_stderr(self):
        d = self.serve()
        with d.client() as client:
            reply = client.call(command("x", "fail"))
            self.assertEqual(reply["type"], "error")
            self.assertIn("status 3", reply["error"])
            self.assertIn("the disk is full", reply["error"])

    def test_a_bad_manifest_stops_start_up_with_its_line(self):
        photon_dir = self.make_dir()
        manifest = os.path.join(photon_dir, "bad.toml")
        with open(manifest, "w") as f:
            f.write(textwrap.dedent("""\
                [methods.ok]
                command = "true"
                [methods.typo]
                comand = "true"
                """))
        d = self.daemon("bad", args=["--manifest", manifest], photon_dir=photon_dir, start=False,
                        check_exit=False)
        d.spawn()
        self.assertEqual(d.wait(), 2)
        self.assertIn("bad.toml:4", d.output())


if __name__ == "__main__":
    unittest.main()
