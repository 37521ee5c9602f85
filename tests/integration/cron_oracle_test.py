#!/usr/bin/python3
# Differential test of the cron engine against croniter (Debian's python3-croniter, an independent
# implementation): random valid 5-field expressions at random start times in UTC; the next fire
# times printed by cron_next must equal croniter's.
"""Usage: /usr/bin/python3 cron_oracle_test.py --cron-next PATH [--count N] [--seed S]

Run it with /usr/bin/python3: Debian's croniter is installed for the system interpreter only.

Where croniter 1.3.5 departs from cronie's crontab(5), which is what we implement, the generator
steers around the corner instead of bending our semantics:

1. The day-of-month/day-of-week OR rule. cronie applies it when neither field begins with '*'
   (its DOM_STAR/DOW_STAR flags); croniter when neither field's *expanded set* is complete. So:
   - `*/2` and the like begin with '*' but select only some days: cronie uses AND, croniter OR.
     Not excluded: croniter's own `day_or` parameter asks for AND, and we pass cronie's verdict.
   - A list that names every value (`1-31`, `0-6`, `SUN-SAT`, `1-7`) does not begin with '*':
     cronie uses OR, so every day fires; croniter collapses the list to '*' and uses AND, so only
     the other field's days fire. EXCLUDED (cron_test.cpp covers it: `0 0 1-31 * MON` fires daily).
2. With the OR rule, croniter first searches the day-of-month half on its own and raises
   CroniterBadDateError when that half never fires (`0 0 30 2 MON`), though the Mondays of
   February do. EXCLUDED (covered in cron_test.cpp).
3. Month ends: when the next listed day of month lies beyond the month's end, croniter adds the
   difference in days and so overshoots into the next month. Only February is short enough for
   the overshoot to pass matching days: with 30 or 31 listed, `0 0 1,31 * *` from mid-February
   lands on March 2 or 3 and misses March 1 (and 2). EXCLUDED when February, a day 30 or 31 and
   a day 1 or 2 are all selected (cron_test.cpp covers month ends and leap days).
4. croniter's 6-field form has the seconds field LAST; ours (and the brief's) has it FIRST. Only
   5-field expressions are generated.
Expressions that can never fire under cronie's rules (`0 0 30 2 *`) are generated on purpose: the
engine must refuse them with "never fires: ...", and croniter is not asked.
"""

import argparse
import datetime
import random
import subprocess
import sys
import time

