#!/usr/bin/env bash
# radguard plan's benchmark (issue 19): what cutting a release into shards costs.
#
#   bash bench/plan_bench.sh BUILD_DIR [CORPUS_DIR]
#
# On the synthetic corpus of bench/make_corpus.py (built when missing; its whole corpus,
# malformed files included, so that shards have failures to merge), warmed in the page cache:
#   - one radguard deid run over everything (the baseline);
#   - radguard plan --shards N for N = 1, 2, 4 (and 8): its wall and CPU time as a share of the
#     baseline's;
#   - the N shards run one after another (radguard deid --files-from, as N cluster tasks
#     would, each with the same thread count as the baseline), and radguard plan merge: their
#     summed CPU time against the baseline's (the overhead of sharding: N process starts, N
#     key loads, the plan's header reads, the merge);
#   - checks on every N that the shards' outputs are byte-identical to the baseline's and the
#     merged report's counts equal the baseline report's.
# Each figure is the median of BENCH_REPEATS (3) interleaved rounds. Environment: BENCH_FILES
# (3000), BENCH_MEGABYTES (500), BENCH_SEED (1), BENCH_THREADS (2), BENCH_SHARDS ("1 2 4 8"),
# BENCH_WORK (scratch folder), BENCH_BASELINE (another radguard binary, e.g. main's, with its
# plugins beside it: run in the same rounds, interleaved, its outputs checked byte-identical
# to this build's, and its table printed first with the ratios between the two).
# Prints Markdown tables; writes no file names or header values. The scratch folder (the
# corpus it built, the plans and lists, the last round's checked outputs) is left in place.
# CORPUS_DIR is make_corpus.py's output folder (the inputs are its `corpus` folder).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: bash bench/plan_bench.sh BUILD_DIR [CORPUS_DIR]" >&2
  exit 2
fi
radguard=$(realpath "$1")/apps/radguard/radguard
baseline=${BENCH_BASELINE:+$(realpath "$BENCH_BASELINE")}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
threads=${BENCH_THREADS:-2}
repeats=${BENCH_REPEATS:-3}
shard_counts=${BENCH_SHARDS:-1 2 4 8}
work=${BENCH_WORK:-$(mktemp -d /tmp/radguard-plan-bench.XXXXXX)}
mkdir -p "$work"
corpus=${2:-$work/corpus-data}
if [ ! -d "$corpus/corpus" ]; then
  /usr/bin/python3 "$here/make_corpus.py" "$corpus" --files "${BENCH_FILES:-3000}" \
    --megabytes "${BENCH_MEGABYTES:-500}" --seed "${BENCH_SEED:-1}" >"$work/make_corpus.log"
fi
in=$corpus/corpus
"$radguard" keygen "$work/k.key" >/dev/null 2>&1 || true
# The one run and each plan start alike: the inputs in the page cache, the last output
# written back. Output trees used to be deleted just before the next run into the same name:
# ext4 without a journal (this VM) then skips, when it creates a file, every inode freed in
# the last 60 s (RECENTCY_MIN in fs/ext4/ialloc.c; longer while the inode table's block is
# dirty), which the run pays for. A checked tree is now moved aside (retire); the trees of a
# round are deleted at the start of the next, and a 61 s pause follows the sync.
settle() {
  sync
  find "$in" -type f -exec cat {} + >/dev/null
}
retire() {
  [ -e "$1" ] || return 0
  mkdir -p "$work/retired"
  mv "$1" "$work/retired/$(date +%s%N)"
}
empty_retired() {
  [ -d "$work/retired" ] || return 0
  rm -rf "$work/retired"
  sync
  sleep 61
}
files=$(find "$in" -type f | wc -l)
mb=$(du -sm "$in" | cut -f1)

# timed LABEL COMMAND...: appends "LABEL wall cpu" (seconds) to $work/times.
timed() {
  local label=$1
  shift
  /usr/bin/time -f "%e %U %S" -o "$work/time.out" "$@" >>"$work/tools.log" 2>&1 || true
  read -r wall user sys < <(tail -n 1 "$work/time.out")
  echo "$label $wall $(echo "$user + $sys" | bc -l)" >>"$work/times"
}

