#!/usr/bin/env bash
# radguard gateway against real peers on loopback: DCMTK's storescu sends, storescp receives
# what the gateway forwards. Faults: a calling AE not allowed (refused), an instance the
# pipeline refuses (quarantined, the association goes on), the destination down then up (the
# outbox drains), kill -9 during a load and a restart (every acknowledged instance arrives,
# none twice under different names), SIGTERM (exit 0); a release route from a pipeline file
# (consent gate, ledger entry per study batch); malformed data sets from a raw sender on one
# association (E); kill -9 during a forward load (F) and in the middle of a forward batch (G):
# every acknowledged instance arrives, at most the one in flight twice. Ports are chosen at
# run time.
set -euo pipefail
radguard=$1
source "$(dirname "${BASH_SOURCE[0]}")/gateway_common.sh" test
count() { find "$1" -type f -name "$2" 2>/dev/null | wc -l; }

"$radguard" keygen "$work/k.key" >/dev/null

# Inputs: copies of a CT with new SOP Instance UIDs, and real-world samples in other transfer
# syntaxes; the ultrasound (big endian) and the colour capture (RLE) may show burned-in text,
# so the pipeline refuses them (quarantine).
mkdir -p "$work/in/plain" "$work/in/rle" "$work/in/jls" "$work/in/jpeg" "$work/load"
for i in $(seq 1 10); do
  cp "$samples/CT_small.dcm" "$work/in/plain/ct$i.dcm"
  dcmodify -nb -gin "$work/in/plain/ct$i.dcm"
done
# The CT compressed as it may come: RLE, JPEG-LS lossless, JPEG lossless (new UIDs each).
dcmcrle "$work/in/plain/ct1.dcm" "$work/in/rle/ct.dcm" && dcmodify -nb -gin "$work/in/rle/ct.dcm"
dcmcjpls "$work/in/plain/ct1.dcm" "$work/in/jls/ct.dcm" && dcmodify -nb -gin "$work/in/jls/ct.dcm"
dcmcjpeg "$work/in/plain/ct1.dcm" "$work/in/jpeg/ct.dcm" && dcmodify -nb -gin "$work/in/jpeg/ct.dcm"
cp "$samples/ExplVR_BigEnd.dcm" "$work/in/plain/us.dcm"
cp "$samples/SC_rgb_rle.dcm" "$work/in/rle/capture.dcm"
sent=$(find "$work/in" -name "*.dcm" | wc -l)

gport=$(free_port)
dport=$(free_port)
start_gateway() {  # start_gateway LOG ARGS...
  local log=$1; shift
  "$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool" --key "$work/k.key" \
    --allow-calling SENDER "$@" >>"$log" 2>&1 &
  gw=$!
  pids+=("$gw")
  wait_for 20 echoscu -aet SENDER -aec RG 127.0.0.1 "$gport" || fail "gateway did not answer C-ECHO"
}

# --- A. forward: refused AE, quarantine, destination down, kill -9, restart, drain ----------
start_gateway "$work/gw-a.log" --forward "DEST@127.0.0.1:$dport" --retry-max 1

# A calling AE title not on the list is refused at association.
if storescu -aet STRANGER -aec RG 127.0.0.1 "$gport" "$work/in/plain/ct1.dcm" >"$work/stranger.log" 2>&1; then
  fail "A: a calling AE title not on the list was accepted"
fi
# A wrong called AE title too.
if storescu -aet SENDER -aec OTHER 127.0.0.1 "$gport" "$work/in/plain/ct1.dcm" >/dev/null 2>&1; then
  fail "A: a wrong called AE title was accepted"
fi
# Everything acknowledged, compressed data as it comes (the refused ones are quarantined
# later, and the association goes on: the US is among the plain files).
storescu -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/in/plain"/*.dcm >"$work/send-a.log" 2>&1 ||
  fail "A: storescu failed (uncompressed)"
