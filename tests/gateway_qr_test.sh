#!/usr/bin/env bash
# radguard gateway as a Query/Retrieve SCP against DCMTK's findscu, movescu and storescp on
# loopback: a study sent in (storescu) is found by the pseudonymous patient ID and by its
# (pseudonymous) Study Instance UID, at study, series and image level; a query for the original
# patient name or ID finds nothing; an instance the pipeline quarantined is never found; a
# C-MOVE brings the de-identified instances to storescp; a C-MOVE to an AE title not configured
# is refused (0xA801) and sends nothing; a calling AE title not on the allow-list is refused;
# PATIENT level answers the patient once; hostile keys (pixel data, too many values) get 0xA900;
# --query-retrieve without an allow-list is refused at start.
# Ports are chosen at run time.
set -euo pipefail
radguard=$1
source "$(dirname "${BASH_SOURCE[0]}")/gateway_common.sh" qr
count() { find "$1" -type f -name "$2" 2>/dev/null | wc -l; }
# find_count DIR ARGS...: runs findscu (Study Root) with responses extracted into DIR; prints
# how many came.
find_count() {
  local dir=$1; shift
  rm -rf "$dir"; mkdir -p "$dir"
  findscu -S -X -od "$dir" -aet QUERIER -aec RG "$@" 127.0.0.1 "$gport" >>"$work/find.log" 2>&1 ||
    fail "findscu failed ($*)"
  count "$dir" 'rsp*.dcm'
}
tag_of() { dcmdump -q +P "$2" "$1" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1; }

"$radguard" keygen "$work/k.key" >/dev/null

# A study of three CT instances with a known original name and ID; and an ultrasound the
# pipeline refuses (burned-in text may show), with the same original ID: quarantined.
mkdir -p "$work/in" "$work/out" "$work/dest"
for i in 1 2 3; do
  cp "$samples/CT_small.dcm" "$work/in/ct$i.dcm"
  dcmodify -nb -gin -i "PatientName=ZEBRA^QUOKKA" -i "PatientID=ZQ-4711" "$work/in/ct$i.dcm"
done
dcmodify -nb -m "StudyInstanceUID=1.2.826.0.1.3680043.8.498.1" "$work/in"/ct*.dcm
cp "$samples/ExplVR_BigEnd.dcm" "$work/in/us.dcm"
dcmodify -nb -gin -i "PatientName=ZEBRA^QUOKKA" -i "PatientID=ZQ-4711" "$work/in/us.dcm"

gport=$(free_port)
dport=$(free_port)
"$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool" --key "$work/k.key" \
  --output "$work/out" --allow-calling SENDER --allow-calling QUERIER \
  --query-retrieve --move-destination "DEST@127.0.0.1:$dport" >"$work/gw.log" 2>&1 &
pids+=("$!")
wait_for 20 echoscu -aet SENDER -aec RG 127.0.0.1 "$gport" || fail "gateway did not answer C-ECHO"

storescu -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/in"/*.dcm >"$work/send.log" 2>&1 ||
  fail "storescu failed"
wait_for 30 field_is "$work/spool" incoming 0 || fail "instances not processed"
[ "$(status_field "$work/spool" quarantined)" = 1 ] || fail "the ultrasound should be quarantined"
[ "$(count "$work/out" '*.dcm')" = 3 ] || fail "three de-identified instances expected in the output"

# The pseudonyms, read from a released instance.
released=$(find "$work/out" -type f -name '*.dcm' | head -1)
pseudo_id=$(tag_of "$released" PatientID)
pseudo_study=$(tag_of "$released" StudyInstanceUID)
[ -n "$pseudo_id" ] && [ "$pseudo_id" != ZQ-4711 ] || fail "no pseudonymous patient ID"
[ "$pseudo_study" != 1.2.826.0.1.3680043.8.498.1 ] || fail "the study UID was not replaced"

# Found by the pseudonymous patient ID: one study, whose answer names it and counts its
# instances; by its study UID; at series and image level.
n=$(find_count "$work/f1" -k QueryRetrieveLevel=STUDY -k "PatientID=$pseudo_id" \
  -k StudyInstanceUID -k PatientName -k NumberOfStudyRelatedInstances -k RetrieveAETitle)