: >"$work/times"
# One binary's round: LABEL PREFIX BINARY. Every time is recorded as PREFIX + its label.
bench_round() {
  local p=$1 bin=$2 round=$3
  retire "$work/single"
  empty_retired
  settle
  timed "${p}single" "$bin" deid "$in" -o "$work/single" -k "$work/k.key" -j "$threads" \
    --no-progress --report-full-paths --report "$work/single.json"
  if [ "$round" = 1 ]; then
    (cd "$work/single" && find . -type f -exec sha256sum {} + | sort -k 2) >"$work/${p}single.sums"
    # The baseline binary writes the very same bytes (same key, same inputs).
    if [ -s "$work/single.sums" ] && [ "$p" != "" ]; then
      cmp -s "$work/single.sums" "$work/${p}single.sums" ||
        { echo "plan_bench: the baseline's outputs differ from this build's" >&2; exit 1; }
    fi
  fi
  for n in $shard_counts; do
    plan=$work/plan-$n
    retire "$work/shards-$n"
    retire "$work/single"
    settle
    timed "${p}plan$n" "$bin" plan "$in" --shards "$n" -o "$plan" -j "$threads" --no-progress
    mkdir -p "$plan/reports"
    : >"$work/shard-times"
    for ((s = 0; s < n; s++)); do
      list=$(printf '%s/shard-%04d.txt' "$plan" "$s")
      [ -s "$list" ] || continue
      /usr/bin/time -f "%e %U %S" -o "$work/time.out" "$bin" deid --files-from "$list" \
        -o "$work/shards-$n" -k "$work/k.key" -j "$threads" --no-progress --report-full-paths \
        --report "$(printf '%s/reports/shard-%04d.json' "$plan" "$s")" >>"$work/tools.log" 2>&1 || true
      read -r wall user sys < <(tail -n 1 "$work/time.out")
      echo "$wall $(echo "$user + $sys" | bc -l)" >>"$work/shard-times"
    done
    # The shards' summed wall and CPU, and the slowest shard's wall (the cluster's wall time).
    awk -v label="${p}shards$n" '{w += $1; c += $2; if ($1 > m) m = $1} END {print label, w, c, m}' \
      "$work/shard-times" >>"$work/times"
    timed "${p}merge$n" "$bin" plan merge "$plan"
    if [ "$round" = 1 ]; then
      (cd "$work/shards-$n" && find . -type f -exec sha256sum {} + | sort -k 2) >"$work/b.sums"
      cmp -s "$work/${p}single.sums" "$work/b.sums" || { echo "plan_bench: outputs differ for $n shards" >&2; exit 1; }
      python3 -c 'import json,sys; a,b=(json.load(open(p)) for p in sys.argv[1:]); sys.exit(a["counts"]!=b["counts"])' \
        "$work/single.json" "$plan/report.json" || { echo "plan_bench: merged counts differ for $n shards" >&2; exit 1; }
    fi
    retire "$work/shards-$n"
  done
}

for round in $(seq "$repeats"); do
  bench_round "" "$radguard" "$round"
  [ -z "$baseline" ] || bench_round "base-" "$baseline" "$round"
done
rm -rf "$work/retired"

median() {  # LABEL FIELD
  awk -v l="$1" -v f="$2" '$1 == l {print $f}' "$work/times" | sort -g |
    awk '{v[NR] = $1} END {if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
echo "corpus: $files files, $mb MB; $threads threads per run; medians of $repeats rounds"
# table PREFIX TITLE: one binary's table.
table() {
  local p=$1
  local s_wall s_cpu one_shard
  s_wall=$(median "${p}single" 2)
  s_cpu=$(median "${p}single" 3)
  echo
  echo "$2"
  echo
  # The shards' CPU against one shard's (the same work in one list): what cutting into N
  # costs, free of the difference between a folder run and a list run.
  one_shard=$(median "${p}shards1" 3)
  [ -n "$one_shard" ] || one_shard=$s_cpu
  echo "| run | wall s | CPU s | plan wall ÷ deid wall | plan CPU ÷ deid CPU | shards CPU s | shards CPU ÷ 1 shard's | merge s | (plan + shards + merge) CPU ÷ one run's CPU | slowest shard wall s |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '| one run (deid) | %.2f | %.2f | | | | | | 1.00 | |\n' "$s_wall" "$s_cpu"
  for n in $shard_counts; do
    p_wall=$(median "${p}plan$n" 2)
    p_cpu=$(median "${p}plan$n" 3)
    sh_cpu=$(median "${p}shards$n" 3)
    sh_max=$(median "${p}shards$n" 4)
    m_wall=$(median "${p}merge$n" 2)
    m_cpu=$(median "${p}merge$n" 3)
    printf '| %s shards | %.2f | %.2f | %.1f%% | %.1f%% | %.2f | %.3f | %.3f | %.3f | %.2f |\n' "$n" "$p_wall" "$p_cpu" \
      "$(echo "100 * $p_wall / $s_wall" | bc -l)" "$(echo "100 * $p_cpu / $s_cpu" | bc -l)" "$sh_cpu" \
      "$(echo "$sh_cpu / $one_shard" | bc -l)" "$m_wall" \
      "$(echo "($p_cpu + $sh_cpu + $m_cpu) / $s_cpu" | bc -l)" "$sh_max"
  done
}
if [ -n "$baseline" ]; then
  table "base-" "Baseline ($BENCH_BASELINE):"
  table "" "This build ($1):"
  echo
  echo "This build against the baseline, CPU (medians; below 1: cheaper):"
  echo
  echo "| figure | baseline CPU s | this build CPU s | ratio |"
  echo "|---|---:|---:|---:|"
  for label in single $(for n in $shard_counts; do echo "plan$n shards$n"; done); do
    a=$(median "base-$label" 3)
    b=$(median "$label" 3)
    [ -n "$a" ] && [ -n "$b" ] || continue
    printf '| %s | %.3f | %.3f | %.3f |\n' "$label" "$a" "$b" "$(echo "$b / $a" | bc -l)"
  done
else
  table "" "This build ($1):"
fi
echo
echo "(plan columns: radguard plan --shards N; outputs and merged counts checked equal to the one run's)"
