#!/usr/bin/env bash
# radguard serve's privacy officer's part (issue 17 item 3), over HTTP with curl: given a
# consent registry, a ledger with one signed release and the key, the read-only routes answer
# a patient's consent history and accounting of disclosures, verify the ledger and verify a
# release folder file by file, behind the same token guard; they open the stores read-only
# (they answer from files of mode 0444, and while another process holds the writers' lock on
# both); without the three options they are 404, and one or two of them alone is a usage
# error. No patient ID in what the server prints.
#   serve_officer_test.sh RADGUARD [SCREENSHOT_DIR]
set -euo pipefail
radguard=$1
shots=${2:-}
work=$(mktemp -d /tmp/radguard-serve-officer.XXXXXX)
pid= holder=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$holder" ] && kill "$holder" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/server.err" ] && cat "$work/server.err" >&2; exit 1; }
command -v curl >/dev/null || fail "curl is missing"
command -v dcmodify >/dev/null || fail "dcmodify (dcmtk) is missing"
samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
[ -f "$samples/CT_small.dcm" ] || fail "pydicom's CT_small.dcm is missing"

# One signed release (three instances) of patient MRN-OFFICER-7 into a SQLite ledger, consent
# from a CSV.
mkdir -p "$work/in"
cp "$samples/CT_small.dcm" "$work/in/a.dcm"
dcmodify -nb -m "(0010,0020)=MRN-OFFICER-7" -m "(0010,0010)=Officer^Olga" "$work/in/a.dcm"
for n in b c; do
  cp "$work/in/a.dcm" "$work/in/$n.dcm"
  dcmodify -nb -gin "$work/in/$n.dcm"  # another SOP Instance UID
done
"$radguard" keygen "$work/k.key" >/dev/null
"$radguard" keys new --key "$work/sign.key.pem" --cert "$work/sign.cert.pem" >/dev/null 2>&1 ||
  fail "keys new"
cat >"$work/consents.csv" <<'CSV'
patient_id,purpose,decision,date
MRN-OFFICER-7,ai-training,permit,2025-01-10
MRN-OTHER-9,ai-training,deny,2025-02-01
CSV
registry="$work/registry.db" ledger="$work/ledger.db"
"$radguard" consent import "$work/consents.csv" --registry "$registry" >"$work/import.log" 2>&1 ||
  fail "consent import: $(cat "$work/import.log")"
"$radguard" export "$work/in" --output "$work/out" --purpose ai-training --recipient "Study Lab" \
  --key "$work/k.key" --registry "$registry" --ledger "$ledger" --no-progress \
  --sign-key "$work/sign.key.pem" --sign-cert "$work/sign.cert.pem" >"$work/export.log" 2>&1 ||
  fail "export: $(cat "$work/export.log")"
release=$(find "$work/out" -mindepth 1 -maxdepth 1 -name 'release-*' | head -1)
[ -f "$release/manifest.json.p7s" ] || fail "the export made no signed release"
# A copy of the release that came back changed: one file altered, one added, one removed.
cp -r "$release" "$work/returned"
mapfile -t dcms < <(cd "$work/returned" && find . -name '*.dcm' | sed 's|^\./||' | sort)
[ "${#dcms[@]}" -eq 3 ] || fail "the release holds ${#dcms[@]} DICOM files, not 3"
printf 'X' | dd of="$work/returned/${dcms[0]}" bs=1 seek=$(( $(stat -c %s "$work/returned/${dcms[0]}") / 2 )) \
  conv=notrunc 2>/dev/null
rm "$work/returned/${dcms[1]}"
echo "not from the release" >"$work/returned/notes.txt"

start() {  # serve's arguments...
  "$radguard" serve "$@" >"$work/server.out" 2>"$work/server.err" &
  pid=$!
  for _ in $(seq 100); do grep -q 'token=' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://127.0.0.1:[0-9]*/?token=[0-9a-f]*' "$work/server.out") || fail "no address printed"
  port=$(echo "$url" | sed 's|http://127.0.0.1:\([0-9]*\)/.*|\1|')
  token=${url##*token=}
  base="http://127.0.0.1:$port"
  auth=(-H "Authorization: Bearer $token")
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }
code() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }

