# The shell blocks of README.md and docs/*.md marked runnable, run in order against a fresh
# PHOTON_DIR with the binaries under test, so the documentation cannot drift from the program.
"""How a block is marked (an HTML comment on the line before its ```sh fence; invisible on GitHub):

  <!-- runnable -->                     run the block with `sh -eu`; it must exit 0
  <!-- runnable exit=75 -->            ... and exit with this status instead
  <!-- runnable expect="published to 1 subscriber" expect="..." -->
                                       ... and print each of these (stdout or stderr, in order)
  <!-- runnable background=NAME until="SHELL" -->
                                       start the block in the background; before the next block
                                       runs, poll SHELL until it exits 0 (e.g. until a subscriber
                                       is there). Still running at the end of the file: killed.
  <!-- output-of NAME -->              the next ``` block is what background block NAME prints:
                                       each of its lines must appear in NAME's output, in order
                                       (waited for, with the harness's deadline)

Every file runs in its own fresh PHOTON_DIR and working directory, in which `build/default` is the
build under test and `examples` the repository's, so `./build/default/photonctl` in a block runs
the binary being tested. Daemons the blocks start are stopped at the end (each pid file's process
gets SIGTERM, then SIGKILL at the deadline), and so are background blocks.
"""

import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

import harness

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.path.abspath(harness.PHOTOND))

MARK = re.compile(r"^<!--\s*(runnable|output-of)\b(.*?)-->\s*$")
ATTRIBUTE = re.compile(r'(\w+)(?:=(?:"((?:[^"\\]|\\.)*)"|(\S+)))?')
FENCE = re.compile(r"^```(\S*)\s*$")


def parse_attributes(text):
    """`exit=75 expect="a b" background=sub` -> [("exit","75"), ("expect","a b"), ...]."""
    pairs = []
    for match in ATTRIBUTE.finditer(text):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if value is not None and match.group(2) is not None:
            value = value.replace('\\"', '"')
        pairs.append((match.group(1), value))
    return pairs


