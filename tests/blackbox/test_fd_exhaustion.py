"""A real photond run out of file descriptors (RLIMIT_NOFILE 64:64, as `prlimit --nofile=64:64`,
and more connections held than it can accept): what it must open lazily then (the tz database and
zone files, the SQLite job database, an exec method's pipes, the fencing-token file) is refused with a reason or served,
never a closed connection and never a failure remembered after the connections are gone; a job
accepted then is kept (it survives a restart) and fires. Where the daemon has a test clock, a job
fires when the test moves the clock over its next slot; the unsanitized daemon this test runs in
`make test` is the package preset's, which has none (no test option ships), and fires on the next
real second."""
import os
import resource
import time
import unittest

from harness import TIMEOUT, BlackboxTest, Client, photond_has_test_clock, wait_until

LIMIT = 64
HELD = 80

MANIFEST = """
[methods.hello]
command = "echo 1"
"""


def limit_descriptors():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# The package preset's photond (what this test runs in `make test`) has no --test-clock.
HAS_TEST_CLOCK = photond_has_test_clock()

class FdExhaustionTest(BlackboxTest):
    def serve(self, photon_dir=None):
        if photon_dir is None:
            photon_dir = self.make_dir()
            with open(os.path.join(photon_dir, "photon.toml"), "w") as f:
                f.write(MANIFEST)
        d = self.daemon("fd", args=["--manifest", os.path.join(photon_dir, "photon.toml"),
                                    "--log-level", "warn"],
                        photon_dir=photon_dir, preexec_fn=limit_descriptors,
                        test_clock=HAS_TEST_CLOCK)
        if HAS_TEST_CLOCK:
            # The clock's connection is made now: once descriptors run out, accepting pauses until
            # the clock moves, and the clock could not be moved without it.
            d.clock()
        return d

    def exhaust(self, d):
        """Connects HELD clients and waits until the daemon has every descriptor its limit allows
        (the rest wait in the listen backlog); returns them."""
        held = []
        for _ in range(HELD):
            held.append(Client(d.sock_path))
        self.addCleanup(lambda: [c.close() for c in held])
        wait_until(lambda: open_descriptors(d.pid) >= LIMIT, message="the daemon out of descriptors")
        return held

    def release(self, d, control, held):
        """Closes the held clients and waits until the daemon has let every one of them go (the
        ones still in the listen backlog are accepted, and seen closed, once accepting resumes:
        after 100 ms of real time, or of the test clock)."""
        for c in held:
            c.close()
        others = 2 if HAS_TEST_CLOCK else 1  # `control`, and the clock's own connection
        wait_until(lambda: control.status()["connections"] == others, message="the held connections gone")
        if HAS_TEST_CLOCK:
            d.advance(100)

    def schedule(self, c, job_id, timezone="UTC"):
        return c.call({"type": "schedule", "id": f"s-{job_id}", "jobId": job_id, "method": "hello",
                       "cron": "* * * * * *", "timezone": timezone})

    def assert_fires(self, d, c, job_id):
        """Moves the clock over the next slot of `job_id` (every second) and waits for its run to
        complete (job-completed on jobs:fd)."""
        c.subscribe("jobs:fd", ident=f"sub-{job_id}")
        if HAS_TEST_CLOCK:
            d.advance(1000)
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = c.next_message(timeout=max(0.1, deadline - time.monotonic()))
            if message["message"]["event"] == "job-completed" and message["message"]["data"]["jobId"] == job_id:
                return

    def test_a_zone_and_the_job_database_first_needed_without_descriptors(self):
        # The job database exists (opened at start) but no zone has been used yet: the tz database
        # is first listed while every descriptor is taken.
        photon_dir = self.make_dir()
        with open(os.path.join(photon_dir, "photon.toml"), "w") as f:
            f.write(MANIFEST)
        d = self.serve(photon_dir)
        c = self.client(d)
        self.assertTrue(self.schedule(c, "seed")["data"]["scheduled"])
        self.assertTrue(c.call({"type": "unschedule", "id": "u", "jobId": "seed"})["success"])
        c.close()
        d.stop()

        d = self.serve(photon_dir)
        control = self.client(d)
        held = self.exhaust(d)
        reply = self.schedule(control, "during")
        self.assertEqual(reply["type"], "result", reply)
        self.assertEqual(reply["data"]["scheduled"], True,
                         f"the zone is loaded through the descriptor reserve: {reply}")
        self.assertIsNotNone(reply["data"]["nextRun"], reply)
        # Another zone, loaded while still out of descriptors.
        paris = self.schedule(control, "paris", "Europe/Paris")
        self.assertEqual((paris["type"], paris["data"]["scheduled"]), ("result", True), paris)
        # An exec method's pipes cannot be made now: a clear refusal, the connection stays.
        call = control.call({"type": "command", "id": "c1", "method": "hello", "args": {}})
        self.assertEqual(call["type"], "error", call)
        self.assertIn("pipe", call["error"], call)
        control.ping("still")

        self.release(d, control, held)
        # Nothing remembered: every zone loads, methods run, the job accepted meanwhile fires.
        for job_id, zone in [("after", "UTC"), ("tokyo", "Asia/Tokyo"), ("local", "")]:
            reply = self.schedule(control, job_id, zone)
            self.assertEqual(reply["data"]["scheduled"], True, reply)
            self.assertIsNotNone(reply["data"]["nextRun"], reply)
        call = control.call({"type": "command", "id": "c2", "method": "hello", "args": {}})
        self.assertEqual((call["type"], call.get("data")), ("result", 1), call)
        self.assert_fires(d, control, "during")
        control.close()
        d.stop()

        # Accepted while out of descriptors, kept across a restart.
        d = self.serve(photon_dir)
        c = self.client(d)
        jobs = {job["id"]: job for job in c.call({"type": "list_jobs", "id": "l"})["data"]["jobs"]}
        self.assertEqual(sorted(jobs), ["after", "during", "local", "paris", "tokyo"])
        self.assertTrue(all(job["nextRun"] is not None for job in jobs.values()), jobs)

    def test_a_job_database_that_cannot_be_opened_now_is_a_refusal_not_a_loss(self):
        d = self.serve()
        control = self.client(d)
        control.ping()
        held = self.exhaust(d)
        reply = self.schedule(control, "during")
        self.assertEqual(reply["type"], "result", reply)
        self.assertEqual(reply["data"]["scheduled"], False, reply)
        self.assertIn("try again", reply["data"]["reason"], reply)
        listed = control.call({"type": "list_jobs", "id": "l"})["data"]["jobs"]
        self.assertEqual(listed, [], "a refused job is not half-accepted")
        # The first lock must persist a block of fencing tokens (a new file): refused, not lost.
        lock = control.call({"type": "lock", "id": "k1", "lockName": "x"})
        self.assertEqual(lock["type"], "error", lock)
        self.assertIn("cannot issue a fencing token", lock["error"], lock)

        self.release(d, control, held)
        lock = control.call({"type": "lock", "id": "k2", "lockName": "x"})
        self.assertEqual((lock["type"], lock["data"]["acquired"], lock["data"]["token"]), ("result", True, 1), lock)
        reply = self.schedule(control, "after")
        self.assertEqual(reply["data"]["scheduled"], True, reply)
        self.assert_fires(d, control, "after")
        control.close()
        photon_dir = d.photon_dir
        d.stop()
        d = self.serve(photon_dir)
        c = self.client(d)
        jobs = [job["id"] for job in c.call({"type": "list_jobs", "id": "l"})["data"]["jobs"]]
        self.assertEqual(jobs, ["after"])


if __name__ == "__main__":
    unittest.main()
