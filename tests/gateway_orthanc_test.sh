#!/usr/bin/env bash
# radguard gateway forwarding to Orthanc (Debian's orthanc package), started here on free
# ports with its own configuration in a temporary folder (no systemd, HTTP for localhost
# only, C-STORE accepted only from the gateway's AE title at 127.0.0.1). Checked through
# Orthanc's REST API: every instance sent arrived once, de-identified (no original patient
# name, ID or UID), compressed ones as they came. Then Orthanc as the PACS for radguard gateway
# pull (C-FIND, C-MOVE to the gateway).
set -euo pipefail
radguard=$1
command -v Orthanc >/dev/null || { echo "Orthanc is not installed (scripts/install-deps.sh)" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/gateway_common.sh" orthanc
rest() {  # rest PATH: GET from Orthanc's REST API
  python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$hport' + sys.argv[1], timeout=10).read().decode())" "$1"
}
orthanc_count() { rest /statistics | python3 -c "import json,sys; print(json.load(sys.stdin)['CountInstances'])"; }
orthanc_has() { [ "$(orthanc_count)" = "$1" ]; }

gport=$(free_port)
oport=$(free_port)
hport=$(free_port)
mkdir -p "$work/orthanc"
cat >"$work/orthanc.json" <<EOF
{
  "Name" : "radguard-test",
  "StorageDirectory" : "$work/orthanc/db",
  "IndexDirectory" : "$work/orthanc/db",
  "Plugins" : [ ],
  "HttpServerEnabled" : true,
  "HttpPort" : $hport,
  "RemoteAccessAllowed" : false,
  "AuthenticationEnabled" : false,
  "DicomServerEnabled" : true,
  "DicomAet" : "ORTHANC",
  "DicomPort" : $oport,
  "DicomCheckCalledAet" : true,
  "DicomAlwaysAllowStore" : false,
  "DicomCheckModalityHost" : true,
  "DicomModalities" : { "radguard" : [ "RG", "127.0.0.1", $gport ] },
  "SaveJobs" : false,
  "StorageCompression" : false
}
EOF
Orthanc "$work/orthanc.json" >"$work/orthanc.log" 2>&1 &
pids+=("$!")
wait_for 60 rest /system || fail "Orthanc did not start"

"$radguard" keygen "$work/k.key" >/dev/null
mkdir -p "$work/in"
for i in 1 2 3 4; do cp "$samples/CT_small.dcm" "$work/in/ct$i.dcm"; done
cp "$samples/MR_small.dcm" "$work/in/mr.dcm"
dcmodify -nb -gin "$work/in"/*.dcm
dcmcjpls "$work/in/ct1.dcm" "$work/in/ct-jls.dcm" && dcmodify -nb -gin "$work/in/ct-jls.dcm"
sent=$(find "$work/in" -name '*.dcm' | wc -l)

"$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool" --key "$work/k.key" \
  --forward "ORTHANC@127.0.0.1:$oport" --retry-max 1 --allow-calling SENDER >"$work/gw.log" 2>&1 &
gw=$!
pids+=("$gw")
wait_for 20 echoscu -aet SENDER -aec RG 127.0.0.1 "$gport" || fail "the gateway did not answer C-ECHO"
storescu -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/in"/ct[1-4].dcm "$work/in/mr.dcm" \
  >"$work/send.log" 2>&1 || fail "storescu failed (uncompressed)"
storescu -xt -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/in/ct-jls.dcm" >>"$work/send.log" 2>&1 ||
  fail "storescu failed (JPEG-LS)"
wait_for 60 field_is "$work/spool" outbox 0 || fail "the outbox did not drain to Orthanc"
# An instance the pipeline refuses is quarantined, never forwarded (the CTs are all released).
quarantined=$(status_field "$work/spool" quarantined)
expected=$((sent - quarantined))
[ "$expected" -ge 5 ] || fail "only $expected of $sent instances released"
wait_for 20 orthanc_has "$expected" || fail "Orthanc holds $(orthanc_count) instances, not $expected"
kill -TERM "$gw"
rc=0; wait "$gw" || rc=$?
[ "$rc" = 0 ] || fail "SIGTERM exit status $rc"

# What Orthanc holds, through its REST API: de-identified, JPEG-LS kept.
python3 - "$hport" "$expected" <<'PY' || fail "Orthanc's instances are not de-identified"
import json, sys, urllib.request
base = "http://127.0.0.1:" + sys.argv[1]
get = lambda p: json.load(urllib.request.urlopen(base + p, timeout=10))
ids = get("/instances")
assert len(ids) == int(sys.argv[2]), ids
syntaxes = set()
for i in ids:
    tags = get(f"/instances/{i}/simplified-tags")
    for key in ("PatientName", "PatientID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        value = str(tags.get(key, ""))
        assert "CompressedSamples" not in value and value not in ("1CT1", "4MR1"), (key, value)
        assert not value.startswith("1.3.6.1.4.1.5962"), (key, value)
    meta = get(f"/instances/{i}/header?simplify")
    syntaxes.add(meta["TransferSyntaxUID"])
assert "1.2.840.10008.1.2.4.80" in syntaxes, syntaxes  # JPEG-LS lossless, as it came
print(f"{len(ids)} instances in Orthanc, de-identified; transfer syntaxes {sorted(syntaxes)}")
PY
grep -q -e 'CompressedSamples' -e '1CT1' -e '4MR1' "$work/gw.log" && fail "a value in the log"

# --- pull: Orthanc as the PACS. The originals are uploaded through its REST API; radguard
# gateway pull has it send (C-FIND, then C-MOVE to the gateway's AE title, which its
# configuration maps to the gateway's port) the CT study named by its Study Instance UID and
# the MR patient's studies named by patient ID (from a list file) to a gateway that writes to
# a folder: what arrives is exactly what radguard deid makes of the same originals.
for f in ct1 ct2 ct3 ct4 mr; do
  python3 -c "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:$hport/instances', data=open(sys.argv[1], 'rb').read(), method='POST'), timeout=10).read()" \
    "$work/in/$f.dcm" || fail "upload to Orthanc"
done
mkdir -p "$work/pull-in"
cp "$work/in"/ct[1-4].dcm "$work/in/mr.dcm" "$work/pull-in/"
# (deid exits 1 when it refuses a file, as the gateway quarantines it)
rc=0
"$radguard" deid "$work/pull-in" --output "$work/ref-pull" --key "$work/k.key" --no-progress \
  >"$work/deid-pull.txt" 2>&1 || rc=$?
[ "$rc" -le 1 ] || fail "deid of the originals (exit $rc)"
"$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool-pull" --key "$work/k.key" \
  --output "$work/out-pull" --allow-calling ORTHANC >"$work/gw-pull.log" 2>&1 &
gw=$!
pids+=("$gw")
wait_for 20 echoscu -aet ORTHANC -aec RG 127.0.0.1 "$gport" || fail "the pull gateway did not start"
pull=("$radguard" gateway pull --from "ORTHANC@127.0.0.1:$oport" --ae-title RG --move-to RG)
# Refused before anything is asked: a wildcard would match other patients' studies.
rc=0; "${pull[@]}" --by patient-id '4MR*' >"$work/pull-bad.log" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "pull: a wildcard was not refused (exit $rc)"
# A patient the PACS does not know: reported, exit 1, nothing moved.
rc=0; "${pull[@]}" --by patient-id NOBODY >"$work/pull-none.log" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q 'no study found' "$work/pull-none.log" || fail "pull: an unknown patient (exit $rc)"
"${pull[@]}" 1.3.6.1.4.1.5962.1.2.1.20040119072730.12322 >"$work/pull-study.log" 2>&1 ||
  fail "pull by Study Instance UID failed"
grep -q '1 study, 4 instances sent to RG, 0 failed' "$work/pull-study.log" || fail "pull: the CT study's counts"
printf '# the MR patient\n4MR1\n' >"$work/pull-list.txt"
"${pull[@]}" --by patient-id --list "$work/pull-list.txt" >"$work/pull-patient.log" 2>&1 ||
  fail "pull by patient ID failed"
grep -q '1 study, 1 instance sent to RG, 0 failed' "$work/pull-patient.log" || fail "pull: the MR patient's counts"
wait_for 30 field_is "$work/spool-pull" incoming 0 || fail "pull: instances not processed"
kill -TERM "$gw"; wait "$gw" || fail "SIGTERM exit status (pull)"
[ "$(cd "$work/out-pull" && find . -type f | sort)" = "$(cd "$work/ref-pull" && find . -type f -name '*.dcm' | sort)" ] ||
  fail "pull: the gateway did not publish what deid makes of the studies pulled"
pulled=$(find "$work/out-pull" -type f | wc -l)
[ $((pulled + $(status_field "$work/spool-pull" quarantined))) = 5 ] ||
  fail "pull: not every instance of the two studies was received"
grep -q -e 'CompressedSamples' -e '1CT1' -e '4MR1' -e '1\.3\.6\.1\.4\.1\.5962' "$work/gw-pull.log" \
  "$work"/pull-*.log && fail "pull: a value in a log"

echo "gateway -> Orthanc: $expected of $sent instances forwarded ($quarantined quarantined) and found de-identified through its REST API; pull from Orthanc (C-FIND, C-MOVE) by study and by patient: $pulled published as deid publishes them"