for kind in "rle -xr" "jls -xt" "jpeg -xs"; do
  set -- $kind
  storescu "$2" -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/in/$1"/*.dcm >>"$work/send-a.log" 2>&1 ||
    fail "A: storescu failed ($1)"
done
wait_for 30 field_is "$work/spool" incoming 0 || fail "A: instances not processed"
[ "$(status_field "$work/spool" quarantined)" = 2 ] || fail "A: the US and the capture should be quarantined"
[ "$(status_field "$work/spool" outbox)" = $((sent - 2)) ] || fail "A: outbox count"
wait_for 20 bash -c "[ \"\$('$radguard' gateway status --spool '$work/spool' --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"outbox_retrying\"])')\" -gt 0 ]" ||
  fail "A: no failed forward recorded while the destination is down"
"$radguard" gateway status --spool "$work/spool" >"$work/status.txt"
grep -q 'quarantined: 2' "$work/status.txt" || fail "A: status text"
grep -q 'policy' "$work/status.txt" || fail "A: status does not give the quarantine reason"

# kill -9, then restart: the outbox survives; the destination comes up; the queue drains.
kill -9 "$gw"; wait "$gw" 2>/dev/null || true
start_gateway "$work/gw-a2.log" --forward "DEST@127.0.0.1:$dport" --retry-max 1
mkdir -p "$work/dest"
storescp +xa -aet DEST -od "$work/dest" "$dport" >"$work/storescp.log" 2>&1 &
pids+=("$!")
wait_for 30 field_is "$work/spool" outbox 0 || fail "A: the outbox did not drain"
[ "$(count "$work/dest" '*')" = $((sent - 2)) ] || fail "A: the destination did not get every instance once"
# Compressed instances arrived as they came (not decompressed on the way).
dcmdump -M "$work/dest"/* >"$work/dest.dump" 2>&1
grep -q '=RLELossless.*TransferSyntaxUID' "$work/dest.dump" || fail "A: RLE not kept"
grep -q '=JPEGLSLossless.*TransferSyntaxUID' "$work/dest.dump" || fail "A: JPEG-LS not kept"
# Nothing identifying arrived: no original SOP Instance UID, patient name or ID.
dcmdump "$work/dest"/* >"$work/dest.dump" 2>&1
grep -q -e 'CompressedSamples' -e '1CT1' -e '1\.3\.6\.1\.4\.1\.5962' "$work/dest.dump" &&
  fail "A: an identifying value was forwarded"
# SIGTERM: a graceful stop, exit 0.
kill -TERM "$gw"
rc=0; wait "$gw" || rc=$?
[ "$rc" = 0 ] || fail "A: SIGTERM exit status $rc"
grep -q 'stopped:' "$work/gw-a2.log" || fail "A: no stop line"
# The logs carry no attribute value.
grep -q -e 'CompressedSamples' -e '1CT1' -e '1\.3\.6\.1\.4\.1\.5962' "$work"/gw-a*.log &&
  fail "A: a value in the log"

# --- B. kill -9 during a load, restart: every acknowledged instance once ---------------------
rm -rf "$work/spool"
for i in $(seq 1 150); do
  cp "$samples/CT_small.dcm" "$work/load/ct$i.dcm"
done
dcmodify -nb -gin "$work/load"/*.dcm
start_gateway "$work/gw-b.log" --output "$work/out"
storescu -v -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/load"/*.dcm >"$work/send-b.log" 2>&1 &
sender=$!
pids+=("$sender")
wait_for 30 bash -c "[ \$(find '$work/spool/incoming' '$work/out' -type f 2>/dev/null | wc -l) -ge 30 ]" ||
  fail "B: load did not start"
kill -9 "$gw"; wait "$gw" 2>/dev/null || true
wait "$sender" 2>/dev/null || true
# Files storescu saw acknowledged: a "Sending file" line followed by a success response.
awk '/Sending file/ {f=$NF} /Received Store Response \(Success\)/ {if (f != "") print f; f=""}' \
  "$work/send-b.log" | sort -u >"$work/acked.txt"
acked=$(wc -l <"$work/acked.txt")
[ "$acked" -ge 1 ] || fail "B: nothing acknowledged before the kill"
start_gateway "$work/gw-b2.log" --output "$work/out"
wait_for 60 field_is "$work/spool" incoming 0 || fail "B: spooled instances not processed after restart"
kill -TERM "$gw"; wait "$gw" || fail "B: SIGTERM exit status"
# The names deid gives the acknowledged files must all be there; nothing else but names deid
# gives the files sent (an instance cut off before its acknowledgement may or may not be).
mkdir -p "$work/acked"
while read -r f; do cp "$f" "$work/acked/"; done <"$work/acked.txt"
"$radguard" deid "$work/acked" --output "$work/ref-acked" --key "$work/k.key" --no-progress >/dev/null 2>&1 ||
  fail "B: deid of the acknowledged files"
"$radguard" deid "$work/load" --output "$work/ref-all" --key "$work/k.key" --no-progress >/dev/null 2>&1 ||
  fail "B: deid of the sent files"
(cd "$work/out" && find . -type f -name '*.dcm' | sort) >"$work/got.txt"
(cd "$work/ref-acked" && find . -type f -name '*.dcm' | sort) >"$work/want.txt"
(cd "$work/ref-all" && find . -type f -name '*.dcm' | sort) >"$work/possible.txt"
[ -z "$(comm -23 "$work/want.txt" "$work/got.txt")" ] || fail "B: an acknowledged instance is missing"
[ -z "$(comm -23 "$work/got.txt" "$work/possible.txt")" ] || fail "B: an output under another name"
[ "$(find "$work/out" -type f | wc -l)" = "$(wc -l <"$work/got.txt")" ] || fail "B: a stray file in the output"
# (Bytes are not compared: storescu re-encodes what it sends; gateway_tests compare the bytes
# with process_instance's for the same received object.)
# --- C. signing: each instance signed before it is published -------------------------------
rm -rf "$work/spool"
"$radguard" keys new --key "$work/s.pem" --cert "$work/s.crt" >/dev/null 2>&1 || fail "C: keys new"
start_gateway "$work/gw-c.log" --output "$work/signed" --sign-key "$work/s.pem" --sign-cert "$work/s.crt"
storescu -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/in/plain/ct1.dcm" "$work/in/plain/ct2.dcm" \
  >"$work/send-c.log" 2>&1 || fail "C: storescu failed"
wait_for 30 bash -c "[ \$(find '$work/signed' -name '*.dcm' | wc -l) -ge 2 ]" || fail "C: not published"
kill -TERM "$gw"; wait "$gw" || fail "C: SIGTERM exit status"
"$radguard" verify "$work/signed" --trust "$work/s.crt" >"$work/verify-c.log" 2>&1 ||
  fail "C: the published instances do not verify"

# --- D. release route from a pipeline file: consent gate, one ledger entry per study --------
rm -rf "$work/spool"
# A [release] table the gateway cannot honour whole is refused, never ignored.
printf 'key = "%s"\n[release]\npurpose = "research"\n' "$work/k.key" >"$work/partial.toml"
if "$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool" --output "$work/rel" \
    --config "$work/partial.toml" >"$work/partial.log" 2>&1; then
  fail "D: an incomplete [release] table was accepted"
fi
grep -q -- '--recipient' "$work/partial.log" || fail "D: the refusal does not name what is missing"
"$radguard" consent set --registry "$work/consent.db" --patient 1CT1 --purpose research \
  --decision permit --date 2020-01-01 >/dev/null || fail "D: consent set"
printf 'key = "%s"\n[release]\npurpose = "research"\nrecipient = "Example lab"\nregistry = "%s"\nledger = "%s"\n' \
  "$work/k.key" "$work/consent.db" "$work/ledger.db" >"$work/release.toml"
"$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool" --output "$work/rel" \
  --config "$work/release.toml" --series-quiet 1 --allow-calling SENDER >>"$work/gw-d.log" 2>&1 &
gw=$!
pids+=("$gw")
wait_for 20 echoscu -aet SENDER -aec RG 127.0.0.1 "$gport" || fail "D: gateway did not answer C-ECHO"
# Two CTs of the consenting patient (one study) and an MR of a patient with no consent.
storescu -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/in/plain/ct1.dcm" "$work/in/plain/ct2.dcm" \
  "$samples/MR_small.dcm" >"$work/send-d.log" 2>&1 || fail "D: storescu failed"
wait_for 30 field_is "$work/spool" incoming 0 || fail "D: instances not released"
[ "$(count "$work/rel" '*.dcm')" = 2 ] || fail "D: the consenting patient's two instances should be released"
[ "$(status_field "$work/spool" quarantined)" = 1 ] || fail "D: the MR without consent should be quarantined"
"$radguard" gateway status --spool "$work/spool" | grep -q 'withheld' || fail "D: no consent reason in status"
kill -TERM "$gw"; wait "$gw" || fail "D: SIGTERM exit status"
"$radguard" ledger verify --ledger "$work/ledger.db" >/dev/null 2>&1 || fail "D: ledger verify"
"$radguard" ledger list --ledger "$work/ledger.db" --json >"$work/ledger.json" 2>&1 || fail "D: ledger list"
python3 - "$work/ledger.json" <<'PY' || fail "D: ledger entries"
import json, sys
entries = json.load(open(sys.argv[1]))
entries = entries.get("entries", entries) if isinstance(entries, dict) else entries
assert len(entries) == 1, entries
e = entries[0]
assert e["instances"] == 2 and e["studies"] == 1 and e["recipient"] == "Example lab", e
PY
grep -q -e '1CT1' -e '4MR1' "$work/gw-d.log" && fail "D: a patient ID in the log"

# --- E. a malformed data set from a sender, on one association between good ones -----------
# storescu parses what it sends (it refuses a malformed file), so a raw sender sends the data
# sets' bytes as they are: one cut inside Pixel Data (its length runs past the end), one cut
# in the middle of an element's header. Each is answered with a failure status or quarantined
# with a reason that names no value; the association goes on and the good ones are published.
rm -rf "$work/spool"
mkdir -p "$work/bad"
ct_size=$(stat -c %s "$work/in/plain/ct4.dcm")
head -c $((ct_size - 1000)) "$work/in/plain/ct4.dcm" >"$work/bad/past-end.dcm"
head -c 1001 "$work/in/plain/ct5.dcm" >"$work/bad/mid-element.dcm"
start_gateway "$work/gw-e.log" --output "$work/out-e"
python3 "$(dirname "$0")/gateway_raw_scu.py" SENDER RG 127.0.0.1 "$gport" "$work/in/plain/ct1.dcm" \
  "$work/bad/past-end.dcm" "$work/in/plain/ct2.dcm" "$work/bad/mid-element.dcm" \
  "$work/in/plain/ct3.dcm" >"$work/send-e.log" 2>&1 || fail "E: the raw sender got no association"
for f in ct1 ct2 ct3; do
  grep -q "^0x0000 .*/$f.dcm\$" "$work/send-e.log" || fail "E: $f not acknowledged on the association"
