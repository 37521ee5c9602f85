#!/usr/bin/env python3
"""Compiles the ```cpp blocks of README.md and docs/*.md against the public headers of include/,
with the project's warnings as errors, so a sample that no longer compiles fails the suite.

A block is a whole translation unit unless an HTML comment on the line before its fence (invisible
on GitHub) says it is a fragment:

  <!-- cpp fragment -->           statements: put in a function body (its #include lines first)
  <!-- cpp fragment=member -->    members of a class: put in a struct (photon/photon.hpp included)
  <!-- cpp skip -->               not compiled (pseudo-code); say why in the text

Usage: compile_samples.py CXX REPO [FLAG...]; exits 1 naming every block that failed."""

import pathlib
import re
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^```(\S*)\s*$")
MARK = re.compile(r"^<!--\s*cpp\s+(fragment(?:=member)?|skip)\s*-->\s*$")
# Warnings a fragment cannot avoid: a sample shows a value it never uses.
FRAGMENT_FLAGS = ["-Wno-unused-variable", "-Wno-unused-parameter", "-Wno-unused-but-set-variable"]


def blocks(path: pathlib.Path):
    """(line of the fence, mark or None, code) of each cpp block of `path`."""
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start = i
        language = fence.group(1)
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if language != "cpp":
            continue
        previous = lines[start - 1] if start > 0 else ""
        mark = MARK.match(previous)
        yield start + 1, (mark.group(1) if mark else None), "\n".join(body) + "\n"


def translation_unit(mark, code: str) -> str:
    if mark is None:
        return code
    includes = [line for line in code.splitlines() if line.startswith("#include")]
    rest = "\n".join(line for line in code.splitlines() if not line.startswith("#include"))
    if mark == "fragment=member":
        return ("#include <photon/photon.hpp>\n" + "\n".join(includes) +
                "\nstruct DocSample {\n" + rest + "\n};\n")
    return "\n".join(includes) + "\n[[maybe_unused]] static void doc_sample() {\n" + rest + "\n}\n"


def main() -> int:
    compiler, repo, *flags = sys.argv[1:]
    root = pathlib.Path(repo)
    files = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    failed, compiled = [], 0
    with tempfile.TemporaryDirectory() as work:
        for path in files:
            for line, mark, code in blocks(path):
                if mark == "skip":
                    continue
                name = f"{path.relative_to(root)}:{line}"
                source = pathlib.Path(work) / f"sample_{compiled}.cpp"
                source.write_text(translation_unit(mark, code))
                command = [compiler, "-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                           "-I", str(root / "include"), *flags, str(source)]
                if mark is not None:
                    command[1:1] = FRAGMENT_FLAGS
                result = subprocess.run(command, capture_output=True, text=True)
                compiled += 1
                if result.returncode != 0:
                    failed.append(name)
                    print(f"{name}: the sample does not compile:\n{result.stderr}")
                else:
                    print(f"{name}: compiles")
    print(f"{compiled} sample(s) compiled, {len(failed)} failed")
    return 1 if failed or compiled == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
