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
# Phases (BENCH_PHASES, default "startup real synthetic"; issue 21 added the first two):
#   startup    `radguard --version` and a one-file deid, BENCH_STARTUP_RUNS (20) times each: median
#              wall and CPU, peak RSS, the shared libraries loaded; and the pixel plugin's load;
#              with perf, their mean task-clock in microseconds (perf stat -r); with
#              BENCH_BASELINE, all of these of that binary too, interleaved
#   real       real third-party files (bench/real_corpus.py: a TCIA MR series, pydicom's and
#              GDCM/dicom3tools' samples) replicated with distinct UIDs: a small corpus
#              (BENCH_REAL_SMALL replicas, 2: ~580 files, ~130 MB) and a large one
#              (BENCH_REAL_LARGE, 20: ~5,800 files, ~1.3 GB), BENCH_REAL_REPEATS (3) interleaved
#              rounds of cp -r and radguard deid (basic, BENCH_THREADS; with BENCH_BASELINE, that
#              binary too, as baseline_basic_*), gdcmanon once on each
#   synthetic  the bench/make_corpus.py corpus below (gdcmanon on it takes minutes)
#   memory     peak RSS of `radguard deid` (basic, BENCH_THREADS, --report) on 1, 5 and 20
#              replicas of the real corpus (BENCH_MEMORY_REPLICAS) given as that many input
#              folders, and with BENCH_BASELINE=OTHER_RADGUARD the same runs of that binary,
#              interleaved: whether memory stays flat in corpus size, before and after a change
#              (BENCH_BASELINE also adds its task-clock to the startup phase); with a
#              baseline, also whether both made the same outputs (SHA-256 of every file) and
#              the same report but for its times
#              (BENCH_MEMORY_ROUNDS, default 1: that many interleaved rounds, each reported)
# Ratios to cp -r are of wall time and of CPU time (user + system) of the same files.
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

phases=" ${BENCH_PHASES:-startup real synthetic} "
memory_replicas=${BENCH_MEMORY_REPLICAS:-1 5 20}
memory_rounds=${BENCH_MEMORY_ROUNDS:-1}  # interleaved rounds of each memory run (one line each)
has_phase() { [[ "$phases" == *" $1 "* ]]; }
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
if has_phase synthetic; then
  make_corpus "$corpus_dir" "$seed"
  make_corpus "$double_dir" "$((seed + 1000))"
fi
real_small=${BENCH_REAL_SMALL:-2}
real_large=${BENCH_REAL_LARGE:-20}
real_base=${BENCH_REAL_DIR:-/tmp/radguard-bench-real}
make_real() {  # REPLICAS: prints the corpus folder
  local dir="$real_base-r$1"
  if [ ! -f "$dir/manifest.json" ]; then
    rm -rf "$dir"
    "$py" "$here/real_corpus.py" "$dir" --replicas "$1" >&2
  fi
  echo "$dir/corpus"
}
if has_phase real || has_phase startup; then
  real_small_dir=$(make_real "$real_small")
fi
if has_phase real; then
  real_large_dir=$(make_real "$real_large")
fi
if has_phase memory; then
  memory_most=0
  for n in $memory_replicas; do [ "$n" -gt "$memory_most" ] && memory_most=$n; done
  memory_dir=$(make_real "$memory_most")
fi

whole="$corpus_dir/corpus"
good="$corpus_dir/corpus/wellformed"

# Keys: radguard's secret key, and a throw-away certificate for gdcmanon -e.
"$radguard" keygen "$work/bench.key" >/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/gdcm.key" -out "$work/gdcm.pem" -days 30 \
  -subj "/CN=radguard-bench" >/dev/null 2>&1

count_files() { find "$1" -type f | wc -l; }
count_bytes() { find "$1" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s}'; }

rows="$work/rows.tsv"
: >"$rows"
sizes="$work/sizes.tsv"
: >"$sizes"
startup="$work/startup.tsv"
: >"$startup"

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
# 60 s after it is freed (RECENTCY_MIN in fs/ext4/ialloc.c, without a journal), and creating thousands of files just after deleting thousands makes
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

