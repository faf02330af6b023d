#!/usr/bin/env bash
# A real single-node Slurm cluster (start_cluster.sh) runs radguard plan --sbatch's job array:
# 4 shards of a test corpus de-identified as 4 array tasks, then the dependent merge job. The
# union of the shards' outputs must be byte-identical to one run over all inputs, and the
# merged report equal to that run's report in counts and failures. Exit 77 (skipped) only
# when slurm-wlm or munge is not installed.
#   slurm_array_test.sh RADGUARD
set -uo pipefail
radguard=$(readlink -f "${1:?usage: slurm_array_test.sh RADGUARD}")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/radguard-slurm-test.XXXXXX)
# A space in the path: the generated scripts must quote everything.
mkdir -p "$work/with space"
top="$work/with space"
cluster="$work/cluster"
cleanup() { "$here/stop_cluster.sh" "$cluster" >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$top"/plan/logs/*.out "$cluster"/log/*.log; do
    [ -f "$f" ] && { echo "----- $f" >&2; tail -n 30 "$f" >&2; }
  done
  exit 1
}

"$here/start_cluster.sh" "$cluster"
started=$?
[ "$started" -eq 77 ] && exit 77
[ "$started" -eq 0 ] || { echo "FAIL: the test cluster did not start" >&2; exit 1; }
export SLURM_CONF="$cluster/slurm.conf" PATH="$PATH:/usr/sbin"

# The corpus: 8 studies (pydicom's samples given their own UIDs and patients), a file that
# is not DICOM, and a DICOM file cut short (a failure both runs must report).
samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
[ -d "$samples" ] || fail "pydicom's sample files are missing (python3-pydicom)"
in="$top/in"
for i in 1 2 3 4 5 6 7 8; do
  mkdir -p "$in/patient $i"
  for s in CT_small MR_small; do
    f="$in/patient $i/$s.dcm"
    cp "$samples/$s.dcm" "$f"
    dcmodify -nb -m "(0010,0010)=Doe^Pat$i" -m "(0010,0020)=MRN-$i" \
      -m "(0020,000d)=1.2.826.0.1.3680043.10.1137.77.$i" \
      -m "(0020,000e)=1.2.826.0.1.3680043.10.1137.77.$i.$s" \
      -m "(0008,0018)=1.2.826.0.1.3680043.10.1137.77.$i.$s.1" "$f" || fail "dcmodify"
  done
done
echo "not an image" >"$in/patient 3/notes.txt"
head -c 1500 "$samples/CT_small.dcm" >"$in/patient 5/cut.dcm"
"$radguard" keygen "$top/k.key" >/dev/null || fail "keygen"

# One run over everything.
"$radguard" deid "$in" -o "$top/single" -k "$top/k.key" --report-full-paths --no-progress \
  -j 2 --report "$top/single.json" >/dev/null 2>&1
[ $? -eq 1 ] || fail "the single run should exit 1 (one input cut short)"

# The plan, the scripts, and the cluster runs them.
cd "$top" || fail "cd"
"$radguard" plan "$in" --shards 4 -o plan --no-progress --sbatch --cpus-per-task 1 \
  --job-name rgtest -- deid -o shards -k k.key --report-full-paths || fail "plan --sbatch"
for f in run.sbatch merge.sbatch submit.sh shard-0003.txt; do
  [ -f "plan/$f" ] || fail "plan/$f missing"
done
grep -q '^#SBATCH --array=0-3$' plan/run.sbatch || fail "no --array=0-3 in run.sbatch"
ids=$(plan/submit.sh) || fail "submit.sh: $ids"
array=$(sed -n 's/^array_job=//p' <<<"$ids")
merge=$(sed -n 's/^merge_job=//p' <<<"$ids")
[ -n "$array" ] && [ -n "$merge" ] || fail "submit.sh printed no job IDs: $ids"
echo "array job $array, merge job $merge"
deadline=$((SECONDS + 300))
while [ -n "$(squeue -h -j "$array,$merge" 2>/dev/null)" ]; do
  [ $SECONDS -lt $deadline ] || { squeue >&2; scancel "$array" "$merge"; fail "jobs still queued after 300 s"; }
  sleep 1
done
for s in 0 1 2 3; do
  grep -q "radguard shard $s: exit 0" "plan/logs/shard-000$s.out" || fail "shard $s did not end with exit 0"
done
[ -f plan/report.json ] || fail "the merge job wrote no plan/report.json"
grep -q '"exit_code": 1' plan/report.json || fail "the merged report should say exit 1"

# Outputs byte-identical.
(cd single && find . -type f -exec sha256sum {} + | sort -k 2) >"$work/single.sums"
(cd shards && find . -type f -exec sha256sum {} + | sort -k 2) >"$work/shards.sums"
[ "$(wc -l <"$work/single.sums")" -ge 8 ] || fail "the single run wrote too few files"
diff "$work/single.sums" "$work/shards.sums" >&2 || fail "outputs differ"

# The merged report equals the single run's in counts and failures.
python3 - "$top/single.json" plan/report.json <<'PY' || fail "reports differ"
import json, sys
one, merged = (json.load(open(p)) for p in sys.argv[1:3])
def problems(r, key):
    return sorted((e["input"], e["status"], e["error"], e["reason"]) for e in r[key])
ok = True
for what, a, b in [("counts", one["counts"], merged["counts"]),
                   ("failures", problems(one, "failures"), problems(merged, "failures")),
                   ("skipped", problems(one, "skipped"), problems(merged, "skipped")),
                   ("exit_code", one["exit_code"], merged["exit_code"]),
                   ("key_fingerprint", one["key_fingerprint"], merged["key_fingerprint"])]:
    if a != b:
        ok = False
        print(f"{what}: single {a!r}\n  merged {b!r}", file=sys.stderr)
assert one["counts"]["written"] >= 8 and one["counts"]["failed"] >= 1 and one["counts"]["skipped_not_dicom"] == 1, one["counts"]
sys.exit(0 if ok else 1)
PY
echo "PASS: 4-task array over the cluster == one run (outputs and report)"
