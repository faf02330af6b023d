#!/usr/bin/env bash
# Reports name inputs relative to the input as given, never by the folders above it (which
# can name the patient, and the report travels): a new user's trial found absolute paths in
# the reports of a relative input. Checked in the text summary, --json and --report, for
#   A. a relative folder input;  B. an absolute input through a link;  C. a relative file;
#   D. a --files-from list;  E. a plan's shard (whose errors must also tell apart two files of
#   one name in two folders) and the merged report;
# a plan.json whose folder is "/" beside a shard-like list (G), redact's reports (H),
# and the --files-from list's own handling (F): blank lines of spaces skipped, an unreadable
# or empty list a usage error (exit 2) naming the list and why.
#   cli_report_paths_test.sh RADGUARD
set -uo pipefail
radguard=$(readlink -f "${1:?usage: cli_report_paths_test.sh RADGUARD}")
work=$(mktemp -d /tmp/radguard-report-paths.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
[ -d "$samples" ] || fail "pydicom's sample files are missing (python3-pydicom)"

# zz_above: a folder above the input, as a patient's name would be. Two folders a/ and b/ each
# hold a CT (the same SOP Instance UID: the second is a duplicate naming the first) and a
# truncated bad.dcm (fails).
top=$work/data/patients/zz_above/smith_john
for d in a b; do
  mkdir -p "$top/$d"
  cp "$samples/CT_small.dcm" "$top/$d/ct.dcm"
  head -c 2000 "$samples/CT_small.dcm" >"$top/$d/bad.dcm"
done
"$radguard" keygen "$work/k.key" >/dev/null 2>&1 || fail "keygen"

# No output of a run may hold the folders above its input, nor any absolute path but the
# output folder the command named ("output" in JSON).
clean() {  # NAME FILE...
  local name=$1
  shift
  for f in "$@"; do
    [ -s "$f" ] || fail "$name: $f is empty"
    grep -v '^  "output": ' "$f" >"$work/checked"
    grep -q 'zz_above' "$work/checked" && fail "$name: $f names a folder above the input: $(grep -m1 zz_above "$f")"
    grep -q "$work" "$work/checked" && fail "$name: $f holds an absolute path: $(grep -m1 "$work" "$work/checked")"
  done
  return 0
}
run() {  # NAME ARGS...: a deid run, text, JSON and report file kept as $work/NAME.*
  local name=$1
  shift
  "$radguard" deid "$@" -o "$work/out-$name" -k "$work/k.key" --no-progress \
    --report "$work/$name.report.json" 2>"$work/$name.txt"
  "$radguard" deid "$@" -o "$work/out-$name" -k "$work/k.key" --no-progress --json \
    >"$work/$name.json" 2>/dev/null
  clean "$name" "$work/$name.txt" "$work/$name.json" "$work/$name.report.json"
}

# A. A relative folder input: files relative to it, the two bad.dcm told apart.
(cd "$work/data" && run A ./patients/zz_above/smith_john) || exit 1
grep -q 'error: a/bad.dcm' "$work/A.txt" || fail "A: the failure is not named a/bad.dcm: $(cat "$work/A.txt")"
grep -q '"input": "b/bad.dcm"' "$work/A.report.json" || fail "A: b/bad.dcm not in the report"
grep -q '"first_input": "a/ct.dcm"' "$work/A.report.json" || fail "A: the duplicate's first input"

# B. An absolute input through a link to the folder.
ln -s "$top" "$work/link"
run B "$work/link/"
grep -q '"input": "a/bad.dcm"' "$work/B.json" || fail "B: a/bad.dcm not in the JSON"

# C. A relative file input: its name.
(cd "$top/a" && run C ./bad.dcm) || exit 1
grep -q '"input": "bad.dcm"' "$work/C.json" || fail "C: the file input is not named by its name"

# D. A --files-from list of relative paths (each a file input: named by its name).
printf 'patients/zz_above/smith_john/a/bad.dcm\npatients/zz_above/smith_john/b/ct.dcm\n' >"$work/list.txt"
(cd "$work/data" && run D --files-from "$work/list.txt") || exit 1
grep -q '"input": "bad.dcm"' "$work/D.json" || fail "D: the listed file is not named by its name"

# E. A plan of the relative input and its shard: named relative to the plan's input, as one
# run over it would name them; the merged report too.
(cd "$work/data" && "$radguard" plan ./patients/zz_above/smith_john --shards 1 -o "$work/plan" \
  --no-progress >/dev/null 2>&1) || fail "E: plan"
mkdir -p "$work/plan/reports"
"$radguard" deid --files-from "$work/plan/shard-0000.txt" -o "$work/out-E" -k "$work/k.key" \
  --no-progress --report "$work/plan/reports/shard-0000.json" 2>"$work/E.txt"
clean E "$work/E.txt" "$work/plan/reports/shard-0000.json"
grep -q 'error: a/bad.dcm' "$work/E.txt" || fail "E: the shard's failure is not named a/bad.dcm: $(cat "$work/E.txt")"
grep -q '"input": "b/bad.dcm"' "$work/plan/reports/shard-0000.json" || fail "E: b/bad.dcm not in the shard's report"
"$radguard" plan merge "$work/plan" >"$work/merge.txt" 2>&1
clean merge "$work/merge.txt" "$work/plan/report.json"
grep -q '"input": "a/bad.dcm"' "$work/plan/report.json" || fail "E: a/bad.dcm not in the merged report"

# F. The list itself. A line of spaces names nothing (it was taken for a missing input).
printf '%s/a/ct.dcm\n   \n\t\n' "$top" >"$work/spaces.txt"
"$radguard" deid --files-from "$work/spaces.txt" -o "$work/out-F" -k "$work/k.key" --no-progress \
  --json >"$work/F.json" 2>/dev/null || fail "F: a list with lines of spaces failed: $(cat "$work/F.json")"
grep -q '"missing_inputs": 0' "$work/F.json" || fail "F: a line of spaces was taken for an input"
expect_usage() {  # NAME LIST WHY: exit 2, the list and why named
  local rc=0
  "$radguard" deid --files-from "$2" -o "$work/out-F" -k "$work/k.key" --no-progress \
    >/dev/null 2>"$work/F.err" || rc=$?
  [ "$rc" -eq 2 ] || fail "F: $1: exit $rc (usage is 2): $(cat "$work/F.err")"
  grep -q -- "$2" "$work/F.err" || fail "F: $1: the list is not named: $(cat "$work/F.err")"
  grep -q -- "$3" "$work/F.err" || fail "F: $1: no reason '$3': $(cat "$work/F.err")"
}
expect_usage "a folder" "$work/data" "it is a folder"
expect_usage "a missing list" "$work/no-such-list.txt" "No such file or directory"
: >"$work/empty.txt"
expect_usage "an empty list" "$work/empty.txt" "names no file"
printf '  \n\n' >"$work/blank.txt"
expect_usage "a list of blank lines" "$work/blank.txt" "names no file"
if [ "$(id -u)" -ne 0 ]; then  # root reads any file
  printf '%s/a/ct.dcm\n' "$top" >"$work/secret.txt"
  chmod 000 "$work/secret.txt"
  expect_usage "an unreadable list" "$work/secret.txt" "Permission denied"
fi
# G. A plan.json whose input folder is "/" (not this list's plan, or a hostile one) beside a
# list named like a shard's: it must not make every absolute path look relative.
mkdir -p "$work/G"
printf '{"command": "plan", "input_folders": ["/", "//"]}\n' >"$work/G/plan.json"
printf '%s/a/bad.dcm\n%s/a/ct.dcm\n' "$top" "$top" >"$work/G/shard-0000.txt"
"$radguard" deid --files-from "$work/G/shard-0000.txt" -o "$work/out-G" -k "$work/k.key" \
  --no-progress 2>"$work/G.txt"
clean G "$work/G.txt"
grep -q 'error: bad.dcm' "$work/G.txt" || fail "G: the failure is not named bad.dcm: $(cat "$work/G.txt")"
# H. redact's reports name inputs the same way (they travel as deid's do); the output folder
# is given relative, so that its own paths are not absolute either.
(cd "$work/data" && "$radguard" redact ./patients/zz_above/smith_john -o ../out-H \
  --no-progress --report "$work/H.report.json" 2>"$work/H.txt")
(cd "$work/data" && "$radguard" redact ./patients/zz_above/smith_john -o ../out-H2 \
  --no-progress --json >"$work/H.json" 2>/dev/null)
clean H "$work/H.txt" "$work/H.json" "$work/H.report.json"
grep -q '"input": "a/ct.dcm"' "$work/H.report.json" || fail "H: a/ct.dcm not in redact's report"
echo "report paths: all checks passed"