if has_phase startup; then
  echo "== start-up: radguard --version and a one-file deid, ${BENCH_STARTUP_RUNS:-20} runs each"
  one=$(find "$real_small_dir/r000" -name 'tcia-*.dcm' | sort | head -n 1)
  startup_run() {  # NAME COMMAND...: one run under GNU time, appended to $startup
    local name=$1
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$work/startup.time" "$@" >/dev/null 2>&1 || true
    read -r wall user sys rss <"$work/startup.time"
    printf '%s\t%s\t%s\t%s\n' "$name" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" \
      "$rss" >>"$startup"
  }
  for ((i = 0; i < ${BENCH_STARTUP_RUNS:-20}; i++)); do
    startup_run version "$radguard" --version
    set_aside "$work/one"
    startup_run deid_one_file "$radguard" deid "$one" --output "$work/one" --key "$work/bench.key" \
      --threads 1 --no-progress
    if [ -n "${BENCH_BASELINE:-}" ]; then  # the baseline binary, interleaved
      startup_run baseline_version "$BENCH_BASELINE" --version
      set_aside "$work/one"
      startup_run baseline_deid_one_file "$BENCH_BASELINE" deid "$one" --output "$work/one" \
        --key "$work/bench.key" --threads 1 --no-progress
    fi
  done
  set_aside "$work/one"
  loader_cycles() {  # BINARY: the dynamic loader's cycles for BINARY --version
    LD_DEBUG=statistics "$1" --version 2>&1 >/dev/null |
      awk '/total startup time in dynamic loader/ {print $(NF - 1); exit}'
  }
  printf 'libraries\t%s\n' "$(ldd "$radguard" | wc -l)" >"$work/startup.facts"
  printf 'libraries_with_plugin\t%s\n' \
    "$(ldd "$(dirname "$radguard")/radguard-pixels.so" 2>/dev/null | wc -l)" >>"$work/startup.facts"
  printf 'libraries_with_services\t%s\n' \
    "$(ldd "$(dirname "$radguard")/radguard-services.so" 2>/dev/null | wc -l)" >>"$work/startup.facts"
  loader=$(loader_cycles "$radguard")
  printf 'loader_cycles\t%s\n' "${loader:-0}" >>"$work/startup.facts"
  if [ -n "${BENCH_BASELINE:-}" ]; then
    printf 'baseline_libraries\t%s\n' "$(ldd "$BENCH_BASELINE" | wc -l)" >>"$work/startup.facts"
    loader=$(loader_cycles "$BENCH_BASELINE")
    printf 'baseline_loader_cycles\t%s\n' "${loader:-0}" >>"$work/startup.facts"
  fi
  # CPU to the microsecond (GNU time counts 10 ms steps), when perf can count task-clock: the
  # one-file deid runs as sh -c 'rm -rf OUT; exec radguard deid ...', so sh + rm alone too.
  task_clock_us() {  # COMMAND...: mean task-clock of BENCH_STARTUP_RUNS runs, in microseconds
    perf stat -r "${BENCH_STARTUP_RUNS:-20}" -x, -e task-clock "$@" 2>&1 >/dev/null |
      awk -F, '$3 ~ /task-clock/ {printf "%d", $1 * 1000; exit}'
  }
  if command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then
    printf 'version_task_clock_us\t%s\n' "$(task_clock_us "$radguard" --version)" >>"$work/startup.facts"
    printf 'deid_one_file_task_clock_us\t%s\n' "$(task_clock_us sh -c "rm -rf '$work/one'; exec '$radguard' deid '$one' --output '$work/one' --key '$work/bench.key' --threads 1 --no-progress")" >>"$work/startup.facts"
    printf 'sh_rm_task_clock_us\t%s\n' "$(task_clock_us sh -c "rm -rf '$work/one'; exec true")" >>"$work/startup.facts"
    if [ -n "${BENCH_BASELINE:-}" ]; then  # the same two, of the baseline binary, in this run
      printf 'baseline_version_task_clock_us\t%s\n' "$(task_clock_us "$BENCH_BASELINE" --version)" >>"$work/startup.facts"
      printf 'baseline_deid_one_file_task_clock_us\t%s\n' "$(task_clock_us sh -c "rm -rf '$work/one'; exec '$BENCH_BASELINE' deid '$one' --output '$work/one' --key '$work/bench.key' --threads 1 --no-progress")" >>"$work/startup.facts"
    fi
    set_aside "$work/one"
  fi
