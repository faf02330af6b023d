#!/usr/bin/env bash
# radguard gateway on loopback: instances/s and MB/s through the gateway, against
# storescu -> storescp (the floor) and storescu -> Orthanc (its default storage) in the same
# run. Usage:
#   bash bench/gateway_bench.sh BUILD_DIR [FILES] [ASSOCIATIONS] [CORPUS]
# CORPUS ct (default): FILES copies (default 1000) of pydicom's CT_small.dcm (a 128x128 CT,
# 39 KB) with new instance UIDs; CORPUS varied: the well-formed files of bench/make_corpus.py
# --files FILES in uncompressed and deflated transfer syntaxes (CT, MR, US, secondary
# captures, multi-frame...; the encapsulated samples are left out, storescu would not send
# them without a flag per syntax; some files are quarantined by the gateway, as they would be
# in service). Sent by ASSOCIATIONS storescu processes at once (default 2).
# Runs, each timed from the first send to the last file durable at its end:
#   floor-nagle    storescu -> storescp, TCP_NODELAY=0 (DCMTK 3.6.7 as shipped)
#   floor          storescu -> storescp, TCP_NODELAY=1
#   gateway-output storescu -> radguard gateway --output (ack after fsync, de-identify, publish)
#   gateway-ack    storescu -> radguard gateway: until the last instance is acknowledged
#   orthanc        storescu -> Orthanc (Debian's package, default storage, its own config in
#                  the work folder), until its REST API counts every instance
#   gateway-fwd    storescu -> radguard gateway --forward -> storescp (all durable)
# The gateway runs end when its spool has nothing left to process or forward (gateway status).
# BENCH_BASELINE=BINARY: the gateway runs are made with that radguard binary too (an earlier
# build, copied aside), each right before the same run of BUILD_DIR's, in the same script run;
# its lines are marked "(baseline)". BENCH_ROUNDS=N (default 1): the gateway runs N times over.
set -euo pipefail
# DCMTK's tools (storescu, storescp, echoscu) read TCP_NODELAY too: Nagle off for every peer
# but the first floor run, so that the figures measure the nodes, not Nagle's delays.
export TCP_NODELAY=1
build=${1:?BUILD_DIR}
files=${2:-1000}
assocs=${3:-2}
radguard=$build/apps/radguard/radguard
work=$(mktemp -d /tmp/radguard-gateway-bench.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

corpus=${4:-ct}
mkdir -p "$work/corpus"
for ((a = 0; a < assocs; a++)); do mkdir -p "$work/corpus/$a"; done
if [ "$corpus" = varied ]; then
  /usr/bin/python3 "$(dirname "$0")/make_corpus.py" "$work/gen" --files "$files" \
    --megabytes $((files * 500 / 3000 + 1)) >/dev/null
  # storescu proposes the uncompressed transfer syntaxes (and deflated) unless told one
  # compressed syntax per run: the encapsulated samples are left out.
  i=0
  while IFS= read -r f; do
    cp "$f" "$work/corpus/$((i % assocs))/f$i.dcm"; i=$((i + 1))
  done < <(/usr/bin/python3 - "$work/gen/corpus/wellformed" <<'PY'
import pathlib, sys, pydicom
keep = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}
for f in sorted(p for p in pathlib.Path(sys.argv[1]).rglob("*") if p.is_file()):
    meta = pydicom.filereader.read_file_meta_info(f)
    if str(meta.get("TransferSyntaxUID", "")) in keep:
        print(f)
PY
)
  files=$i
  rm -rf "$work/gen"
else
  for ((i = 0; i < files; i++)); do
    cp /usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm "$work/corpus/$((i % assocs))/ct$i.dcm"
  done
  find "$work/corpus" -name '*.dcm' -print0 | xargs -0 -n 200 dcmodify -nb -gin
