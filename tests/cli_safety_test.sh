#!/usr/bin/env bash
# The safety nets of issue 13, as an operator meets them on the command line: images that
# may show burned-in text refused unless cleaned or allowed, wrong keys and mistyped paths
# refused, truthful de-identification markers, runs with no DICOM input failing.
set -euo pipefail
radguard=$1
work=$(mktemp -d /tmp/radguard-safety-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
fail() { echo "FAIL: $*" >&2; exit 1; }
"$radguard" keygen "$work/k.key" >/dev/null

# --- A. burned-in risk is refused unless cleaned or allowed ------------------------------
mkdir -p "$work/mixed"
cp "$samples/CT_small.dcm" "$samples/MR_small.dcm" "$work/mixed/"
cp "$samples/ExplVR_BigEnd.dcm" "$work/mixed/us.dcm"      # ultrasound, no Burned In Annotation
cp "$samples/SC_rgb_rle.dcm" "$work/mixed/capture.dcm"    # OT colour capture
rc=0
"$radguard" deid "$work/mixed" --output "$work/out-a" --key "$work/k.key" --no-progress \
  --report "$work/a.json" >"$work/a.txt" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "A: burned-in risk not refused (exit $rc)"
grep -q '3 refused: may show burned-in text' "$work/a.txt" || fail "A: summary does not count the refusals"
grep -q '"refused_burned_in_text": 3' "$work/a.json" || fail "A: JSON report does not count the refusals"
grep -q 'modality US' "$work/a.txt" || fail "A: the reason is not named"
[ "$(find "$work/out-a" -name '*.dcm' | wc -l)" -eq 1 ] || fail "A: only the CT should be written (MR_small is DERIVED\\SECONDARY)"
"$radguard" deid "$work/mixed" --output "$work/out-a2" --key "$work/k.key" --no-progress \
  --allow-burned-in-annotation >/dev/null 2>&1 || fail "A: --allow-burned-in-annotation refused"
[ "$(find "$work/out-a2" -name '*.dcm' | wc -l)" -eq 4 ] || fail "A: allowed run did not write all four"

# --- B. no silent mistakes ------------------------------------------------------------------
# A wrong key: the ledger knows its key, so an accounting cannot silently say "0 disclosures".
mkdir -p "$work/in-b"
cp "$samples/CT_small.dcm" "$work/in-b/ct.dcm"
dcmodify -nb -m "(0010,0020)=MRN-B1" "$work/in-b/ct.dcm"
printf 'patient_id,purpose,decision,date\nMRN-B1,research,permit,2025-01-01\n' >"$work/c.csv"
"$radguard" consent import "$work/c.csv" --registry "$work/reg.db" >/dev/null
"$radguard" export "$work/in-b" --output "$work/rel" --purpose research --recipient R --key "$work/k.key" \
  --registry "$work/reg.db" --ledger "$work/ledger.db" --no-progress >/dev/null 2>&1 || fail "B: export"
"$radguard" disclosures --patient MRN-B1 --ledger "$work/ledger.db" --key "$work/k.key" | grep -q '1 disclosure' ||
  fail "B: accounting with the right key"
"$radguard" keygen "$work/other.key" >/dev/null
rc=0; "$radguard" disclosures --patient MRN-B1 --ledger "$work/ledger.db" --key "$work/other.key" \
  >"$work/b.out" 2>"$work/b.err" || rc=$?
[ "$rc" -eq 2 ] || fail "B: disclosures with another key exited $rc"
grep -q 'is not the key of this ledger' "$work/b.err" || fail "B: wrong key not explained"
grep -q '0 disclosures' "$work/b.out" && fail "B: wrong key still printed an accounting"
rc=0; "$radguard" export "$work/in-b" --output "$work/rel" --purpose research --recipient R --key "$work/other.key" \
  --registry "$work/reg.db" --ledger "$work/ledger.db" --no-progress >/dev/null 2>"$work/b.err" || rc=$?
[ "$rc" -eq 2 ] || fail "B: export into another key's ledger exited $rc"
"$radguard" ledger verify --ledger "$work/ledger.db" --json | grep -q '"entries": 1' || fail "B: refused export left an entry"

# Readers never create: a mistyped registry or ledger path is refused and not created.
for cmd in "consent show --patient MRN-B1" "consent list --purpose research" "consent default"; do
  rc=0; "$radguard" $cmd --registry "$work/typo.db" >/dev/null 2>"$work/b.err" || rc=$?
  [ "$rc" -ne 0 ] || fail "B: $cmd accepted a missing registry"
  grep -q 'does not exist' "$work/b.err" || fail "B: $cmd did not say the registry is missing"
  [ ! -e "$work/typo.db" ] || fail "B: $cmd created the registry"
done
rc=0; "$radguard" disclosures --patient X --ledger "$work/typo-ledger.db" --key "$work/k.key" 2>/dev/null || rc=$?
[ "$rc" -ne 0 ] && [ ! -e "$work/typo-ledger.db" ] || fail "B: disclosures on a missing ledger"
rc=0; "$radguard" export "$work/in-b" --output "$work/rel" --purpose research --recipient R --key "$work/k.key" \
  --registry "$work/typo.db" --ledger "$work/ledger.db" --no-progress 2>/dev/null || rc=$?
[ "$rc" -ne 0 ] && [ ! -e "$work/typo.db" ] || fail "B: export on a missing registry"

# A secret key others can read is used, with a warning.
cp "$work/k.key" "$work/open.key"; chmod 644 "$work/open.key"
"$radguard" deid "$work/in-b" --output "$work/out-b" --key "$work/open.key" --no-progress 2>"$work/b.err" ||
  fail "B: deid with a world-readable key"
grep -q 'warning: the secret key .* can be read or changed by other users (mode 0644)' "$work/b.err" ||
  fail "B: no warning for a world-readable key"
"$radguard" deid "$work/in-b" --output "$work/out-b2" --key "$work/k.key" --no-progress 2>"$work/b.err"
grep -q 'warning' "$work/b.err" && fail "B: warning for a 0600 key"

# No DICOM input: exit 1 and say so.
mkdir -p "$work/nodicom"; echo hello >"$work/nodicom/readme.txt"
rc=0; "$radguard" deid "$work/nodicom" --output "$work/out-nd" --key "$work/k.key" --no-progress 2>"$work/b.err" || rc=$?
[ "$rc" -eq 1 ] || fail "B: a run with no DICOM input exited $rc"
grep -q 'no DICOM input found' "$work/b.err" || fail "B: no message for a run without DICOM input"

# Paths that are not valid UTF-8 (a Latin-1 folder name): reports survive, JSON stays valid.
bad=$(printf 'M\xfcller-\xff')
mkdir -p "$work/latin/$bad"
cp "$samples/CT_small.dcm" "$work/latin/$bad/ok.dcm"
head -c 300 "$samples/CT_small.dcm" >"$work/latin/$bad/truncated.dcm"
rc=0; "$radguard" deid "$work/latin" --output "$work/out-latin" --key "$work/k.key" --no-progress --json \
  >"$work/latin.json" 2>"$work/b.err" || rc=$?
[ "$rc" -eq 1 ] || fail "B: non-UTF-8 run exited $rc (expected 1 for the truncated file)"
grep -q 'type_error' "$work/latin.json" "$work/b.err" && fail "B: type_error on a non-UTF-8 path"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["counts"]["written"]==1, d; assert len(d["failures"])==1' \
  "$work/latin.json" || fail "B: the JSON report of a non-UTF-8 run is not valid"
rc=0; "$radguard" deid "$work/latin" --output "$work/out-latin2" --key "$work/k.key" --no-progress \
  2>"$work/b.err" || rc=$?
grep -q 'de-identified 1 of 2' "$work/b.err" || fail "B: no text summary for a non-UTF-8 run"

# A gateway told to listen on HOST:PORT says why it takes a port only, and does nothing.
rc=0; "$radguard" gateway --listen 127.0.0.1:11112 --ae-title RG --spool "$work/gw-spool" \
  --key "$work/k.key" --output "$work/gw-out" 2>"$work/b.err" || rc=$?
[ "$rc" -eq 2 ] || fail "B: --listen HOST:PORT exited $rc (expected 2)"
grep -q -- '--allow-host' "$work/b.err" || fail "B: --listen HOST:PORT does not say how to narrow peers"
[ ! -e "$work/gw-spool" ] || fail "B: a refused gateway command made its spool"

# --- C. truthful markers -----------------------------------------------------------------
printf 'PatientName K\nPatientBirthDate K\nStudyDescription K\n' >"$work/keep.recipe"
"$radguard" deid "$work/in-b" --output "$work/out-c" --key "$work/k.key" --recipe "$work/keep.recipe" \
  --no-progress --report "$work/c.json" 2>"$work/c.err" || fail "C: deid with a keeping recipe"
grep -q "warning: the recipe keeps 3 attribute(s) the Basic Profile removes or replaces: Study Description, Patient's Name, Patient's Birth Date" \
  "$work/c.err" || fail "C: no warning naming the kept attributes: $(cat "$work/c.err")"
grep -q 'Patient Identity Removed = NO' "$work/c.err" || fail "C: no warning about the marker"
out=$(find "$work/out-c" -name '*.dcm' | head -1)
dcmdump +P 0012,0062 "$out" | grep -q '\[NO\]' || fail "C: Patient Identity Removed is not NO while the name is kept"
grep -q '"patient_identity_removed": false' "$work/c.json" || fail "C: report does not say identity was kept"
# Without the recipe: YES and no warning; an option that keeps device identity is named.
out=$(find "$work/out-b2" -name '*.dcm' | head -1)
dcmdump +P 0012,0062 "$out" | grep -q '\[YES\]' || fail "C: Patient Identity Removed is not YES"
"$radguard" deid "$work/in-b" --output "$work/out-c2" --key "$work/k.key" --option retain-device-identity \
  --no-progress 2>"$work/c.err" || fail "C: deid with retain-device-identity"
grep -q "warning: option retain-device-identity keeps .* Device Serial Number" "$work/c.err" ||
  fail "C: the option's kept attributes are not named"
grep -q 'Patient Identity Removed = NO' "$work/c.err" && fail "C: device identity is not a direct identifier"
out=$(find "$work/out-c2" -name '*.dcm' | head -1)
dcmdump +P 0012,0062 "$out" | grep -q '\[YES\]' || fail "C: Patient Identity Removed is not YES with device identity"

# --- E. checking a release, withdrawals --------------------------------------------------
"$radguard" ledger verify --ledger "$work/ledger.db" --releases "$work/rel" >/dev/null || fail "E: fresh release"
rel=$(find "$work/rel" -mindepth 1 -maxdepth 1 -name 'release-*' | head -1)
dcm=$(find "$rel" -name '*.dcm' | head -1)
cp "$dcm" "$work/saved.dcm"
printf 'X' | dd of="$dcm" bs=1 seek=200 conv=notrunc 2>/dev/null
rc=0; "$radguard" ledger verify --ledger "$work/ledger.db" --releases "$work/rel" 2>"$work/e.err" || rc=$?
[ "$rc" -ne 0 ] || fail "E: an altered DICOM file in a release still verifies"
grep -q 'altered' "$work/e.err" || fail "E: the altered file is not named: $(cat "$work/e.err")"
cp "$work/saved.dcm" "$dcm"; echo extra >"$rel/extra.txt"
rc=0; "$radguard" ledger verify --ledger "$work/ledger.db" --releases "$work/rel" 2>"$work/e.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q 'extra.txt: added' "$work/e.err" || fail "E: an added file is not reported"
rm "$rel/extra.txt"; rm "$dcm"
rc=0; "$radguard" ledger verify --ledger "$work/ledger.db" --releases "$work/rel" 2>"$work/e.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q 'missing' "$work/e.err" || fail "E: a missing file is not reported"
cp "$work/saved.dcm" "$dcm"
"$radguard" ledger verify --ledger "$work/ledger.db" --releases "$work/rel" >/dev/null || fail "E: restored release"

# ledger list: one line per entry, counts only.
"$radguard" ledger list --ledger "$work/ledger.db" >"$work/list.txt" || fail "E: ledger list"
grep -q 'released  R  research  1 patients, 1 studies, 1 instances' "$work/list.txt" || fail "E: ledger list: $(cat "$work/list.txt")"
grep -q 'MRN-B1' "$work/list.txt" && fail "E: ledger list names a patient"

# pseudonym: the released Patient ID and Study UID are what the key gives for the originals.
study=$(dcmdump +P 0020,000d "$samples/CT_small.dcm" | sed 's/.*\[\(.*\)\].*/\1/')
"$radguard" pseudonym --patient MRN-B1 --uid "$study" --key "$work/k.key" --json >"$work/p.json" || fail "E: pseudonym"
pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["patient_id"])' "$work/p.json")
puid=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(list(d["uids"].values())[0])' "$work/p.json")
dcmdump +P 0010,0020 "$dcm" | grep -q "\[$pid\]" || fail "E: pseudonym's Patient ID is not the released one"
dcmdump +P 0020,000d "$dcm" | grep -q "\[$puid\]" || fail "E: pseudonym's Study UID is not the released one"

