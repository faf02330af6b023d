#!/usr/bin/env bash
# radguard audit end to end (issue 18): a generated dataset with planted identifying values,
# de-identified by weak tools (DCMTK's dcmodify erasing a short tag list; GDCM's gdcmanon in
# dumb and basic mode) and by radguard deid; every planted value that survives must be
# flagged at its file and attribute, and radguard's own output must have no high finding.
# Needs python3-pydicom, dcmodify (dcmtk), gdcmanon (libgdcm-tools), openssl.
set -euo pipefail
radguard=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d /tmp/radguard-audit-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
py=/usr/bin/python3

"$py" "$here/audit_make_dataset.py" "$work/in" "$work/planted.json" --patients 6 --per-patient 2

audit_json() {  # DIR OUT.json [more flags]: exit status 0 or 1 are both fine
  local dir=$1 out=$2; shift 2
  local rc=0
  "$radguard" audit "$dir" --format json --show-values "$@" >"$out" || rc=$?
  [ "$rc" -le 1 ] || fail "audit of $dir exited $rc"
}

# --- The originals: everything planted is flagged ----------------------------------------------
audit_json "$work/in" "$work/in.json"
"$py" "$here/audit_check_planted.py" "$work/planted.json" "$work/in" "$work/in.json" ||
  fail "originals: a planted value is not flagged"
rc=0; "$radguard" audit "$work/in" >/dev/null || rc=$?
[ "$rc" -eq 1 ] || fail "originals: --fail-on high should exit 1 (got $rc)"
rc=0; "$radguard" audit "$work/in" --fail-on never >/dev/null || rc=$?
[ "$rc" -eq 0 ] || fail "--fail-on never should exit 0 (got $rc)"
# Without --show-values no value travels: neither the names nor the MRNs nor the folder name.
"$radguard" audit "$work/in" --format json --fail-on never >"$work/masked.json"
for v in SMITH GARCIA MRN HOUSE Mercy 555-; do
  grep -q "$v" "$work/masked.json" && fail "a value ($v) is in the report without --show-values"
done
grep -q '<masked-1>/study1/IMG0001.dcm' "$work/masked.json" || fail "identifying folder not masked"

# --- dcmodify: a short tag-list erasure ---------------------------------------------------------
cp -r "$work/in" "$work/dcmodify"
find "$work/dcmodify" -name '*.dcm' -exec dcmodify -nb -ea "(0010,0010)" -ea "(0010,0020)" \
  -ea "(0010,0030)" -ea "(0008,0050)" {} +
audit_json "$work/dcmodify" "$work/dcmodify.json"
"$py" "$here/audit_check_planted.py" "$work/planted.json" "$work/dcmodify" "$work/dcmodify.json" ||
  fail "dcmodify: a surviving planted value is not flagged"

# --- gdcmanon --dumb: empty and remove a few ----------------------------------------------------
gdcmanon --dumb --empty 10,10 --remove 10,20 --remove 10,30 --replace 8,80=ANONYMIZED \
  -r -i "$work/in" -o "$work/gdcm-dumb" >/dev/null 2>&1 || fail "gdcmanon --dumb failed"
audit_json "$work/gdcm-dumb" "$work/gdcm-dumb.json"
"$py" "$here/audit_check_planted.py" "$work/planted.json" "$work/gdcm-dumb" "$work/gdcm-dumb.json" ||
  fail "gdcmanon --dumb: a surviving planted value is not flagged"

# --- gdcmanon basic mode (PS3.15 Basic Profile, originals encrypted with a certificate) ----------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/gdcm.key" -out "$work/gdcm.pem" \
  -days 2 -subj "/CN=audit test" >/dev/null 2>&1
gdcmanon -e -c "$work/gdcm.pem" -r -i "$work/in" -o "$work/gdcm-basic" >/dev/null 2>&1 ||
  fail "gdcmanon -e failed"
audit_json "$work/gdcm-basic" "$work/gdcm-basic.json"
"$py" "$here/audit_check_planted.py" "$work/planted.json" "$work/gdcm-basic" "$work/gdcm-basic.json" ||
  fail "gdcmanon basic: a surviving planted value is not flagged"

# --- radguard deid: nothing of high severity ----------------------------------------------------
"$radguard" keygen "$work/k.key" >/dev/null
for profile in basic research; do
  "$radguard" deid "$work/in" --output "$work/rg-$profile" --key "$work/k.key" --profile "$profile" \
    --no-progress >/dev/null 2>&1 || fail "radguard deid --profile $profile failed"
  rc=0
  "$radguard" audit "$work/rg-$profile" --format json --against "$work/in" >"$work/rg-$profile.json" || rc=$?
  [ "$rc" -eq 0 ] || {
    "$py" -c 'import json,sys; [print(f) for f in json.load(open(sys.argv[1]))["findings"] if f["severity"]=="high"]' "$work/rg-$profile.json" >&2
    fail "radguard deid --profile $profile: high-severity findings (exit $rc)"
  }
done

# --- Formats ------------------------------------------------------------------------------------
"$radguard" audit "$work/in" --format html --report "$work/r.html" --fail-on never 2>/dev/null
grep -q '<h1>radguard audit</h1>' "$work/r.html" || fail "html report"
grep -Eq 'src=|href=' "$work/r.html" && fail "html report refers to external assets"
[ "$(stat -c %a "$work/r.html")" = 600 ] || fail "report file is not owner-only"
"$radguard" audit "$work/in" --fail-on never >"$work/r.txt"
grep -q '^audit: 12 files' "$work/r.txt" || fail "text summary"
grep -q '<masked-6>/study1/IMG0002.dcm' "$work/r.txt" || fail "masked folders are not told apart"
rc=0; "$radguard" audit "$work/in" --format xml >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "bad --format should be a usage error (got $rc)"
echo "audit cli: ok"