fi
bytes=$(du -sb "$work/corpus" | cut -f1)
"$radguard" keygen "$work/k.key" >/dev/null
cat "$work"/corpus/*/*.dcm >/dev/null

send_all() {  # send_all PORT AET
  local p=()
  for ((a = 0; a < assocs; a++)); do
    storescu -aet BENCH -aec "$2" 127.0.0.1 "$1" "$work/corpus/$a"/*.dcm >"$work/send-$a.log" 2>&1 &
    p+=("$!")
  done
  for q in "${p[@]}"; do wait "$q" || { echo "storescu failed" >&2; cat "$work"/send-*.log >&2; exit 1; }; done
}
wait_count() {  # wait_count DIR N
  until [ "$(find "$1" -type f -name "${3:-*}" | wc -l)" -ge "$2" ]; do sleep 0.05; done
}
spool_empty() {  # spool_empty SPOOL: nothing left to process or forward
  "$radguard" gateway status --spool "$1" --json |
    python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if s['incoming'] == 0 and s['outbox'] == 0 else 1)"
}
wait_spool() { until spool_empty "$1"; do sleep 0.1; done; }
quarantined() { "$radguard" gateway status --spool "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['quarantined'])"; }
report() {  # report NAME SECONDS
  python3 -c "import sys; n,t,f,b=sys.argv[1],float(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4]); print(f'{n:27s} {t:7.2f} s {f/t:8.1f} instances/s {b/t/1e6:7.1f} MB/s')" "$1" "$2" "$files" "$bytes"
}

floor() {  # floor NAME NODELAY
  local port; port=$(free_port)
  rm -rf "$work/dest"; mkdir -p "$work/dest"
  TCP_NODELAY=$2 storescp --fork -aet DEST -od "$work/dest" "$port" >/dev/null 2>&1 &
  local scp=$!; pids+=("$scp")
  sleep 0.5
  local t0; t0=$(now)
  TCP_NODELAY=$2 send_all "$port" DEST
  sync "$work/dest"
  report "$1" "$(echo "$(now) - $t0" | bc)"
  kill "$scp"; wait "$scp" 2>/dev/null || true
}

gateway_output() {  # gateway_output BINARY LABEL
  local radguard=$1 tag=$2
  local port; port=$(free_port)
  rm -rf "$work/spool" "$work/out"
  "$radguard" gateway --listen "$port" --ae-title RG --spool "$work/spool" --key "$work/k.key" \
    --output "$work/out" --workers "${BENCH_WORKERS:-2}" --max-associations 16 2>"$work/gw.log" &
  local gw=$!; pids+=("$gw")
  until echoscu -aec RG 127.0.0.1 "$port" 2>/dev/null; do sleep 0.1; done
  local t0; t0=$(now)
  send_all "$port" RG
  local acked; acked=$(echo "$(now) - $t0" | bc)
  wait_spool "$work/spool"
  report "gateway-ack$tag" "$acked"
  report "gateway-output$tag" "$(echo "$(now) - $t0" | bc)"
  echo "                 (published $(find "$work/out" -type f -name '*.dcm' | wc -l), quarantined $(quarantined "$work/spool"))"
  kill -TERM "$gw"; wait "$gw"
}

gateway_forward() {  # gateway_forward BINARY LABEL
  local radguard=$1 tag=$2
  local port dport; port=$(free_port); dport=$(free_port)
  rm -rf "$work/spool" "$work/dest"; mkdir -p "$work/dest"
  storescp --fork -aet DEST -od "$work/dest" "$dport" >/dev/null 2>&1 &
  local scp=$!; pids+=("$scp")
  "$radguard" gateway --listen "$port" --ae-title RG --spool "$work/spool" --key "$work/k.key" \
    --forward "DEST@127.0.0.1:$dport" --workers "${BENCH_WORKERS:-2}" --max-associations 16 2>"$work/gw-fwd.log" &
  local gw=$!; pids+=("$gw")
  until echoscu -aec RG 127.0.0.1 "$port" 2>/dev/null; do sleep 0.1; done
  local t0; t0=$(now)
  send_all "$port" RG
  wait_spool "$work/spool"
  sync "$work/dest"
  report "gateway-fwd$tag" "$(echo "$(now) - $t0" | bc)"
  echo "                 (forwarded $(find "$work/dest" -type f | wc -l), quarantined $(quarantined "$work/spool"))"
  kill -TERM "$gw"; wait "$gw"
  kill "$scp"; wait "$scp" 2>/dev/null || true
}

orthanc() {
  local port hport; port=$(free_port); hport=$(free_port)
  rm -rf "$work/orthanc"; mkdir -p "$work/orthanc"
  cat >"$work/orthanc.json" <<CONFIG
{ "Name" : "radguard-bench", "StorageDirectory" : "$work/orthanc/db",
  "IndexDirectory" : "$work/orthanc/db", "Plugins" : [ ], "HttpPort" : $hport,
  "RemoteAccessAllowed" : false, "AuthenticationEnabled" : false, "DicomAet" : "ORTHANC",
  "DicomPort" : $port, "SaveJobs" : false }
CONFIG
  Orthanc "$work/orthanc.json" >"$work/orthanc.log" 2>&1 &
  local o=$!; pids+=("$o")
  local count="import sys, json, urllib.request; print(json.load(urllib.request.urlopen('http://127.0.0.1:$hport/statistics'))['CountInstances'])"
  until python3 -c "$count" >/dev/null 2>&1; do sleep 0.2; done
  local t0; t0=$(now)
  send_all "$port" ORTHANC
  local stored=0 waited=0
  until stored=$(python3 -c "$count"); [ "$stored" -ge "$files" ] || [ "$waited" -ge 1200 ]; do
    sleep 0.05; waited=$((waited + 1))
  done
  report orthanc "$(echo "$(now) - $t0" | bc)"
  [ "$stored" -ge "$files" ] || echo "                 (Orthanc stored only $stored of $files after a minute's wait)"
  kill "$o"; wait "$o" 2>/dev/null || true
}

echo "corpus: $corpus, $files files, $((bytes / 1000000)) MB, $assocs associations; $(nproc) CPUs; workers ${BENCH_WORKERS:-2}"
[ "${BENCH_NAGLE:-1}" = 1 ] && floor floor-nagle 0
floor floor 1
orthanc
for ((round = 0; round < ${BENCH_ROUNDS:-1}; round++)); do
  [ -n "${BENCH_BASELINE:-}" ] && gateway_output "$BENCH_BASELINE" " (baseline)"
  gateway_output "$radguard" ""
  [ -n "${BENCH_BASELINE:-}" ] && gateway_forward "$BENCH_BASELINE" " (baseline)"
  gateway_forward "$radguard" ""
done
