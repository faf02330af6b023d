#!/usr/bin/env bash
# What cutting a release into shards costs, counted rather than timed (issue 19).
#
#   bash bench/plan_count.sh BUILD_DIR CORPUS_DIR [FILES] ["SHARDS ..."]
#
# plan_bench.sh times whole runs, and on a shared VM two runs of the same work differ by
# 30-50% in CPU time, too much to resolve a 5% overhead. This script counts instead, with
# measures the machine's load does not move:
#   - user-space instructions executed (valgrind --tool=callgrind, all threads, the loader
#     and the process's start and exit included);
#   - system calls made (strace -f -c, futex left out), which stand for the kernel's work.
# CORPUS_DIR is a folder of input files (for make_corpus.py's output, its `corpus` folder); it
# must be on the file system of /tmp, where its first FILES files by path (default 1600) are
# hard-linked into a folder of their own. On them it counts one `radguard deid FOLDER`,
# `radguard plan FOLDER --shards SHARDS` (default 8), the list runs of the non-empty shards
# (`deid --files-from`) and `radguard plan merge`, every run with `-j 2`. It checks that the
# shards, run once more into one release folder, write byte-identical outputs to the one
# run's and that the merged report's counts equal its report's, and prints the counts and
# the ratios. SHARDS may be a list ("1 2 4 8"): the one run is counted once, then each N in
# turn, and a summary table of the ratios ends the output. Prints Markdown; writes no file
# names or header values; removes its folder.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 4 ]; then
  echo "usage: bash bench/plan_count.sh BUILD_DIR CORPUS_DIR [FILES] [\"SHARDS ...\"]" >&2
  exit 2
