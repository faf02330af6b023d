#!/usr/bin/env bash
# Redaction measured on screens made by a second, independent generator (bench/make_screens.py:
# TrueType fonts of four families, 7-30 px, low contrast, colour, speckle, edges, rotated
# labels, dose reports, scanned forms, JPEG, clips), scored from the pixels against its answer
# key (bench/score_screens.py), for the default engine (text detector) and the earlier one
# (whole-frame OCR) in the same run, on the same files and threads.
#
#   bench/redact_screens.sh BUILD_DIR [COUNT=36] [SEED=7] [THREADS=2]
#   FINDERS="detector" bench/redact_screens.sh ...   (one engine only; default: both)
#   WORK=DIR bench/redact_screens.sh ...              (keep the set and outputs in DIR)
#   FINDERS="baseline detector" BASELINE=old/radguard  (another build's engine, same files)
#   TESSERACT=0 ...                                    (skip the outside reading: faster)
#   GENERATOR_ARGS="--style held-out" ...             (make_screens.py's other style)
#   ONLY_KIND=clip ...                                 (score only the files of one kind)
#   REPORT=1 ...          (keep each engine's JSON report in WORK: why each file was quarantined)
set -euo pipefail
build=${1:?usage: redact_screens.sh BUILD_DIR [COUNT] [SEED] [THREADS]}
count=${2:-36}
seed=${3:-7}
threads=${4:-2}
here=$(cd "$(dirname "$0")" && pwd)
radguard=$(cd "$build" && pwd)/apps/radguard/radguard
if [ -n "${WORK:-}" ]; then  # kept for a look at the outputs afterwards
  work=$WORK
  rm -rf "$work/out-"* "$work/set"
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi

/usr/bin/python3 "$here/make_screens.py" "$work/set" "$count" "$seed" ${GENERATOR_ARGS:-}
if [ -n "${ONLY_KIND:-}" ]; then  # the set as generated, then all but one kind's files dropped
  /usr/bin/python3 - "$work/set" "$ONLY_KIND" <<'EOF'
import json, os, sys
root, kind = sys.argv[1], sys.argv[2]
truth = json.load(open(f"{root}/truth.json"))
for f in truth["files"]:
    if f["kind"] != kind:
        os.remove(f"{root}/dicom/{f['file']}")
truth["files"] = [f for f in truth["files"] if f["kind"] == kind]
json.dump(truth, open(f"{root}/truth.json", "w"))
EOF
fi
frames=$(/usr/bin/python3 -c "import json,sys; t=json.load(open(sys.argv[1])); print(sum(len(f['frames']) for f in t['files']))" "$work/set/truth.json")
echo "set: $count files, $frames frames (make_screens.py seed $seed ${GENERATOR_ARGS:-}); $threads threads; $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

for finder in ${FINDERS:-detector ocr}; do
  binary=$radguard engine=$finder
  if [ "$finder" = baseline ]; then  # another build's detector engine, on the same files
    binary=$(cd "$(dirname "${BASELINE:?BASELINE=path/to/radguard for the baseline run}")" && pwd)/$(basename "$BASELINE")
    engine=detector
  fi
  start=$(date +%s.%N)
  report=()
  [ "${REPORT:-0}" = 1 ] && report=(--report "$work/report-$finder.json")
  "$binary" redact "$work/set/dicom" -o "$work/out-$finder" --text-finder "$engine" \
    -j "$threads" --no-progress "${report[@]}" >/dev/null 2>&1 || true
  end=$(date +%s.%N)
  seconds=$(echo "$end - $start" | bc -l)
  tesseract=--tesseract
  [ "${TESSERACT:-1}" = 0 ] && tesseract=
  /usr/bin/python3 "$here/score_screens.py" "$work/set" "$work/out-$finder" $tesseract ${SCORE_ARGS:-} >"$work/score-$finder.json"
  /usr/bin/python3 - "$work/score-$finder.json" "$finder" "$seconds" "$frames" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
finder, seconds, frames = sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
unreadable = (f", words Tesseract cannot read {s['phi_unreadable_recall_pct']:.2f}% of "
              f"{s['phi_unreadable_by_tesseract']}" if "phi_unreadable_by_tesseract" in s else "")
print(f"{finder:9s} PHI recall {s['phi_recall_pct']:6.2f}% of {s['phi_words']} "
      f"(released files {s['phi_released_recall_pct']:.2f}%{unreadable}), "
      f"non-PHI kept {s['safe_kept_pct']:.2f}% of {s['safe_words']}, quarantined "
      f"{s['quarantined']}/{s['files']}, failed {s['failed']}, pixels changed away from text "
      f"{s['pixels_changed_away_from_text_pct']:.3f}%, {seconds:.1f} s = {frames / seconds:.2f} frames/s")
for miss in s["missed"][:12]:
    print("   missed:", miss)
EOF
done
