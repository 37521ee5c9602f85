#!/usr/bin/env python3
# The dashboard in a real browser: Debian's headless Chromium, driven over the DevTools protocol,
# against the real kanban photon started with `--ui-port 0`.
"""Steps (each prints `ok - ...`): the HTTP contract the page relies on; the page takes the token
from the URL fragment and hides it; its WebSockets connect and the tail subscribes to `*`; a
`photonctl pub` shows in the tail within 3 s; a pattern change filters; WebSockets the daemon
closes come back subscribed; the publish form reaches a socket subscriber; markup stays text; Pause
holds and a burst keeps the last 200; channels, locks (a ticking countdown), jobs (run now,
history) and methods (result, emits in the tail, progress, a confirm answered and cancelled, an
error) show what the daemon holds; no horizontal overflow at 390 px and 1280 px; a missing, wrong
or outdated token (daemon restarted) leads to the token form; an exec photon's text, password,
select and confirm prompts go through the dialogs. Screenshots go to $PHOTON_TEST_ARTIFACTS (else
test-artifacts/ beside the photond binary) and their paths are printed; on failure the page's
console, its state and a screenshot are reported too.

Environment: PHOTOND, PHOTONCTL, KANBAN name the binaries (ctest sets them; defaults as in
tests/blackbox/harness.py); CHROMIUM (default /usr/bin/chromium). Exit 0 passed, 1 failed, 77
skipped (no Chromium, or no python3-websocket). The whole run is bounded by TEST_DEADLINE (55 s).
"""

import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "blackbox"))
import harness  # noqa: E402  (the black-box tests' daemon fixture and line client)

SKIP = 77
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DEADLINE = float(os.environ.get("TEST_DEADLINE", "55"))
STEP = 10.0  # the longest any single wait may take

try:
    import websocket  # Debian's python3-websocket (websocket-client)
except ImportError:
    # Debian installs it for /usr/bin/python3; a different interpreter may still find it there.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import websocket
    except ImportError:
        websocket = None


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout(f"the test ran past its {DEADLINE:.0f} s deadline")


def note(text):
    print(text, flush=True)


# ---- the DevTools protocol ----------------------------------------------------------------------

