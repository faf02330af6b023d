#!/usr/bin/env bash
# radguard's de-identification benchmark.
#
#   bash bench/deid_bench.sh BUILD_DIR [CORPUS_DIR]
#
# Builds the synthetic corpus if it is missing (bench/make_corpus.py), reads it once to warm
# the page cache, then in one run measures `cp -r`, `radguard deid` (basic and research
# presets, 2 threads, plus 1 thread for a like-for-like comparison with the single-threaded
# gdcmanon) and GDCM's `gdcmanon -e` (PS3.15 Basic Profile) on the whole corpus and on its
# well-formed files alone; then radguard's peak RSS on a corpus twice as large.
# For each: wall seconds, files/s, MB/s, peak RSS (GNU time) and the ratio to `cp -r` of the
# same files in the same run. Prints a table and writes the figures as JSON. "gdcmanon" on the
# whole corpus is the run that gets through it (see gdcmanon_resumed.sh below); gdcmanon_folder
# is the plain folder run, which a malformed file aborts.
#
# Environment: BENCH_FILES (3000), BENCH_MEGABYTES (500), BENCH_SEED (1), BENCH_THREADS (2),
# BENCH_REPEATS (3: each figure is the median of that many interleaved runs), BENCH_SLOW_REPEATS
# (1: runs of gdcmanon on the whole corpus, which take a minute each), BENCH_WORK
# (scratch folder for outputs, default a fresh folder under /tmp), BENCH_JSON (where to write
# the JSON; default bench/results/deid_bench-<UTC time>.json), BENCH_SKIP_GDCM=1 to skip gdcmanon.
# No file names or header values are printed: tool logs go to the scratch folder.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: bash bench/deid_bench.sh BUILD_DIR [CORPUS_DIR]" >&2
  exit 2
fi
build=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
files=${BENCH_FILES:-3000}
megabytes=${BENCH_MEGABYTES:-500}
seed=${BENCH_SEED:-1}
threads=${BENCH_THREADS:-2}
repeats=${BENCH_REPEATS:-3}
slow_repeats=${BENCH_SLOW_REPEATS:-1}
corpus_dir=${2:-/tmp/radguard-bench-corpus-s${seed}-${files}f-${megabytes}mb}
double_dir=${corpus_dir}-twin
radguard="$build/apps/radguard/radguard"
py=/usr/bin/python3  # Debian's python3, which has python3-pydicom and python3-numpy

for tool in "$radguard" /usr/bin/time gdcmanon openssl; do
  if ! command -v "$tool" >/dev/null; then
    echo "deid_bench: $tool not found (make build; bash scripts/install-deps.sh)" >&2
    exit 2
  fi
done

work=${BENCH_WORK:-$(mktemp -d /tmp/radguard-bench.XXXXXX)}
mkdir -p "$work"
trap 'rm -rf "$work/trash" "$work/cp" "$work/rg" "$work/gd"' EXIT
results_json=${BENCH_JSON:-$here/results/deid_bench-$(date -u +%Y%m%dT%H%M%SZ).json}
mkdir -p "$(dirname "$results_json")"

make_corpus() {  # DIR SEED
  if [ -f "$1/manifest.json" ]; then return; fi
  echo "== building corpus in $1 (seed $2, ~$files files, ~$megabytes MB)"
  rm -rf "$1"
  "$py" "$here/make_corpus.py" "$1" --files "$files" --megabytes "$megabytes" --seed "$2"
}
make_corpus "$corpus_dir" "$seed"
make_corpus "$double_dir" "$((seed + 1000))"

whole="$corpus_dir/corpus"
good="$corpus_dir/corpus/wellformed"

# Keys: radguard's secret key, and a throw-away certificate for gdcmanon -e.
"$radguard" keygen "$work/bench.key" >/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/gdcm.key" -out "$work/gdcm.pem" -days 30 \
  -subj "/CN=radguard-bench" >/dev/null 2>&1

count_files() { find "$1" -type f | wc -l; }
count_bytes() { find "$1" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s}'; }

echo "== warming the page cache"
find "$corpus_dir/corpus" "$double_dir/corpus" -type f -exec cat {} + >/dev/null

rows="$work/rows.tsv"
: >"$rows"

