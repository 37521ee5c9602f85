#!/usr/bin/env python3
"""The layers of src/: fails, naming the file and line, when a file includes a header of a layer
it may not use (a lower layer including a higher one, or a service reaching into another).

The table below is the architecture of docs/architecture.md; CMake links each folder's library
against the same layers, so an include that passes here also links."""

import pathlib
import re
import sys

# Each layer, and the layers its files may include (besides their own). A folder is one layer,
# except where a folder holds the interface its users see and the implementation above it.
ALLOWED = {
    "common": set(),
    # The catalogue of client-visible sentences: every layer that answers clients may use it.
    "words": {"common"},
    "protocol": {"common", "words"},
    "channels": {"common"},
    "locks": {"common", "words"},
    "method_api": {"common", "words", "protocol", "public"},
    "jobs": {"common", "words", "protocol", "method_api"},
    "webhooks": {"common", "words", "protocol", "method_api", "jobs"},
    "methods": {"common", "words", "protocol", "method_api", "jobs", "webhooks", "public"},
    "store": {"common"},
    "net": {"common", "words"},
    "broker_api": {"common", "words", "protocol", "channels", "locks", "jobs"},
    "broker": {"common", "words", "protocol", "channels", "locks", "jobs", "broker_api"},
    "ui": {"common", "words", "protocol", "channels", "net"},
    "daemon": {"common", "words", "protocol", "channels", "locks", "method_api", "jobs", "webhooks",
               "methods", "store", "net", "broker_api", "broker", "ui", "public"},
    "embed": {"daemon", "public"},
    "client": {"common", "public"},
    "cli": {"common", "words", "protocol", "jobs", "webhooks", "public"},
    "public": set(),
}

# Files that belong to another layer than their folder's.
FILE_LAYERS = {
    "methods/method_host.hpp": "method_api",
    "methods/method_args.hpp": "method_api",
    "methods/method_args.cpp": "method_api",
    "broker/broker.hpp": "broker_api",
    "protocol/error_messages.hpp": "words",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(relative: str) -> str:
    if relative in FILE_LAYERS:
        return FILE_LAYERS[relative]
    folder = relative.split("/", 1)[0]
    return "public" if folder == "photon" else folder


def main() -> int:
    root = pathlib.Path(__file__).resolve().parents[2]
    src = root / "src"
    problems = []
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".cpp", ".hpp", ".h"):
            continue
        relative = path.relative_to(src).as_posix()
        own = layer_of(relative)
        if own not in ALLOWED:
            problems.append(f"src/{relative}: folder {own}/ is not in the layer table")
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = INCLUDE.match(line)
            if not match:
                continue
            target = layer_of(match.group(1))
            if target != own and target not in ALLOWED[own]:
                problems.append(f"src/{relative}:{number}: the {own} layer includes "
                                f"{match.group(1)} of the {target} layer")
    for problem in problems:
        print(problem)
    print(f"{len(problems)} include(s) across layers that the table does not allow")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
