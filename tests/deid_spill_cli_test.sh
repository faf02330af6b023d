#!/usr/bin/env bash
# radguard deid where the run's problems must spill and cannot ($TMPDIR missing): the run
# stops when the spill fails, exits non-zero with an I/O error that says how far it got,
# publishes no report, and writes no input sorted after the failure.
set -euo pipefail
radguard=$1
work=$(mktemp -d /tmp/radguard-spill-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
fail() { echo "FAIL: $*" >&2; exit 1; }
"$radguard" keygen "$work/k.key" >/dev/null
mkdir -p "$work/in"
# 257 problems (not DICOM) sort first: the 257th is past the 256 held and must spill.
for i in $(seq 1000 1256); do echo "not DICOM" >"$work/in/a$i.txt"; done
cp "$samples/CT_small.dcm" "$work/in/z-ct.dcm"
rc=0
TMPDIR="$work/missing" "$radguard" deid "$work/in" --output "$work/out" --key "$work/k.key" \
  --threads 1 --no-progress --report "$work/report.json" >"$work/out.txt" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a run whose problems could not be kept exited 0"
grep -q 'stopped after 257 of 258 inputs' "$work/out.txt" || fail "the error does not say where the run stopped: $(cat "$work/out.txt")"
[ ! -e "$work/report.json" ] || fail "a report was published without its problems"
[ "$(find "$work/out" -name '*.dcm' 2>/dev/null | wc -l)" -eq 0 ] || fail "an input after the failed spill was written"
# The same run with a usable TMPDIR goes through.
TMPDIR="$work" "$radguard" deid "$work/in" --output "$work/out2" --key "$work/k.key" \
  --threads 1 --no-progress --report "$work/report2.json" >/dev/null 2>&1 || rc=$?
grep -q '"skipped_not_dicom": 257' "$work/report2.json" || fail "the run with a spill folder lost problems"
echo "ok"
