#!/usr/bin/env python3
# Memory a daemon spends on messages queued for a subscriber that does not read: RSS growth while
# N small publishes wait in its output queue. Usage: bench/queued_memory.py PHOTOND [N] [BYTES]
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


def main():
    binary = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    photon_dir = tempfile.mkdtemp()
    daemon = subprocess.Popen([binary, "serve", "q", "--idle-timeout", "0"],
                              env={**os.environ, "PHOTON_DIR": photon_dir},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        path = os.path.join(photon_dir, "daemons", "q.sock")
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise RuntimeError("the daemon did not start")
            time.sleep(0.01)

        def connect():
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            return s

        # The subscriber subscribes, then never reads again (a small receive buffer keeps most of the
        # backlog in the daemon).
        subscriber = connect()
        subscriber.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        subscriber.sendall(b'{"type":"subscribe","id":"s","channel":"c"}\n')
        publisher = connect()
        replies = publisher.makefile("rb")
        publisher.sendall(b'{"type":"ping","id":"p"}\n')
        replies.readline()
        time.sleep(0.2)
        before = rss_kb(daemon.pid)
        line = json.dumps({"type": "publish", "id": "p", "channel": "c",
                           "message": {"text": "x" * size}}).encode() + b"\n"
        for _ in range(count):
            publisher.sendall(line)
            replies.readline()
        time.sleep(0.3)
        grown = rss_kb(daemon.pid) - before
        print(f"{binary}: {count} messages of {size}-byte text queued for one subscriber: "
              f"RSS +{grown} kB ({grown * 1024 / count:.0f} bytes per message)")
    finally:
        daemon.terminate()
        daemon.wait()
        shutil.rmtree(photon_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
