# `cmake --install` into a temporary prefix, then the out-of-tree examples (examples/out-of-tree)
# built against it with find_package(photon) and with pkg-config, and run against a daemon.
import json
import os
import subprocess

from shipped import (DAEMON_LIBRARIES, EXAMPLES, PACKAGE_DIR, needed, one, require_package_tree,
                     run)
from harness import BlackboxTest, TIMEOUT  # noqa: E402 (shipped puts it on the path)


class InstallTest(BlackboxTest):
    def setUp(self):
        require_package_tree(self)
        self.work = self.make_dir()
        self.prefix = os.path.join(self.work, "prefix")
        run(["cmake", "--install", PACKAGE_DIR, "--prefix", self.prefix])
        self.libdir = os.path.dirname(one(f"{self.prefix}/lib*/**/libphoton-client.so"))

    def test_the_tree_holds_what_clients_and_photons_need(self):
        for path in ("bin/photond", "bin/photonctl", "include/photon/client.hpp",
                     "include/photon/lock_guard.hpp", "include/photon/photon.hpp",
                     "share/man/man8/photond.8.gz", "share/man/man1/photonctl.1.gz"):
            self.assertTrue(os.path.isfile(os.path.join(self.prefix, path)), path)
        for name in ("libphoton-client.so", "libphoton.so"):
            # The development link, the soname link, the versioned file.
            self.assertEqual(os.readlink(os.path.join(self.libdir, name)), f"{name}.0")
            self.assertEqual(os.readlink(os.path.join(self.libdir, f"{name}.0")), f"{name}.0.1.0")
        for pc in ("photon-client.pc", "photon.pc"):
            with open(os.path.join(self.libdir, "pkgconfig", pc)) as f:
                self.assertIn(f"prefix={self.prefix}\n", f.read())
        self.assertTrue(os.path.isfile(os.path.join(self.libdir, "cmake", "photon", "photon-config.cmake")))

    def test_the_shipped_daemon_has_no_test_clock(self):
        # --test-clock exists only in test builds (PHOTON_TEST_CLOCK): a shipped daemon refuses it.
        photond = os.path.join(self.prefix, "bin", "photond")
        self.assertNotIn("--test-clock", run([photond, "serve", "--help"]))
        result = subprocess.run([photond, "serve", "t", "--test-clock"], capture_output=True, text=True,
                                timeout=TIMEOUT, env=dict(os.environ, PHOTON_DIR=self.work))
        self.assertEqual(result.returncode, 2)
        self.assertIn("--test-clock", result.stderr)

    def test_public_headers_compile_alone_from_the_installed_tree(self):
        # Each header with nothing but the installed include directory: none reaches into src/.
        for header in ("client.hpp", "lock_guard.hpp", "photon.hpp"):
            source = os.path.join(self.work, f"{header}.cpp")
            with open(source, "w") as f:
                f.write(f"#include <photon/{header}>\n")
            run(["g++", "-std=c++20", "-fsyntax-only", "-I", os.path.join(self.prefix, "include"), source])

    def test_the_client_library_links_nothing_of_the_daemon(self):
        client_lib = os.path.join(self.libdir, "libphoton-client.so.0")
        for library in needed(client_lib):
            self.assertFalse(library.startswith(DAEMON_LIBRARIES), f"libphoton-client needs {library}")
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(self.libdir, "pkgconfig"))
        libs = run(["pkg-config", "--libs", "photon-client"], env=env).split()
        self.assertEqual([flag for flag in libs if flag.startswith("-l")], ["-lphoton-client", "-lboost_json"])
        # libphoton exports the embedding API, not the daemon inside it.
        symbols = run(["nm", "-D", "--defined-only", "-C", os.path.join(self.libdir, "libphoton.so.0")])
        self.assertIn("photon::serve(photon::PhotonDefinition, int, char**)", symbols)
        self.assertNotIn("photon::daemon::", symbols)
        self.assertNotIn("spdlog::", symbols)

    def test_out_of_tree_examples_build_and_run_against_the_installed_tree(self):
        builds = {}
        for example in ("photon", "client"):
            build = os.path.join(self.work, f"build-{example}")
            run(["cmake", "-S", os.path.join(EXAMPLES, example), "-B", build, "-G", "Ninja",
                 "-DCMAKE_CXX_COMPILER=g++", f"-DCMAKE_PREFIX_PATH={self.prefix}"])
            run(["cmake", "--build", build])
            builds[example] = build
        pkg_build = os.path.join(self.work, "build-pkg-config")
        os.mkdir(pkg_build)
        run(["make", "-s", "-C", os.path.join(EXAMPLES, "pkg-config"), f"OUT={pkg_build}", "CXXFLAGS=-O0",
             f"PKG_CONFIG_PATH={os.path.join(self.libdir, 'pkgconfig')}"])

        cmake_client = os.path.join(builds["client"], "greet_client")
        pkg_client = os.path.join(pkg_build, "greet_client")
        for client in (cmake_client, pkg_client):
            self.assertIn("libphoton-client.so.0", needed(client))
            for library in needed(client):
                self.assertFalse(library.startswith(DAEMON_LIBRARIES), f"{client} needs {library}")
        self.assertIn("libphoton.so.0", needed(os.path.join(builds["photon"], "greeter")))

        # The CMake builds find the libraries by their RPATH, the pkg-config builds by
        # LD_LIBRARY_PATH (as a program against a prefix outside the loader's path would).
        cases = [(os.path.join(builds["photon"], "greeter"), cmake_client, {}, "Ann"),
                 (os.path.join(pkg_build, "greeter"), pkg_client, {"LD_LIBRARY_PATH": self.libdir}, "Bo")]
        for greeter, client, extra_env, who in cases:
            with self.subTest(greeter=greeter):
                photon_dir = self.make_dir()
                self.daemon("greeter", photon_dir=photon_dir, env=extra_env, program=[greeter])
                env = harness_env(photon_dir, extra_env)
                done = subprocess.run([client, "greeter", who], env=env, capture_output=True, text=True,
                                      timeout=TIMEOUT * 2, stdin=subprocess.DEVNULL)
                self.assertEqual(done.returncode, 0, done.stderr)
                lines = done.stdout.splitlines()
                self.assertEqual(len(lines), 3, done.stdout)
                self.assertEqual(lines[0], "lock greeting held with token 1")
                self.assertEqual(lines[1], f'result: "hello, {who}"')
                channel, _, message = lines[2].partition(": ")
                self.assertEqual(channel, "greetings")
                self.assertEqual(json.loads(message), {"channel": "greetings", "event": "greeted", "who": who})

                # The installed photonctl speaks to the same photon.
                called = subprocess.run([os.path.join(self.prefix, "bin", "photonctl"), "call", "greeter",
                                         "hello", "who=Cy"], env=env, capture_output=True, text=True,
                                        timeout=TIMEOUT * 2, stdin=subprocess.DEVNULL)
                self.assertEqual((called.returncode, called.stdout.strip()), (0, "hello, Cy"), called.stderr)


def harness_env(photon_dir, extra):
    env = dict(os.environ, PHOTON_DIR=photon_dir)
    env.update(extra)
    return env

