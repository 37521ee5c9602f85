#!/bin/sh
# hello {who}: prints a greeting. There is no result line, so the plain stdout ("Hello, world!")
# is the call's result.
set -eu
args=$(cat)  # one line of JSON, then end of input (the method is not interactive)
# JSON in plain sh is painful: python3 picks the argument out.
who=$(printf '%s' "$args" | python3 -c '
import json, sys
who = json.load(sys.stdin).get("who")
print(who if isinstance(who, str) and who else "world")')
printf 'Hello, %s!\n' "$who"