# One line per refused series, not one per slice.
mkdir -p "$work/series"
for i in 1 2 3 4 5; do
  cp "$samples/ExplVR_BigEnd.dcm" "$work/series/us$i.dcm"
  dcmodify -nb -m "(0008,0018)=1.2.826.0.1.3680043.10.1137.77.$i" "$work/series/us$i.dcm"
done
rc=0; "$radguard" deid "$work/series" --output "$work/out-series" --key "$work/k.key" --no-progress 2>"$work/s.err" || rc=$?
[ "$rc" -eq 1 ] || fail "series: exit $rc"
[ "$(grep -c '^error:' "$work/s.err")" -eq 1 ] || fail "series: expected 1 error line: $(cat "$work/s.err")"
grep -q 'and 4 more inputs for the same reason' "$work/s.err" || fail "series: repeats not counted"

# verify knows a signed release: its manifest.json is checked, not reported as unsigned DICOM.
"$radguard" keys new --key "$work/s.key.pem" --cert "$work/s.cert.pem" >/dev/null 2>&1 || fail "keys new"
"$radguard" export "$work/in-b" --output "$work/rel-signed" --purpose research --recipient R --key "$work/k.key" \
  --registry "$work/reg.db" --ledger "$work/ledger.db" --sign-key "$work/s.key.pem" --sign-cert "$work/s.cert.pem" \
  --no-progress >/dev/null 2>&1 || fail "signed export"
