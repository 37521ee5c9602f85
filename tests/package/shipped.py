# What the package tests share: where the package tree is, running commands, reading ELF NEEDED
# entries, and a daemon of an installed (or unpacked) program.
"""PHOTON_PACKAGE_DIR names the package preset's build tree (ctest sets it)."""

import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "blackbox"))

import harness  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PACKAGE_DIR = os.environ.get("PHOTON_PACKAGE_DIR", os.path.join(REPO, "build", "package"))
EXAMPLES = os.path.join(REPO, "examples", "out-of-tree")

# What the client library and its programs must not load: the daemon's libraries.
DAEMON_LIBRARIES = ("libphoton.so", "libsqlite3", "libhiredis", "libssl", "libcrypto", "libspdlog",
                    "libfmt", "libtomlplusplus", "libboost_url")


def run(args, env=None, cwd=None, timeout=300):
    """Runs args; fails the test with the command's output when it exits non-zero."""
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def needed(path):
    """The DT_NEEDED entries of an ELF file."""
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run(["readelf", "-d", path]))


def one(pattern):
    """The single path matching pattern (a glob); fails when there are none or several."""
    found = glob.glob(pattern, recursive=True)
    if len(found) != 1:
        raise AssertionError(f"expected one match for {pattern}, found {found}")
    return found[0]


def require_package_tree(test):
    if not os.path.isfile(os.path.join(PACKAGE_DIR, "photond")):
        test.fail(f"no package build in {PACKAGE_DIR}: run `make package` first")