# measure NAME SET OUTDIR -- COMMAND...: one timed run, appended to $rows (wall s, peak RSS KB,
# user+sys CPU s, exit status, files written). Runs are interleaved (every tool once, then again)
# so that load from elsewhere on the machine spreads over all tools; the table takes medians.
measure() {
  local name=$1 set=$2 out=$3
  shift 4
  set_aside "$out"
  sync
  local t0 t1 rc wall rss cpu written
  t0=$(date +%s.%N)
  set +e
  /usr/bin/time -v -o "$work/$name.$set.time" "$@" >"$work/$name.$set.log" 2>&1
  rc=$?
  set -e
  t1=$(date +%s.%N)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$name.$set.time")
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$work/$name.$set.time")
  written=$( [ -d "$out" ] && count_files "$out" || echo 0)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$set" "$wall" "$rss" "$cpu" "$rc" "$written" >>"$rows"
  printf '   %-24s %-10s %8.2f s  cpu %7.2f s  rss %7d KB  exit %3d  outputs %d\n' "$name" "$set" "$wall" \
    "$cpu" "$rss" "$rc" "$written"
  set_aside "$out"
}

# Outputs are renamed aside, not deleted, until the end: ext4 will not reuse an inode for about
# 30 s after it is freed, and creating thousands of files just after deleting thousands makes
# every tool (cp -r most of all) spend most of its time skipping recently freed inodes.
set_aside() {
  if [ -e "$1" ]; then
    mkdir -p "$work/trash"
    mv "$1" "$(mktemp -d "$work/trash/XXXXXX")/"
  fi
}

rg_args() {  # PROFILE THREADS: the options after the inputs
  echo --output "$work/rg" --key "$work/bench.key" --profile "$1" --threads "$2" --no-progress \
    --report "$work/rg.report.json"
}

