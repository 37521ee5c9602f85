#!/usr/bin/python3
# style.tidy: clang-tidy with the checks of .clang-tidy over every .cpp file of src/; any finding fails.
"""clang-tidy needs one compile command per source file, and a unity build's compile_commands.json
has one per batch of files. So this configures (without building) a tree of its own with unity
builds off, with the compiler and flags of the build under test, checks that its database names
every .cpp file of src/ (so none escapes the check), and runs run-clang-tidy over them.

usage: run_tidy.py SOURCE_DIR BUILD_DIR RUN_CLANG_TIDY"""

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


def main():
    source_dir, build_dir, run_clang_tidy = sys.argv[1:4]
    database = os.path.join(build_dir, "tidy-database")
    configure = ["cmake", "-S", source_dir, "-B", database, "-G", "Ninja",
                 "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", "-DPHOTON_UNITY_BUILD=OFF",
                 "-DPHOTON_BUILD_TESTS=OFF", "-DPHOTON_BUILD_BENCH=OFF", "-DPHOTON_BUILD_EXAMPLES=OFF"]
    for key in ("CMAKE_CXX_COMPILER", "CMAKE_CXX_FLAGS", "CMAKE_BUILD_TYPE", "CMAKE_PREFIX_PATH",
                "CMAKE_TOOLCHAIN_FILE", "PHOTON_TEST_CLOCK"):
        configure.append(f"-D{key}={cache_value(build_dir, key)}")
    subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)

    with open(os.path.join(database, "compile_commands.json")) as f:
        listed = {os.path.realpath(entry["file"]) for entry in json.load(f)}
    sources = {os.path.realpath(path) for path in glob.glob(os.path.join(source_dir, "src", "**", "*.cpp"), recursive=True)}
    missing = sorted(sources - listed)
    if missing:
        print("style.tidy: not in the compile database, so not checked:", *missing, sep="\n  ")
        return 1
    print(f"style.tidy: {len(sources)} files of src/")
    return subprocess.run([run_clang_tidy, "-p", database, "-quiet", "-j", "2",
                           re.escape(os.path.join(os.path.realpath(source_dir), "src", "")) + r".*\.cpp$"]).returncode


if __name__ == "__main__":
    sys.exit(main())
