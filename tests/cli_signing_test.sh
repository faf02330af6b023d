#!/usr/bin/env bash
# The signing commands end to end through the radguard binary: exit statuses, JSON reports,
# key file mode. usage: cli_signing_test.sh RADGUARD_BINARY
set -uo pipefail
R=$1
SAMPLES=/usr/lib/python3/dist-packages/pydicom/data/test_files
[[ -f $SAMPLES/CT_small.dcm ]] || { echo "SKIP: pydicom samples missing"; exit 0; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
failures=0
expect() {  # expected-status description command...
  local want=$1 what=$2
  shift 2
  "$@" >"$W/out" 2>"$W/err"
  local got=$?
  if [[ $got != "$want" ]]; then
    echo "FAIL: $what: exit $got, expected $want"; cat "$W/err"; failures=$((failures + 1))
  fi
}
json_ok() { python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$W/out" || { echo "FAIL: $1: not JSON"; failures=$((failures + 1)); }; }

expect 0 "keys new" "$R" keys new --key "$W/k.pem" --cert "$W/c.pem" --json
json_ok "keys new --json"
grep -q "TEST" "$W/err" || { echo "FAIL: keys new prints no test warning"; failures=$((failures + 1)); }
[[ $(stat -c %a "$W/k.pem") == 600 ]] || { echo "FAIL: key mode $(stat -c %a "$W/k.pem")"; failures=$((failures + 1)); }
expect 1 "keys new refuses to replace a key" "$R" keys new --key "$W/k.pem" --cert "$W/c2.pem"

mkdir -p "$W/in"
cp "$SAMPLES/CT_small.dcm" "$SAMPLES/MR_small.dcm" "$W/in/"
echo "not dicom" > "$W/in/notes.txt"
expect 2 "sign without --output/--in-place" "$R" sign "$W/in" --key "$W/k.pem" --cert "$W/c.pem"
expect 2 "sign with a missing key" "$R" sign "$W/in" --key "$W/none.pem" --cert "$W/c.pem" -o "$W/out"
expect 1 "sign a batch with one bad file" "$R" sign "$W/in" --key "$W/k.pem" --cert "$W/c.pem" -o "$W/signed" --json
json_ok "sign --json"
grep -q "notes.txt" "$W/out" || { echo "FAIL: the bad file is not named"; failures=$((failures + 1)); }
[[ -f $W/signed/CT_small.dcm && -f $W/signed/MR_small.dcm ]] || { echo "FAIL: good files not signed"; failures=$((failures + 1)); }

expect 0 "verify signed files" "$R" verify "$W/signed" --trust "$W/c.pem" --json
json_ok "verify --json"
expect 1 "verify without trust" "$R" verify "$W/signed"
grep -q untrusted_signer "$W/out" || { echo "FAIL: no untrusted_signer"; failures=$((failures + 1)); }
expect 1 "verify an unsigned file" "$R" verify "$SAMPLES/CT_small.dcm" --trust "$W/c.pem"
grep -q unsigned "$W/out" || { echo "FAIL: not reported unsigned"; failures=$((failures + 1)); }
if command -v dcmodify >/dev/null; then
  cp "$W/signed/CT_small.dcm" "$W/tampered.dcm"
  dcmodify -nb -q -m "(0008,0020)=19990101" "$W/tampered.dcm"
  expect 1 "verify a tampered file" "$R" verify "$W/tampered.dcm" --trust "$W/c.pem"
  grep -q "invalid" "$W/out" || { echo "FAIL: tampering not reported"; failures=$((failures + 1)); }
fi

expect 0 "manifest create" "$R" manifest create "$W/signed" --key "$W/k.pem" --cert "$W/c.pem" --json
json_ok "manifest create --json"
expect 0 "manifest verify" "$R" manifest verify "$W/signed" "$W/signed/radguard-manifest.json" --trust "$W/c.pem"
mv "$W/signed/MR_small.dcm" "$W/signed/renamed.dcm"
expect 1 "manifest verify after a rename" "$R" manifest verify "$W/signed" "$W/signed/radguard-manifest.json" --trust "$W/c.pem" --json
json_ok "manifest verify --json"
grep -q '"renamed"' "$W/out" || { echo "FAIL: rename not reported"; failures=$((failures + 1)); }

[[ $failures == 0 ]] && echo "all CLI signing checks passed"
exit $((failures > 0))
