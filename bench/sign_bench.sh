#!/usr/bin/env bash
# Sign and verify throughput of radguard on a corpus of CT-sized images, as a ratio to
# `sha256sum` of the same files measured in the same run (issue 6: within 2x of it).
#
# usage: bench/sign_bench.sh [RADGUARD_BINARY]
#   FILES=300 ROWS=512 COLS=512 THREADS="1 2" bench/sign_bench.sh build/apps/radguard/radguard
# Needs dcmtk (dcmodify) and the pydicom sample CT_small.dcm as the header template.
set -euo pipefail

RADGUARD=${1:-build/apps/radguard/radguard}
FILES=${FILES:-300}
ROWS=${ROWS:-512}
COLS=${COLS:-512}
THREADS=${THREADS:-"1 2"}
REPEAT=${REPEAT:-3}  # each step runs REPEAT times; the fastest run counts (shared machines)
TEMPLATE=${TEMPLATE:-/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm}

[[ -x $RADGUARD ]] || { echo "no radguard binary at $RADGUARD (build first)" >&2; exit 2; }
[[ -f $TEMPLATE ]] || { echo "no template $TEMPLATE (apt-get install python3-pydicom)" >&2; exit 2; }
command -v dcmodify >/dev/null || { echo "dcmodify missing (apt-get install dcmtk)" >&2; exit 2; }

calc() { awk "BEGIN { printf \"%.6f\", $* }"; }  # awk, not bc: present on every Debian
less() { awk "BEGIN { exit !($1 < $2) }"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/radguard-sign-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/corpus"

echo "building corpus: $FILES files of ${ROWS}x${COLS} 16-bit pixels" >&2
head -c $((ROWS * COLS * 2)) /dev/urandom > "$WORK/pixels.raw"
cp "$TEMPLATE" "$WORK/template.dcm"
dcmodify -nb -q -m "Rows=$ROWS" -m "Columns=$COLS" -mf "PixelData=$WORK/pixels.raw" "$WORK/template.dcm"
for i in $(seq -w 1 "$FILES"); do
  cp "$WORK/template.dcm" "$WORK/corpus/ct$i.dcm"
done
# Distinct instances, as in a real series (one dcmodify call for all files).
dcmodify -nb -q -gin "$WORK"/corpus/*.dcm
BYTES=$(du -cb "$WORK"/corpus/*.dcm | tail -1 | cut -f1)
MB=$(calc "$BYTES / 1000000")

# Warm the page cache so every measurement reads from memory alike.
cat "$WORK"/corpus/*.dcm > /dev/null

# Each measurement: wall seconds and CPU seconds (user + sys), the best of REPEAT runs. The
# machine may be shared, so the CPU ratio is the steadier figure; wall is what a user waits.
TIMEFORMAT='%R %U %S'
measure() {  # command... (may use $RUN, the repetition number); sets WALL and CPU
  local t user sys wall cpu
  WALL=""
  for RUN in $(seq 1 "$REPEAT"); do
    rm -rf "$WORK/signed-$RUN"
    t=$( { time eval "$@" >/dev/null 2>&1; } 2>&1 | tail -1)
    read -r wall user sys <<<"$t"
    cpu=$(calc "$user + $sys")
    if [[ -z $WALL ]] || less "$wall" "$WALL"; then WALL=$wall; fi
    if [[ $RUN == 1 ]] || less "$cpu" "$CPU"; then CPU=$cpu; fi
  done
}

measure 'sha256sum "$WORK"/corpus/*.dcm'
SHA_WALL=$WALL
SHA_CPU=$CPU

report() {  # label
  printf "| %-22s | %7.2f | %7.2f | %8.1f | %8.1f | %6.2fx | %6.2fx |\n" "$1" "$WALL" "$CPU" \
    "$(calc "$MB / $WALL")" "$(calc "$FILES / $WALL")" \
    "$(calc "$WALL / $SHA_WALL")" "$(calc "$CPU / $SHA_CPU")"
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "corpus: $FILES files, $(printf %.1f "$MB") MB; best of $REPEAT runs per step"
echo
echo "| step                   | wall s  | CPU s   | MB/s     | files/s  | wall vs sha256sum | CPU vs sha256sum |"
echo "|------------------------|---------|---------|----------|----------|---------|---------|"
WALL=$SHA_WALL CPU=$SHA_CPU report "sha256sum"
for key in rsa ecdsa; do
  "$RADGUARD" keys new --key "$WORK/$key.pem" --cert "$WORK/$key-cert.pem" --algorithm "$key" >/dev/null 2>&1
  for j in $THREADS; do
    measure '"$RADGUARD" sign "$WORK/corpus" --key "$WORK/$key.pem" --cert "$WORK/$key-cert.pem" -o "$WORK/signed-$RUN" -j "$j"'
    report "sign $key -j$j"
    rm -rf "$WORK/signed" && mv "$WORK/signed-$REPEAT" "$WORK/signed"
    measure '"$RADGUARD" verify "$WORK/signed" --trust "$WORK/$key-cert.pem" -j "$j"'
    report "verify $key -j$j"
  done
done
"$RADGUARD" verify "$WORK/signed" --trust "$WORK/ecdsa-cert.pem" >/dev/null || { echo "verification failed" >&2; exit 1; }
measure '"$RADGUARD" manifest create "$WORK/signed" --key "$WORK/ecdsa.pem" --cert "$WORK/ecdsa-cert.pem" -o "$WORK/manifest.json"'
report "manifest create"
measure '"$RADGUARD" manifest verify "$WORK/signed" "$WORK/manifest.json" --trust "$WORK/ecdsa-cert.pem"'
report "manifest verify"
