#!/usr/bin/env bash
# Builds the libFuzzer targets with clang 16 and runs each for SECONDS from the seed corpus.
#
#   bash fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
#
# Seeds: fuzz/corpus/<target>/ (small files kept in the repository, fuzz/corpus/README.md)
# and, for DICOM, the python3-pydicom sample files under 64 KB. What a run adds to the corpus stays in
# BUILD_DIR/corpus/<target>/; a crash, leak, timeout (10 s per input) or out-of-memory
# (2 GB under ASan) leaves BUILD_DIR/{crash,leak,timeout,oom}-* and fails the script. Each run
# appends a line (time, target, seconds, inputs run, findings) to BUILD_DIR/fuzz-runs.tsv.
# FUZZ_SEED fixes libFuzzer's random seed (CI sets it, so that a run finds the same as the last
# one on the same code; without it every run explores anew). Inputs in fuzz/findings/ named
# <target>-* are replayed first by every run.
set -euo pipefail
build=$(realpath -m "${1:?usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}")
seconds=${2:?usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
targets=("$@")
all=(dicom recipe consent_csv consent_fhir redaction_rules nifti inv3 signature manifest
     pixels_jpeg_baseline pixels_jpeg_lossless pixels_jpeg_ls pixels_jpeg2000 pixels_rle)
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRADGUARD_FUZZ=ON \
  -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_C_COMPILER=clang-16 >/dev/null
cmake --build "$build" -j "$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")

samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  seeds=()
  [ -d "$here/corpus/$t" ] && seeds+=("$here/corpus/$t")
  if [ "$t" = dicom ] && [ -d "$samples" ]; then
    mkdir -p "$build/seeds/dicom"
    find "$samples" -maxdepth 1 -name '*.dcm' -size -64k -exec cp -n {} "$build/seeds/dicom/" \;
    seeds+=("$build/seeds/dicom")
  fi
  # What the fuzzers once found (fuzz/findings/<target>-*) runs first, every time: a regression.
  findings=("$here/findings/$t"-*)
  if [ -e "${findings[0]}" ]; then
    mkdir -p "$build/seeds/$t-findings"
    cp "${findings[@]}" "$build/seeds/$t-findings/"
    seeds+=("$build/seeds/$t-findings")
  fi
  echo "== fuzz_$t for ${seconds}s"
  started=$(date +%s)
  (cd "$build" && ASAN_OPTIONS=detect_leaks=0 "./fuzz/fuzz_$t" "$corpus" "${seeds[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 ${FUZZ_SEED:+-seed=$FUZZ_SEED} \
    -print_final_stats=1 >"$build/fuzz_$t.log" 2>&1 || true)
  grep -E "^(Done [0-9]+ runs|stat::peak_rss_mb|stat::new_units_added|==[0-9]+==ERROR|SUMMARY|INFO: seed corpus)" \
    "$build/fuzz_$t.log" || true
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz_$t.log" | tail -1)
  found=$(ls "$build"/crash-* "$build"/leak-* "$build"/timeout-* "$build"/oom-* 2>/dev/null || true)
  # One line per run, for the hours and findings in docs/reliability.md.
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "fuzz_$t" "$(( $(date +%s) - started ))" \
    "${runs:-?}" "${found:-none}" >>"$build/fuzz-runs.tsv"
  if [ -n "$found" ]; then
    echo "fuzz_$t found a problem (log: $build/fuzz_$t.log): $found" >&2
    exit 1
  fi
done