# --- one or two of the three options: a usage error naming what is missing ---------------
rc=0; "$radguard" serve --registry "$registry" >/dev/null 2>"$work/usage.err" || rc=$?
[ "$rc" -ne 0 ] || fail "serve ran with --registry alone"
grep -q -- '--ledger and --key' "$work/usage.err" || fail "usage error does not name what is missing: $(cat "$work/usage.err")"
rc=0; "$radguard" serve --ledger "$ledger" --key "$work/k.key" >/dev/null 2>"$work/usage.err" || rc=$?
[ "$rc" -ne 0 ] || fail "serve ran without --registry"
grep -q -- 'missing: --registry' "$work/usage.err" || fail "usage error: $(cat "$work/usage.err")"
# A mistyped ledger fails at start, not as "no disclosures" later.
rc=0; "$radguard" serve --registry "$registry" --ledger "$work/nope.db" --key "$work/k.key" \
  >/dev/null 2>"$work/usage.err" || rc=$?
[ "$rc" -ne 0 ] || fail "serve started with a ledger that does not exist"

# --trust without the officer's part is a usage error.
rc=0; "$radguard" serve --trust "$work/sign.cert.pem" >/dev/null 2>"$work/usage.err" || rc=$?
[ "$rc" -eq 2 ] && grep -q -- '--trust is for the privacy officer' "$work/usage.err" ||
  fail "--trust alone (exit $rc): $(cat "$work/usage.err")"

# --- with the three, the stores read-only (mode 0444) ----------------------------------------
chmod 0444 "$registry" "$ledger"
start --registry "$registry" --ledger "$ledger" --key "$work/k.key" --trust "$work/sign.cert.pem"
q="patient=MRN-OFFICER-7"
[ "$(code "$base/api/officer/disclosures?$q")" = 401 ] || fail "disclosures without token"
[ "$(code "$base/api/officer/consent?$q")" = 401 ] || fail "consent without token"
[ "$(code "$base/api/officer/verify")" = 401 ] || fail "verify without token"
[ "$(code "${auth[@]}" -H "Host: evil.example:$port" "$base/api/officer/verify")" = 403 ] || fail "foreign Host"
[ "$(code "${auth[@]}" -H "Origin: http://evil.example" "$base/api/officer/verify")" = 403 ] || fail "foreign Origin"

[ "$(code "${auth[@]}" "$base/api/officer")" = 200 ] || fail "officer info"
grep -q '"officer":true' "$work/body" && grep -q '"ledger"' "$work/body" || fail "officer info: $(cat "$work/body")"

[ "$(code "${auth[@]}" "$base/api/officer/disclosures?$q")" = 200 ] || fail "disclosures: $(cat "$work/body")"
python3 - "$work/body" <<'PY' || fail "disclosures of the patient: $(cat "$work/body")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ledger_intact"] is True, d
assert d["count"] == 1 and len(d["disclosures"]) == 1, d
x = d["disclosures"][0]
assert x["recipient"] == "Study Lab" and x["purpose"] == "ai-training" and x["instances"] == 3, x
PY
[ "$(code "${auth[@]}" "$base/api/officer/disclosures?patient=MRN-OTHER-9")" = 200 ] || fail "disclosures other"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["count"]==0 and d["disclosures"]==[], d' \
  "$work/body" || fail "another patient has disclosures: $(cat "$work/body")"

[ "$(code "${auth[@]}" "$base/api/officer/consent?$q")" = 200 ] || fail "consent: $(cat "$work/body")"
python3 - "$work/body" <<'PY' || fail "consent history: $(cat "$work/body")"
import json, sys
d = json.load(open(sys.argv[1]))
h = d["history"]
assert len(h) == 1 and h[0]["purpose"] == "ai-training" and h[0]["decision"] == "permit", d
assert h[0]["date"].startswith("2025-01-10"), d
PY
[ "$(code "${auth[@]}" "$base/api/officer/consent?patient=MRN-NOBODY")" = 200 ] || fail "consent nobody"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["history"]==[]' "$work/body" ||
  fail "a patient never recorded has a history"

