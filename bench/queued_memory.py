#!/usr/bin/env python3
# Memory a daemon spends on messages queued for a subscriber that does not read, and whether it
# gives that memory back once the queue is gone.
#
# Usage: bench/queued_memory.py PHOTOND [N] [BYTES]     RSS growth while N small publishes wait
#        bench/queued_memory.py PHOTOND --burst [BYTES] a subscriber that never reads is cut at its
#                                                       32 MiB bound; RSS idle, at the peak, and
#                                                       after the burst (exit status 1 unless back
#                                                       within 2x of idle within 5 s)
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Daemon:
    def __init__(self, binary):
        self.photon_dir = tempfile.mkdtemp()
        self.process = subprocess.Popen([binary, "serve", "q", "--idle-timeout", "0"],
                                        env={**os.environ, "PHOTON_DIR": self.photon_dir},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.path = os.path.join(self.photon_dir, "daemons", "q.sock")
        deadline = time.monotonic() + 10
        while not os.path.exists(self.path):
            if time.monotonic() > deadline:
                raise RuntimeError("the daemon did not start")
            time.sleep(0.01)

    def connect(self):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.path)
        return s

    def rss_kb(self):
        return rss_kb(self.process.pid)

    def stop(self):
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.photon_dir, ignore_errors=True)


def silent_subscriber(daemon):
    """Subscribes, then never reads again (a small receive buffer keeps the backlog in the daemon)."""
    subscriber = daemon.connect()
    subscriber.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    subscriber.sendall(b'{"type":"subscribe","id":"s","channel":"c"}\n')
    return subscriber


def publisher_of(daemon):
    publisher = daemon.connect()
    replies = publisher.makefile("rb")
    publisher.sendall(b'{"type":"ping","id":"p"}\n')
    replies.readline()
    return publisher, replies


def queued(binary, count, size):
    daemon = Daemon(binary)
    try:
        subscriber = silent_subscriber(daemon)
        publisher, replies = publisher_of(daemon)
        time.sleep(0.2)
        before = daemon.rss_kb()
        line = json.dumps({"type": "publish", "id": "p", "channel": "c",
                           "message": {"text": "x" * size}}).encode() + b"\n"
        for _ in range(count):
            publisher.sendall(line)
            replies.readline()
        time.sleep(0.3)
        grown = daemon.rss_kb() - before
        print(f"{binary}: {count} messages of {size}-byte text queued for one subscriber: "
              f"RSS +{grown} kB ({grown * 1024 / count:.0f} bytes per message)")
        subscriber.close()
    finally:
        daemon.stop()


def burst(binary, size):
    daemon = Daemon(binary)
    try:
        subscriber = silent_subscriber(daemon)
        publisher, replies = publisher_of(daemon)
        time.sleep(0.2)
        idle = daemon.rss_kb()
        line = json.dumps({"type": "publish", "id": "p", "channel": "c",
                           "message": {"text": "x" * size}}).encode() + b"\n"
        peak = idle
        published = 0
        while True:  # until the daemon cuts the subscriber at its hard bound
            publisher.sendall(line)
            reply = json.loads(replies.readline())
            published += 1
            peak = max(peak, daemon.rss_kb()) if published % 64 == 0 else peak
            if reply["data"]["delivered"] == 0:
                break
            if published > 100000:
                raise RuntimeError("the subscriber was never cut")
        peak = max(peak, daemon.rss_kb())
        ended = time.monotonic()
        # RSS each 100 ms for 5 s after the burst.
        samples = []
        while time.monotonic() - ended < 5:
            samples.append((time.monotonic() - ended, daemon.rss_kb()))
            time.sleep(0.1)
        after = samples[-1][1]
        back = next((t for t, kb in samples if kb <= 2 * idle), None)
        print(f"{binary}: a subscriber that never reads cut at its bound after {published} messages "
              f"of {size}-byte text")
        print(f"  RSS idle {idle} kB, peak {peak} kB, 5 s after the burst {after} kB "
              f"({after / idle:.1f}x idle); within 2x of idle "
              + (f"after {back:.1f} s" if back is not None else "never in 5 s"))
        subscriber.close()
        return back is not None
    finally:
        daemon.stop()


def main():
    binary = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "--burst":
        size = int(sys.argv[3]) if len(sys.argv) > 3 else 8000
        sys.exit(0 if burst(binary, size) else 1)
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    queued(binary, count, size)


if __name__ == "__main__":
    main()
