#!/usr/bin/env bash
# End-to-end check of the interface lines scripts rely on (issue: consent, ledger, export):
# consent import (CSV and FHIR), consent show, export with --report, ledger verify (intact and
# tampered), disclosures in every format, and two export processes at once on one ledger.
set -euo pipefail
radguard=$1
work=$(mktemp -d /tmp/radguard-cli-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$work/in/a" "$work/in/b" "$work/in/c"
make() {  # folder patient-id name study-suffix
  cp "$samples/CT_small.dcm" "$1/$3.dcm"
  dcmodify -nb -m "(0010,0020)=$2" -m "(0010,0010)=$3" -m "(0020,000d)=1.2.826.0.1.3680043.10.1137.9$4" \
    -m "(0008,0018)=1.2.826.0.1.3680043.10.1137.9$4.1" "$1/$3.dcm"
}
make "$work/in/a" MRN-ALPHA "Alpha^Anna" 1
make "$work/in/b" MRN-BRAVO "Bravo^Bert" 2
make "$work/in/c" MRN-CHARLIE "Charlie^Cleo" 3

"$radguard" keygen "$work/k.key" >/dev/null
cat >"$work/consents.csv" <<'CSV'
patient_id,purpose,decision,date,source,expires
MRN-ALPHA,ai-training,permit,2025-01-10,portal,
MRN-BRAVO,ai-training,deny,2025-02-01,letter,
CSV
"$radguard" consent import "$work/consents.csv" --registry "$work/reg.db" >/dev/null
cat >"$work/consent.json" <<'JSON'
{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
  "resourceType": "Consent", "id": "c-9", "status": "active",
  "patient": {"identifier": {"value": "MRN-CHARLIE"}}, "dateTime": "2025-03-01T10:00:00+01:00",
  "provision": {"type": "permit", "purpose": [{"system": "urn:radguard:purpose", "code": "ai-training"}]}}}]}
JSON
"$radguard" consent import "$work/consent.json" --registry "$work/reg.db" --json | grep -q '"format": "fhir"' ||
  fail "FHIR import"
"$radguard" consent show --patient MRN-CHARLIE --registry "$work/reg.db" --json >"$work/show.json"
grep -q '"source": "fhir:Consent/c-9"' "$work/show.json" || fail "consent show --json"

# A bad row: named, non-zero, nothing imported.
printf 'patient_id,purpose,decision,date\nMRN-DELTA,research,permit,2025-01-01\nMRN-ECHO,research,perhaps,2025-01-01\n' \
  >"$work/bad.csv"
if "$radguard" consent import "$work/bad.csv" --registry "$work/reg.db" 2>"$work/err"; then fail "bad CSV accepted"; fi
grep -q 'line 3' "$work/err" || fail "bad CSV error does not name the row"
if grep -q 'MRN-ECHO' "$work/err"; then fail "error echoes a patient ID"; fi
"$radguard" consent show --patient MRN-DELTA --registry "$work/reg.db" --json | grep -q '"history": \[\]' ||
  fail "partial import"

"$radguard" export "$work/in" --output "$work/out" --purpose ai-training --recipient "Acme AI" --key "$work/k.key" \
  --registry "$work/reg.db" --ledger "$work/ledger.db" --report "$work/report.json" --no-progress 2>/dev/null
grep -q '"status": "released"' "$work/report.json" || fail "export not released"
grep -q '"instances": 2' "$work/report.json" || fail "export did not release the 2 permitted patients"
grep -q '"consent_denied"' "$work/report.json" || fail "exclusion reason missing"
[ "$(find "$work/out" -mindepth 1 -maxdepth 1 | wc -l)" -eq 1 ] || fail "expected exactly one release folder"

"$radguard" ledger verify --ledger "$work/ledger.db" >/dev/null || fail "fresh ledger does not verify"

# Two exports at once (two processes) on the same ledger and registry: both recorded.
"$radguard" export "$work/in/a" --output "$work/out2" --purpose ai-training --recipient "P1" --key "$work/k.key" \
  --registry "$work/reg.db" --ledger "$work/ledger.db" --no-progress 2>/dev/null &