def marked_blocks(path):
    """The marked blocks of a Markdown file, in order: (kind, attributes, code, line number)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks = []
    i = 0
    while i < len(lines):
        mark = MARK.match(lines[i].strip())
        if not mark:
            i += 1
            continue
        start = i + 1
        if start >= len(lines) or not FENCE.match(lines[start]):
            raise AssertionError(f"{path}:{i + 1}: a {mark.group(1)} mark must be followed by a ``` fence")
        end = start + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        blocks.append((mark.group(1), parse_attributes(mark.group(2)), "\n".join(lines[start + 1:end]), i + 1))
        i = end + 1
    return blocks


class DocRun:
    """One file's blocks in one fresh PHOTON_DIR and working directory."""

    def __init__(self, test, path):
        self.test = test
        self.path = path
        self.root = tempfile.mkdtemp(prefix="photon-docs-")
        self.photon_dir = os.path.join(self.root, "photon")
        self.work = os.path.join(self.root, "work")
        os.makedirs(os.path.join(self.work, "build"))
        os.symlink(BUILD, os.path.join(self.work, "build", "default"))
        os.symlink(os.path.join(REPO, "examples"), os.path.join(self.work, "examples"))
        self.env = dict(os.environ)
        for name in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "PHOTON_SESSION_ID", "PHOTON_UI_PORT",
                     "PHOTON_WEBHOOK_PORT", "PHOTON_WEBHOOK_SECRET", "PHOTON_CHANNEL_BROKER"):
            self.env.pop(name, None)
        self.env["PHOTON_DIR"] = self.photon_dir
        self.env["HOME"] = self.root
        self.env["XDG_CONFIG_HOME"] = os.path.join(self.root, "config")
        # Bare `photonctl` and `photond` in a block are the ones under test too.
        self.env["PATH"] = os.path.join(self.work, "build", "default") + os.pathsep + self.env.get("PATH", "")
        self.background = {}  # name -> (process, output file)
        self.groups = []  # process groups of the blocks, for what they left running

    def where(self, line):
        return f"{os.path.relpath(self.path, REPO)}:{line}"

    def run_block(self, attributes, code, line):
        expected_exit = 0
        expects = []
        background = None
        until = None
        for key, value in attributes:
            if key == "exit":
                expected_exit = int(value)
            elif key == "expect":
                expects.append(value)
            elif key == "background":
                background = value
            elif key == "until":
                until = value
            else:
                raise AssertionError(f"{self.where(line)}: unknown attribute {key}")
        if background:
            output = open(os.path.join(self.root, f"{background}.out"), "w+b")
            process = subprocess.Popen(["sh", "-eu", "-c", code], cwd=self.work, env=self.env,
                                       stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            self.background[background] = (process, output)
            if until:
                harness.wait_until(
                    lambda: subprocess.run(["sh", "-c", until], cwd=self.work, env=self.env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
                    or process.poll() is not None,
                    message=f"{self.where(line)}: {until}")
                if process.poll() is not None:
                    output.seek(0)
                    self.test.fail(f"{self.where(line)}: background block exited {process.returncode}:\n"
                                   f"{output.read().decode(errors='replace')}")
            return
        # Its own process group, so what it leaves in the background (`cmd &`) is stopped at the end.
        # Output to a file, not a pipe: a daemon the block leaves running must not hold it open.
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(["sh", "-eu", "-c", code], cwd=self.work, env=self.env,
                                       stdin=subprocess.DEVNULL, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            self.groups.append(process.pid)
            try:
                process.wait(timeout=harness.TIMEOUT * 3)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            output.seek(0)
            printed = output.read().decode(errors="replace")
        result = subprocess.CompletedProcess(process.args, process.returncode)
        self.test.assertEqual(result.returncode, expected_exit,
                              f"{self.where(line)}: exit {result.returncode}, expected {expected_exit}:\n"
                              f"{code}\n--- printed:\n{printed}")
        at = 0
        for expect in expects:
            found = printed.find(expect, at)
            self.test.assertGreaterEqual(found, 0, f"{self.where(line)}: expected {expect!r} in:\n{printed}")
            at = found + len(expect)

    def check_output(self, attributes, code, line):
        name = attributes[0][0] if attributes else None
        self.test.assertIn(name, self.background, f"{self.where(line)}: no background block {name!r}")
        process, output = self.background[name]
        wanted = [entry for entry in code.split("\n") if entry.strip()]

        def printed_in_order():
            output.seek(0)
            lines = output.read().decode(errors="replace").split("\n")
            at = 0
            for entry in wanted:
                while at < len(lines) and lines[at] != entry:
                    at += 1
                if at == len(lines):
                    return False
                at += 1
            return True

        try:
            harness.wait_until(printed_in_order, message=f"{self.where(line)}: output of {name}")
        except AssertionError:
            output.seek(0)
            self.test.fail(f"{self.where(line)}: {name} printed:\n{output.read().decode(errors='replace')}\n"
                           f"--- expected (in order):\n{code}")

    def clean_up(self):
        for process, output in self.background.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=harness.TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            output.close()
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        daemons = os.path.join(self.photon_dir, "daemons")
        pids = []
        for entry in os.listdir(daemons) if os.path.isdir(daemons) else []:
            if entry.endswith(".pid"):
                try:
                    with open(os.path.join(daemons, entry)) as f:
                        pid = int(f.read().strip() or 0)
                except (OSError, ValueError):
                    continue
                if pid > 0:
                    try:
                        os.kill(pid, signal.SIGTERM)
                        pids.append(pid)
                    except ProcessLookupError:
                        pass

        def gone(pid):
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return True

        for pid in pids:
            try:
                harness.wait_until(lambda: gone(pid), message=f"daemon {pid} to exit")
            except AssertionError:
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", self.root])

    def run(self):
        try:
            for kind, attributes, code, line in marked_blocks(self.path):
                if kind == "runnable":
                    self.run_block(attributes, code, line)
                else:
                    self.check_output(attributes, code, line)
        finally:
            self.clean_up()


def documents():
    files = [os.path.join(REPO, "README.md")]
    docs = os.path.join(REPO, "docs")
    files += sorted(os.path.join(docs, name) for name in os.listdir(docs) if name.endswith(".md"))
    return [path for path in files if marked_blocks(path)]


class RunnableDocsTest(unittest.TestCase):
    def test_readme_has_runnable_blocks(self):
        # The tour is the first thing a new user runs: it must stay covered.
        self.assertGreaterEqual(len(marked_blocks(os.path.join(REPO, "README.md"))), 10)

    def test_marks_are_well_formed(self):
        with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as f:
            f.write("<!-- runnable -->\nnot a fence\n")
        try:
            with self.assertRaises(AssertionError):
                marked_blocks(f.name)
        finally:
            os.unlink(f.name)

    def test_a_failing_block_fails(self):
        # The runner itself must catch drift: a block that exits 1, or misses its expected line.
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "bad.md")
            with open(path, "w") as f:
                f.write('<!-- runnable expect="pong" -->\n```sh\n./build/default/photonctl ping nobody\n```\n')
            with self.assertRaises(AssertionError):
                DocRun(self, path).run()

    def test_documents(self):
        for path in documents():
            with self.subTest(document=os.path.relpath(path, REPO)):
                DocRun(self, path).run()


if __name__ == "__main__":
    unittest.main()
