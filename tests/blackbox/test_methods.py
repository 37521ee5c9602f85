"""Method hosting through the real socket, with a C++ photon: the kanban example's own daemon.
Commands run beside everything else, emits reach subscribers and not the caller, prompts are per
command, sessions are isolated and expire, and a caller that leaves mid-prompt leaks nothing.

Prompt timeouts and session expiry run on the daemon's test clock. The methods themselves (the
report's progress) run on real time in the photon's threads: those tests wait for events (a reply,
a count in status) and bound no duration; so does the one test of the session timer itself."""
import os
import signal
import unittest

from harness import KANBAN, BlackboxTest, assert_nothing_before_pong, wait_until


def command(ident, method, args=None, session=None):
    request = {"type": "command", "id": ident, "method": method, "args": args or {}}
    if session is not None:
        request["sessionId"] = session
    return request


class KanbanTest(BlackboxTest):
    def kanban(self, *args, test_clock=None):
        return self.daemon("kanban", args=["--log-level", "warn", *args], program=[KANBAN], test_clock=test_clock)

    def add_task(self, client, title):
        reply = client.call(command("add-" + title, "addTask", {"title": title}))
        self.assertTrue(reply["success"], reply)
        return reply["data"]["id"]

    def test_a_long_method_delays_no_ping(self):
        # A report of 60 s outlasts the test by far: every ping below is answered while it runs, as
        # status shows after them; then a shutdown ends it.
        d = self.kanban()
        with d.client() as caller, d.client() as other, d.client() as observer:
            caller.send(command("slow", "report", {"seconds": 60}))
            # The caller's own connection is served too: its ping overtakes its command.
            caller.send({"type": "ping", "id": "mine"})
            self.assertEqual(caller.read_json(), {"type": "pong", "id": "mine"}, "the caller's ping waited")
            for i in range(100):
                self.assertEqual(other.call({"type": "ping", "id": f"p{i}"}), {"type": "pong", "id": f"p{i}"})
            self.assertEqual(observer.status()["methods"]["running"], 1, "the pings waited for the method")
            d.signal(signal.SIGTERM)
            reply = caller.read_json()
            while reply["type"] == "emit":
                reply = caller.read_json()
            self.assertEqual(reply, {"type": "error", "id": "slow", "error": "report cancelled"})
            self.assertEqual(d.wait(), 0)

    def test_progress_emits_reach_the_caller_before_the_result(self):
        d = self.kanban()
        with d.client() as caller:
            caller.send(command("quick", "report", {"seconds": 0}))
            lines = []
            while not lines or lines[-1].get("type") != "result":
                lines.append(caller.read_json())
            progress = [line["emitData"]["percent"] for line in lines if line["type"] == "emit"]
            self.assertEqual(progress, [25, 50, 75, 100])
            self.assertEqual([line["type"] for line in lines], ["emit"] * 4 + ["result"], lines)
            self.assertEqual((lines[-1]["id"], lines[-1]["data"]["seconds"]), ("quick", 0))

    def test_a_channel_emit_reaches_subscribers_but_not_the_caller(self):
        d = self.kanban()
        with d.client() as caller, d.client() as watcher, d.client() as exact:
            caller.subscribe("board:*")
            watcher.subscribe("board:*")
            exact.subscribe("board:main")
            reply = caller.call(command("m", "moveTask", {"taskId": 1, "column": "Done"}))
            self.assertEqual(reply["type"], "result", reply)
            self.assertEqual(reply["data"]["task"]["column"], "Done")
            for client in (watcher, exact):
                message = client.next_message()
                self.assertEqual(message["channel"], "board:main")
                self.assertEqual(message["message"], {"channel": "board:main", "event": "task-moved",
                                                      "data": {"taskId": 1, "from": "Todo", "column": "Done"}})
            assert_nothing_before_pong(caller, what="no channel message for the caller")

    def test_two_commands_prompting_at_once_each_get_their_answer(self):
        d = self.kanban()
        with d.client() as client:
            first = self.add_task(client, "one")
            second = self.add_task(client, "two")
            # Two sessions: calls of one session take turns, so two prompts at once need two.
            client.send(command("d1", "deleteTask", {"taskId": first}, "s1"))
            client.send(command("d2", "deleteTask", {"taskId": second}, "s2"))
            prompts = {}
            while len(prompts) < 2:
                line = client.read_json()
                self.assertEqual(line["type"], "prompt", line)
                prompts[line["id"]] = line["prompt"]
            self.assertEqual(prompts["d1"]["type"], "confirm")
            self.assertIn("(one)", prompts["d1"]["message"])
            self.assertIn("(two)", prompts["d2"]["message"])
            client.send({"type": "prompt_response", "id": "d2", "promptValue": True})
            self.assertEqual(client.read_json(), {"type": "result", "id": "d2", "success": True,
                                                  "data": {"deleted": True, "taskId": second}})
            client.send({"type": "prompt_response", "id": "d1", "promptValue": False})
            self.assertEqual(client.read_json()["data"], {"deleted": False, "taskId": first})
            titles = [t["title"] for t in client.call(command("l", "listTasks"))["data"]["tasks"]]
            self.assertIn("one", titles)
            self.assertNotIn("two", titles)

    def test_a_caller_that_leaves_mid_prompt_leaks_nothing(self):
        d = self.kanban()
        fds = lambda: len(os.listdir(f"/proc/{d.pid}/fd"))
        with d.client() as observer:
            task = self.add_task(observer, "keep me")
            baseline = fds()
            for i in range(20):
                with d.client() as caller:
                    caller.send(command(f"d{i}", "deleteTask", {"taskId": task}))
                    self.assertEqual(caller.read_json()["type"], "prompt")
            # The methods got no answer, so they finish without deleting, and nothing stays behind.
            wait_until(lambda: observer.status()["methods"]["running"] == 0, message="methods ended")
            self.assertEqual(observer.status()["connections"], 1)
            tasks = observer.call(command("l", "listTasks"))["data"]["tasks"]
            self.assertIn(task, [t["id"] for t in tasks])
            wait_until(lambda: fds() <= baseline, message=f"descriptors back to {baseline}")

    def test_an_unanswered_prompt_times_out_as_no_answer(self):
        d = self.kanban("--prompt-timeout", "300ms", test_clock=True)
        with d.client() as client, d.client() as observer:
            # 1 ms before the timeout the prompt is still open: its answer is the one the method gets.
            answered = self.add_task(client, "answered")
            client.send(command("a", "deleteTask", {"taskId": answered}))
            self.assertEqual(client.read_json()["type"], "prompt")
            d.advance(299)
            assert_nothing_before_pong(client, what="no reply before the prompt timed out")
            client.send({"type": "prompt_response", "id": "a", "promptValue": True})
            self.assertEqual(client.read_json()["data"], {"deleted": True, "taskId": answered})
            # At the timeout the method gets no answer, and does not delete.
            task = self.add_task(client, "maybe")
            client.send(command("d", "deleteTask", {"taskId": task}))
            self.assertEqual(client.read_json()["type"], "prompt")
            d.advance(299)
            self.assertEqual(observer.status()["methods"]["running"], 1)
            d.advance(1)
            reply = client.read_json()
            self.assertEqual(reply["data"], {"deleted": False, "taskId": task})
            self.assertIn(task, [t["id"] for t in observer.call(command("l", "listTasks"))["data"]["tasks"]])
            # A late answer is dropped silently; a stray one is an error.
            client.send({"type": "prompt_response", "id": "d", "promptValue": True})
            self.assertEqual(client.read_json()["type"], "error")

    def test_sessions_are_isolated(self):
        d = self.kanban()  # sessions last 10 minutes: none expires during the test
        with d.client() as client:
            self.assertEqual(client.call(command("u", "useBoard", {"board": "ops"}, "alice"))["data"], {"board": "ops"})
            self.assertEqual(client.call(command("a", "currentBoard", {}, "alice"))["data"], {"board": "ops"})
            self.assertEqual(client.call(command("b", "currentBoard", {}, "bob"))["data"], {"board": "main"})
            self.assertEqual(client.call(command("n", "currentBoard"))["data"], {"board": "main"})
        with d.client() as again:
            # Another connection, same session: same instance.
            self.assertEqual(again.call(command("a2", "currentBoard", {}, "alice"))["data"], {"board": "ops"})
            self.assertEqual(again.status()["methods"]["sessions"], 3)

    def test_a_session_ends_exactly_when_it_has_been_idle_for_the_session_timeout(self):
        d = self.kanban("--session-timeout", "10m", test_clock=True)
        with d.client() as client:
            self.assertEqual(client.call(command("u", "useBoard", {"board": "ops"}, "alice"))["data"], {"board": "ops"})
            d.advance(10 * 60 * 1000 - 1)
            self.assertEqual(client.status()["methods"]["sessions"], 1)
            # A call restarts the count.
            self.assertEqual(client.call(command("a", "currentBoard", {}, "alice"))["data"], {"board": "ops"})
            d.advance(10 * 60 * 1000 - 1)
            self.assertEqual(client.status()["methods"]["sessions"], 1)
            d.advance(1)
            self.assertEqual(client.status()["methods"]["sessions"], 0)
            self.assertEqual(client.call(command("a2", "currentBoard", {}, "alice"))["data"], {"board": "main"})

    def test_sessions_expire_on_the_session_timer(self):
        # The photon's own timer (real time, no test clock): the test waits for the count to drop,
        # then finds a fresh instance.
        d = self.kanban("--session-timeout", "200ms")
        with d.client() as client:
            self.assertEqual(client.call(command("u", "useBoard", {"board": "ops"}, "alice"))["data"], {"board": "ops"})
            wait_until(lambda: client.status()["methods"]["sessions"] == 0, message="sessions expired")
            self.assertEqual(client.call(command("a3", "currentBoard", {}, "alice"))["data"], {"board": "main"})

    def test_errors_are_clear(self):
        d = self.kanban()
        with d.client() as client:
            reply = client.call(command("x", "moveTsk"))
            self.assertEqual(reply["type"], "error")
            self.assertTrue(reply["error"].startswith('unknown method "moveTsk"; available: listTasks, addTask, moveTask'),
                            reply)
            reply = client.call(command("y", "moveTask", {"taskId": 999, "column": "Done"}))
            self.assertEqual(reply, {"type": "error", "id": "y", "error": "no task 999"})
            reply = client.call({"type": "command", "id": "z", "method": "moveTask", "args": "taskId=1"})
            self.assertEqual(reply["error"], '"args" must be a JSON object')
            methods = client.call({"type": "list_methods", "id": "m"})["data"]
            self.assertEqual(methods["photon"], "kanban")
            move = next(m for m in methods["methods"] if m["name"] == "moveTask")
            self.assertEqual([p["name"] for p in move["params"]], ["taskId", "column"])

    def test_shutdown_stops_running_methods_and_their_callers_hear_it(self):
        d = self.kanban()
        with d.client() as client:
            # 60 s: a report that was not cancelled would outlast the read's deadline.
            client.send(command("slow", "report", {"seconds": 60}))
            client.send({"type": "ping", "id": "p"})
            self.assertEqual(client.read_json(), {"type": "pong", "id": "p"})
            self.assertEqual(client.status()["methods"]["running"], 1)
            d.signal(signal.SIGTERM)
            reply = client.read_json()
            while reply["type"] == "emit":
                reply = client.read_json()
            self.assertEqual(reply, {"type": "error", "id": "slow", "error": "report cancelled"})
            self.assertEqual(d.wait(), 0)


if __name__ == "__main__":
    unittest.main()
