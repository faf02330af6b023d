#!/usr/bin/env bash
# radguard serve's privacy officer's part (issue 17 item 3), over HTTP with curl: given a
# consent registry, a ledger with one release and the key, the read-only routes answer a
# patient's consent history and accounting of disclosures and verify the ledger, behind the
# same token guard; without the three options they are 404, and one or two of them alone is
# a usage error. No patient ID in what the server prints.
#   serve_officer_test.sh RADGUARD [SCREENSHOT_DIR]
set -euo pipefail
radguard=$1
shots=${2:-}
work=$(mktemp -d /tmp/radguard-serve-officer.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/server.err" ] && cat "$work/server.err" >&2; exit 1; }
command -v curl >/dev/null || fail "curl is missing"
command -v dcmodify >/dev/null || fail "dcmodify (dcmtk) is missing"
samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
[ -f "$samples/CT_small.dcm" ] || fail "pydicom's CT_small.dcm is missing"

# One release of patient MRN-OFFICER-7 into a SQLite ledger, consent from a CSV.
mkdir -p "$work/in"
cp "$samples/CT_small.dcm" "$work/in/a.dcm"
dcmodify -nb -m "(0010,0020)=MRN-OFFICER-7" -m "(0010,0010)=Officer^Olga" "$work/in/a.dcm"
"$radguard" keygen "$work/k.key" >/dev/null
cat >"$work/consents.csv" <<'CSV'
patient_id,purpose,decision,date
MRN-OFFICER-7,ai-training,permit,2025-01-10
MRN-OTHER-9,ai-training,deny,2025-02-01
CSV
registry="$work/registry.db" ledger="$work/ledger.db"
"$radguard" consent import "$work/consents.csv" --registry "$registry" >"$work/import.log" 2>&1 ||
  fail "consent import: $(cat "$work/import.log")"
"$radguard" export "$work/in" --output "$work/out" --purpose ai-training --recipient "Study Lab" \
  --key "$work/k.key" --registry "$registry" --ledger "$ledger" --no-progress >"$work/export.log" 2>&1 ||
  fail "export: $(cat "$work/export.log")"

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

# --- with the three ------------------------------------------------------------------------
start --registry "$registry" --ledger "$ledger" --key "$work/k.key"
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
assert x["recipient"] == "Study Lab" and x["purpose"] == "ai-training" and x["instances"] == 1, x
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
    "${shots:-$work}/7-officer.png" || fail "the officer section in Chromium"
else
  echo "note: the browser check skipped (needs /usr/bin/chromium, node and playwright-core)"
fi
stop
! grep -q 'MRN-' "$work/server.out" "$work/server.err" || fail "a patient ID in the server's output"

# --- without the options: 404 ------------------------------------------------------------------
start
[ "$(code "${auth[@]}" "$base/api/officer")" = 200 ] && grep -q '"officer":false' "$work/body" ||
  fail "officer info without the options: $(cat "$work/body")"
for route in "api/officer/disclosures?$q" "api/officer/consent?$q" "api/officer/verify"; do
  [ "$(code "${auth[@]}" "$base/$route")" = 404 ] || fail "/$route answered without the options"
done
stop
echo "PASS: officer routes answer with the three options, 404 without, guarded, read only"