fi

if has_phase real; then
  echo "== warming the page cache (real corpora)"
  find "$real_small_dir" "$real_large_dir" -type f -exec cat {} + >/dev/null
  printf 'real_small\t%s\t%s\n' "$(count_files "$real_small_dir")" "$(count_bytes "$real_small_dir")" >>"$sizes"
  printf 'real_large\t%s\t%s\n' "$(count_files "$real_large_dir")" "$(count_bytes "$real_large_dir")" >>"$sizes"
  real_repeats=${BENCH_REAL_REPEATS:-3}
  echo "== real corpora: $real_repeats interleaved rounds (gdcmanon once on each)"
  for ((round = 1; round <= real_repeats; round++)); do
    echo "-- round $round"
    for set in real_small real_large; do
      src=$real_small_dir
      if [ "$set" = real_large ]; then src=$real_large_dir; fi
      measure "cp_r" "$set" "$work/cp" -- cp -r "$src" "$work/cp"
      # shellcheck disable=SC2046
      measure "radguard_basic_${threads}t" "$set" "$work/rg" -- "$radguard" deid "$src" $(rg_args basic "$threads")
      cp "$work/rg.report.json" "$work/radguard_report_$set.json"
      if [ -n "${BENCH_BASELINE:-}" ]; then  # the binary before a change, interleaved
        # shellcheck disable=SC2046
        measure "baseline_basic_${threads}t" "$set" "$work/rg" -- "$BENCH_BASELINE" deid "$src" $(rg_args basic "$threads")
      fi
      if [ "${BENCH_SKIP_GDCM:-0}" != 1 ] && [ "$round" = 1 ]; then
        measure "gdcmanon" "$set" "$work/gd" -- gdcmanon -e -c "$work/gdcm.pem" -r --continue -i "$src" -o "$work/gd"
      fi
    done
  done
fi

: >"$work/memory.tsv"
if has_phase memory; then
  echo "== memory in corpus size: replicas $memory_replicas of $memory_dir"
  find "$memory_dir" -type f -exec cat {} + >/dev/null
  for n in $memory_replicas; do
    # shellcheck disable=SC2207  # replica folders are rNNN, no spaces
    replicas=($(find "$memory_dir" -mindepth 1 -maxdepth 1 -type d -name 'r*' | sort | head -n "$n"))
    for _round in $(seq "$memory_rounds"); do
    for binary in "$radguard" ${BENCH_BASELINE:+"$BENCH_BASELINE"}; do
      label=after
      if [ "$binary" != "$radguard" ]; then label=baseline; fi
      set_aside "$work/rg"
      /usr/bin/time -f '%M %e %U %S' -o "$work/memory.time" "$binary" deid "${replicas[@]}" \
        --output "$work/rg" --key "$work/bench.key" --profile basic --threads "$threads" \
        --no-progress --report "$work/rg.report.json" >/dev/null 2>&1 || true
      # the last line: GNU time writes "Command exited with non-zero status" first when a
      # file fails, as some of the real corpus's files do
      read -r rss wall user sys < <(tail -n 1 "$work/memory.time")
      inputs=$(find "${replicas[@]}" -type f | wc -l)
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$n" "$inputs" "$rss" "$wall" \
        "$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" >>"$work/memory.tsv"
      printf '   %-8s %3s replicas %6s files  peak RSS %7d KB  wall %6.2f s\n' "$label" "$n" "$inputs" "$rss" "$wall"
      # what the run made, to compare with the baseline's: every output's SHA-256, and the
      # report without its times
      (cd "$work/rg" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) >"$work/memory.$label.outputs"
      sed -E '/"(total_seconds|seconds|file_seconds_summed_over_threads|prepare_seconds)"/d' \
        "$work/rg.report.json" >"$work/memory.$label.report"
    done
    done
    if [ -n "${BENCH_BASELINE:-}" ]; then
      same_outputs=no same_report=no
      cmp -s "$work/memory.after.outputs" "$work/memory.baseline.outputs" && same_outputs=yes
      cmp -s "$work/memory.after.report" "$work/memory.baseline.report" && same_report=yes
      printf '%s\t%s\t%s\n' "$n" "$same_outputs" "$same_report" >>"$work/memory.same"
      echo "   $n replicas: outputs identical to the baseline's: $same_outputs; report (but its times): $same_report"
    fi
  done
  set_aside "$work/rg"