p1=$!
"$radguard" export "$work/in/c" --output "$work/out2" --purpose ai-training --recipient "P2" --key "$work/k.key" \
  --registry "$work/reg.db" --ledger "$work/ledger.db" --no-progress 2>/dev/null &
p2=$!
wait "$p1" || fail "concurrent export 1"
wait "$p2" || fail "concurrent export 2"
"$radguard" ledger verify --ledger "$work/ledger.db" --json | grep -q '"entries": 3' || fail "an entry was lost"

"$radguard" disclosures --patient MRN-ALPHA --ledger "$work/ledger.db" --key "$work/k.key" --format json \
  | grep -q '"count": 2' || fail "accounting for MRN-ALPHA"
"$radguard" disclosures --patient MRN-BRAVO --ledger "$work/ledger.db" --key "$work/k.key" | grep -q '0 disclosures' ||
  fail "accounting for an opted-out patient"
"$radguard" disclosures --patient MRN-CHARLIE --ledger "$work/ledger.db" --key "$work/k.key" --format html \
  | grep -q '<td>Acme AI</td>' || fail "html accounting"
"$radguard" disclosures --patient MRN-CHARLIE --ledger "$work/ledger.db" --key "$work/k.key" --since 2999-01-01 \
  | grep -q '0 disclosures' || fail "--since"

for secret in MRN-ALPHA MRN-BRAVO MRN-CHARLIE Alpha Bravo Charlie; do
  if grep -q "$secret" "$work/ledger.db" "$work/report.json"; then fail "$secret appears in the ledger or report"; fi
  if grep -rq "$secret" "$work/out" "$work/out2"; then fail "$secret appears in a release"; fi
done

# Every published folder is a recorded release; an unrecorded one is flagged.
"$radguard" ledger verify --ledger "$work/ledger.db" --releases "$work/out2" >/dev/null || fail "releases unrecorded"
mkdir "$work/out2/release-unrecorded" && touch "$work/out2/release-unrecorded/manifest.json"
if "$radguard" ledger verify --ledger "$work/ledger.db" --releases "$work/out2" 2>/dev/null; then
  fail "an unrecorded release folder passed"
fi

# Tampering: an edited entry is named, with a non-zero exit.
sqlite3 "$work/ledger.db" "DROP TRIGGER disclosure_no_update; UPDATE disclosure SET recipient = 'Nobody' WHERE sequence = 2"
if "$radguard" ledger verify --ledger "$work/ledger.db" 2>"$work/err"; then fail "tampered ledger verified"; fi
grep -q 'entry 2' "$work/err" || fail "verify does not name the bad entry"
# Pixel options: a bad redaction mode is a usage error before anything is read or recorded;
# with clean-pixel-data the CT images (triaged: no OCR needed) are released.
if "$radguard" export "$work/in" --output "$work/out3" --purpose ai-training --recipient "Acme AI" \
  --key "$work/k.key" --registry "$work/reg.db" --ledger "$work/ledger2.db" --no-progress \
  --option clean-pixel-data --redact-mode report 2>/dev/null; then fail "report mode accepted for release"; fi
[ ! -e "$work/ledger2.db" ] || [ "$(sqlite3 "$work/ledger2.db" 'SELECT count(*) FROM disclosure')" = 0 ] ||
  fail "a usage error was recorded as an export"
"$radguard" export "$work/in" --output "$work/out3" --purpose ai-training --recipient "Acme AI" \
  --key "$work/k.key" --registry "$work/reg.db" --ledger "$work/ledger2.db" --no-progress \
  --option clean-pixel-data --report "$work/report3.json" 2>/dev/null || fail "export with clean-pixel-data"
grep -q '"instances": 2' "$work/report3.json" || fail "clean-pixel-data export did not release the permitted patients"
# (Dumped to a file first: `grep -q` closing a pipe early would fail the dump under pipefail.)
dcmdump "$(find "$work/out3" -name '*.dcm' | sort | head -n 1)" >"$work/dump3.txt"
grep -q 113101 "$work/dump3.txt" || fail "code 113101 not recorded"

echo "cli export test passed"
