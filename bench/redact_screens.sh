#!/usr/bin/env bash
# Redaction measured on screens made by a second, independent generator (bench/make_screens.py:
# TrueType fonts of four families, 7-30 px, low contrast, colour, speckle, edges, rotated
# labels, dose reports, scanned forms, JPEG, clips), scored from the pixels against its answer
# key (bench/score_screens.py), for the default engine (text detector) and the earlier one
# (whole-frame OCR) in the same run, on the same files and threads.
#
#   bench/redact_screens.sh BUILD_DIR [COUNT=36] [SEED=7] [THREADS=2]
#   FINDERS="detector" bench/redact_screens.sh ...   (one engine only; default: both)
set -euo pipefail
build=${1:?usage: redact_screens.sh BUILD_DIR [COUNT] [SEED] [THREADS]}
count=${2:-36}
seed=${3:-7}
threads=${4:-2}
here=$(cd "$(dirname "$0")" && pwd)
radguard=$(cd "$build" && pwd)/apps/radguard/radguard
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 "$here/make_screens.py" "$work/set" "$count" "$seed"
frames=$(/usr/bin/python3 -c "import json,sys; t=json.load(open(sys.argv[1])); print(sum(len(f['frames']) for f in t['files']))" "$work/set/truth.json")
echo "set: $count files, $frames frames (make_screens.py seed $seed); $threads threads; $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

for finder in ${FINDERS:-detector ocr}; do
  start=$(date +%s.%N)
  "$radguard" redact "$work/set/dicom" -o "$work/out-$finder" --text-finder "$finder" \
    -j "$threads" --no-progress >/dev/null 2>&1 || true
  end=$(date +%s.%N)
  seconds=$(echo "$end - $start" | bc -l)
  /usr/bin/python3 "$here/score_screens.py" "$work/set" "$work/out-$finder" --tesseract >"$work/score-$finder.json"
  /usr/bin/python3 - "$work/score-$finder.json" "$finder" "$seconds" "$frames" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
finder, seconds, frames = sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
print(f"{finder:9s} PHI recall {s['phi_recall_pct']:6.2f}% of {s['phi_words']} "
      f"(released files {s['phi_released_recall_pct']:.2f}%, words Tesseract cannot read "
      f"{s['phi_unreadable_recall_pct']:.2f}% of {s['phi_unreadable_by_tesseract']}), "
      f"non-PHI kept {s['safe_kept_pct']:.2f}% of {s['safe_words']}, quarantined "
      f"{s['quarantined']}/{s['files']}, failed {s['failed']}, pixels changed away from text "
      f"{s['pixels_changed_away_from_text_pct']:.3f}%, {seconds:.1f} s = {frames / seconds:.2f} frames/s")
for miss in s["missed"][:12]:
    print("   missed:", miss)
EOF
done
