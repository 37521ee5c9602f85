# The Debian packages of `make package`: their dependencies, their contents, lintian, and photond
# and photonctl run from a root they were unpacked into with dpkg-deb -x.
import gzip
import json
import os
import subprocess

from shipped import PACKAGE_DIR, one, require_package_tree, run
from harness import BlackboxTest, TIMEOUT  # noqa: E402 (shipped puts it on the path)

ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
PACKAGES = ("photond", "libphoton-client0", "libphoton0", "libphoton-dev")


class DebTest(BlackboxTest):
    def setUp(self):
        require_package_tree(self)
        self.debs = {name: one(os.path.join(PACKAGE_DIR, f"{name}_*_{ARCH}.deb")) for name in PACKAGES}
        built = os.path.getmtime(os.path.join(PACKAGE_DIR, "photond"))
        for deb in self.debs.values():
            if os.path.getmtime(deb) < built:
                self.fail(f"{deb} is older than the photond it should hold: run `make package`")

    def field(self, name, field):
        return run(["dpkg-deb", "--field", self.debs[name], field]).strip()

    def contents(self, name):
        # "MODE OWNER SIZE DATE TIME PATH[ -> TARGET]"
        return [line.split()[5] for line in run(["dpkg-deb", "--contents", self.debs[name]]).splitlines()]

    def test_dependencies(self):
        daemon = self.field("photond", "Depends")
        # From dpkg-shlibdeps: the libraries photond and photonctl load.
        for library in ("libc6", "libstdc++6", "libsqlite3-0", "libhiredis0.14", "libboost-json1.81.0"):
            self.assertIn(library, daemon)
        client = self.field("libphoton-client0", "Depends")
        self.assertIn("libboost-json1.81.0", client)
        for library in ("libsqlite3", "libhiredis", "libssl", "libspdlog", "libfmt"):
            self.assertNotIn(library, client)
        version = self.field("photond", "Version")
        self.assertIn(f"libphoton-client0 (= {version})", self.field("libphoton0", "Depends"))
        dev = self.field("libphoton-dev", "Depends")
        for expected in (f"libphoton-client0 (= {version})", f"libphoton0 (= {version})", "libboost-json1.81-dev"):
            self.assertIn(expected, dev)

    def test_contents(self):
        self.assertTrue({"./usr/bin/photond", "./usr/bin/photonctl", "./usr/share/man/man8/photond.8.gz",
                         "./usr/share/man/man1/photonctl.1.gz"} <= set(self.contents("photond")))
        lib = f"./usr/lib/{run(['dpkg-architecture', '-qDEB_HOST_MULTIARCH']).strip()}"
        self.assertIn(f"{lib}/libphoton-client.so.0.1.0", self.contents("libphoton-client0"))
        self.assertIn(f"{lib}/libphoton.so.0.1.0", self.contents("libphoton0"))
        dev = set(self.contents("libphoton-dev"))
        for path in ("./usr/include/photon/client.hpp", "./usr/include/photon/photon.hpp", f"{lib}/libphoton.so",
                     f"{lib}/libphoton-client.so", f"{lib}/pkgconfig/photon.pc", f"{lib}/pkgconfig/photon-client.pc",
                     f"{lib}/cmake/photon/photon-config.cmake", f"{lib}/cmake/photon/photon-targets.cmake"):
            self.assertIn(path, dev)
        for name in PACKAGES:
            self.assertIn(f"./usr/share/doc/{name}/copyright", self.contents(name))

    def test_libraries_update_the_loader_cache_by_trigger(self):
        for name in ("libphoton-client0", "libphoton0"):
            control = self.make_dir()
            run(["dpkg-deb", "--control", self.debs[name], control])
            self.assertEqual(sorted(os.listdir(control)), ["control", "md5sums", "shlibs", "triggers"])
            with open(os.path.join(control, "triggers")) as f:
                self.assertEqual(f.read(), "activate-noawait ldconfig\n")
            with open(os.path.join(control, "shlibs")) as f:
                soname = "libphoton-client 0" if name == "libphoton-client0" else "libphoton 0"
                self.assertTrue(f.read().startswith(f"{soname} {name} (>= "))

    def test_lintian_finds_no_error(self):
        done = subprocess.run(["lintian", "--fail-on", "error", *self.debs.values()], capture_output=True, text=True,
                              timeout=TIMEOUT * 15)
        errors = [line for line in done.stdout.splitlines() if line.startswith("E:")]
        self.assertEqual(errors, [], done.stdout + done.stderr)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)

    def test_unpacked_binaries_run(self):
        root = self.make_dir()
        for deb in self.debs.values():
            run(["dpkg-deb", "--extract", deb, root])
        photond = os.path.join(root, "usr", "bin", "photond")
        photonctl = os.path.join(root, "usr", "bin", "photonctl")
        for program in (photond, photonctl):
            for library in run(["readelf", "-d", program]).split():
                self.assertFalse(library.strip("[]").startswith("libphoton"), f"{program} needs {library}")

        photon_dir = self.make_dir()
        self.daemon("shipped", photon_dir=photon_dir, program=[photond, "serve"])
        env = dict(os.environ, PHOTON_DIR=photon_dir)

        def ctl(*args):
            return subprocess.run([photonctl, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT * 2,
                                  stdin=subprocess.DEVNULL)

        self.assertEqual(ctl("ping", "shipped").returncode, 0)
        locked = ctl("lock", "shipped", "release", "--", "sh", "-c", 'echo "token $PHOTON_LOCK_TOKEN"')
        self.assertEqual((locked.returncode, locked.stdout), (0, "token 1\n"), locked.stderr)
        status = ctl("--json", "status", "shipped")
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertEqual(json.loads(status.stdout)["name"], "shipped")

        # The man pages are the programs' help.
        for page, title, text in (("man8/photond.8.gz", "PHOTOND", "serve"),
                                  ("man1/photonctl.1.gz", "PHOTONCTL", "schedule")):
            with gzip.open(os.path.join(root, "usr", "share", "man", page), "rt") as f:
                troff = f.read()
            self.assertIn(f'.TH {title} "', troff)
            self.assertIn(text, troff)
            self.assertIn("PHOTON_DIR", troff)