[ "$n" = 1 ] || fail "by pseudonymous patient ID: $n studies, not 1"
[ "$(tag_of "$work/f1/rsp0001.dcm" StudyInstanceUID)" = "$pseudo_study" ] || fail "study UID answered"
[ "$(tag_of "$work/f1/rsp0001.dcm" NumberOfStudyRelatedInstances)" = 3 ] || fail "instance count"
[ "$(tag_of "$work/f1/rsp0001.dcm" RetrieveAETitle)" = RG ] || fail "Retrieve AE Title"
n=$(find_count "$work/f2" -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$pseudo_study" -k PatientID)
[ "$n" = 1 ] || fail "by study UID: $n studies, not 1"
[ "$(tag_of "$work/f2/rsp0001.dcm" PatientID)" = "$pseudo_id" ] || fail "patient ID answered"
n=$(find_count "$work/f3" -k QueryRetrieveLevel=SERIES -k "StudyInstanceUID=$pseudo_study" -k SeriesInstanceUID -k Modality)
[ "$n" = 1 ] || fail "series of the study: $n, not 1"
n=$(find_count "$work/f4" -k QueryRetrieveLevel=IMAGE -k "StudyInstanceUID=$pseudo_study" -k SOPInstanceUID)
[ "$n" = 3 ] || fail "instances of the study: $n, not 3"
# Wildcards over everything: only the released study, never the quarantined original.
n=$(find_count "$work/f5" -k QueryRetrieveLevel=IMAGE -k "PatientID=*" -k SOPInstanceUID)
[ "$n" = 3 ] || fail "every instance: $n, not 3 (the quarantined one must not be found)"

# The original name and ID find nothing, nor does anything in an answer hold them.
for key in "PatientID=ZQ-4711" "PatientName=ZEBRA^QUOKKA" "PatientName=ZEBRA*"; do
  n=$(find_count "$work/f6" -k QueryRetrieveLevel=STUDY -k "$key" -k StudyInstanceUID)
  [ "$n" = 0 ] || fail "a query for the original ($key) found $n studies"
done
# Patient Root, PATIENT level: the patient once, with the counts of what was released.
rm -rf "$work/f7"; mkdir -p "$work/f7"
findscu -P -X -od "$work/f7" -aet QUERIER -aec RG -k QueryRetrieveLevel=PATIENT -k "PatientID=*" \
  -k PatientName -k NumberOfPatientRelatedStudies -k NumberOfPatientRelatedInstances \
  127.0.0.1 "$gport" >>"$work/find.log" 2>&1 || fail "findscu -P failed"
[ "$(count "$work/f7" 'rsp*.dcm')" = 1 ] || fail "PATIENT level: $(count "$work/f7" 'rsp*.dcm') answers, not 1"
[ "$(tag_of "$work/f7/rsp0001.dcm" PatientID)" = "$pseudo_id" ] || fail "PATIENT level: patient ID"
[ "$(tag_of "$work/f7/rsp0001.dcm" NumberOfPatientRelatedStudies)" = 1 ] || fail "PATIENT level: study count"
[ "$(tag_of "$work/f7/rsp0001.dcm" NumberOfPatientRelatedInstances)" = 3 ] || fail "PATIENT level: instance count"
if grep -rqa -e ZQ-4711 -e ZEBRA "$work"/f[1-7]; then fail "an answer holds an original value"; fi

# Hostile identifiers are refused (0xA900) and answered with nothing: a key beyond the query
# attributes (pixel data), and a list of more values than a key may hold.
many=$(printf 'A%.0s\\' $(seq 200))A
for key in "PixelData=AAAA" "PatientID=$many"; do
  rm -rf "$work/f8"; mkdir -p "$work/f8"
  findscu -v -S -X -od "$work/f8" -aet QUERIER -aec RG -k QueryRetrieveLevel=STUDY -k "$key" \
    -k StudyInstanceUID 127.0.0.1 "$gport" >"$work/hostile.log" 2>&1 || true
  grep -qi "a900\|DoesNotMatchSOPClass" "$work/hostile.log" ||
    fail "a hostile key (${key%%=*}) was not refused with 0xA900"
  [ "$(count "$work/f8" 'rsp*.dcm')" = 0 ] || fail "a hostile key (${key%%=*}) was answered"
done

# C-MOVE of the study to storescp: the three de-identified instances arrive.
storescp -aet DEST -od "$work/dest" "$dport" >"$work/storescp.log" 2>&1 &
pids+=("$!")
wait_for 20 echoscu -aet X -aec DEST 127.0.0.1 "$dport" || fail "storescp did not start"
movescu -S -aet QUERIER -aec RG -aem DEST -k QueryRetrieveLevel=STUDY \
  -k "StudyInstanceUID=$pseudo_study" 127.0.0.1 "$gport" >"$work/move.log" 2>&1 ||
  fail "movescu failed"
[ "$(find "$work/dest" -type f | wc -l)" = 3 ] || fail "C-MOVE: $(find "$work/dest" -type f | wc -l) instances arrived, not 3"
for f in "$work/dest"/*; do
  [ "$(tag_of "$f" PatientID)" = "$pseudo_id" ] || fail "C-MOVE: an instance that is not de-identified arrived"
done
if grep -rqa -e ZQ-4711 -e ZEBRA "$work/dest"; then fail "C-MOVE: an original value arrived"; fi
# At image level, one instance.
sop=$(tag_of "$released" SOPInstanceUID)
rm -f "$work/dest"/*
movescu -S -aet QUERIER -aec RG -aem DEST -k QueryRetrieveLevel=IMAGE \
  -k "StudyInstanceUID=$pseudo_study" -k "SeriesInstanceUID=$(tag_of "$released" SeriesInstanceUID)" \
  -k "SOPInstanceUID=$sop" 127.0.0.1 "$gport" >>"$work/move.log" 2>&1 || fail "movescu (image) failed"
[ "$(find "$work/dest" -type f | wc -l)" = 1 ] || fail "C-MOVE of one instance"

# A destination not configured: refused with 0xA801, nothing sent.
rm -f "$work/dest"/*
movescu -d -S -aet QUERIER -aec RG -aem NOWHERE -k QueryRetrieveLevel=STUDY \
  -k "StudyInstanceUID=$pseudo_study" 127.0.0.1 "$gport" >"$work/move-unknown.log" 2>&1 || true
grep -qi "0xa801\|Move *Destination *unknown" "$work/move-unknown.log" ||
  fail "an unknown move destination was not refused with 0xA801"
[ "$(find "$work/dest" -type f | wc -l)" = 0 ] || fail "something was sent to an unknown destination"
grep -q "destination NOWHERE is not configured" "$work/gw.log" || fail "the refusal is not logged"

# A calling AE title not on the allow-list: no association, for C-FIND or C-MOVE.
if findscu -S -aet STRANGER -aec RG -k QueryRetrieveLevel=STUDY -k "PatientID=*" 127.0.0.1 "$gport" \
  >"$work/stranger.log" 2>&1; then
  fail "C-FIND from a calling AE title not on the list was answered"
fi
if movescu -S -aet STRANGER -aec RG -aem DEST -k QueryRetrieveLevel=STUDY \
  -k "StudyInstanceUID=$pseudo_study" 127.0.0.1 "$gport" >>"$work/stranger.log" 2>&1; then
  fail "C-MOVE from a calling AE title not on the list was answered"
fi
[ "$(find "$work/dest" -type f | wc -l)" = 0 ] || fail "a refused AE title had instances moved"

# Without an allow-list, or with a release route, --query-retrieve is refused at start.
if "$radguard" gateway --listen "$(free_port)" --ae-title RG --spool "$work/spool2" \
  --key "$work/k.key" --output "$work/out2" --query-retrieve >"$work/open.log" 2>&1; then
  fail "--query-retrieve without --allow-calling/--allow-host was accepted"
fi
grep -q -- "--allow-calling" "$work/open.log" || fail "the refusal does not name --allow-calling"

# The log names AE titles and counts, never a value asked for.
if grep -q -e "$pseudo_id" -e "$pseudo_study" -e ZQ-4711 -e ZEBRA "$work/gw.log"; then fail "the log holds a key's value"; fi
echo "gateway query/retrieve: ok ($SECONDS s)"