done
grep -q '^released$' "$work/send-e.log" || fail "E: the association did not end with a release"
bad_failed=$(grep -c -e '^0x[ABC].*/bad/' "$work/send-e.log" || true)
bad_acked=$(grep -c -e '^0x0000 .*/bad/' "$work/send-e.log" || true)
[ $((bad_failed + bad_acked)) = 2 ] || fail "E: a malformed data set got no answer"
wait_for 30 field_is "$work/spool" incoming 0 || fail "E: instances not processed"
[ "$(status_field "$work/spool" quarantined)" = "$bad_acked" ] ||
  fail "E: each acknowledged malformed data set must be quarantined"
mkdir -p "$work/good-e"
cp "$work/in/plain"/ct[123].dcm "$work/good-e/"
"$radguard" deid "$work/good-e" --output "$work/ref-e" --key "$work/k.key" --no-progress >/dev/null 2>&1 ||
  fail "E: deid of the good files"
[ "$(cd "$work/out-e" && find . -type f | sort)" = "$(cd "$work/ref-e" && find . -type f -name '*.dcm' | sort)" ] ||
  fail "E: the good instances of the association were not all published"
"$radguard" gateway status --spool "$work/spool" --json >"$work/status-e.json"
if [ "$bad_acked" -gt 0 ]; then
  python3 - "$work/status-e.json" <<'PY' || fail "E: no quarantine reason"
