#!/usr/bin/python3
# Reproduces the soak's finding slot-runs-again-after-kill, fixed since (docs/testing.md); not run by ctest.
"""SIGKILLs photond just after a job slot's run started and restarts it at once, ROUNDS times
(default 20), then reads job_history: a slot with two runs (the interrupted one and a second run of
the same scheduledFor) is the finding. Exit 1 when it shows, 0 when every slot ran once.

    PHOTOND=/path/to/photond /usr/bin/python3 tests/soak/repro_slot_after_kill.py [ROUNDS]
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

PHOTOND = os.environ.get("PHOTOND") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
                                                     "default", "photond")
DEADLINE = 30.0


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    base = tempfile.mkdtemp(prefix="rk", dir="/tmp")
    with open(f"{base}/m.toml", "w") as f:
        f.write('[methods.tick]\ncommand = "cat >/dev/null; sleep 0.2; echo 1"\n')
    env = dict(os.environ, PHOTON_DIR=base)
    sock = f"{base}/daemons/j.sock"

    def start():
        proc = subprocess.Popen([PHOTOND, "serve", "j", "--manifest", f"{base}/m.toml", "--log-level", "warn"],
                                env=env, stdout=open(f"{base}/out", "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                conn = socket.socket(socket.AF_UNIX)
                conn.settimeout(DEADLINE)
                conn.connect(sock)
                return proc, conn, conn.makefile("rb")
            except OSError:
                if proc.poll() is not None:
                    sys.exit(f"photond exited: {open(base + '/out').read()[-500:]}")
                time.sleep(0.01)
        sys.exit("photond did not answer")

    def call(conn, lines, obj):
        conn.sendall(json.dumps(obj).encode() + b"\n")
        while True:
            reply = json.loads(lines.readline())
            if reply.get("id") == obj["id"]:
                return reply

    proc, conn, lines = start()
    try:
        call(conn, lines, {"type": "schedule", "id": "s", "jobId": "tick", "method": "tick", "cron": "* * * * * *"})
        for _ in range(rounds):
            call(conn, lines, {"type": "subscribe", "id": "sub", "channel": "jobs:j"})
            while True:  # a run has started: kill the daemon now
                message = json.loads(lines.readline())
                if message.get("type") == "channel_message" and message["message"].get("event") == "job-started":
                    break
            proc.kill()
            proc.wait()
            conn.close()
            proc, conn, lines = start()
        # The last restart's slot has ended once its job-completed arrives.
        call(conn, lines, {"type": "subscribe", "id": "sub", "channel": "jobs:j"})
        while True:
            message = json.loads(lines.readline())
            if message.get("type") == "channel_message" and message["message"].get("event") == "job-completed":
                break
        runs = call(conn, lines, {"type": "job_history", "id": "h", "jobId": "tick", "limit": 100})["data"]["runs"]
    finally:
        proc.kill()
        proc.wait()
    by_slot = {}
    for run in runs:
        by_slot.setdefault(run["scheduledFor"], []).append(run)
    twice = {slot: found for slot, found in by_slot.items() if len(found) > 1}
    print(f"{rounds} SIGKILLs just after a run started; slots run twice: {len(twice)}")
    for slot, found in sorted(twice.items()):
        for run in sorted(found, key=lambda r: r["runId"]):
            print(f"  slot {slot}: run {run['runId']} trigger {run['trigger']} started {run['startedAt']} "
                  f"status {run['status']} interrupted {run['interrupted']} {run['error']!r}")
    shutil.rmtree(base, ignore_errors=True)
    return 1 if twice else 0


if __name__ == "__main__":
    sys.exit(main())
