#!/usr/bin/env bash
# Temporary files a killed run left in a sharded release's output tree (issue 19). A shard
# (radguard deid --files-from) looks for them only in the folders its own files go to, so
# that N shards do not each walk the whole tree the others write; radguard plan merge walks
# the whole tree once. Checked here, on a tree two shards wrote:
#   - a stale temporary in a folder of the shard's own files is gone after the shard's run;
#   - one in a folder of the other shard's files, and one in a folder no shard writes,
#     survive the shard's run and are gone after plan merge (counted in its report);
#   - a temporary that may still be in use (another host's, made just now) survives both;
#   - a run over a whole folder still walks the whole output tree before it starts;
#   - an input the plan could not find fails the merge and is in its report.
# A temporary is stale here by its age (over a day: stale whatever host made it); the rule
# itself (dead process, host) is tested in foundations_test.cpp.
#   plan_stale_temporaries_test.sh RADGUARD
set -uo pipefail
radguard=$(readlink -f "${1:?usage: plan_stale_temporaries_test.sh RADGUARD}")
work=$(mktemp -d /tmp/radguard-plan-stale.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.log; do [ -f "$f" ] && { echo "----- $f" >&2; tail -n 20 "$f" >&2; }; done
  exit 1
}

samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
[ -d "$samples" ] || fail "pydicom's sample files are missing (python3-pydicom)"
in=$work/in
for study in 1 2 3 4; do  # four studies of two slices: two shards of two studies
  mkdir -p "$in/s$study"
  for s in 1 2; do
    f=$in/s$study/ct$s.dcm
    cp "$samples/CT_small.dcm" "$f"
    dcmodify -nb -m "(0010,0020)=MRN-$study" \
      -m "(0020,000d)=1.2.826.0.1.3680043.10.1137.29.$study" \
      -m "(0020,000e)=1.2.826.0.1.3680043.10.1137.29.$study.$s" \
      -m "(0008,0018)=1.2.826.0.1.3680043.10.1137.29.$study.$s.1" "$f" || fail "dcmodify"
  done
done
"$radguard" keygen "$work/k.key" >/dev/null 2>&1 || fail "keygen"
plan=$work/plan
out=$work/out
"$radguard" plan "$in" --shards 2 -o "$plan" --no-progress >"$work/plan.log" 2>&1 || fail "plan"
mkdir -p "$plan/reports"
shard() {  # N: runs shard N into $out, as its array task would
  local n=$1
  "$radguard" deid --files-from "$plan/shard-000$n.txt" -o "$out" -k "$work/k.key" -j 2 \
    --no-progress --report "$plan/reports/shard-000$n.json" >>"$work/shard$n.log" 2>&1 ||
    fail "shard $n"
}
# The folders each shard's files go to: shard 1 alone first, then what shard 0 adds.
shard 1
(cd "$out" && find . -type f -printf '%h\n' | sort -u) >"$work/folders1"
shard 0
(cd "$out" && find . -type f -printf '%h\n' | sort -u | comm -23 - "$work/folders1") >"$work/folders0"
[ -s "$work/folders0" ] && [ -s "$work/folders1" ] || fail "a shard wrote nothing"
own=$out/$(head -n 1 "$work/folders1")
other=$out/$(head -n 1 "$work/folders0")
nobody=$out/left-by-a-killed-run
mkdir -p "$nobody"

# What a killed run leaves: ".radguard-tmp-<host>-<pid>-<random>-<n>", here a day and more old.
plant_stale() {
  printf 'partial' >"$1/.radguard-tmp-0badc0de-4242-0123456789abcdef-1"
  touch -d '2 days ago' "$1/.radguard-tmp-0badc0de-4242-0123456789abcdef-1"
}
fresh=$own/.radguard-tmp-0badc0de-4242-fedcba9876543210-1  # maybe another host's live run
plant_stale "$own"
plant_stale "$other"
plant_stale "$nobody"
printf 'partial' >"$fresh"
stale_in() { [ -e "$1/.radguard-tmp-0badc0de-4242-0123456789abcdef-1" ]; }

# Shard 1 again (as after its task was killed): its own folder is cleared, nothing else.
shard 1
stale_in "$own" && fail "a stale temporary in the shard's own folder survived its run"
stale_in "$other" || fail "a shard removed a temporary in another shard's folder (it must not walk them)"
stale_in "$nobody" || fail "a shard walked a folder it does not write"
[ -e "$fresh" ] || fail "a shard removed a temporary that may be in use"

# The merge walks the whole tree once.
"$radguard" plan merge "$plan" >"$work/merge.log" 2>&1 || fail "plan merge"
stale_in "$other" && fail "plan merge left a killed shard's temporary in another shard's folder"
stale_in "$nobody" && fail "plan merge left a killed run's temporary in a folder no shard writes"
[ -e "$fresh" ] || fail "plan merge removed a temporary that may be in use"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); sys.exit(r["merged"]["stale_temporaries_removed"] != 2)' \
  "$plan/report.json" || fail "the merged report does not count the 2 temporaries removed"
rm -f "$fresh"

# The shards' outputs are those of one run over the folder (nothing planted among them).
"$radguard" deid "$in" -o "$work/single" -k "$work/k.key" -j 2 --no-progress >"$work/single.log" 2>&1 ||
  fail "single run"
diff <(cd "$work/single" && find . -type f -exec sha256sum {} + | sort -k 2) \
  <(cd "$out" && find . -type f -exec sha256sum {} + | sort -k 2) >/dev/null ||
  fail "the shards' outputs differ from one run's"

# A run over a whole folder walks the whole output tree first, as before.
plant_stale "$nobody"
"$radguard" deid "$in" -o "$out" -k "$work/k.key" -j 2 --no-progress >"$work/whole.log" 2>&1 ||
  fail "whole-folder run"
stale_in "$nobody" && fail "a whole-folder run left a killed run's temporary"

# An input the plan could not find is in no shard; the merged report counts and lists it as
# one run's would, and the merge fails (found by a new user's trial: it exited 0).
find "$in" -type f | sort >"$work/list.txt"
echo "$in/s9/gone.dcm" >>"$work/list.txt"
plan2=$work/plan2
"$radguard" plan --files-from "$work/list.txt" --shards 2 -o "$plan2" --no-progress >"$work/plan2.log" 2>&1 &&
  fail "plan exited 0 with a missing input"
mkdir -p "$plan2/reports"
for n in 0 1; do
  "$radguard" deid --files-from "$plan2/shard-000$n.txt" -o "$work/out2" -k "$work/k.key" -j 2 \
    --no-progress --report "$plan2/reports/shard-000$n.json" >>"$work/shard2.log" 2>&1 || fail "shard $n of plan2"
done
"$radguard" plan merge "$plan2" >"$work/merge2.log" 2>&1 && fail "plan merge exited 0 with an input the plan could not find"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
missing = [f for f in r["failures"] if f["status"] == "missing_input"]
sys.exit(not (r["counts"]["missing_inputs"] == 1 and r["exit_code"] == 1 and len(missing) == 1
              and missing[0]["input"] == "gone.dcm" and missing[0]["reason"] == "does not exist"))' \
  "$plan2/report.json" || fail "the merged report does not count and list the input the plan could not find"
echo "PASS"