import json, sys
s = json.load(open(sys.argv[1]))
reasons = [q["reason"] for q in s["last_quarantined"]]
assert reasons and all(r.strip() for r in reasons), reasons
PY
fi
kill -TERM "$gw"; wait "$gw" || fail "E: SIGTERM exit status"
grep -q -e 'CompressedSamples' -e '1CT1' -e '1\.3\.6\.1\.4\.1\.5962' "$work/status-e.json" "$work/gw-e.log" \
  "$work/spool/quarantine"/*.txt 2>/dev/null && fail "E: a value in a quarantine reason or the log"

# --- F. kill -9 during a load in --forward mode, restart: every acknowledged instance arrives
# at the destination, none twice. storescp keeps every file it receives under its own name
# (+uf), so an instance sent twice shows as two files with one SOP Instance UID. C-STORE cannot
# make this exactly-once (the destination may hold an instance whose answer the gateway had not
# recorded when it was killed), so at most the one instance in flight may arrive again, never
# a batch.
rm -rf "$work/spool"
mkdir -p "$work/dest-f"
fport=$(free_port)  # A's storescp still holds $dport
storescp +uf -aet DEST -od "$work/dest-f" "$fport" >"$work/storescp-f.log" 2>&1 &
pids+=("$!")
start_gateway "$work/gw-f.log" --forward "DEST@127.0.0.1:$fport" --retry-max 1
storescu -v -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/load"/*.dcm >"$work/send-f.log" 2>&1 &
sender=$!
pids+=("$sender")
wait_for 60 bash -c "[ \$(find '$work/dest-f' -type f | wc -l) -ge 20 ]" || fail "F: forwarding did not start"
kill -9 "$gw"; wait "$gw" 2>/dev/null || true
wait "$sender" 2>/dev/null || true
awk '/Sending file/ {f=$NF} /Received Store Response \(Success\)/ {if (f != "") print f; f=""}' \
  "$work/send-f.log" | sort -u >"$work/acked-f.txt"
acked_f=$(wc -l <"$work/acked-f.txt")
[ "$acked_f" -ge 20 ] || fail "F: too little acknowledged before the kill"
start_gateway "$work/gw-f2.log" --forward "DEST@127.0.0.1:$fport" --retry-max 1
wait_for 60 bash -c "[ \"\$('$radguard' gateway status --spool '$work/spool' --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s[\"incoming\"] + s[\"outbox\"])')\" = 0 ]" ||
  fail "F: the spool did not drain after the restart"
kill -TERM "$gw"; wait "$gw" || fail "F: SIGTERM exit status"
mkdir -p "$work/acked-f"
while read -r f; do cp "$f" "$work/acked-f/"; done <"$work/acked-f.txt"
"$radguard" deid "$work/acked-f" --output "$work/ref-acked-f" --key "$work/k.key" --no-progress >/dev/null 2>&1 ||
  fail "F: deid of the acknowledged files"
find "$work/ref-acked-f" -name '*.dcm' -printf '%f\n' | sed 's/\.dcm$//' | sort >"$work/want-f.txt"
find "$work/ref-all" -name '*.dcm' -printf '%f\n' | sed 's/\.dcm$//' | sort >"$work/possible-f.txt"
for f in "$work/dest-f"/*; do dcmdump -q +P 0008,0018 "$f" | sed 's/.*\[\(.*\)\].*/\1/'; done |
  sort >"$work/got-f.txt"