fi

if has_phase synthetic; then
echo "== warming the page cache"
find "$corpus_dir/corpus" "$double_dir/corpus" -type f -exec cat {} + >/dev/null
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
printf 'whole\t%s\t%s\n' "$(count_files "$whole")" "$(count_bytes "$whole")" >>"$sizes"
printf 'wellformed\t%s\t%s\n' "$(count_files "$good")" "$(count_bytes "$good")" >>"$sizes"
printf 'double\t%s\t%s\n' "$(($(count_files "$whole") + $(count_files "$double_dir/corpus")))" \
  "$(($(count_bytes "$whole") + $(count_bytes "$double_dir/corpus")))" >>"$sizes"
fi  # synthetic

machine_cpu=$(lscpu | awk -F': *' '/^Model name/ {print $2; exit}')
machine_cores=$(nproc)
machine_mem=$(free -b | awk '/^Mem:/ {print $2}')
machine_disk=$(df -hT "$work" | awk 'NR == 2 {print $2 " " $3 " on " $7}')

"$py" - "$rows" "$results_json" "$work" "$corpus_dir" <<EOF
import json, os, statistics, sys
rows_path, out_path, work, corpus_dir = sys.argv[1:5]
sizes = {}
for line in open(f"{work}/sizes.tsv"):
    name, files, size = line.split()
    sizes[name] = (int(files), int(size))
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
order = {"real_small": 0, "real_large": 1, "whole": 2, "wellformed": 3, "double": 4}
rows.sort(key=lambda r: order[r["set"]])
cp = {r["set"]: r["wall_s"] for r in rows if r["tool"] == "cp_r"}
cp_cpu = {r["set"]: r["cpu_s"] for r in rows if r["tool"] == "cp_r"}
gd = {r["set"]: r["wall_s"] for r in rows if r["tool"] == "gdcmanon"}
for r in rows:
    r["ratio_to_cp"] = r["wall_s"] / cp[r["set"]] if r["set"] in cp else None
    r["cpu_ratio_to_cp"] = r["cpu_s"] / cp_cpu[r["set"]] if cp_cpu.get(r["set"]) else None
    r["gdcmanon_over_this"] = gd[r["set"]] / r["wall_s"] if r["set"] in gd else None
reports = {}
for s in ("real_small", "real_large", "whole", "wellformed", "double"):
    try:
        rep = json.load(open(f"{work}/radguard_report_{s}.json"))
    except OSError:
        continue
    reasons = {}
    for f in rep["failures"] + rep["skipped"]:
        key = f"{f['status']}: {f['reason']}"
        reasons[key] = reasons.get(key, 0) + 1
    reports[s] = {"counts": rep["counts"], "reasons": reasons}
manifest = (json.load(open(f"{corpus_dir}/manifest.json"))
            if os.path.exists(f"{corpus_dir}/manifest.json") else {"seed": None, "transfer_syntaxes": None, "malformed": []})
startup = {}
for line in open(f"{work}/startup.tsv"):
    name, wall, cpu, rss = line.split()
    startup.setdefault(name, []).append((float(wall), float(cpu), int(rss)))
