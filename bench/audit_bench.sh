#!/usr/bin/env bash
# radguard audit's speed against radguard deid on the same files.
#
#   bash bench/audit_bench.sh BUILD_DIR [CORPUS_DIR]
#
# Builds the synthetic corpus of bench/make_corpus.py if missing (default 1000 files, ~150 MB,
# seed 1), warms the page cache, then runs, interleaved, BENCH_REPEATS (3) times each on the
# well-formed files: `radguard deid` (basic profile) and `radguard audit --depth headers` (JSON
# report), both with BENCH_THREADS (2) threads; then `radguard audit --depth headers` of deid's
# own output, and `radguard audit` at its default full depth (pixels and faces) on the
# originals. Prints wall seconds (median), files/s and the ratios audit/deid. At headers depth
# audit reads every header, hashes the pixel data (identical images under different patients),
# runs burned-in triage and checks signatures, never decoding pixels; at full depth it also
# runs the text detector on the images triage picks and examines every CT/MR series for a face. No values are printed (the reports go to the scratch folder).
# Environment: BENCH_FILES, BENCH_MEGABYTES, BENCH_SEED, BENCH_THREADS, BENCH_REPEATS.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bash bench/audit_bench.sh BUILD_DIR [CORPUS_DIR]" >&2; exit 2; }
build=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
files=${BENCH_FILES:-1000}
megabytes=${BENCH_MEGABYTES:-150}
seed=${BENCH_SEED:-1}
threads=${BENCH_THREADS:-2}
repeats=${BENCH_REPEATS:-3}
corpus_dir=${2:-/tmp/radguard-bench-corpus-s${seed}-${files}f-${megabytes}mb}
radguard="$build/apps/radguard/radguard"
work=$(mktemp -d /tmp/radguard-audit-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ ! -f "$corpus_dir/manifest.json" ]; then
  echo "== building corpus in $corpus_dir"
  /usr/bin/python3 "$here/make_corpus.py" "$corpus_dir" --files "$files" --megabytes "$megabytes" --seed "$seed"
fi
good="$corpus_dir/corpus/wellformed"
n=$(find "$good" -type f | wc -l)
mb=$(find "$good" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s / 1e6}')
echo "== $n files, $mb MB; warming the page cache"
find "$good" -type f -exec cat {} + >/dev/null
"$radguard" keygen "$work/k.key" >/dev/null

now() { date +%s.%N; }
declare -a deid_t audit_t audit_out_t full_t
for ((i = 0; i < repeats; i++)); do
  rm -rf "$work/out"
  t0=$(now)
  "$radguard" deid "$good" --output "$work/out" --key "$work/k.key" --threads "$threads" --no-progress \
    --allow-burned-in-annotation >"$work/deid.log" 2>&1 || true
  t1=$(now)
  "$radguard" audit "$good" --depth headers --format json --threads "$threads" --fail-on never >"$work/audit.json"
  t2=$(now)
  "$radguard" audit "$work/out" --depth headers --format json --threads "$threads" --fail-on never >"$work/audit-out.json"
  t3=$(now)
  "$radguard" audit "$good" --format json --threads "$threads" --fail-on never >"$work/audit-full.json"
  t4=$(now)
  full_t+=("$(awk -v a="$t3" -v b="$t4" 'BEGIN {printf "%.3f", b - a}')")
  deid_t+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')")
  audit_t+=("$(awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.3f", b - a}')")
  audit_out_t+=("$(awk -v a="$t2" -v b="$t3" 'BEGIN {printf "%.3f", b - a}')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
d=$(median "${deid_t[@]}")
a=$(median "${audit_t[@]}")
o=$(median "${audit_out_t[@]}")
f=$(median "${full_t[@]}")
written=$(find "$work/out" -type f -name '*.dcm' | wc -l)
printf '%-34s %8s %10s\n' "run ($threads threads, median of $repeats)" "wall s" "files/s"
printf '%-34s %8.2f %10.0f\n' "radguard deid --profile basic" "$d" "$(awk -v n="$n" -v t="$d" 'BEGIN {print n / t}')"
printf '%-34s %8.2f %10.0f\n' "radguard audit (originals)" "$a" "$(awk -v n="$n" -v t="$a" 'BEGIN {print n / t}')"
printf '%-34s %8.2f %10.0f\n' "radguard audit (deid's $written outputs)" "$o" "$(awk -v n="$written" -v t="$o" 'BEGIN {print n / t}')"
printf '%-34s %8.2f %10.0f\n' "radguard audit --depth full (orig.)" "$f" "$(awk -v n="$n" -v t="$f" 'BEGIN {print n / t}')"
echo "audit (headers)/deid wall time on the same files: $(awk -v a="$a" -v d="$d" 'BEGIN {printf "%.2f", a / d}')"
echo "audit (full)/deid wall time on the same files: $(awk -v a="$f" -v d="$d" 'BEGIN {printf "%.2f", a / d}')"
/usr/bin/python3 -c '
import json, sys
for name in sys.argv[1:]:
    s = json.load(open(name))["summary"]
    print(name.rsplit("/", 1)[1], "findings: high", s["high"], "medium", s["medium"], "low", s["low"])
' "$work/audit.json" "$work/audit-out.json" "$work/audit-full.json"