sort -u "$work/got-f.txt" >"$work/got-f-unique.txt"
[ -z "$(comm -23 "$work/want-f.txt" "$work/got-f-unique.txt")" ] ||
  fail "F: an acknowledged instance did not arrive at the destination"
[ -z "$(comm -23 "$work/got-f-unique.txt" "$work/possible-f.txt")" ] ||
  fail "F: the destination got an instance under a name deid does not give"
twice=$(uniq -d "$work/got-f.txt" | wc -l)
[ "$twice" -le 1 ] || fail "F: $twice instances arrived twice at the destination"

# --- G. kill -9 in the middle of a forward batch: the outbox fills while the destination is
# down (150 instances: batches of 64), the destination comes up, the gateway is killed once 10
# have arrived, then restarted. Each instance leaves the outbox as its answer comes, so at most
# the one in flight arrives twice; an outbox cleared per batch would send the batch's first
# ones again (F's load forwards as it arrives, in batches of one or two, and cannot tell).
rm -rf "$work/spool"
mkdir -p "$work/dest-g"
gdport=$(free_port)
start_gateway "$work/gw-g.log" --forward "DEST@127.0.0.1:$gdport" --retry-max 1
storescu -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/load"/*.dcm >"$work/send-g.log" 2>&1 ||
  fail "G: storescu failed"
