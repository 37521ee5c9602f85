# photonctl webhook / webhook-send against a real photond: the endpoint table, --json, each
# signing scheme with the daemon's own secrets, async mode, refusals and exit codes; and the
# C++ kanban photon's endpoint.
import base64
import hashlib
import hmac
import json
import os
import re
import time
import unittest
import urllib.error
import urllib.request

from harness import KANBAN, TIMEOUT, BlackboxTest, ctl, messages_before_pong

MANIFEST = r"""
[methods.echo]
command = "cat"

[methods.fail]
command = '''cat > /dev/null; echo '{"error":"the board is locked"}' '''

[methods.sec]
command = "cat"
webhook_auth = "secret"

[methods.gh]
command = "cat"
webhook_auth = "github"

[methods.stripe]
command = "cat"
webhook_auth = "stripe"

[methods.std]
command = "cat"
webhook_auth = "standard"
"""

SECRETS = {
    "PHOTON_WEBHOOK_SECRET_SECRET": "shared-secret-for-ctl",
    "PHOTON_WEBHOOK_SECRET_GITHUB": "It's a Secret to Everybody",
    "PHOTON_WEBHOOK_SECRET_STRIPE": "whsec_stripe_for_ctl",
    "PHOTON_WEBHOOK_SECRET_STANDARD": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}


def setUpModule():
    for key in [k for k in os.environ if k.startswith("PHOTON_WEBHOOK")]:
        del os.environ[key]


def cells(line):
    """A table row's cells (columns are at least two spaces apart)."""
    return re.split(r" {2,}", line.rstrip())


