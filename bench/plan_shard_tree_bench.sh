#!/usr/bin/env bash
# What one shard's start costs as the release's shared output tree grows (issue 19).
#
#   bash bench/plan_shard_tree_bench.sh BUILD_DIR
#
# A one-file shard (radguard deid --files-from LIST, one CT of pydicom's test files) run into
# output trees of BENCH_FOLDERS ("0 1000 10000") series folders of BENCH_PER_FOLDER (14) files
# each (the bench corpus's layout: study/series/instance; the files are empty, only their
# names matter), as a shard that starts after the others have filled the tree. For each tree:
# the process's CPU (perf stat task-clock, median of BENCH_ROUNDS (3) rounds of BENCH_REPEATS
# (10) runs) and its getdents64 calls (strace -c: folder listings, a count, not a timing).
# With BENCH_BASELINE (another radguard binary, e.g. main's, with its plugins beside it), the
# same for it, interleaved. Prints a Markdown table; writes no file names or header values.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: bash bench/plan_shard_tree_bench.sh BUILD_DIR" >&2; exit 2; }
radguard=$(realpath "$1")/apps/radguard/radguard
baseline=${BENCH_BASELINE:+$(realpath "$BENCH_BASELINE")}
trees=${BENCH_FOLDERS:-0 1000 10000}
per_folder=${BENCH_PER_FOLDER:-14}
rounds=${BENCH_ROUNDS:-3}
repeats=${BENCH_REPEATS:-10}
work=${BENCH_WORK:-$(mktemp -d /tmp/radguard-shard-tree.XXXXXX)}
mkdir -p "$work"
cp /usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm "$work/one.dcm"
echo "$work/one.dcm" >"$work/list.txt"
"$radguard" keygen "$work/k.key" >/dev/null 2>&1 || true

for n in $trees; do
  tree=$work/tree-$n
  [ -d "$tree" ] && continue
  mkdir -p "$tree"
  # n series folders, 4 series per study folder, per_folder names in each.
  /usr/bin/python3 - "$tree" "$n" "$per_folder" <<'PY'
import os, sys
root, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for s in range(n):
    d = os.path.join(root, "1.2.826.0.1.3680043.10.9.%d" % (s // 4), "1.2.826.0.1.3680043.10.9.%d.%d" % (s // 4, s))
    os.makedirs(d, exist_ok=True)
    for i in range(per):
        open(os.path.join(d, "%d.dcm" % i), "w").close()
PY
done

labels=()
[ -z "$baseline" ] || labels+=("baseline:$baseline")
labels+=("this:$radguard")
: >"$work/times"
for round in $(seq "$rounds"); do
  for n in $trees; do
    for entry in "${labels[@]}"; do
      name=${entry%%:*} bin=${entry#*:}
      perf stat -r "$repeats" -x, -e task-clock -o "$work/perf.out" -- "$bin" deid \
        --files-from "$work/list.txt" -o "$work/tree-$n" -k "$work/k.key" -j 1 --no-progress \
        >/dev/null 2>&1 || { echo "plan_shard_tree_bench: $name failed on tree $n" >&2; exit 1; }
      echo "$name $n $(awk -F, '/task-clock/ {print $1}' "$work/perf.out")" >>"$work/times"
    done
  done
done
median() {  # NAME TREE
  awk -v l="$1" -v t="$2" '$1 == l && $2 == t {print $3}' "$work/times" | sort -g |
    awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
listings() {  # BINARY TREE: getdents64 calls of one run
  strace -f -c -e trace=getdents64 -o "$work/strace.out" "$1" deid --files-from "$work/list.txt" \
    -o "$work/tree-$2" -k "$work/k.key" -j 1 --no-progress >/dev/null 2>&1 || true
  awk '$NF == "getdents64" {print $4}' "$work/strace.out" | head -n 1
}

echo "one-file shard into a tree of N series folders × $per_folder files; task-clock ms, median of $rounds rounds × $repeats runs"
echo
if [ -n "$baseline" ]; then
  echo "| tree (series folders / files) | baseline ms | this build ms | this ÷ baseline | baseline getdents64 | this build getdents64 |"
  echo "|---|---:|---:|---:|---:|---:|"
  for n in $trees; do
    a=$(median baseline "$n") b=$(median this "$n")
    printf '| %s / %s | %.1f | %.1f | %.3f | %s | %s |\n' "$n" "$((n * per_folder))" "$a" "$b" \
      "$(echo "$b / $a" | bc -l)" "$(listings "$baseline" "$n")" "$(listings "$radguard" "$n")"
  done
else
  echo "| tree (series folders / files) | ms | getdents64 |"
  echo "|---|---:|---:|"
  for n in $trees; do
    printf '| %s / %s | %.1f | %s |\n' "$n" "$((n * per_folder))" "$(median this "$n")" "$(listings "$radguard" "$n")"
  done
fi
