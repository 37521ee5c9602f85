#!/bin/sh
# confirmDelete {taskId}: asks the caller to confirm, then says whether it was confirmed.
# The method is interactive: stdin stays open after the args line, and each prompt's answer
# arrives on it as one JSON line (null when the caller declined or did not answer).
set -eu
IFS= read -r args  # the first line only: `cat` would wait for an end that never comes
# The task as a JSON literal, and the question as a JSON string (python3 does the JSON).
task=$(printf '%s' "$args" | python3 -c '
import json, sys
print(json.dumps(json.load(sys.stdin).get("taskId", 1)))')
message=$(printf '%s' "$task" | python3 -c '
import json, sys
task = json.load(sys.stdin)
print(json.dumps("Delete task %s?" % (task if isinstance(task, str) else json.dumps(task))))')

printf '{"prompt":{"type":"confirm","message":%s,"default":false}}\n' "$message"
IFS= read -r answer || answer=null
if [ "$answer" = true ]; then confirmed=true; else confirmed=false; fi
# ... delete the task when confirmed ...
printf '{"result":{"taskId":%s,"confirmed":%s}}\n' "$task" "$confirmed"