class WebhookCtlTest(BlackboxTest):
    def setUp(self):
        self.dir = self.make_dir()
        manifest = os.path.join(self.dir, "photon.toml")
        with open(manifest, "w") as f:
            f.write(MANIFEST)
        self.d = self.daemon("cw", photon_dir=self.dir, env=SECRETS,
                             args=["--manifest", manifest, "--webhook-port", "0", "--webhook-auth", "github",
                                   "--log-level", "warn"])
        self.c = self.client(self.d)
        self.webhook = self.c.status()["webhook"]

    def ctl(self, *args, env=None):
        """photonctl with the daemon's secrets in its environment (as a sender that shares them)."""
        return ctl(self.dir, *args, env=SECRETS if env is None else env)

    def ok(self, *args, env=None):
        r = self.ctl(*args, env=env)
        self.assertEqual(r.returncode, 0, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        return r

    def sent(self, r):
        """The status line and the parsed body that webhook-send printed."""
        status, _, body = r.stdout.partition("\n")
        return status, json.loads(body)

    # ---- photonctl webhook

    def test_webhook_shows_the_url_the_schemes_and_how_to_send(self):
        r = self.ok("webhook", "cw")
        self.assertEqual(r.stderr, "")
        lines = r.stdout.splitlines()
        url = self.webhook["url"]
        self.assertEqual(cells(lines[0]), ["url", url])
        self.assertTrue(lines[1].startswith("authentication  github"), lines[1])
        header = lines.index(next(line for line in lines if line.startswith("METHOD")))
        self.assertEqual(cells(lines[header]), ["METHOD", "AUTH", "URL"])
        rows = {cells(line)[0]: cells(line) for line in lines[header + 1:header + 7]}
        self.assertEqual(rows["echo"], ["echo", "github", url + "echo"])
        self.assertEqual(rows["fail"][1], "github")
        self.assertEqual(rows["sec"][1], "secret")
        self.assertEqual(rows["stripe"][1], "stripe")
        self.assertEqual(rows["std"][1], "standard")
        # A legend for each scheme in use, naming where its secret comes from.
        self.assertIn("github: X-Hub-Signature-256", r.stdout)
        self.assertIn("$PHOTON_WEBHOOK_SECRET_GITHUB or $PHOTON_WEBHOOK_SECRET", r.stdout)
        self.assertIn("standard: webhook-id", r.stdout)
        self.assertNotIn("none:", r.stdout)
        self.assertIn("photonctl webhook-send cw echo", r.stdout)
        self.assertIn("photonctl sub cw webhooks:cw", r.stdout)

    def test_webhook_json_prints_the_status_webhook_object(self):
        r = self.ok("--json", "webhook", "cw")
        shown = json.loads(r.stdout)
        self.assertEqual({k: v for k, v in shown.items() if k != "running"},
                         {k: v for k, v in self.webhook.items() if k != "running"})
        self.assertEqual(shown["running"], 0)

    def test_a_daemon_without_webhooks_exits_1(self):
        self.daemon("plain", photon_dir=self.dir)
        for args in (("webhook", "plain"), ("--json", "webhook", "plain"), ("webhook-send", "plain", "echo")):
            r = self.ctl(*args)
            self.assertEqual(r.returncode, 1, r)
            self.assertEqual(r.stdout, "")
            self.assertEqual(r.stderr, "photonctl: photon plain serves no webhooks: start it with --webhook-port\n")

    def test_a_daemon_not_running_exits_3(self):
        for args in (("webhook", "nobody"), ("webhook-send", "nobody", "echo")):
            r = self.ctl(*args)
            self.assertEqual(r.returncode, 3, r)
            self.assertIn("nobody is not running", r.stderr)

    # ---- photonctl webhook-send

    def test_each_scheme_signs_with_the_daemons_secret(self):
        # echo is github (the default), the others name their own scheme.
        for method in ("echo", "sec", "gh", "stripe", "std"):
            r = self.ok("webhook-send", "cw", method, "taskId=1", "column=Done", "--data", '{"column":"Todo","x":[1]}')
            status, body = self.sent(r)
            self.assertEqual(status, "HTTP/1.1 200 OK", method)
            data = body["data"]
            self.assertEqual((data["taskId"], data["column"], data["x"]), (1, "Done", [1]), method)
            self.assertEqual(data["_webhook"]["method"], method)
            self.assertEqual(data["_webhook"]["headers"]["content-type"], "application/json")
        headers = self.sent(self.ok("webhook-send", "cw", "std"))[1]["data"]["_webhook"]["headers"]
        self.assertRegex(headers["webhook-id"], r"^msg_[0-9a-f]{24}$")
        self.assertRegex(headers["webhook-signature"], r"^v1,[A-Za-z0-9+/]{43}=$")
        self.assertRegex(self.sent(self.ok("webhook-send", "cw", "stripe"))[1]["data"]["_webhook"]["headers"]
                         ["stripe-signature"], r"^t=\d+,v1=[0-9a-f]{64}$")

    def test_standard_sends_are_new_deliveries_each_time(self):
        # The daemon refuses a webhook-id it accepted in the last 10 minutes (a replay): each send
        # must be a delivery of its own, with an id of its own, and each must reach the method.
        self.c.subscribe("webhooks:cw")
        ids = []
        for n in range(3):
            status, body = self.sent(self.ok("webhook-send", "cw", "std", f"n={n}"))
            self.assertEqual(status, "HTTP/1.1 200 OK")
            self.assertEqual(body["data"]["n"], n)
            ids.append(body["data"]["_webhook"]["headers"]["webhook-id"])
            received = self.c.next_message()["message"]
            self.assertEqual((received["event"], received["data"]["method"]), ("webhook-received", "std"))
        self.assertEqual(len(set(ids)), 3, ids)
        for delivery in ids:
            self.assertRegex(delivery, r"^msg_[0-9a-f]{24}$")
        # What makes them pass: the same id again is a replay, refused before the method runs.
        body = b'{"n":0}'
        key = base64.b64decode(SECRETS["PHOTON_WEBHOOK_SECRET_STANDARD"][len("whsec_"):])
        timestamp = str(int(time.time()))
        mac = hmac.new(key, f"{ids[0]}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        request = urllib.request.Request(self.webhook["url"] + "std", data=body, method="POST", headers={
            "Content-Type": "application/json", "webhook-id": ids[0], "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(mac).decode()})
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=TIMEOUT)
        self.assertEqual(refused.exception.code, 401)
        self.assertEqual(json.loads(refused.exception.read()), {"error": f"webhook-id {ids[0]} was already delivered"})
        self.assertEqual(messages_before_pong(self.c), [], "the replay reached no method")

    def test_the_shared_secret_variable_serves_every_scheme(self):
        photon_dir = self.make_dir()
        manifest = os.path.join(photon_dir, "photon.toml")
        with open(manifest, "w") as f:
            f.write(MANIFEST)
        shared = {"PHOTON_WEBHOOK_SECRET": "one-secret-for-all"}
        self.daemon("shared", photon_dir=photon_dir, env=shared,
                    args=["--manifest", manifest, "--webhook-port", "0", "--log-level", "warn"])
        for method in ("echo", "sec", "gh", "stripe", "std"):
            r = ctl(photon_dir, "webhook-send", "shared", method, "n=1", env=shared)
            self.assertEqual(r.returncode, 0, r)
        r = ctl(photon_dir, "webhook-send", "shared", "gh", env={"PHOTON_WEBHOOK_SECRET": "one-secret-for-al!"})
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(self.sent(r), ("HTTP/1.1 401 Unauthorized", {"error": "signature does not match"}))

    def test_scheme_flag_and_refusals_exit_1_with_the_response(self):
        r = self.ctl("webhook-send", "cw", "gh", "--scheme", "none")
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(self.sent(r), ("HTTP/1.1 401 Unauthorized", {"error": "missing X-Hub-Signature-256 header"}))
        # Signed as the wrong scheme.
        r = self.ctl("webhook-send", "cw", "gh", "--scheme", "secret")
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(self.sent(r)[0], "HTTP/1.1 401 Unauthorized")
        # A wrong secret.
        r = self.ctl("webhook-send", "cw", "sec", env={**SECRETS, "PHOTON_WEBHOOK_SECRET_SECRET": "shared-secret-for-ctL"})
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(self.sent(r), ("HTTP/1.1 401 Unauthorized", {"error": "X-Webhook-Secret does not match"}))
        # An unknown method, a failing one.
        r = self.ctl("webhook-send", "cw", "nosuch")
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(self.sent(r), ("HTTP/1.1 404 Not Found", {"error": 'unknown method "nosuch"'}))
        r = self.ctl("webhook-send", "cw", "fail")
        self.assertEqual(r.returncode, 1, r)
        status, body = self.sent(r)
        self.assertEqual(status, "HTTP/1.1 500 Internal Server Error")
        self.assertIn("the board is locked", body["error"])

    def test_json_output(self):
        r = self.ok("--json", "webhook-send", "cw", "echo", "a=1")
        out = json.loads(r.stdout)
        self.assertEqual((out["status"], out["reason"]), (200, "OK"))
        self.assertEqual(out["body"]["data"]["a"], 1)
        r = self.ctl("--json", "webhook-send", "cw", "nosuch")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(json.loads(r.stdout), {"status": 404, "reason": "Not Found",
                                                "body": {"error": 'unknown method "nosuch"'}})

    def test_async_answers_202_and_the_outcome_is_published(self):
        self.c.subscribe("webhooks:cw")
        r = self.ok("webhook-send", "cw", "echo", "k=v", "--async")
        status, body = self.sent(r)
        self.assertEqual(status, "HTTP/1.1 202 Accepted")
        self.assertIs(body["accepted"], True)
        self.assertIn("webhooks:cw", r.stderr)
        self.assertEqual(self.c.next_message()["message"]["event"], "webhook-received")
        completed = self.c.next_message()["message"]
        self.assertEqual(completed["event"], "webhook-completed")
        self.assertEqual(completed["data"]["runId"], body["runId"])
        self.assertEqual(completed["data"]["data"]["k"], "v")

    def test_a_missing_secret_is_a_usage_error(self):
        r = self.ctl("webhook-send", "cw", "echo", env={})
        self.assertEqual(r.returncode, 2, r)
        self.assertEqual(r.stdout, "")
        self.assertIn("signing as github needs the secret the daemon uses: set "
                      "$PHOTON_WEBHOOK_SECRET_GITHUB or $PHOTON_WEBHOOK_SECRET", r.stderr)
        self.c.ping()
        # A Standard secret that is not whsec_<base64>.
        r = self.ctl("webhook-send", "cw", "std", env={"PHOTON_WEBHOOK_SECRET_STANDARD": "whsec_!!"})
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("not base64", r.stderr)

    def test_usage_errors(self):
        for args in (("webhook-send", "cw", "echo", "--data", "[1]"),
                     ("webhook-send", "cw", "echo", "--data", "{bad"),
                     ("webhook-send", "cw", "echo", "novalue"),
                     ("webhook-send", "cw", "echo", "=1"),
                     ("webhook-send", "cw", "echo", "--scheme", "basic"),
                     ("webhook-send", "cw"),
                     ("webhook", "bad/name")):
            r = self.ctl(*args)
            self.assertEqual(r.returncode, 2, (args, r))


class KanbanWebhookCtlTest(BlackboxTest):
    def test_the_cpp_photon_serves_webhooks(self):
        d = self.daemon("kanban", args=["--log-level", "warn", "--webhook-port", "0"], program=[KANBAN])
        r = ctl(d.photon_dir, "webhook", "kanban")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("authentication  none", r.stdout)
        self.assertRegex(r.stdout, r"\nmoveTask +none +http://127\.0\.0\.1:\d+/webhook/moveTask\n")
        with d.client() as watcher:
            watcher.subscribe("board:*")
            r = ctl(d.photon_dir, "webhook-send", "kanban", "addTask", "title=from a webhook")
            self.assertEqual(r.returncode, 0, r)
            task = json.loads(r.stdout.partition("\n")[2])["data"]
            self.assertEqual(task["title"], "from a webhook")
            self.assertEqual(watcher.next_message()["message"]["event"], "task-added")
            r = ctl(d.photon_dir, "webhook-send", "kanban", "moveTask", f"taskId={task['id']}", "column=Done")
            self.assertEqual(r.returncode, 0, r)
            self.assertEqual(watcher.next_message()["message"]["event"], "task-moved")


if __name__ == "__main__":
    unittest.main()
