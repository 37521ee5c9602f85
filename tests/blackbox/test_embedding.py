"""What only the C++ embedding API declares, through the real daemon: a photon's own cron job
(photon::Job) and methods marked webhook-callable with their own scheme (tests/blackbox/photons/
probe.cpp, a program that is its own daemon through photon::serve). It runs on its test clock, from
half past a second, so each advance of 1000 ms crosses exactly one slot of the every-second job."""
import hashlib
import hmac
import http.client
import json
import os
import unittest
import urllib.parse

from harness import BlackboxTest

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROBE = os.environ.get("PROBE_PHOTON", os.path.join(_REPO, "build", "asan", "tests", "blackbox", "probe_photon"))
GITHUB_SECRET = "It's a Secret to Everybody"


def post(url, path, body, headers=None):
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


class EmbeddingTest(BlackboxTest):
    def setUp(self):
        super().setUp()
        self.d = self.daemon("probe", program=[PROBE],
                             args=["--log-level", "warn", "--webhook-port", "0"],
                             env={"PHOTON_WEBHOOK_SECRET_GITHUB": GITHUB_SECRET},
                             test_clock="2026-03-08T01:59:00.500Z")
        self.c = self.d.client()
        self.addCleanup(self.c.close)

    def command(self, method, ident="c"):
        reply = self.c.call({"type": "command", "id": ident, "method": method})
        self.assertEqual(reply["type"], "result", reply)
        return reply["data"]

    def test_a_declared_job_is_there_from_start_and_runs_in_the_scheduler_session(self):
        jobs = self.c.call({"type": "list_jobs", "id": "l"})["data"]["jobs"]
        self.assertEqual([(j["id"], j["method"], j["cron"], j["declared"], j["createdBy"]) for j in jobs],
                         [("every-second", "tick", "* * * * * *", True, "photon")])
        self.assertEqual(jobs[0]["args"], {"from": "probe"})
        self.assertEqual(self.command("ticks"), 0, "a tick before the clock reached a slot")
        watcher = self.d.client()
        self.addCleanup(watcher.close)
        watcher.subscribe("jobs:probe")
        for count in (1, 2):
            self.d.advance(1000)  # over one slot
            while True:
                message = watcher.next_message()["message"]
                if message["event"] == "job-completed" and message["data"]["jobId"] == "every-second":
                    break
            self.assertEqual(self.command("ticks"), count)
        runs = self.c.call({"type": "job_history", "id": "h", "jobId": "every-second"})["data"]["runs"]
        self.assertEqual([run["status"] for run in runs], ["ok", "ok"], runs)
        reply = self.c.call({"type": "unschedule", "id": "u", "jobId": "every-second"})
        self.assertEqual(reply["success"], False)
        self.assertIn("declared", reply["data"]["reason"])

    def test_only_marked_methods_answer_webhooks_with_their_own_scheme(self):
        webhook = self.c.status()["webhook"]
        self.assertEqual(webhook["methods"], [{"name": "hook", "auth": "github"}, {"name": "open", "auth": "none"}])
        url = webhook["url"]
        status, body = post(url, "/webhook/tick", "{}")
        self.assertEqual(status, 404, body)
        status, body = post(url, "/webhook/open", '{"x":1}')
        self.assertEqual(status, 200, body)
        self.assertEqual(body["data"]["session"], "webhook")
        self.assertEqual(body["data"]["args"]["x"], 1)
        status, body = post(url, "/webhook/hook", '{"x":2}')
        self.assertEqual(status, 401, body)
        payload = '{"x":2}'
        signature = hmac.new(GITHUB_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        status, body = post(url, "/webhook/hook", payload, {"X-Hub-Signature-256": "sha256=" + signature})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["data"]["args"]["x"], 2)

    def test_a_bad_declaration_stops_the_start(self):
        photon_dir = self.make_dir()
        d = self.daemon("probe", program=[PROBE], photon_dir=photon_dir, start=False, check_exit=False,
                        args=["--webhook-port", "0"])  # hook needs a GitHub secret, and none is set
        d.env.pop("PHOTON_WEBHOOK_SECRET_GITHUB", None)
        d.env.pop("PHOTON_WEBHOOK_SECRET", None)
        d.spawn()
        self.assertEqual(d.wait(), 2)
        self.assertIn("method hook uses github authentication but no secret is set", d.output())


if __name__ == "__main__":
    unittest.main()
