#!/usr/bin/env bash
# The command line builds only the commands a run names (apps/radguard/cli.cpp, add_commands):
# help still lists every command, each command still parses as before, a run without one or
# with an unknown one is still a usage error, and a word that is another command's name does
# not change which command runs.
set -euo pipefail
radguard=$1
work=$(mktemp -d /tmp/radguard-commands-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
commands="share serve keygen deid consent ledger disclosures pseudonym export keys sign verify
  verify-release manifest redact deface config plan audit gateway"

for help in --help -h -hh --help=1 -h=1; do
  "$radguard" $help >"$work/help.txt" 2>&1 || fail "$help exits non-zero"
  for c in $commands; do
    grep -qE "^  $c( |$)" "$work/help.txt" || fail "$help does not list $c"
  done
done
# Help asked after a command's name shows that command's options.
"$radguard" deid --help >"$work/deid-help.txt" 2>&1 || fail "deid --help exits non-zero"
grep -q -- '--files-from' "$work/deid-help.txt" || fail "deid --help does not show --files-from"
"$radguard" plan merge --help >/dev/null 2>&1 || fail "plan merge --help exits non-zero"

"$radguard" --version | grep -qE '^[0-9]+\.[0-9]+\.[0-9]+$' || fail "--version"
# The process leaves without the libraries' teardown (apps/radguard/main.cpp), after a flush
# whose failure fails the run: a report that could not be written whole is no success.
if [ -w /dev/full ]; then
  rc=0; "$radguard" --version >/dev/full 2>"$work/full.txt" || rc=$?
  [ "$rc" -eq 1 ] || fail "--version into a full device: exit $rc, not 1"
  grep -q 'cannot write standard output' "$work/full.txt" || fail "full device: message"
fi

rc=0; "$radguard" >"$work/none.txt" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "no command: exit $rc, not 2"
grep -qi 'subcommand is required' "$work/none.txt" || fail "no command: message"
rc=0; "$radguard" deidd x y >"$work/typo.txt" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "unknown command: exit $rc, not 2"
grep -q 'unknown command "deidd"' "$work/typo.txt" || fail "unknown command: message"
rc=0; "$radguard" deid >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "deid without its inputs: exit $rc, not 2"

# redact on a folder without DICOM files is a mistake that says so (it printed "0 files", exit 0).
mkdir -p "$work/empty"
rc=0; "$radguard" redact "$work/empty" -o "$work/empty-out" --no-progress >"$work/empty.txt" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "redact of no DICOM input: exit $rc, not 1"
grep -q 'no DICOM input found' "$work/empty.txt" || fail "redact of no DICOM input: message"

# plan of a folder that is not there (or holds nothing) writes no plan: its empty shards would
# run and merge to a release of nothing.
for input in "$work/not-there" "$work/empty"; do
  rc=0; "$radguard" plan "$input" --shards 2 -o "$work/empty-plan" --no-progress >"$work/plan.txt" 2>&1 || rc=$?
  [ "$rc" -eq 1 ] || fail "plan of no input: exit $rc, not 1"
  grep -q 'no input found to plan' "$work/plan.txt" || fail "plan of no input: message"
  [ ! -e "$work/empty-plan" ] || fail "plan of no input wrote a plan folder"
done

# A key file named like another command: keygen writes it, and nothing else runs.
(cd "$work" && "$radguard" keygen deid >/dev/null 2>&1) || fail "keygen deid"
[ -s "$work/deid" ] || fail "keygen deid wrote no key"
echo "cli commands: ok"