wait_for 60 field_is "$work/spool" incoming 0 || fail "G: instances not processed"
queued_g=$(status_field "$work/spool" outbox)
[ "$queued_g" = 150 ] || fail "G: $queued_g instances in the outbox, not 150"
storescp +uf -aet DEST -od "$work/dest-g" "$gdport" >"$work/storescp-g.log" 2>&1 &
pids+=("$!")
wait_for 60 bash -c "[ \$(find '$work/dest-g' -type f | wc -l) -ge 10 ]" || fail "G: forwarding did not start"
kill -9 "$gw"; wait "$gw" 2>/dev/null || true
at_kill_g=$(find "$work/dest-g" -type f | wc -l)
start_gateway "$work/gw-g2.log" --forward "DEST@127.0.0.1:$gdport" --retry-max 1
wait_for 60 field_is "$work/spool" outbox 0 || fail "G: the outbox did not drain after the restart"
kill -TERM "$gw"; wait "$gw" || fail "G: SIGTERM exit status"
for f in "$work/dest-g"/*; do dcmdump -q +P 0008,0018 "$f" | sed 's/.*\[\(.*\)\].*/\1/'; done |
  sort >"$work/got-g.txt"
[ "$(sort -u "$work/got-g.txt" | wc -l)" = 150 ] || fail "G: not every queued instance arrived"
twice_g=$(uniq -d "$work/got-g.txt" | wc -l)
[ "$twice_g" -le 1 ] || fail "G: $twice_g instances arrived twice at the destination ($at_kill_g had arrived at the kill)"

echo "gateway interop: A ok ($sent sent), B ok ($acked acknowledged before kill -9, $(wc -l <"$work/got.txt") written), C ok (signed), D ok (consent gate, ledger), E ok ($bad_failed malformed refused, $bad_acked quarantined, the association went on), F ok ($acked_f acknowledged before kill -9, $(wc -l <"$work/got-f.txt") arrived, $twice twice), G ok ($at_kill_g of 150 arrived at kill -9 mid-batch, $(wc -l <"$work/got-g.txt") arrived, $twice_g twice)"