# gdcmanon stops the whole run (SIGABRT, a failed assertion) on some malformed files, so the
# whole-corpus figure that completes runs it on the well-formed folder, then once per other file
# (what an operator has to do to get through the corpus); the plain folder run is also recorded.
cat >"$work/gdcmanon_resumed.sh" <<'EOF'
#!/usr/bin/env bash
set -uo pipefail
cert=$1 whole=$2 out=$3
gdcmanon -e -c "$cert" -r --continue -i "$whole/wellformed" -o "$out/wellformed"
aborted=0
while IFS= read -r -d '' f; do
  rel=${f#"$whole"/}
  mkdir -p "$out/$(dirname "$rel")"
  gdcmanon -e -c "$cert" --continue -i "$f" -o "$out/$rel"
  s=$?
  if [ $s -ge 128 ]; then aborted=$((aborted + 1)); fi
done < <(find "$whole" -path "$whole/wellformed" -prune -o -type f -print0 | sort -z)
echo "gdcmanon aborted on $aborted files" >&2
exit 0
EOF

echo "== measuring: $repeats interleaved rounds (gdcmanon on the whole corpus: $slow_repeats)"
for ((round = 1; round <= repeats; round++)); do
  echo "-- round $round"
  for set in whole wellformed; do
    src=$whole
    if [ "$set" = wellformed ]; then src=$good; fi
    measure "cp_r" "$set" "$work/cp" -- cp -r "$src" "$work/cp"
    # shellcheck disable=SC2046  # rg_args prints plain words (paths under /tmp without spaces)
    measure "radguard_basic_${threads}t" "$set" "$work/rg" -- "$radguard" deid "$src" $(rg_args basic "$threads")
    cp "$work/rg.report.json" "$work/radguard_report_$set.json"
    # shellcheck disable=SC2046
    measure "radguard_research_${threads}t" "$set" "$work/rg" -- "$radguard" deid "$src" $(rg_args research "$threads")
    # shellcheck disable=SC2046
    measure "radguard_basic_1t" "$set" "$work/rg" -- "$radguard" deid "$src" $(rg_args basic 1)
    if [ "${BENCH_SKIP_GDCM:-0}" = 1 ]; then continue; fi
    if [ "$set" = wellformed ]; then
      measure "gdcmanon" "$set" "$work/gd" -- gdcmanon -e -c "$work/gdcm.pem" -r --continue -i "$src" -o "$work/gd"
    elif [ "$round" -le "$slow_repeats" ]; then
      measure "gdcmanon_folder" "$set" "$work/gd" -- \
        gdcmanon -e -c "$work/gdcm.pem" -r --continue -i "$src" -o "$work/gd"
      measure "gdcmanon" "$set" "$work/gd" -- bash "$work/gdcmanon_resumed.sh" "$work/gdcm.pem" "$src" "$work/gd"
      grep -h 'aborted on' "$work/gdcmanon.whole.log" | sed 's/^/   /' || true
    fi
  done
done
echo "== memory on a corpus twice as large (two corpora, different seeds, one run)"
# shellcheck disable=SC2046
measure "radguard_basic_${threads}t" "double" "$work/rg" -- \
  "$radguard" deid "$whole" "$double_dir/corpus" $(rg_args basic "$threads")
cp "$work/rg.report.json" "$work/radguard_report_double.json"
set_aside "$work/cp"; set_aside "$work/rg"; set_aside "$work/gd"  # deleted on exit

# Set sizes, then the table and the JSON.
whole_files=$(count_files "$whole"); whole_bytes=$(count_bytes "$whole")
good_files=$(count_files "$good"); good_bytes=$(count_bytes "$good")
double_files=$((whole_files + $(count_files "$double_dir/corpus")))
double_bytes=$((whole_bytes + $(count_bytes "$double_dir/corpus")))

machine_cpu=$(lscpu | awk -F': *' '/^Model name/ {print $2; exit}')
machine_cores=$(nproc)
machine_mem=$(free -b | awk '/^Mem:/ {print $2}')
machine_disk=$(df -hT "$work" | awk 'NR == 2 {print $2 " " $3 " on " $7}')

"$py" - "$rows" "$results_json" "$work" "$corpus_dir" <<EOF
import json, statistics, sys
rows_path, out_path, work, corpus_dir = sys.argv[1:5]
sizes = {"whole": ($whole_files, $whole_bytes),
         "wellformed": ($good_files, $good_bytes),
         "double": ($double_files, $double_bytes)}
runs = {}
for line in open(rows_path):
    name, set_, wall, rss, cpu, rc, written = line.rstrip("\n").split("\t")
    runs.setdefault((name, set_), []).append((float(wall), int(rss), float(cpu), int(rc), int(written)))
rows = []
for (name, set_), rs in runs.items():
    files, size = sizes[set_]
    wall = statistics.median(r[0] for r in rs)
    rows.append({"tool": name, "set": set_, "wall_s": wall, "peak_rss_mb": max(r[1] for r in rs) / 1024,
                 "cpu_s": statistics.median(r[2] for r in rs), "exit_status": max(r[3] for r in rs),
                 "outputs": min(r[4] for r in rs), "files": files, "bytes": size,
                 "files_per_s": files / wall, "mb_per_s": size / 1e6 / wall,
                 "runs_wall_s": [r[0] for r in rs], "runs_cpu_s": [r[2] for r in rs]})
order = {"whole": 0, "wellformed": 1, "double": 2}
rows.sort(key=lambda r: order[r["set"]])
cp = {r["set"]: r["wall_s"] for r in rows if r["tool"] == "cp_r"}
gd = {r["set"]: r["wall_s"] for r in rows if r["tool"] == "gdcmanon"}
for r in rows:
    r["ratio_to_cp"] = r["wall_s"] / cp[r["set"]] if r["set"] in cp else None
    r["gdcmanon_over_this"] = gd[r["set"]] / r["wall_s"] if r["set"] in gd else None
reports = {}
for s in ("whole", "wellformed", "double"):
    try:
        rep = json.load(open(f"{work}/radguard_report_{s}.json"))
    except OSError:
        continue
    reasons = {}
    for f in rep["failures"] + rep["skipped"]:
        key = f"{f['status']}: {f['reason']}"
        reasons[key] = reasons.get(key, 0) + 1
    reports[s] = {"counts": rep["counts"], "reasons": reasons}
manifest = json.load(open(f"{corpus_dir}/manifest.json"))
doc = {"machine": {"cpu": "$machine_cpu", "cores": $machine_cores, "memory_bytes": $machine_mem,
                   "disk": "$machine_disk"},
       "corpus": {"dir": corpus_dir, "seed": manifest["seed"], "sets": {k: {"files": v[0], "bytes": v[1]} for k, v in sizes.items()},
                  "transfer_syntaxes": manifest["transfer_syntaxes"],
                  "malformed": [m["kind"] for m in manifest["malformed"]]},
       "threads": $threads, "repeats": $repeats, "rows": rows, "radguard_reports": reports}
json.dump(doc, open(out_path, "w"), indent=2)
print()
print("%-22s %-10s %6s %8s %7s %8s %7s %8s %6s %7s %4s" % ("tool", "set", "files", "wall s", "cpu s",
      "files/s", "MB/s", "peak MB", "x cp", "gdcm/x", "exit"))
for r in rows:
    print("%-22s %-10s %6d %8.2f %7.2f %8.0f %7.1f %8.1f %6s %7s %4d" % (
        r["tool"], r["set"], r["files"], r["wall_s"], r["cpu_s"], r["files_per_s"], r["mb_per_s"], r["peak_rss_mb"],
        "%.2f" % r["ratio_to_cp"] if r["ratio_to_cp"] else "-",
        "%.2f" % r["gdcmanon_over_this"] if r["gdcmanon_over_this"] else "-", r["exit_status"]))
for s, rep in reports.items():
    print(f"radguard report ({s}): {rep['counts']}")
    for reason, n in sorted(rep["reasons"].items()):
        print(f"   {n:5d}  {reason}")
print(f"\nJSON: {out_path}")
EOF
echo "scratch folder (logs, radguard reports): $work"
