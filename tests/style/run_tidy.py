#!/usr/bin/python3
# style.tidy: clang-tidy with the checks of .clang-tidy over every .cpp file of src/; any finding fails.
"""clang-tidy's cost is the size of each file's syntax tree, and Boost's headers are most of it:
checked one file at a time, the tree's 76 files took about 1100 s of CPU. So this configures (without
compiling) a tree of its own with unity builds of one batch per target, with the compiler and flags
of the build under test, generates the sources the batches include (the embedded page and
scripts), checks that the batches and single files together name every .cpp file of src/ (so none
escapes the check), and runs clang-tidy over them, two at a time. The batches live in the build
tree, where clang-tidy would find no .clang-tidy, so the source tree's is named; a finding in a
file a batch includes is reported under that file's own path (its HeaderFilterRegex takes in all of
src/).

usage: run_tidy.py SOURCE_DIR BUILD_DIR CLANG_TIDY"""

import concurrent.futures

import glob
import json
import os
import re
import subprocess
import sys


def cache_value(build_dir, key):
    with open(os.path.join(build_dir, "CMakeCache.txt")) as cache:
        for line in cache:
            name, _, rest = line.partition(":")
            if name == key:
                return rest.partition("=")[2].rstrip("\n")
    return ""


def files_checked(database):
    """Every file the compile database compiles, with the files each unity batch includes."""
    with open(os.path.join(database, "compile_commands.json")) as f:
        compiled = [os.path.realpath(entry["file"]) for entry in json.load(f)]
    checked = set()
    for path in compiled:
        checked.add(path)
        if path.endswith(".cxx"):
            with open(path) as batch:
                checked.update(os.path.realpath(included)
                               for included in re.findall(r'^#include "([^"]+)"', batch.read(), re.M))
    return compiled, checked


def main():
    source_dir, build_dir, clang_tidy = sys.argv[1:4]
    database = os.path.join(build_dir, "tidy-database")
    configure = ["cmake", "-S", source_dir, "-B", database, "-G", "Ninja",
                 "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", "-DPHOTON_UNITY_BUILD=ON",
                 "-DPHOTON_UNITY_BATCH_SIZE=0", "-DPHOTON_BUILD_TESTS=OFF",
                 "-DPHOTON_BUILD_BENCH=OFF", "-DPHOTON_BUILD_EXAMPLES=OFF"]
    for key in ("CMAKE_CXX_COMPILER", "CMAKE_CXX_FLAGS", "CMAKE_BUILD_TYPE", "CMAKE_PREFIX_PATH",
                "CMAKE_TOOLCHAIN_FILE", "PHOTON_TEST_CLOCK"):
        configure.append(f"-D{key}={cache_value(build_dir, key)}")
    subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)

    # The batches include generated sources; generating them compiles nothing.
    targets = subprocess.run(["ninja", "-C", database, "-t", "targets", "all"], check=True,
                             capture_output=True, text=True).stdout
    generated = sorted({line.partition(":")[0] for line in targets.splitlines()
                        if line.startswith("generated/") and line.partition(":")[0].endswith(".cpp")})
    if generated:
        subprocess.run(["ninja", "-C", database, *generated], check=True, stdout=subprocess.DEVNULL)

    compiled, checked = files_checked(database)
    sources = {os.path.realpath(path)
               for path in glob.glob(os.path.join(source_dir, "src", "**", "*.cpp"), recursive=True)}
    missing = sorted(sources - checked)
    if missing:
        print("style.tidy: not in the compile database, so not checked:", *missing, sep="\n  ")
        return 1
    print(f"style.tidy: {len(sources)} files of src/ in {len(compiled)} translation units")
    # Every entry of the database is ours (tests, benchmarks and examples are off), so check them all.
    config = os.path.join(source_dir, ".clang-tidy")

    def check(path):
        run = subprocess.run([clang_tidy, "-p", database, f"--config-file={config}", "--quiet", path],
                             capture_output=True, text=True)
        return path, run.returncode, run.stdout + run.stderr

    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for path, returncode, output in pool.map(check, compiled):
            if returncode != 0:
                failed += 1
                print(f"style.tidy: {os.path.relpath(path, database)}:\n{output}", flush=True)
    print(f"style.tidy: {failed} of {len(compiled)} translation units with findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
