# photond's entry points. `make run` and `make test` each work alone on a fresh Debian 12 machine
# (as root, or with sudo): they install what is missing, configure, build, then run or test.
.PHONY: deps build run run-scripts test test-browser asan fuzz-build tsan-build fuzz bench tsan format clean

JOBS ?= $(shell nproc)

deps:
	./scripts/install-deps

build: deps
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
tsan-build: deps
	cmake --preset tsan
	cmake --build --preset tsan -j $(JOBS) --target photond photon_lock_client_tests photon_method_tests photon_store_tests photon_http_tests

asan: deps fuzz-build tsan-build
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)

# The whole suite under ASan+UBSan: unit tests, black-box tests of the real binaries, a bounded
# fuzzing run, and the threaded client tests under TSan.
test: asan
	ctest --preset asan -j $(JOBS)

# Fuzzes request parsing and dispatch until stopped (new inputs go to fuzz/corpus).
fuzz: fuzz-build
	./build/fuzz/fuzz/request_fuzzer -dict=fuzz/request.dict fuzz/corpus

# Only the real-browser test of the dashboard (headless Chromium); `make test` runs it too.
test-browser: asan
	ctest --preset asan -L browser --output-on-failure

tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan -j $(JOBS)

bench: build
	./build/default/bench/photon_bench --photond ./build/default/photond

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf build