srel=$(find "$work/rel-signed" -mindepth 1 -maxdepth 1 -name 'release-*' | head -1)
"$radguard" verify "$srel" --trust "$work/s.cert.pem" >"$work/v.out" 2>"$work/v.err" ||
  fail "verify of a signed release: $(cat "$work/v.out" "$work/v.err")"
grep -q 'every file matches the release' "$work/v.err" || fail "verify did not check the manifest"
echo extra >"$srel/extra.txt"
rc=0; "$radguard" verify "$srel" --trust "$work/s.cert.pem" >/dev/null 2>"$work/v.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q 'extra.txt: added' "$work/v.err" || fail "verify missed a file added to a release"
rm "$srel/extra.txt"

# A signed release carries manifest.json.p7s (detached CMS): OpenSSL alone, manifest verify and
# verify-release check it; verify-release says file by file what is wrong.
[ -f "$srel/manifest.json.p7s" ] || fail "signed export wrote no manifest.json.p7s"
openssl cms -verify -binary -inform DER -in "$srel/manifest.json.p7s" -content "$srel/manifest.json" \
  -CAfile "$work/s.cert.pem" -purpose any -out /dev/null 2>"$work/o.err" || fail "openssl cms -verify: $(cat "$work/o.err")"
"$radguard" manifest verify "$srel" "$srel/manifest.json" --trust "$work/s.cert.pem" >"$work/m.out" ||
  fail "manifest verify of a release: $(cat "$work/m.out")"