[ "$(code "${auth[@]}" "$base/api/officer/verify")" = 200 ] || fail "verify: $(cat "$work/body")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["intact"] is True and d["entries"]==1, d' \
  "$work/body" || fail "verify result: $(cat "$work/body")"

# --- verify a release folder ----------------------------------------------------------------
urlq() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
[ "$(code "$base/api/officer/release?folder=$(urlq "$release")")" = 401 ] || fail "release without token"
[ "$(code "${auth[@]}" "$base/api/officer/release?folder=$(urlq "$release")")" = 200 ] ||
  fail "release: $(cat "$work/body")"
python3 - "$work/body" <<'PY' || fail "the release as exported: $(cat "$work/body")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["passed"] is True, d
assert d["manifest_signature"]["status"] == "valid", d
assert d["dicom_signatures_checked"] is True and d["trusted_certificates"] == 1, d
assert d["problems"] == 0 and len(d["files"]) >= 3, d
assert all(f["good"] and f["state"] == "intact" for f in d["files"]), d
assert all(f["signature"] == "valid" for f in d["files"] if f["path"].endswith(".dcm")), d
PY
[ "$(code "${auth[@]}" "$base/api/officer/release?folder=$(urlq "$work/returned")")" = 200 ] ||
  fail "returned release: $(cat "$work/body")"
python3 - "$work/body" "${dcms[0]}" "${dcms[1]}" <<'PY' || fail "the returned release: $(cat "$work/body")"
import json, sys
d = json.load(open(sys.argv[1]))
altered, removed = sys.argv[2], sys.argv[3]
files = {f["path"]: f for f in d["files"]}
assert d["passed"] is False and d["problems"] == 3, d
assert d["manifest_signature"]["status"] == "valid", d  # the manifest itself is untouched
assert files[altered]["state"] == "altered" and files[altered]["signature"] == "invalid", files[altered]
assert not files[altered]["good"], files[altered]
assert files[removed]["state"] == "missing" and not files[removed]["good"], files[removed]
assert files["notes.txt"]["state"] == "added" and not files["notes.txt"]["good"], files["notes.txt"]
assert d["counts"]["altered"] == 1 and d["counts"]["missing"] == 1 and d["counts"]["added"] == 1, d
PY
# Odd folders: none, relative, a control character, not there, not a release, a file.
[ "$(code "${auth[@]}" "$base/api/officer/release")" = 400 ] || fail "release without folder"
[ "$(code "${auth[@]}" "$base/api/officer/release?folder=out")" = 400 ] || fail "relative folder"
[ "$(code "${auth[@]}" "$base/api/officer/release?folder=%2Ftmp%2Fa%0Ab")" = 400 ] || fail "control character"
[ "$(code "${auth[@]}" "$base/api/officer/release?folder=$(urlq "$work/nothing-here")")" = 404 ] ||
  fail "a folder that does not exist"
[ "$(code "${auth[@]}" "$base/api/officer/release?folder=$(urlq "$work/in")")" = 422 ] ||
  fail "a folder that is not a release: $(cat "$work/body")"
[ "$(code "${auth[@]}" "$base/api/officer/release?folder=$(urlq "$release/manifest.json")")" = 404 ] ||
  fail "a file given as the folder"
! grep -q 'MRN-\|Officer^Olga' "$work/body" || fail "a patient's value in a release answer"

# Odd input: no patient, an empty one, a control character, a huge one.
[ "$(code "${auth[@]}" "$base/api/officer/disclosures")" = 400 ] || fail "no patient"
[ "$(code "${auth[@]}" "$base/api/officer/consent?patient=")" = 400 ] || fail "empty patient"
[ "$(code "${auth[@]}" "$base/api/officer/consent?patient=a%0Ab")" = 400 ] || fail "control character"
[ "$(code "${auth[@]}" "$base/api/officer/disclosures?patient=$(head -c 300 /dev/zero | tr '\0' x)")" = 400 ] ||
  fail "a 300-character patient ID"