startup_doc = {name: {"runs": len(v), "wall_ms": 1000 * statistics.median(x[0] for x in v),
                      "cpu_ms": 1000 * statistics.median(x[1] for x in v),
                      "peak_rss_mb": max(x[2] for x in v) / 1024} for name, v in startup.items()}
memory = []
for line in open(f"{work}/memory.tsv"):
    label, replicas, inputs, rss, wall, cpu = line.split()
    memory.append({"binary": label, "replicas": int(replicas), "files": int(inputs),
                   "peak_rss_mb": int(rss) / 1024, "wall_s": float(wall), "cpu_s": float(cpu)})
same = {}
if os.path.exists(f"{work}/memory.same"):
    for line in open(f"{work}/memory.same"):
        replicas, outputs, report = line.split()
        same[int(replicas)] = {"outputs_identical": outputs == "yes", "report_identical_but_times": report == "yes"}
for m in memory:
    if m["replicas"] in same:
        m.update(same[m["replicas"]])
if os.path.exists(f"{work}/startup.facts"):
    for line in open(f"{work}/startup.facts"):
        key, value = line.split()
        startup_doc[key] = int(value)
doc = {"machine": {"cpu": "$machine_cpu", "cores": $machine_cores, "memory_bytes": $machine_mem,
                   "disk": "$machine_disk"},
       "corpus": {"dir": corpus_dir, "seed": manifest["seed"], "sets": {k: {"files": v[0], "bytes": v[1]} for k, v in sizes.items()},
                  "transfer_syntaxes": manifest["transfer_syntaxes"],
                  "malformed": [m["kind"] for m in manifest["malformed"]]},
       "threads": $threads, "repeats": $repeats, "startup": startup_doc, "memory": memory, "rows": rows,
       "radguard_reports": reports}
json.dump(doc, open(out_path, "w"), indent=2)
print()
for name in ("version", "deid_one_file", "baseline_version", "baseline_deid_one_file"):
    if name in startup_doc:
        d = startup_doc[name]
        print(f"start-up {name}: wall {d['wall_ms']:.1f} ms, cpu {d['cpu_ms']:.1f} ms, peak RSS {d['peak_rss_mb']:.1f} MB (median of {d['runs']})")
for key in ("libraries", "libraries_with_plugin", "libraries_with_services", "loader_cycles",
            "baseline_libraries", "baseline_loader_cycles", "version_task_clock_us",
            "deid_one_file_task_clock_us", "sh_rm_task_clock_us", "baseline_version_task_clock_us",
            "baseline_deid_one_file_task_clock_us"):
    if key in startup_doc:
        print(f"start-up {key}: {startup_doc[key]}")
for m in memory:
    print(f"memory {m['binary']}: {m['replicas']} replicas, {m['files']} files: peak RSS {m['peak_rss_mb']:.1f} MB, wall {m['wall_s']:.2f} s")
print("%-22s %-10s %6s %8s %7s %8s %7s %8s %6s %6s %7s %4s" % ("tool", "set", "files", "wall s", "cpu s",
      "files/s", "MB/s", "peak MB", "x cp", "cpu xcp", "gdcm/x", "exit"))
for r in rows:
    print("%-22s %-10s %6d %8.2f %7.2f %8.0f %7.1f %8.1f %6s %6s %7s %4d" % (
        r["tool"], r["set"], r["files"], r["wall_s"], r["cpu_s"], r["files_per_s"], r["mb_per_s"], r["peak_rss_mb"],
        "%.2f" % r["ratio_to_cp"] if r["ratio_to_cp"] else "-",
        "%.2f" % r["cpu_ratio_to_cp"] if r["cpu_ratio_to_cp"] else "-",
        "%.2f" % r["gdcmanon_over_this"] if r["gdcmanon_over_this"] else "-", r["exit_status"]))
for s, rep in reports.items():
    print(f"radguard report ({s}): {rep['counts']}")
    for reason, n in sorted(rep["reasons"].items()):
        print(f"   {n:5d}  {reason}")
print(f"\nJSON: {out_path}")
EOF
echo "scratch folder (logs, radguard reports): $work"