class Browser:
    """One headless Chromium with its own profile; one page target driven over CDP."""

    def __init__(self, tmp):
        self.profile = os.path.join(tmp, "chromium-profile")
        os.makedirs(self.profile)
        self.log_path = os.path.join(tmp, "chromium.log")
        self.proc = None
        self.ws = None
        self.next_id = 0
        self.events = []
        self.exceptions = []

    def launch(self):
        log = open(self.log_path, "wb")
        try:
            # A session of its own, so that every Chromium process (zygote, renderers, GPU helper)
            # can be killed with the group at the end.
            self.proc = subprocess.Popen(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--no-proxy-server", "--mute-audio", "--hide-scrollbars",
                 "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        port = wait(lambda: self._read_port(port_file), "Chromium's DevToolsActivePort", timeout=20)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        targets = wait(lambda: [t for t in json.load(opener.open(f"http://127.0.0.1:{port}/json/list", timeout=5))
                                if t.get("type") == "page"], "a page target")
        self.ws = websocket.create_connection(targets[0]["webSocketDebuggerUrl"], timeout=STEP,
                                              suppress_origin=True)
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Log.enable")

    def _read_port(self, path):
        if self.proc.poll() is not None:
            raise AssertionError(f"Chromium exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with open(path) as f:
                first = f.readline().strip()
        except OSError:
            return None
        return int(first) if first.isdigit() else None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        # Headless Chromium without a session bus complains about D-Bus at length; that is noise.
        return "\n".join(line for line in text.splitlines() if "dbus" not in line)[-8000:]

    def send(self, method, timeout=STEP, **params):
        """Sends one command and returns its result; events read meanwhile are kept."""
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no DevTools answer to {method} within {timeout} s")
            self.ws.settimeout(remaining)
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
            if message.get("method") == "Runtime.exceptionThrown":
                details = message["params"]["exceptionDetails"]
                self.exceptions.append(details.get("exception", {}).get("description") or details.get("text"))
            self.events.append(message)

    def eval(self, expression, timeout=STEP):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", timeout=timeout, expression=expression, awaitPromise=True,
                           returnByValue=True, userGesture=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise AssertionError(f"page script failed: {details.get('exception', {}).get('description') or details}"
                                 f"\n  in: {expression}")
        return result["result"].get("value")

    def wait_js(self, expression, message, timeout=STEP, interval=0.05):
        """Polls a page expression until it is truthy; a script error (say, an element not there yet)
        counts as not yet and is reported at the deadline."""
        wrapped = f"(async () => {{ try {{ return {{v: await ({expression})}}; }} catch (e) {{ return {{e: String(e)}}; }} }})()"

        def probe():
            outcome = self.eval(wrapped)
            if "e" in outcome:
                raise ValueError(outcome["e"])
            return outcome.get("v")
        return wait(probe, message, timeout=timeout, interval=interval)

    def navigate(self, url):
        self.send("Page.navigate", url=url)
        self.wait_js("document.readyState === 'complete'", f"{url} to load")

    def viewport(self, width, height, mobile=False):
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=mobile)

    def screenshot(self, path, full_page=False):
        params = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            metrics = self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.send("Page.captureScreenshot", timeout=20, **params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        note(f"   screenshot: {path}")

    def diagnose(self, artifacts):
        """What a failure report needs: the page's console and log, its badges, a screenshot."""
        lines = []
        for event in self.events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled":
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                lines.append(f"console.{params.get('type')}: {args}")
            elif event.get("method") == "Log.entryAdded":
                entry = params.get("entry", {})
                lines.append(f"log {entry.get('level')}: {entry.get('text')} {entry.get('url', '')}")
        lines += [f"exception: {e}" for e in self.exceptions]
        try:
            lines.append("page: " + json.dumps(self.eval("""({url: location.href,
                ws: document.querySelector('[data-testid=ws-state]')?.textContent,
                tail: document.querySelector('[data-testid=tail-state]')?.textContent,
                banner: document.querySelector('[data-testid=banner]')?.textContent,
                gate: !document.querySelector('[data-testid=token-gate]')?.hidden})""", timeout=3)))
            self.screenshot(os.path.join(artifacts, "dashboard-failure.png"))
        except Exception as error:
            lines.append(f"(page state unavailable: {error!r})")
        return "\n".join(lines[-60:])

    def close(self):
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:
                pass
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                note(f"warning: Chromium (pid {self.proc.pid}) did not exit after SIGKILL")


def wait(predicate, message, timeout=STEP, interval=0.05):
    """Polls until predicate returns a truthy value and returns it; fails at the deadline."""
    return harness.wait_until(predicate, timeout=timeout, interval=interval, message=message)


def js(value):
    """A Python value as a JavaScript literal."""
    return json.dumps(value)


# ---- page helpers: the page's data-testid hooks --------------------------------------------------

def fill(browser, selector, value):
    """Sets an input's value as typing would (an input event follows)."""
    browser.eval(f"""(() => {{ const el = document.querySelector({js(selector)});
        if (!el) throw new Error('no element ' + {js(selector)});
        el.value = {js(value)}; el.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()""")


def click(browser, selector):
    browser.eval(f"""(() => {{ const el = document.querySelector({js(selector)});
        if (!el) throw new Error('no element ' + {js(selector)}); el.click(); return true; }})()""")


def tail_items(browser):
    return browser.eval("""[...document.querySelectorAll('[data-testid=tail-item]')].map(li => ({
        channel: li.dataset.channel, json: li.querySelector('[data-testid=tail-json]').textContent}))""")


def top_channel(browser):
    items = tail_items(browser)
    return items[0]["channel"] if items else None


def expect_message(client, channel, timeout=STEP):
    """The next channel_message on `channel` read by a socket client; others before it are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        got = client.next_message(timeout=max(0.01, deadline - time.monotonic()))
        if got["channel"] == channel:
            return got


def method(name):
    return f"[data-testid=method][data-method={js(name)}]"


def call_method(browser, name, args):
    """Opens the method's form, fills its arguments and clicks Call (does not wait for the end)."""
    browser.eval(f"document.querySelector({js(method(name))}).open = true")
    fill(browser, f"{method(name)} [data-testid=method-args]", json.dumps(args))
    click(browser, f"{method(name)} [data-testid=method-call]")


def method_outcome(browser, name, timeout=STEP):
    state = browser.wait_js(f"""(() => {{ const r = document.querySelector({js(method(name) + ' [data-testid=method-result]')});
        return r && (r.dataset.state === 'ok' || r.dataset.state === 'error') && r.dataset.state; }})()""",
                            f"{name} to end", timeout=timeout)
    text = browser.eval(f"document.querySelector({js(method(name) + ' [data-testid=method-result]')}).textContent")
    return state, text


def no_overflow(browser, label):
    widths = browser.eval("({scroll: document.documentElement.scrollWidth, inner: innerWidth})")
    assert widths["scroll"] <= widths["inner"], f"{label}: horizontal overflow {widths}"
    return widths


def http_status(url, headers=None):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# ---- the test -------------------------------------------------------------------------------------

# An exec photon whose one method asks every kind of prompt and returns the answers.
ASKER_MANIFEST = """
[methods.askAll]
description = "Asks a text, a password, a choice and a confirmation"
command = ["/usr/bin/python3", "ask.py"]
interactive = true
timeout = "30s"
"""
ASKER_SCRIPT = """
import json, sys
json.loads(sys.stdin.readline())
answers = {}
for key, prompt in [
        ("name", {"type": "text", "message": "Your name?", "default": "Ann"}),
        ("secret", {"type": "password", "message": "Passphrase?"}),
        ("colour", {"type": "select", "message": "Colour?", "default": "g",
                    "options": [{"value": "r", "label": "Red"}, {"value": "g", "label": "Green"}, "blue"]}),
        ("sure", {"type": "confirm", "message": "Sure?", "default": True})]:
    print(json.dumps({"prompt": prompt}), flush=True)
    answers[key] = json.loads(sys.stdin.readline())
print(json.dumps({"result": answers}), flush=True)
"""


def wait_prompt(browser, kind):
    """Waits for the prompt dialog to ask a `kind` prompt; returns its message."""
    browser.wait_js(f"""(() => {{ const d = document.querySelector('[data-testid=prompt-dialog]');
        return d.open && d.dataset.promptType === {js(kind)}; }})()""", f"a {kind} prompt")
    return browser.eval("document.querySelector('[data-testid=prompt-message]').textContent")


def check_prompt_kinds(browser, photon_dir, tmp):
    """Text (default shown, replaced), password (masked, never logged), select (labels shown, the
    option's value answered) and confirm dismissed with Escape (null) through the dialogs."""
    folder = os.path.join(tmp, "asker")
    os.makedirs(folder)
    with open(os.path.join(folder, "photon.toml"), "w") as f:
        f.write(ASKER_MANIFEST)
    with open(os.path.join(folder, "ask.py"), "w") as f:
        f.write(ASKER_SCRIPT)
    asker = harness.Daemon(photon_dir, "asker", ["--manifest", os.path.join(folder, "photon.toml"), "--ui-port", "0",
                                                 "--log-level", "warn"])
    try:
        asker.start(timeout=STEP)
        info = read_ui_file(asker)
        browser.navigate(info["url"] + "#token=" + info["token"])
        browser.wait_js("document.querySelector('[data-testid=ws-state]').dataset.state === 'connected'",
                        "the asker's dashboard")
        browser.wait_js(f"!!document.querySelector({js(method('askAll'))})", "the askAll method")
        call_method(browser, "askAll", {})
        assert wait_prompt(browser, "text") == "Your name?"
        assert browser.eval("document.querySelector('[data-testid=prompt-input]').value") == "Ann"
        fill(browser, "[data-testid=prompt-input]", "Bea")
        click(browser, "[data-testid=prompt-ok]")
        wait_prompt(browser, "password")
        assert browser.eval("document.querySelector('[data-testid=prompt-input]').type") == "password"
        fill(browser, "[data-testid=prompt-input]", "s3cret")
        click(browser, "[data-testid=prompt-ok]")
        wait_prompt(browser, "select")
        labels = browser.eval("[...document.querySelector('[data-testid=prompt-input]').options].map(o => o.textContent)")
        assert labels == ["Red", "Green", "blue"], labels
        chosen = browser.eval("(s => s.options[s.selectedIndex].textContent)(document.querySelector('[data-testid=prompt-input]'))")
        assert chosen == "Green", f"the default option is not selected: {chosen}"
        browser.eval("document.querySelector('[data-testid=prompt-input]').selectedIndex = 2")
        click(browser, "[data-testid=prompt-ok]")
        wait_prompt(browser, "confirm")
        assert browser.eval("document.querySelector('[data-testid=prompt-yes]').classList.contains('primary')")
        for kind in ("keyDown", "keyUp"):
            browser.send("Input.dispatchKeyEvent", type=kind, key="Escape", code="Escape", windowsVirtualKeyCode=27)
        state, text = method_outcome(browser, "askAll")
        assert state == "ok", (state, text)
        result = json.loads(browser.eval(f"document.querySelector({js(method('askAll') + ' [data-testid=method-result-json]')}).textContent"))
        assert result == {"name": "Bea", "secret": "s3cret", "colour": "blue", "sure": None}, result
        log = browser.eval(f"document.querySelector({js(method('askAll') + ' [data-testid=method-log]')}).textContent")
        assert "s3cret" not in log and "declined" in log, log
    finally:
        code = asker.stop(timeout=5)
        if code != 0:
            raise AssertionError(f"the asker daemon exited with {code}:\n{asker.output()}")


def artifact_dir():
    path = os.environ.get("PHOTON_TEST_ARTIFACTS") or os.path.join(os.path.dirname(os.path.abspath(harness.PHOTOND)),
                                                                   "test-artifacts")
    os.makedirs(path, exist_ok=True)
    return path


def read_ui_file(daemon, old_token=None):
    """The daemon's NAME.ui, checked; with old_token, waits for a file with another token."""
    path = os.path.join(daemon.photon_dir, "daemons", f"{daemon.name}.ui")

    def fresh():
        if not os.path.exists(path):
            return None
        with open(path) as f:
            info = json.load(f)
        return info if info.get("token") != old_token else None
    info = wait(fresh, f"{path} to be written")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, f"{path} has mode {mode:o}, expected 600"
    assert isinstance(info.get("port"), int) and info["port"] > 0, info
    assert info.get("url") == f"http://127.0.0.1:{info['port']}/", info
    assert isinstance(info.get("token"), str) and len(info["token"]) >= 32, info
    return info


def run(tmp, artifacts):
    photon_dir = harness.make_tmpdir()
    daemon = harness.Daemon(photon_dir, "kanban", ["--ui-port", "0", "--log-level", "warn"], program=[harness.KANBAN])
    browser = Browser(tmp)
    sockets = []
    ok = False
    try:
        daemon.start(timeout=STEP)
        info = read_ui_file(daemon)
        base, token = info["url"], info["token"]
        note(f"ok - kanban daemon up, dashboard at {base} (token file 0600)")

        # The contract the page relies on, checked without a browser.
        status, body = http_status(base)
        assert status == 200 and b"data-testid" in body, f"GET / without a token: {status}"
        status, body = http_status(base + "api/status")
        assert status == 401 and "error" in json.loads(body), f"/api/status without a token: {status} {body!r}"
        status, body = http_status(base + "api/status", {"Authorization": "Bearer " + token})
        assert status == 200 and json.loads(body)["name"] == "kanban", f"/api/status: {status} {body!r}"
        status, _ = http_status(base + "api/status", {"Authorization": "Bearer " + token, "Host": "evil.example"})
        assert status == 403, f"a foreign Host got {status}"
        status, _ = http_status(base + "api/status", {"Authorization": "Bearer " + token, "Origin": "http://evil.example"})
        assert status == 403, f"a foreign Origin got {status}"
        note("ok - HTTP contract: / open, /api needs the token, foreign Host and Origin refused")

        # What the dashboard will show: a subscriber, a held lock, two jobs (one has run).
        watcher = daemon.client()
        sockets.append(watcher)
        watcher.subscribe("board:*")
        holder = daemon.client()
        sockets.append(holder)
        reply = holder.call({"type": "lock", "id": "l", "sessionId": "deploy-bot", "lockName": "deploy",
                             "lockTimeout": 600000})
        assert reply.get("success") is True, reply
        for args in (["schedule", "kanban", "boards", "listBoards", "*/30 * * * * *"],
                     ["schedule", "kanban", "nightly-report", "report", "0 3 * * *", "seconds=1", "--tz", "UTC"]):
            done = harness.ctl(photon_dir, *args, timeout=STEP)
            assert done.returncode == 0, f"photonctl {' '.join(args)}: {done.stderr}"
        done = harness.ctl(photon_dir, "run-job", "kanban", "boards", "--wait", "--timeout", "5s", timeout=STEP)
        assert done.returncode == 0, f"run-job: {done.stdout}{done.stderr}"

        browser.launch()
        # Every WebSocket the page opens, so the test can see it reconnect (the page keeps its own
        # in a closure).
        browser.send("Page.addScriptToEvaluateOnNewDocument", source="""window.__sockets = [];
            const Native = window.WebSocket;
            window.WebSocket = class extends Native { constructor(...args) { super(...args); window.__sockets.push(this); } };""")
        browser.viewport(1280, 900)
        browser.navigate(base + "#token=" + token)
        browser.wait_js("document.querySelector('[data-testid=ws-state]').dataset.state === 'connected'",
                        "the WebSocket badge to say connected")
        browser.wait_js("""(() => { const s = document.querySelector('[data-testid=tail-state]');
            return s.dataset.state === 'subscribed' && s.dataset.pattern === '*'; })()""",
                        "the tail to subscribe to *")
        assert browser.eval("location.hash") == "", "the token stayed in the address bar"
        assert browser.eval("sessionStorage.getItem('photond.token')") == token, "token not kept for the tab"
        assert browser.eval("document.querySelector('[data-testid=photon-name]').textContent") == "kanban"
        note("ok - token taken from the fragment and hidden; WebSocket connected; tail subscribed to *")

        # The page notes (wall clock, as this process's time.time()) when the item appears, so the
        # second the issue allows is measured from the publish to the page's render, not to when
        # the DevTools polling below happens to look.
        browser.eval("""(() => {
            window.__shownAt = null;
            new MutationObserver((changes, observer) => {
                if ([...document.querySelectorAll('[data-testid=tail-item]')].some(li => li.dataset.channel === 'board:a')) {
                    window.__shownAt = Date.now();
                    observer.disconnect();
                }
            }).observe(document.body, {childList: true, subtree: true});
            return true; })()""")
        publish_started = time.time()
        done = harness.ctl(photon_dir, "pub", "kanban", "board:a", '{"x":1}', timeout=STEP)
        assert done.returncode == 0, done.stderr
        published = time.monotonic()
        # Pushed over the WebSocket (the page polls nothing for it). The wait allows 3 s for a loaded
        # machine to let DevTools look; the page's own render time must be within 1 s of the publish
        # (photonctl's start included).
        wait(lambda: any(i["channel"] == "board:a" and json.loads(i["json"]) == {"x": 1} for i in tail_items(browser)),
             "board:a {x:1} in the tail", timeout=3.0, interval=0.02)
        shown_after = browser.eval("window.__shownAt") / 1000.0 - publish_started
        assert shown_after < 1.0, f"the page showed the message {shown_after:.3f} s after photonctl pub started"
        note(f"ok - photonctl pub board:a rendered {shown_after:.3f} s after the publish began "
             f"(seen by the test {time.monotonic() - published:.3f} s after photonctl returned)")

        fill(browser, "[data-testid=tail-pattern]", "board:*")
        click(browser, "[data-testid=tail-subscribe]")
        browser.wait_js("""(() => { const s = document.querySelector('[data-testid=tail-state]');
            return s.dataset.state === 'subscribed' && s.dataset.pattern === 'board:*'; })()""",
                        "the tail to subscribe to board:*")
        for channel, message in (("other:x", {"skip": True}), ("board:b", {"y": 2})):
            done = harness.ctl(photon_dir, "pub", "kanban", channel, json.dumps(message), timeout=STEP)
            assert done.returncode == 0, done.stderr
        wait(lambda: top_channel(browser) == "board:b", "board:b on top of the tail")
        assert not any(i["channel"] == "other:x" for i in tail_items(browser)), "other:x shown under board:*"
        note("ok - tail pattern board:* shows board:b, not other:x, newest on top")

        # WebSockets the daemon closes (here: for a message over its 1 MiB limit) come back by
        # themselves, and the tail subscribes again. (The page has two: one tails, one requests.)
        assert browser.eval("window.__sockets.length") == 2
        browser.eval("window.__sockets.forEach(s => s.send('x'.repeat(1100000))); true")
        browser.wait_js("""window.__sockets.length === 4 && window.__sockets.slice(2).every(s => s.readyState === WebSocket.OPEN)
            && document.querySelector('[data-testid=ws-state]').dataset.state === 'connected'""",
                        "the WebSockets to reconnect by themselves")
        browser.wait_js("""(() => { const s = document.querySelector('[data-testid=tail-state]');
            return s.dataset.state === 'subscribed' && s.dataset.pattern === 'board:*'; })()""",
                        "the tail to subscribe to board:* again")
        done = harness.ctl(photon_dir, "pub", "kanban", "board:c", '{"z":3}', timeout=STEP)
        assert done.returncode == 0, done.stderr
        wait(lambda: top_channel(browser) == "board:c", "board:c in the tail after the reconnection")
        note("ok - WebSockets closed by the daemon reconnect by themselves; the tail subscribes board:* again")

        fill(browser, "[data-testid=publish-channel]", "board:ui")
        fill(browser, "[data-testid=publish-message]", "{bad json")
        click(browser, "[data-testid=publish-button]")
        assert "Not JSON" in browser.eval("document.querySelector('[data-testid=publish-result]').textContent")
        fill(browser, "[data-testid=publish-message]", '{"from": "browser", "n": 2}')
        click(browser, "[data-testid=publish-button]")
        got = expect_message(watcher, "board:ui")
        assert got["message"] == {"from": "browser", "n": 2}, got
        result = browser.wait_js("""(() => { const r = document.querySelector('[data-testid=publish-result]');
            return r.dataset.state === 'ok' && r.textContent; })()""", "the publish reply")
        # The socket subscriber and the page's own tail (its publishes go out on the other WebSocket).
        assert "delivered to 2 subscribers" in result, result
        wait(lambda: top_channel(browser) == "board:ui", "the page's own publish in its tail")
        note("ok - publish form: bad JSON refused in the page; the message reached a socket subscriber")

        # Untrusted text stays text: markup in a message and in a channel name creates no element.
        evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
        done = harness.ctl(photon_dir, "pub", "kanban", "board:<b>bold</b>", json.dumps({"html": evil}), timeout=STEP)
        assert done.returncode == 0, done.stderr
        wait(lambda: top_channel(browser) == "board:<b>bold</b>", "the markup message in the tail")
        assert json.loads(tail_items(browser)[0]["json"]) == {"html": evil}
        assert browser.eval("document.querySelectorAll('#tail-list img, #tail-list b, #tail-list script').length") == 0
        assert browser.eval("window.pwned === undefined")
        note("ok - markup in channel names and messages is shown as text")

        # Pause holds messages back and counts them; Resume shows them. A burst keeps the last 200.
        click(browser, "[data-testid=tail-pause]")
        for n in range(3):
            holder.publish("board:p", {"held": n}, ident=f"held{n}")
        browser.wait_js("document.querySelector('[data-testid=tail-pause]').textContent === 'Resume (3 new)'",
                        "the pause button to count 3 held messages")
        assert top_channel(browser) != "board:p", "a message was shown while paused"
        click(browser, "[data-testid=tail-pause]")
        wait(lambda: [json.loads(i["json"]) for i in tail_items(browser)[:3]] == [{"held": 2}, {"held": 1}, {"held": 0}],
             "the held messages, newest first, after Resume")
        holder.send_raw(b"".join(harness.encode({"type": "publish", "id": f"burst{n}", "channel": "board:burst",
                                                 "message": {"n": n}}) for n in range(500)))
        for _ in range(500):
            holder.reply()
        wait(lambda: json.loads(tail_items(browser)[0]["json"]) == {"n": 499}, "the burst's last message on top")
        count = browser.eval("document.querySelectorAll('[data-testid=tail-item]').length")
        assert count == 200, f"the tail keeps {count} messages"
        note("ok - tail: Pause holds and counts messages, Resume shows them; a burst of 500 keeps the last 200")

        browser.wait_js("""(() => { const r = document.querySelector('[data-testid=channel-row][data-channel="board:*"]');
            return r && Number(r.cells[1].textContent) === 2; })()""", "board:* with 2 subscribers in Channels")
        browser.wait_js("!document.querySelector('[data-testid=channel-row][data-channel=\"*\"]')",
                        "* to leave the channels after the tail switched")
        note("ok - channels panel: board:* has 2 subscribers (socket + tail); * gone after unsubscribe")

        lock = browser.wait_js("""(() => { const r = document.querySelector('[data-testid=lock-row][data-lock=deploy]');
            return r && [...r.cells].map(c => c.textContent); })()""", "the deploy lock in Locks")
        assert lock[1] == "deploy-bot" and lock[2].isdigit(), lock
        first = lock[3]
        # It ticks every second: waited for, rather than read once 1.2 s later, when a loaded
        # machine may not have run the page's timer yet.
        later = browser.wait_js("""(() => { const t = document.querySelector('[data-testid=lock-row][data-lock=deploy]').cells[3].textContent;
            return t !== %s && t; })()""" % js(first), "the lock's countdown to tick")
        assert "m" in later or "s" in later, (first, later)
        note(f"ok - locks panel: deploy held by deploy-bot, countdown {first} -> {later}")

        browser.wait_js("document.querySelectorAll('[data-testid=job]').length === 2", "two jobs in Jobs")
        click(browser, "[data-testid=job][data-job=boards] [data-testid=job-run]")
        browser.wait_js("document.getElementById('jobs-note').textContent.startsWith('Started boards')", "run now")
        click(browser, "[data-testid=job][data-job=boards] [data-testid=job-history]")
        runs = browser.wait_js("""(() => { const t = document.querySelector('[data-testid=job][data-job=boards] [data-testid=job-history-table]');
            const rows = t ? [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent)) : [];
            return rows.length >= 2 && rows.some(r => r[1] === 'manual') && rows; })()""",
                               "two manual runs in the boards history", timeout=STEP)
        # A */30 slot that falls while a manual run runs is skipped (overlap: skip; the cell then
        # carries the reason too): rare, and not wrong.
        assert all(r[4] in ("ok", "running") or r[4].startswith("skipped") for r in runs), runs
        note(f"ok - jobs panel: run now started a run; history shows {len(runs)} runs")

        browser.wait_js(f"!!document.querySelector({js(method('moveTask'))})", "the methods list")
        call_method(browser, "moveTask", {"taskId": 1, "column": "Done"})
        state, text = method_outcome(browser, "moveTask")
        assert state == "ok" and '"column": "Done"' in text, (state, text)
        got = expect_message(watcher, "board:main")
        assert got["message"]["event"] == "task-moved", got
        wait(lambda: top_channel(browser) == "board:main" and json.loads(tail_items(browser)[0]["json"])["event"] == "task-moved",
             "the page's own call's emit in its tail")
        note("ok - methods: moveTask result shown; its emit reached board:main, the page's tail included")

        call_method(browser, "deleteTask", {"taskId": 2})
        browser.wait_js("document.querySelector('[data-testid=prompt-dialog]').open", "the confirm dialog")
        message = browser.eval("document.querySelector('[data-testid=prompt-message]').textContent")
        assert message.startswith("Delete task 2"), message
        browser.screenshot(os.path.join(artifacts, "dashboard-prompt.png"))
        click(browser, "[data-testid=prompt-yes]")
        state, text = method_outcome(browser, "deleteTask")
        assert state == "ok" and '"deleted": true' in text, (state, text)
        call_method(browser, "deleteTask", {"taskId": 3})
        browser.wait_js("document.querySelector('[data-testid=prompt-dialog]').open", "the second confirm dialog")
        click(browser, "[data-testid=prompt-cancel]")
        state, text = method_outcome(browser, "deleteTask")
        assert state == "ok" and '"deleted": false' in text, (state, text)
        note("ok - prompts: a confirm dialog answered Yes deletes; Cancel sends null and nothing is deleted")

        call_method(browser, "report", {"seconds": 1})
        state, text = method_outcome(browser, "report")
        assert state == "ok" and '"seconds": 1' in text, (state, text)
        emits = browser.eval(f"[...document.querySelectorAll({js(method('report') + ' [data-testid=method-emit]')})].map(e => e.textContent)")
        assert len(emits) == 4 and "step 4 of 4" in emits[-1], emits
        assert browser.eval(f"document.querySelector({js(method('report') + ' [data-testid=method-progress]')}).value") == 100
        call_method(browser, "moveTask", {"taskId": 99, "column": "Done"})
        state, text = method_outcome(browser, "moveTask")
        assert state == "error" and "no task 99" in text, (state, text)
        note("ok - methods: report's four progress emits shown; a failing call shows its error")

        # Screenshots (dashboard-desktop-full.png is docs/images/dashboard.png), and no horizontal
        # scrolling on a desktop or a phone. Messages flow across two status polls, so rates show.
        browser.eval("document.querySelectorAll('[data-testid=method]').forEach(d => d.open = d.dataset.method === 'report')")
        for n in range(8):
            holder.publish("board:main", {"event": "task-viewed", "taskId": n % 3 + 1}, ident=f"view{n}")
            time.sleep(0.25)
        browser.eval("window.scrollTo(0, 0)")
        widths = no_overflow(browser, "desktop")
        browser.screenshot(os.path.join(artifacts, "dashboard-desktop.png"))
        browser.screenshot(os.path.join(artifacts, "dashboard-desktop-full.png"), full_page=True)
        browser.send("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark"}])
        browser.screenshot(os.path.join(artifacts, "dashboard-desktop-dark.png"))
        browser.send("Emulation.setEmulatedMedia", features=[])
        browser.viewport(390, 844, mobile=True)
        time.sleep(0.3)
        phone = no_overflow(browser, "phone")
        browser.screenshot(os.path.join(artifacts, "dashboard-phone.png"))
        browser.screenshot(os.path.join(artifacts, "dashboard-phone-full.png"), full_page=True)
        note(f"ok - no horizontal overflow at {widths['inner']} px and {phone['inner']} px")
        browser.viewport(1280, 900)

        # Without a token, or with a wrong one: the token form, with what to do.
        browser.eval("sessionStorage.clear()")
        browser.navigate(base)
        browser.wait_js("!document.querySelector('[data-testid=token-gate]').hidden", "the token form")
        text = browser.eval("document.querySelector('[data-testid=token-gate]').textContent")
        assert "photonctl ui" in text, text
        no_overflow(browser, "token form")
        browser.navigate(base + "#token=wrong")
        browser.wait_js("""(() => { const g = document.querySelector('[data-testid=token-gate]');
            return !g.hidden && g.textContent.includes('401'); })()""", "the token form after a 401")
        browser.screenshot(os.path.join(artifacts, "dashboard-token.png"))
        fill(browser, "[data-testid=token-input]", base + "#token=" + token)
        click(browser, "[data-testid=token-submit]")
        browser.wait_js("document.querySelector('[data-testid=ws-state]').dataset.state === 'connected'",
                        "the dashboard after pasting the URL")
        note("ok - no token or a wrong one shows the token form; pasting the URL opens the dashboard")

        # The daemon restarts on the same port with a new token: the page notices, asks for the new
        # URL, and comes back with the tail pattern it had.
        pattern = browser.eval("document.querySelector('[data-testid=tail-state]').dataset.pattern")
        code = daemon.stop(timeout=STEP)
        assert code == 0, f"the daemon exited with {code} on SIGTERM"
        browser.wait_js("document.querySelector('[data-testid=ws-state]').dataset.state !== 'connected'",
                        "the page to see the daemon gone")
        daemon.args = ["--ui-port", str(info["port"]), "--log-level", "warn"]
        daemon.start(timeout=STEP)
        again = read_ui_file(daemon, old_token=token)
        assert again["port"] == info["port"], again
        browser.wait_js("""(() => { const g = document.querySelector('[data-testid=token-gate]');
            return !g.hidden && g.textContent.includes('401'); })()""", "the token form after the restart")
        browser.navigate(base + "#token=" + again["token"])
        browser.wait_js("""(() => { const s = document.querySelector('[data-testid=tail-state]');
            return document.querySelector('[data-testid=ws-state]').dataset.state === 'connected'
                && s.dataset.state === 'subscribed' && s.dataset.pattern === %s; })()""" % js(pattern),
                        "the dashboard back with its tail pattern")
        note(f"ok - after a restart (new token) the page asks for the new URL, then resumes tailing {pattern}")

        check_prompt_kinds(browser, photon_dir, tmp)
        note("ok - prompts of an exec photon: text with its default, password masked, select answers the "
             "option's value, Escape declines")

        assert not browser.exceptions, f"uncaught exceptions in the page: {browser.exceptions}"
        note("ok - no uncaught exception in the page")
        ok = True
    finally:
        # Past the deadline too: each step is bounded, and none may keep the others from running.
        signal.alarm(0)
        if not ok and browser.ws is not None:
            try:
                sys.stderr.write("--- page ---\n" + browser.diagnose(artifacts) + "\n")
            except Exception as error:
                sys.stderr.write(f"(no page report: {error!r})\n")
        browser.close()
        for s in sockets:
            s.close()
        code = None
        try:
            code = daemon.stop(timeout=5)
        except AssertionError as error:
            note(f"warning: {error}")
        finally:
            daemon.kill()
        if not ok:
            sys.stderr.write(daemon.output() + "\n")
            if browser.proc is not None:
                sys.stderr.write("--- chromium log ---\n" + browser.log() + "\n")
        shutil.rmtree(photon_dir, ignore_errors=True)
    assert code == 0, f"the daemon exited with {code} on SIGTERM:\n{daemon.output()}"


def main():
    if not os.access(CHROMIUM, os.X_OK):
        note(f"SKIP: {CHROMIUM} not found (apt-get install chromium)")
        return SKIP
    if websocket is None:
        note("SKIP: python3-websocket not found (apt-get install python3-websocket)")
        return SKIP
    artifacts = artifact_dir()
    tmp = tempfile.mkdtemp(prefix="photon-ui-")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(DEADLINE))
    started = time.monotonic()
    try:
        run(tmp, artifacts)
    except (AssertionError, Timeout, OSError, ValueError, KeyError, websocket.WebSocketException) as error:
        signal.alarm(0)
        traceback.print_exc()
        note(f"FAILED after {time.monotonic() - started:.1f} s: {error}")
        note("0 passed, 1 failed")
        return 1
    finally:
        signal.alarm(0)
        shutil.rmtree(tmp, ignore_errors=True)
    note(f"dashboard test passed in {time.monotonic() - started:.1f} s; screenshots in {artifacts}")
    note("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
