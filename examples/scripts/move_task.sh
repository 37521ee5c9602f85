#!/bin/sh
# moveTask {taskId, column}: moves a task, tells the board's subscribers through a channel emit,
# reports progress to the caller, and returns a result object.
set -eu
args=$(cat)
# Each argument as a JSON literal (1, "abc", null), ready to print into JSON.
arg() {
  printf '%s' "$args" | python3 -c '
import json, sys
print(json.dumps(json.load(sys.stdin).get(sys.argv[1])))' "$1"
}
task=$(arg taskId)
column=$(arg column)
if [ "$task" = null ] || [ "$column" = null ]; then
  echo '{"error":"moveTask needs taskId and column"}'
  exit 0
fi

# No "channel": progress for the caller only.
echo '{"emit":{"emit":"progress","value":0.5,"message":"moving the task"}}'
# ... the real work would happen here ...
echo "moved $task to $column" >&2  # stderr: kept for the error message if we fail, else dropped
# With a "channel": published to every subscriber of board:scripts.
printf '{"emit":{"channel":"%s","event":"task-moved","data":{"taskId":%s,"column":%s}}}\n' \
  "$BOARD_CHANNEL" "$task" "$column"
printf '{"result":{"moved":true,"taskId":%s,"column":%s}}\n' "$task" "$column"