grep -q 'signature: valid' "$work/m.out" || fail "manifest verify did not check the signature: $(cat "$work/m.out")"
"$radguard" verify-release "$srel" --trust "$work/s.cert.pem" >"$work/vr.out" || fail "verify-release: $(cat "$work/vr.out")"
grep -q '1 of 1 files intact and validly signed, 0 problems: PASSED' "$work/vr.out" || fail "verify-release: $(cat "$work/vr.out")"
"$radguard" verify-release "$srel" --trust "$work/s.cert.pem" --json |
  python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["passed"] and d["manifest_signature"]["status"]=="valid", d' ||
  fail "verify-release --json"
"$radguard" keys new --key "$work/o.key.pem" --cert "$work/o.cert.pem" >/dev/null 2>&1 || fail "keys new (other)"
rc=0; "$radguard" verify-release "$srel" --trust "$work/o.cert.pem" >"$work/vr.out" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'signature: untrusted_signer' "$work/vr.out" && grep -q 'bad signature: untrusted_signer' "$work/vr.out" ||
  fail "verify-release with the wrong CA (exit $rc): $(cat "$work/vr.out")"
sdcm=$(find "$srel" -name '*.dcm' | head -1); sname=${sdcm#"$srel/"}
cp "$sdcm" "$work/ssaved.dcm"
printf 'X' | dd of="$sdcm" bs=1 seek=$(( $(stat -c %s "$sdcm") / 2 )) conv=notrunc 2>/dev/null
echo extra >"$srel/added.txt"
rc=0; "$radguard" verify-release "$srel" --trust "$work/s.cert.pem" >"$work/vr.out" || rc=$?
[ "$rc" -eq 1 ] || fail "verify-release passed an altered release"
grep -q "^$sname: altered (its SHA-256 is not the one recorded); bad signature: invalid" "$work/vr.out" ||
  fail "verify-release: altered file: $(cat "$work/vr.out")"
grep -q '^added.txt: added' "$work/vr.out" || fail "verify-release: added file: $(cat "$work/vr.out")"
rm "$srel/added.txt"; mv "$sdcm" "$work/away.dcm"
rc=0; "$radguard" verify-release "$srel" --trust "$work/s.cert.pem" >"$work/vr.out" || rc=$?
[ "$rc" -eq 1 ] && grep -q "^$sname: missing" "$work/vr.out" || fail "verify-release: missing file: $(cat "$work/vr.out")"
cp "$work/ssaved.dcm" "$sdcm"
cp "$srel/manifest.json" "$work/msaved.json"
sed -i 's/"recipient": "R"/"recipient": "S"/' "$srel/manifest.json"
rc=0; "$radguard" verify-release "$srel" --trust "$work/s.cert.pem" >"$work/vr.out" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'manifest.json signature: invalid' "$work/vr.out" || fail "verify-release: tampered manifest: $(cat "$work/vr.out")"
rc=0; "$radguard" verify "$srel" --trust "$work/s.cert.pem" >/dev/null 2>"$work/v.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'manifest.json: signature invalid' "$work/v.err" || fail "verify missed a tampered manifest: $(cat "$work/v.err")"
cp "$work/msaved.json" "$srel/manifest.json"
"$radguard" verify-release "$srel" --trust "$work/s.cert.pem" >/dev/null || fail "verify-release of the restored release"
"$radguard" ledger verify --ledger "$work/ledger.db" --releases "$work/rel-signed" >/dev/null 2>&1 ||
  fail "ledger verify --releases took manifest.json.p7s for an added file"

# export --dry-run: per study what would be released or withheld; writes and appends nothing.
mkdir -p "$work/in-dry"
cp "$work/in-b/ct.dcm" "$work/in-dry/permitted.dcm"
cp "$samples/CT_small.dcm" "$work/in-dry/denied.dcm"
dcmodify -nb -m "(0010,0020)=MRN-NOBODY" -m "(0020,000d)=1.2.826.0.1.3680043.10.1137.55" "$work/in-dry/denied.dcm"
entries=$("$radguard" ledger verify --ledger "$work/ledger.db" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
"$radguard" export "$work/in-dry" --output "$work/rel-dry" --purpose research --recipient R --key "$work/k.key" \
  --registry "$work/reg.db" --ledger "$work/ledger.db" --dry-run --no-progress 2>"$work/d.err" ||
  fail "dry run: $(cat "$work/d.err")"
grep -q 'dry run, nothing written or recorded: would release 1 instance in 1 study' "$work/d.err" || fail "dry run summary: $(cat "$work/d.err")"
grep -q 'withhold (no_consent_default_deny)' "$work/d.err" || fail "dry run does not say why a study is withheld"
grep -q 'MRN-' "$work/d.err" && fail "dry run names a patient"
[ ! -e "$work/rel-dry" ] || fail "dry run wrote the output folder"
after=$("$radguard" ledger verify --ledger "$work/ledger.db" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
[ "$entries" = "$after" ] || fail "dry run appended to the ledger ($entries -> $after)"
"$radguard" export "$work/in-dry" --output "$work/rel-dry" --purpose research --recipient R --key "$work/k.key" \
  --registry "$work/reg.db" --ledger "$work/new-ledger.db" --dry-run --no-progress 2>/dev/null || fail "dry run without a ledger"
[ ! -e "$work/new-ledger.db" ] || fail "dry run created a ledger"

# --- Ctrl-C: a run stops between files, publishes only whole files and says so --------------
mkdir -p "$work/many"
/usr/bin/python3 - "$samples/CT_small.dcm" "$work/many" <<'PY'
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
for i in range(3000):
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.1137.77.%d" % i
    ds.save_as("%s/ct%04d.dcm" % (sys.argv[2], i))
PY
"$radguard" deid "$work/many" --output "$work/out-int" --key "$work/k.key" --no-progress -j 1 \
  >"$work/int.txt" 2>&1 &
pid=$!
for _ in $(seq 1 400); do
  [ -n "$(find "$work/out-int" -name '*.dcm' -print -quit 2>/dev/null)" ] && break
  sleep 0.05
done
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 1 ] || fail "Ctrl-C: exit $rc, expected 1 (cancelled): $(tail -3 "$work/int.txt")"
grep -q 'cancelled' "$work/int.txt" || fail "Ctrl-C: the summary does not say the run was cancelled"
written=$(find "$work/out-int" -name '*.dcm' | wc -l)
[ "$written" -gt 0 ] && [ "$written" -lt 3000 ] || fail "Ctrl-C: $written of 3000 written"
[ -z "$(find "$work/out-int" -name '.*' -type f)" ] || fail "Ctrl-C: temporary files left behind"
find "$work/out-int" -name '*.dcm' -size -1k | grep -q . && fail "Ctrl-C: a short output file"

echo "cli_safety_test: all passed"
