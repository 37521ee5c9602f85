# photonctl call / methods against a real photond serving an exec photon: argument typing, prompts
# answered by --answer or declined, progress on stderr, the methods table, exit codes.
import json
import os
import pty
import select
import time
import unittest

from harness import PHOTONCTL, TIMEOUT, BlackboxTest, ctl, daemon_env

# `ask` asks each prompt of its args in turn and returns the answers; `progress` emits two steps.
MANIFEST = r"""
description = "photonctl call test photon"

[methods.echo]
description = "Returns its args"
command = "cat"

[[methods.echo.params]]
name = "x"
type = "number"

[[methods.echo.params]]
name = "note"
type = "string"
required = false

[methods.greet]
description = "Says hello"
command = "printf 'hello, world'"

[methods.session]
command = '''printf '"%s"' "$PHOTON_SESSION_ID"'''

[methods.progress]
command = "python3 progress.py"

[methods.ask]
description = "Asks its prompts"
command = "python3 ask.py"
interactive = true

[methods.fail]
command = '''echo '{"error":"the board is locked"}' '''

[methods.echoany]
description = "Returns its args, whatever they are (no declared parameters: not checked)"
command = "cat"
"""

PROGRESS = """
import json, sys
sys.stdin.readline()
print(json.dumps({"emit": {"message": "copying", "percent": 50}}), flush=True)
print(json.dumps({"emit": {"step": 2}}), flush=True)
print(json.dumps({"result": "copied"}), flush=True)
"""

ASK = """
import json, sys
args = json.loads(sys.stdin.readline())
answers = []
for prompt in args.get("prompts", []):
    print(json.dumps({"prompt": prompt}), flush=True)
    answers.append(json.loads(sys.stdin.readline()))
print(json.dumps({"result": answers}), flush=True)
"""

CONFIRM = {"type": "confirm", "message": "Delete task 1?", "default": False}
TEXT = {"type": "text", "message": "Your name?"}
SELECT = {"type": "select", "message": "Column?", "options": ["todo", {"value": "done", "label": "Done"}]}


