# photonctl cron: the next fire times of an expression, computed by photonctl alone (no daemon):
# local times with offset and abbreviation, time zones and DST, --after forms, JSON, exit codes.
import json
import unittest

from harness import BlackboxTest, ctl

JAN_1_2026 = "1767225600"  # 2026-01-01T00:00:00Z


class CronCtlTest(BlackboxTest):
    def setUp(self):
        self.dir = self.make_dir()

    def cron(self, *args, env=None):
        return ctl(self.dir, "cron", *args, env=env)

    def lines(self, *args, env=None):
        p = self.cron(*args, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        return p.stdout.splitlines()

    def refused(self, *args, code=1):
        p = self.cron(*args)
        self.assertEqual(p.returncode, code, p.stdout + p.stderr)
        self.assertEqual(p.stdout, "")
        return p.stderr

    def test_weekdays_in_new_york(self):
        # 2026-11-26 is a Thursday; 12:00Z is 07:00 EST.
        self.assertEqual(
            self.lines("0 9 * * MON-FRI", "--tz", "America/New_York", "-n", "3",
                       "--after", "2026-11-26T12:00:00Z"),
            ["2026-11-26 09:00:00 -0500 EST", "2026-11-27 09:00:00 -0500 EST",
             "2026-11-30 09:00:00 -0500 EST"])

    def test_five_by_default(self):
        self.assertEqual(len(self.lines("*/10 * * * *", "--tz", "UTC")), 5)

    def test_skipped_and_repeated_local_times(self):
        # 02:30 does not exist on 2026-03-08 in New York: it fires when the gap ends, at 03:00 EDT.
        self.assertEqual(
            self.lines("30 2 * * *", "--tz", "America/New_York", "-n", "2", "--after", "2026-03-07T12:00:00Z"),
            ["2026-03-08 03:00:00 -0400 EDT", "2026-03-09 02:30:00 -0400 EDT"])
        # 01:30 happens twice on 2026-11-01: it fires at the first.
        self.assertEqual(
            self.lines("30 1 * * *", "--tz", "America/New_York", "-n", "2", "--after", "2026-10-31T12:00:00Z"),
            ["2026-11-01 01:30:00 -0400 EDT", "2026-11-02 01:30:00 -0500 EST"])
        self.assertEqual(
            self.lines("0 * * * *", "--tz", "Europe/London", "-n", "3", "--after", "2026-10-25T00:30:00+01:00"),
            ["2026-10-25 01:00:00 +0100 BST", "2026-10-25 02:00:00 +0000 GMT",
             "2026-10-25 03:00:00 +0000 GMT"])

    def test_after_forms(self):
        expected = ["2026-01-01 01:00:00 +0000 UTC", "2026-01-01 02:00:00 +0000 UTC"]
        for after in (JAN_1_2026, "2026-01-01", "2026-01-01T00:00", "2026-01-01 00:00:00",
                      "2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00", "2025-12-31T19:00:00-0500",
                      "2025-12-31T19:00:00-05"):
            self.assertEqual(self.lines("@hourly", "--tz", "UTC", "-n", "2", "--after", after), expected, after)
        # Without an offset, --after is a local time in --tz (a repeated one: its first occurrence).
        self.assertEqual(
            self.lines("*/15 * * * *", "--tz", "America/New_York", "-n", "1", "--after", "2026-11-01 01:30"),
            ["2026-11-01 01:45:00 -0400 EDT"])

    def test_seconds_field(self):
        self.assertEqual(self.lines("*/30 * * * * *", "--tz", "UTC", "-n", "2", "--after", JAN_1_2026),
                         ["2026-01-01 00:00:30 +0000 UTC", "2026-01-01 00:01:00 +0000 UTC"])

    def test_local_zone_from_tz(self):
        self.assertEqual(
            self.lines("0 12 1 7 *", "-n", "1", "--after", JAN_1_2026, env={"TZ": "Europe/London"}),
            ["2026-07-01 12:00:00 +0100 BST"])

    def test_json(self):
        p = ctl(self.dir, "--json", "cron", "0 9 * * MON-FRI", "--tz", "America/New_York", "-n", "2",
                "--after", "2026-11-26T12:00:00Z")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {
            "expression": "0 9 * * MON-FRI",
            "timeZone": "America/New_York",
            "next": [
                {"time": "2026-11-26T09:00:00-05:00", "epoch": 1795701600, "abbrev": "EST"},
                {"time": "2026-11-27T09:00:00-05:00", "epoch": 1795788000, "abbrev": "EST"},
            ]})

    def test_bad_expressions_and_zones(self):
        for args, message in [
            (("61 * * * *",), "minute 61 is out of range 0-59"),
            (("* * * FOO *",), 'unknown month name "FOO"'),
            (("*/0 * * * *",), 'step 0 in "*/0" must be at least 1'),
            (("* * * *",), "expected 5 or 6 fields, got 4"),
            (("0 0 30 2 *",), "never fires: February has no day 30"),
            (("@reboot",), "@reboot is not supported: jobs run on a schedule, not when the daemon starts"),
            (("0 9 * * *", "--tz", "Mars/Base"), 'unknown time zone "Mars/Base"'),
        ]:
            self.assertEqual(self.refused(*args), f"photonctl: {message}\n", args)

    def test_usage_errors(self):
        self.assertIn("--after", self.refused("0 9 * * *", "--after", "yesterday", code=2))
        self.assertIn("--after", self.refused("0 9 * * *", "--after", "2026-02-30", code=2))
        self.refused("0 9 * * *", "-n", "0", code=2)
        self.refused(code=2)


if __name__ == "__main__":
    unittest.main()