fi
radguard=$(realpath "$1")/apps/radguard/radguard
corpus=$(realpath "$2")
files=${3:-1600}
shard_counts=${4:-8}
work=$(mktemp -d /tmp/radguard-plan-count.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The subset: the first FILES files by path, hard-linked (same bytes, same file system).
(cd "$corpus" && find . -type f | LC_ALL=C sort) >"$work/all.txt"
head -n "$files" "$work/all.txt" >"$work/subset.txt"
while read -r f; do
  mkdir -p "$work/in/$(dirname "$f")"
  ln "$corpus/$f" "$work/in/$f"
done <"$work/subset.txt"
"$radguard" keygen "$work/k.key" >/dev/null 2>&1

# count LABEL COMMAND...: appends "LABEL instructions syscalls" to $work/counts. The command
# runs twice (once per counter), each time into a fresh output folder named by $out; the
# second run's output is left there.
# radguard's exit 1 (some files failed: this corpus has malformed files) is expected; any
# other status (a crash, valgrind's own failure) stops the script.
count() {
  local label=$1 rc=0
  shift
  rm -rf "$out"
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" >/dev/null 2>"$work/vg.log" || rc=$?
  [ "$rc" -le 1 ] || { echo "plan_count: $label exited $rc under callgrind" >&2; exit 1; }
  local ir
  ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/vg.log" | tail -n 1)
  [ -n "$ir" ] || { echo "plan_count: callgrind gave no count for $label" >&2; exit 1; }
  rm -rf "$out"
  strace -f -c -o "$work/strace.txt" "$@" >/dev/null 2>&1 || rc=$?
  [ "$rc" -le 1 ] || { echo "plan_count: $label exited $rc under strace" >&2; exit 1; }
  local calls
  # futex calls are left out: how often threads wait on each other is the scheduler's doing.
  calls=$(awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" && $NF != "futex" {c += $4} END {print c}' \
    "$work/strace.txt")
  echo "$label $ir $calls" >>"$work/counts"
}

: >"$work/counts"
out=$work/single
count single "$radguard" deid "$work/in" -o "$out" -k "$work/k.key" -j 2 --no-progress \
  --report-full-paths --report "$work/single.json"
(cd "$work/single" && find . -type f -exec sha256sum {} + | sort -k 2) >"$work/single.sums"
[ -s "$work/single.sums" ] || { echo "plan_count: the one run wrote nothing" >&2; exit 1; }
cp "$work/counts" "$work/counts.single"

# count_shards N: the plan, the N shards and the merge, checked against the one run, and
# their table.
count_shards() {
local shards=$1 s ran=0 rc
grep '^single ' "$work/counts.single" >"$work/counts"
rm -rf "$work/plan" "$work/shards" "$work/counted-reports"
out=$work/plan
count plan "$radguard" plan "$work/in" --shards "$shards" -o "$out" -j 2 --no-progress
mkdir -p "$work/plan/reports" "$work/counted-reports"
for ((s = 0; s < shards; s++)); do
  list=$(printf '%s/plan/shard-%04d.txt' "$work" "$s")
  [ -s "$list" ] || continue
  ran=$((ran + 1))
  # Counted into a folder of its own (count empties it before each of its two runs) ...
  out=$work/counted
  count "shard$s" "$radguard" deid --files-from "$list" -o "$out" -k "$work/k.key" -j 2 \
    --no-progress --report-full-paths --report "$work/counted-reports/shard-$s.json"
  # ... then run once more, uncounted, as a cluster task would: every shard into the one
  # release folder, its report where plan merge looks for it.
  rc=0
  "$radguard" deid --files-from "$list" -o "$work/shards" -k "$work/k.key" -j 2 --no-progress \
    --report-full-paths --report "$(printf '%s/plan/reports/shard-%04d.json' "$work" "$s")" \
    >/dev/null 2>&1 || rc=$?
  [ "$rc" -le 1 ] || { echo "plan_count: shard $s exited $rc" >&2; exit 1; }
done
# A name two shards both wrote would leave one file where the one run has two: cmp sees it.
(cd "$work/shards" && find . -type f -exec sha256sum {} + | sort -k 2) >"$work/shards.sums"
cmp -s "$work/single.sums" "$work/shards.sums" || { echo "plan_count: shard outputs differ" >&2; exit 1; }
out=$work/merge-scratch
count merge "$radguard" plan merge "$work/plan"
python3 -c 'import json,sys; a,b=(json.load(open(p)) for p in sys.argv[1:]); sys.exit(a["counts"]!=b["counts"])' \
  "$work/single.json" "$work/plan/report.json" || { echo "plan_count: merged counts differ" >&2; exit 1; }

awk -v files="$(wc -l <"$work/subset.txt")" -v n="$ran" -v planned="$shards" '
  $1 == "single" {si = $2; sc = $3}
  $1 == "plan" {pi = $2; pc = $3}
  $1 == "merge" {mi = $2; mc = $3}
  $1 ~ /^shard/ {hi += $2; hc += $3}
  END {
    printf "%d files, %d shards; outputs byte-identical to the one run\x27s, merged counts equal\n\n", files, n
    print "| run | user instructions | ÷ one run | system calls | ÷ one run |"
    print "|---|---:|---:|---:|---:|"
    printf "| one run (deid FOLDER) | %.0f | 1.000 | %d | 1.000 |\n", si, sc
    printf "| plan --shards %d | %.0f | %.3f | %d | %.3f |\n", planned, pi, pi / si, pc, pc / sc
    printf "| %d shards (deid --files-from), summed | %.0f | %.3f | %d | %.3f |\n", n, hi, hi / si, hc, hc / sc
    printf "| plan merge | %.0f | %.3f | %d | %.3f |\n", mi, mi / si, mc, mc / sc
    printf "| shards + merge | %.0f | %.3f | %d | %.3f |\n", hi + mi, (hi + mi) / si, hc + mc, (hc + mc) / sc
    printf "| plan + shards + merge | %.0f | %.3f | %d | %.3f |\n", pi + hi + mi, (pi + hi + mi) / si, pc + hc + mc, (pc + hc + mc) / sc
    printf "\nper shard, (shards - one run) / %d: %.0f instructions, %.0f system calls\n\n", n, (hi - si) / n, (hc - sc) / n
    printf "summary %d %.4f %.4f %.4f %.4f %.4f %.4f\n", planned, pi / si, pc / sc, (hi + mi) / si, (hc + mc) / sc, (pi + hi + mi) / si, (pc + hc + mc) / sc >>summary
  }' summary="$work/summary" "$work/counts"
}

: >"$work/summary"
for n in $shard_counts; do count_shards "$n"; done
[ -s "$work/summary" ] || { echo "plan_count: no shard count was given" >&2; exit 1; }
echo "Summary, ratios to the one run (user instructions; system calls):"
echo
echo "| shards | plan | | shards + merge | | plan + shards + merge | |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
awk '{printf "| %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", $2, $3, $4, $5, $6, $7, $8}' "$work/summary"