from croniter import croniter

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (low, high, names or None) of minute, hour, day-of-month, month, day-of-week.
FIELDS = [(0, 59, None), (0, 23, None), (1, 31, None), (1, 12, MONTHS), (0, 7, DAYS)]
LONGEST = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
START = int(datetime.datetime(1995, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
END = int(datetime.datetime(2075, 1, 1, tzinfo=datetime.timezone.utc).timestamp())


def value(rng, index, v):
    """v as a number, or sometimes as a name in random case (never 7 for Sunday: no name means 7)."""
    low, high, names = FIELDS[index]
    if names and rng.random() < 0.4 and v - low < len(names):
        name = names[v - low]
        return rng.choice([name, name.upper(), name.capitalize()])
    return str(v)


def item(rng, index):
    low, high, _ = FIELDS[index]
    kind = rng.random()
    if kind < 0.35:
        return value(rng, index, rng.randint(low, high))
    if kind < 0.6:
        a = rng.randint(low, high)
        b = rng.randint(a, high)
        return f"{value(rng, index, a)}-{value(rng, index, b)}"
    if kind < 0.8:
        a = rng.randint(low, high)
        b = rng.randint(a, high)
        return f"{value(rng, index, a)}-{value(rng, index, b)}/{rng.randint(1, high - low + 2)}"
    return f"{value(rng, index, rng.randint(low, high))}/{rng.randint(1, high - low + 2)}"


def field(rng, index):
    low, high, _ = FIELDS[index]
    kind = rng.random()
    if kind < 0.3:
        return "*"
    if kind < 0.45:
        return f"*/{rng.randint(1, high - low + 3)}"
    if kind < 0.75:
        return item(rng, index)
    return ",".join(item(rng, index) for _ in range(rng.randint(2, 4)))


def expand(expanded, index):
    low, high, _ = FIELDS[index]
    if expanded[index] == ["*"]:
        return set(range(low, high + 1))
    return {int(v) for v in expanded[index]}


def classify(expr):
    """'never' (the engine must refuse it), 'skip' (a croniter corner above), or cronie's day_or."""
    fields = expr.split()
    cronie_or = not fields[2].startswith("*") and not fields[4].startswith("*")
    expanded = croniter(expr).expanded
    doms, months = expand(expanded, 2), expand(expanded, 3)
    dom_fits = any(d <= LONGEST[m] for m in months for d in doms)
    if not dom_fits and not cronie_or:
        return "never"
    if expanded[2] != ["*"] and 2 in months and doms & {30, 31} and doms & {1, 2}:
        return "skip"  # corner 3: croniter overshoots February's end
    if not cronie_or:
        return False
    if expanded[2] == ["*"] or expanded[4] == ["*"]:
        return "skip"  # corner 1: a complete list that does not begin with '*'
    if not dom_fits:
        return "skip"  # corner 2
    return True


def croniter_times(expr, start, count, day_or):
    it = croniter(expr, datetime.datetime.fromtimestamp(start, tz=datetime.timezone.utc), day_or=day_or)
    return [int(it.get_next(datetime.datetime).timestamp()) for _ in range(count)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cron-next", required=True, help="path of the cron_next tool")
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--fires", type=int, default=5, help="fire times compared per expression")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"cron oracle: seed {seed} (rerun with --seed {seed}), {args.count} expressions", flush=True)
    rng = random.Random(seed)

    cases = []
    skipped = 0
    while len(cases) < args.count:
        expr = " ".join(field(rng, i) for i in range(5))
        verdict = classify(expr)
        if verdict == "skip":
            skipped += 1
            continue
        cases.append((expr, rng.randint(START, END), verdict))

    began = time.monotonic()
    stdin = "".join(f"{expr}\t{start}\t{args.fires}\n" for expr, start, _ in cases)
    run = subprocess.run([args.cron_next], input=stdin, capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        print(f"cron_next exited with {run.returncode}:\n{run.stderr}")
        return 1
    lines = run.stdout.splitlines()
    if len(lines) != len(cases):
        print(f"cron_next printed {len(lines)} lines for {len(cases)} expressions")
        return 1
    engine_seconds = time.monotonic() - began

    failures = []
    refused = 0
    for (expr, start, verdict), line in zip(cases, lines):
        when = datetime.datetime.fromtimestamp(start, tz=datetime.timezone.utc).isoformat()
        if verdict == "never":
            refused += 1
            if not line.startswith("error: never fires: "):
                failures.append(f"{expr!r} never fires under cronie's rules; cron_next printed {line!r}")
            continue
        expected = croniter_times(expr, start, args.fires, verdict)
        if line.startswith("error:"):
            failures.append(f"{expr!r} after {when}: cron_next {line!r}, croniter {expected}")
            continue
        got = [int(v) for v in line.split()]
        if got != expected:
            failures.append(f"{expr!r} after {start} ({when}), day_or={verdict}:\n"
                            f"  cron_next {got}\n  croniter  {expected}")
    print(f"compared {len(cases) - refused} expressions x {args.fires} fire times, {refused} refused as "
          f"never firing, {skipped} generated in croniter's corners and skipped; engine "
          f"{engine_seconds:.2f} s, total {time.monotonic() - began:.2f} s")
    for failure in failures[:20]:
        print("MISMATCH " + failure)
    if failures:
        print(f"{len(failures)} mismatches (seed {seed})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
