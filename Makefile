# photond's entry points. `make run` and `make test` each work alone on a fresh Debian 12 machine
# (as root, or with sudo): they install what is missing, configure, build, then run or test.
.PHONY: stress deps deps-build deps-package build run run-scripts test test-browser soak model asan fuzz-build tsan-build fuzz bench tsan format clean package-build package install test-package

JOBS ?= $(shell nproc)
# ctest runs twice as many tests as there are cores: most black-box tests wait on sockets, the
# daemon and the test clock rather than compute, and none asserts a duration (docs/testing.md).
TEST_JOBS ?= $(shell echo $$(( $(JOBS) * 2 )))

# Everything the tests need; `make run` asks only for what building and running need.
deps:
	./scripts/install-deps test

deps-build:
	./scripts/install-deps build

deps-package:
	./scripts/install-deps package

build: deps-build
	cmake --preset default
	cmake --build --preset default -j $(JOBS)

# Runs the kanban photon's daemon in the foreground (Ctrl-C stops it): a C++ photon whose
# program is its own daemon (examples/kanban). Its dashboard listens on UI_PORT (0: a free port,
# shown in the log); `photonctl ui kanban` opens it.
UI_PORT ?= 0
run: build
	./build/default/examples/kanban --ui-port $(UI_PORT)

# Runs the scripts photon: shell-script methods named in a manifest (examples/scripts).
run-scripts: build
	./build/default/photond serve scripts --manifest examples/scripts/photon.toml

fuzz-build: deps
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS)

# The code where threads meet (LockGuard's renewal thread, the embedded method host's pool),
# built under TSan for `make test`.
# The TSan tree's lock client tests start the ASan tree's photond (built next, before any test runs):
# the threads that meet there are the client's.
tsan-build: deps
	cmake --preset tsan -DPHOTON_TEST_PHOTOND=$(CURDIR)/build/asan/photond
	cmake --build --preset tsan -j $(JOBS) --target photon_lock_client_tests photon_method_tests photon_exec_host_tests photon_store_tests photon_http_tests

asan: deps fuzz-build tsan-build
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)

# What the packages ship, built once in Release (no tests, benchmarks or examples): the tree that
# `make package` packs, `make install` installs, and `make test` checks (docs/operations.md).
package-build: deps-package
	cmake --preset package
	cmake --build --preset package -j $(JOBS)

# Debian packages in build/package: photond, libphoton-client0, libphoton0, libphoton-dev.
package: package-build
	cd build/package && cpack

# Installs into PREFIX (default /usr/local; DESTDIR is honoured): the binaries, man pages,
# libraries, headers, the CMake package and the pkg-config files.
PREFIX ?= /usr/local
install: package-build
	DESTDIR=$(DESTDIR) cmake --install build/package --prefix $(PREFIX)

# The whole suite under ASan+UBSan: unit tests, black-box tests of the real binaries, a bounded
# fuzzing run, the threaded client tests under TSan, and the install tree and Debian packages.
test: asan package
	ctest --preset asan -j $(TEST_JOBS)

# The soak and chaos run (docs/testing.md) against the default build's photond for SOAK_SECONDS:
# mixed traffic while daemons are killed, Redis restarted, descriptors exhausted and subscribers
# stalled; prints a report and fails on any broken invariant. `make test` runs 60 s of it.
SOAK_SECONDS ?= 600
soak: deps build
	PHOTOND=$(CURDIR)/build/default/photond SOAK_SECONDS=$(SOAK_SECONDS) /usr/bin/python3 tests/soak/soak.py

# The model test for MODEL_SECONDS (default 600): random operation sequences on the default build's
# photond, one daemon and two sharing a Redis, compared with the model after every step; exits
# non-zero on the first divergence, with its shrunk sequence (docs/testing.md, "The model test").
MODEL_SECONDS ?= 600
model: deps
	cmake --preset default
	cmake --build --preset default -j $(JOBS) --target photond
	PHOTOND=build/default/photond MODEL_SECONDS=$(MODEL_SECONDS) /usr/bin/python3 tests/model/test_protocol_model.py

# Installs the packages with dpkg -i, runs them from /usr/bin, builds the out-of-tree examples
# against them, and removes them (root; refuses when photond is installed already).
test-package: package
	./scripts/test-package build/package

# Fuzzes request parsing and dispatch until stopped (new inputs go to fuzz/corpus).
fuzz: fuzz-build
	./build/fuzz/fuzz/request_fuzzer -dict=fuzz/request.dict fuzz/corpus

# Only the real-browser test of the dashboard (headless Chromium); `make test` runs it too.
test-browser: asan
	ctest --preset asan -L browser --output-on-failure

# The suite's unit, integration, black-box, model and browser tests RUNS times in a row while
# stress-ng keeps every core busy; stops at the first failure (docs/testing.md).
RUNS ?= 10
stress: asan
	./scripts/stress-suite build/asan $(RUNS) -j $(JOBS) -L 'unit|integration|blackbox|model|browser'

tsan: deps
	cmake --preset tsan -DPHOTON_TEST_PHOTOND=
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan -j $(JOBS)

bench: build
	./build/default/bench/photon_bench --photond ./build/default/photond

format:
	clang-format -i $$(find src include tests fuzz bench examples -name '*.cpp' -o -name '*.hpp' -o -name '*.h')

clean:
	rm -rf build
