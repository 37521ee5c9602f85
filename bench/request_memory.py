# photond's RSS before, during and after 10,000 mixed requests of 0 B to 1 MiB on one connection
# (the mix of tests/blackbox/test_request_sizes.py): memory a large request used is given back.
# Usage: python3 bench/request_memory.py PHOTOND
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "blackbox"))
from harness import Client, try_ping  # noqa: E402
from test_request_sizes import RequestMix  # noqa: E402
photond = sys.argv[1]
d = tempfile.mkdtemp()
env = dict(os.environ, PHOTON_DIR=d)
p = subprocess.Popen([photond, "serve", "rss", "--log-level", "warn"], env=env)
sock = os.path.join(d, "daemons", "rss.sock")
while not os.path.exists(sock) or not try_ping(sock):
    time.sleep(0.05)
def rss():
    with open(f"/proc/{p.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
c = Client(sock)
c.ping("warm")
before = rss()
mix = RequestMix(1)
peak = before
for i in range(10000):
    ident, kind, request, size = mix.next()
    c.send(request)
    c.reply()
    if i % 500 == 0:
        peak = max(peak, rss())
c.ping("end")
time.sleep(1)
after = rss()
print(f"RSS before {before:.1f} MB, peak seen {peak:.1f} MB, 1 s after the last request {after:.1f} MB")
p.terminate()
p.wait()
shutil.rmtree(d, ignore_errors=True)