[ "$(code "${auth[@]}" "$base/api/officer/disclosures?$q&since=not-a-date")" = 400 ] || fail "bad since"
# Read only: nothing answers a write.
# (any 4xx: httplib answers an unrouted method as it sees fit, 400 or 404)
c=$(code "${auth[@]}" -X POST "$base/api/officer/consent?$q"); [[ $c == 4?? ]] || fail "POST consent answered $c"
c=$(code "${auth[@]}" -X DELETE "$base/api/officer/verify"); [[ $c == 4?? ]] || fail "DELETE verify answered $c"
# The page offers the section (its script asks /api/officer).
[ "$(code "${auth[@]}" "$base/")" = 200 ] && grep -q 'id="officer"' "$work/body" || fail "page without the section"
[ "$(code "${auth[@]}" "$base/officer.js")" = 200 ] || fail "officer.js"
# In headless Chromium, where it and the pinned playwright-core are installed
# (scripts/install-deps.sh): the section looks the patient up; its screenshot goes to
# SCREENSHOT_DIR/7-officer.png when that is given (docs/serve: the README's picture).
pw=
for d in /usr/local/lib/radguard-test/node_modules "$HOME/.local/lib/radguard-test/node_modules"; do
  [ -z "$pw" ] && [ -f "$d/playwright-core/package.json" ] && pw=$d
done
if [ -x /usr/bin/chromium ] && command -v node >/dev/null && [ -n "$pw" ]; then
  node "$(dirname "$0")/serve_officer_shot.cjs" "$pw/playwright-core" "$url" MRN-OFFICER-7 \
    "${shots:-$work}/7-officer.png" "$work/returned" "${shots:-$work}/8-officer-release.png" ||
    fail "the officer section in Chromium"
else
  echo "note: the browser check skipped (needs /usr/bin/chromium, node and playwright-core)"
fi
stop
! grep -q 'MRN-' "$work/server.out" "$work/server.err" || fail "a patient ID in the server's output"
chmod 0600 "$registry" "$ledger"

# --- while another process holds the writers' lock on the ledger and the registry ----------
# (an export appending, an import): the officer's routes still answer at once, and nothing
# waits for the writer (a writer's open took the lock itself and failed after 30 s).
start --registry "$registry" --ledger "$ledger" --key "$work/k.key"
python3 - "$ledger" "$registry" "$work/locked" <<'PY' &
import sqlite3, sys, time
held = []
for path in sys.argv[1:3]:
    c = sqlite3.connect(path, isolation_level=None, timeout=1)
    c.execute("BEGIN IMMEDIATE")
    held.append(c)
open(sys.argv[3], "w").close()
time.sleep(120)
PY
holder=$!
for _ in $(seq 100); do [ -f "$work/locked" ] && break; sleep 0.1; done
[ -f "$work/locked" ] || fail "could not take the writers' lock"
for route in "api/officer/verify" "api/officer/disclosures?$q" "api/officer/consent?$q"; do
  c=$(code --max-time 10 "${auth[@]}" "$base/$route") || true
  [ "$c" = 200 ] || fail "/$route while a writer holds the lock answered $c: $(cat "$work/body")"
done
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["history"][0]["decision"]=="permit", d' \
  "$work/body" || fail "consent while locked: $(cat "$work/body")"
kill "$holder"; wait "$holder" 2>/dev/null || true; holder=
stop

# --- without the options: 404 ------------------------------------------------------------------
start
[ "$(code "${auth[@]}" "$base/api/officer")" = 200 ] && grep -q '"officer":false' "$work/body" ||
  fail "officer info without the options: $(cat "$work/body")"
for route in "api/officer/disclosures?$q" "api/officer/consent?$q" "api/officer/verify" \
  "api/officer/release?folder=%2Ftmp"; do
  [ "$(code "${auth[@]}" "$base/$route")" = 404 ] || fail "/$route answered without the options"
done
stop
echo "PASS: officer routes answer with the three options (from 0444 stores, beside a writer), verify releases file by file, 404 without, guarded, read only"