class CallCtlTest(BlackboxTest):
    def setUp(self):
        self.dir = self.make_dir()
        for name, text in (("photon.toml", MANIFEST), ("progress.py", PROGRESS), ("ask.py", ASK)):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        self.d = self.daemon(name="kanban", photon_dir=self.dir,
                             args=["--manifest", os.path.join(self.dir, "photon.toml")])
        # Calls without --session must not pick up a session from the environment running the tests.
        saved = os.environ.pop("PHOTON_SESSION_ID", None)
        if saved is not None:
            self.addCleanup(os.environ.__setitem__, "PHOTON_SESSION_ID", saved)

    def ctl(self, *args, env=None):
        return ctl(self.dir, *args, env=env)

    def call(self, *args, env=None):
        """Runs `photonctl call kanban ARGS...`, which must succeed; returns the CompletedProcess."""
        r = self.ctl("call", "kanban", *args, env=env)
        self.assertEqual(r.returncode, 0, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        return r

    def ask(self, prompts, *args):
        return self.call("ask", "--args", json.dumps({"prompts": prompts}), *args)

    def test_key_value_pairs_are_typed(self):
        r = self.call("echoany", "x=1", "column=Done", "done=true", "none=null", 'tags=["a",2]',
                      'opts={"k":1}', 'quoted="1"', "empty=", "expr=a=b", "neg=-2.5")
        self.assertEqual(json.loads(r.stdout), {
            "x": 1, "column": "Done", "done": True, "none": None, "tags": ["a", 2],
            "opts": {"k": 1}, "quoted": "1", "empty": "", "expr": "a=b", "neg": -2.5})

    def test_args_json_is_merged_under_the_pairs(self):
        r = self.call("echoany", "--args", '{"x":1,"column":"Todo","keep":[true]}', "column=Done")
        self.assertEqual(json.loads(r.stdout), {"x": 1, "column": "Done", "keep": [True]})

    def test_result_printing(self):
        pretty = self.call("echoany", "x=1", "y=[2]")
        self.assertEqual(pretty.stdout, '{\n  "x": 1,\n  "y": [\n    2\n  ]\n}\n')
        compact = self.call("echoany", "x=1", "y=[2]", "--json")
        self.assertEqual(compact.stdout, '{"x":1,"y":[2]}\n')
        self.assertEqual(self.call("greet").stdout, "hello, world\n")
        self.assertEqual(self.call("greet", "--json").stdout, '"hello, world"\n')

    def test_progress_goes_to_stderr(self):
        r = self.call("progress")
        self.assertEqual(r.stdout, "copied\n")
        self.assertEqual(r.stderr.splitlines(), ["… 50% copying", '… {"step":2}'])

    def test_answers_for_confirm_and_text(self):
        r = self.ask([CONFIRM, TEXT, CONFIRM, TEXT], "--answer", "y", "--answer", "Alice",
                     "--answer", "no", "--answer", "42", "--json")
        self.assertEqual(json.loads(r.stdout), [True, "Alice", False, 42])
        self.assertIn("Delete task 1?", r.stderr)
        self.assertIn("Your name?", r.stderr)

    def test_answer_for_select_by_value_label_or_number(self):
        r = self.ask([SELECT, SELECT, SELECT], "--answer", "todo", "--answer", "Done", "--answer", "1",
                     "--json")
        self.assertEqual(json.loads(r.stdout), ["todo", "done", "todo"])

    def test_prompts_without_answers_are_declined(self):
        r = self.ask([CONFIRM, TEXT], "--answer", "yes", "--json")
        self.assertEqual(json.loads(r.stdout), [True, None])
        declined = [line for line in r.stderr.splitlines() if "declined" in line]
        self.assertEqual(len(declined), 1, r.stderr)
        self.assertIn("Your name?", declined[0])

    def test_session(self):
        self.assertEqual(self.call("session").stdout, "default\n")
        self.assertEqual(self.call("session", "--session", "board-7").stdout, "board-7\n")
        self.assertEqual(self.call("session", env={"PHOTON_SESSION_ID": "agent-3"}).stdout, "agent-3\n")

    def test_methods_table(self):
        r = self.ctl("methods", "kanban")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [line.split() for line in r.stdout.splitlines()]
        self.assertEqual(rows[0], ["METHOD", "PARAMETERS", "DESCRIPTION"])
        self.assertEqual(rows[1], ["echo", "x", "[note]", "Returns", "its", "args"])
        self.assertEqual([row[0] for row in rows[1:]], ["echo", "greet", "session", "progress", "ask", "fail", "echoany"])

    def test_methods_json(self):
        r = self.ctl("methods", "kanban", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout)
        self.assertEqual(got["photon"], "kanban")
        self.assertEqual(got["methods"][0], {
            "name": "echo", "description": "Returns its args",
            "params": [{"name": "x", "type": "number", "description": "", "required": True},
                       {"name": "note", "type": "string", "description": "", "required": False}]})

    def test_unknown_method_exits_1_naming_the_available_ones(self):
        r = self.ctl("call", "kanban", "nope")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertTrue(r.stderr.startswith('photonctl: unknown method "nope"; available: echo, greet'),
                        r.stderr)

    def test_arguments_are_checked_against_the_declared_parameters(self):
        listed = "parameters: x (number), [note] (string)"
        for args, problem in ((["x=1", "colum=Done"], 'unknown parameter "colum"'),
                              (["x=abc"], 'parameter "x" must be a number, not a string'),
                              (["x=1", "note=[1]"], 'parameter "note" must be a string, not an array'),
                              (["note=hi"], 'missing required parameter "x"')):
            with self.subTest(args=args):
                r = self.ctl("call", "kanban", "echo", *args)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertEqual(r.stderr, f'photonctl: method "echo": {problem}; {listed}\n')
        # What fits runs; null counts as absent.
        self.assertEqual(json.loads(self.call("echo", "x=1", "note=null").stdout), {"x": 1, "note": None})

    def test_arguments_are_checked_for_every_client(self):
        # The daemon checks, so a client on the raw socket gets the same refusal, and nothing runs.
        with self.client(self.d) as c:
            reply = c.call({"type": "command", "id": "c", "method": "echo", "args": {"x": "1"}})
            self.assertEqual(reply, {"type": "error", "id": "c", "error":
                                     'method "echo": parameter "x" must be a number, not a string; '
                                     "parameters: x (number), [note] (string)"})
            reply = c.call({"type": "schedule", "id": "s", "jobId": "j", "method": "echo",
                            "cron": "0 3 * * *", "args": {"y": 1}})
            self.assertFalse(reply["data"]["scheduled"], reply)
            self.assertIn('unknown parameter "y"', reply["data"]["reason"])

    def test_answer_for_select_must_be_an_option(self):
        r = self.ctl("call", "kanban", "ask", "--args", json.dumps({"prompts": [SELECT]}), "--answer", "later")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn('photonctl: --answer "later" is not an option of "Column?"; choose a value, label or '
                      "number: 1) todo, 2) done (Done)", r.stderr)

    def test_failed_method_exits_1(self):
        r = self.ctl("call", "kanban", "fail")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "photonctl: the board is locked\n")

    def test_usage_errors_exit_2(self):
        for args in (["echo", "novalue"], ["echo", "=1"], ["echo", "--args", "[1]"],
                     ["echo", "--args", "{"], ["echo", "--timeout", "soon"], []):
            with self.subTest(args=args):
                r = self.ctl("call", "kanban", *args)
                self.assertEqual(r.returncode, 2, f"stdout={r.stdout!r} stderr={r.stderr!r}")

    def test_prompts_on_a_terminal(self):
        """With stdin a terminal, prompts are asked there: a default taken with Enter, an invalid
        confirm answer asked again, a password read without echo."""
        prompts = [{"type": "text", "message": "Board?", "default": "main"}, CONFIRM,
                   {"type": "password", "message": "Token?"}]
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execve(PHOTONCTL, [PHOTONCTL, "call", "kanban", "ask", "--json", "--args",
                                      json.dumps({"prompts": prompts})], daemon_env(self.dir))
            finally:
                os._exit(127)
        self.addCleanup(os.close, fd)
        seen = bytearray()  # output not yet matched
        transcript = bytearray()

        def expect(text):
            deadline = time.monotonic() + TIMEOUT
            while text.encode() not in seen:
                remaining = deadline - time.monotonic()
                self.assertGreater(remaining, 0, f"no {text!r} in {bytes(seen)!r}")
                if select.select([fd], [], [], remaining)[0]:
                    try:
                        chunk = os.read(fd, 4096)
                    except OSError:  # EIO: photonctl has exited
                        chunk = b""
                    self.assertTrue(chunk, f"photonctl ended before {text!r}: {bytes(seen)!r}")
                    seen.extend(chunk)
                    transcript.extend(chunk)
            del seen[:seen.index(text.encode()) + len(text)]

        expect("Board? [main]: ")
        os.write(fd, b"\n")
        expect("Delete task 1? [y/N] ")
        os.write(fd, b"perhaps\n")
        expect("please answer y or n")
        expect("Delete task 1? [y/N] ")
        os.write(fd, b"y\n")
        expect("Token?: ")
        os.write(fd, b"s3cret\n")
        expect('["main",true,"s3cret"]')
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        # The password appears only in the result, never echoed as typed.
        self.assertEqual(transcript.count(b"s3cret"), 1, bytes(transcript))

    def test_help(self):
        for command in ("call", "methods"):
            with self.subTest(command=command):
                r = self.ctl(command, "--help")
                self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("taskId=1 is the number 1", self.ctl("call", "--help").stdout)

    def test_not_running_exits_3(self):
        for args in (["call", "other", "echo"], ["methods", "other"]):
            with self.subTest(args=args):
                self.assertEqual(self.ctl(*args).returncode, 3)


if __name__ == "__main__":
    unittest.main()
