#!/usr/bin/env bash
# radguard gateway forwarding to Orthanc (Debian's orthanc package), started here on free
# ports with its own configuration in a temporary folder (no systemd, HTTP for localhost
# only, C-STORE accepted only from the gateway's AE title at 127.0.0.1). Checked through
# Orthanc's REST API: every instance sent arrived once, de-identified (no original patient
# name, ID or UID), compressed ones as they came.
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
echo "gateway -> Orthanc: $expected of $sent instances forwarded ($quarantined quarantined) and found de-identified through its REST API"
