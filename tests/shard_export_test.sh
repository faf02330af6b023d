#!/usr/bin/env bash
# An export cut into shards (issue 19): radguard plan --sbatch -- export ... writes the job
# array and the final job; here each array task is run as Slurm would run it (bash run.sbatch
# with SLURM_ARRAY_TASK_ID), without a cluster, then the final job (merge.sbatch: radguard plan
# publish). The release must be published ONCE (one release folder, one manifest) with ONE
# ledger entry, its files byte-identical to a single export's and its manifest listing the
# same files and counts; a failed shard, or one that did not run, publishes nothing and
# appends nothing to the ledger. A second publish of the same plan is refused.
#   shard_export_test.sh RADGUARD            SQLite registry and ledger
#   shard_export_test.sh RADGUARD PGSTATE    PostgreSQL (the folder tests/pg/start_server.sh wrote)
set -uo pipefail
radguard=$(readlink -f "${1:?usage: shard_export_test.sh RADGUARD [PGSTATE]}")
state=${2:-}
work=$(mktemp -d /tmp/radguard-shard-export.XXXXXX)
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.log "$work"/plan*/logs/*.out; do
    [ -f "$f" ] && { echo "----- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

databases=()
if [ -n "$state" ]; then
  if [ -f "$state/skip" ]; then echo "SKIP: $(cat "$state/skip")"; rm -rf "$work"; exit 77; fi
  [ -s "$state/conninfo" ] || fail "no test server ($state/conninfo): did pg.start fail?"
  conninfo=$(cat "$state/conninfo")
  field() { tr ' ' '\n' <<<"$conninfo" | sed -n "s/^$1=//p"; }
  host=$(field host) port=$(field port) user=$(field user) password=$(field password)
  store() {  # a fresh database; prints its URL (the test server has no TLS: sslmode=disable)
    local db="rg_shard_$1_$$"
    psql "$conninfo" -qAt -c "CREATE DATABASE $db" >/dev/null || return 1
    databases+=("$db")
    echo "postgresql://$user:$password@$host:$port/$db?sslmode=disable"
  }
  entries() {  # the ledger's entry count (0 when its tables were never made)
    local db=${1##*/}
    db=${db%%\?*}
    psql "$conninfo dbname=$db" -qAt -c "SELECT count(*) FROM disclosure" 2>/dev/null || echo 0
  }
else
  store() { echo "$work/$1.db"; }
  entries() {
    if [ ! -e "$1" ]; then echo 0; return; fi
    "$radguard" ledger verify --ledger "$1" --json | sed -n 's/.*"entries": \([0-9]*\).*/\1/p'
  }
fi
# A trigger that makes the ledger refuse every entry, and its removal.
if [ -n "$state" ]; then
  ledger_sql() { local db=${1##*/}; db=${db%%\?*}; psql "$conninfo dbname=$db" -qAt -c "$2" >/dev/null; }
  block_ledger() {
    ledger_sql "$1" "CREATE FUNCTION rg_block() RETURNS trigger LANGUAGE plpgsql AS
      \$\$ BEGIN RAISE EXCEPTION 'blocked by the test'; END \$\$;
      CREATE TRIGGER rg_block BEFORE INSERT ON disclosure FOR EACH ROW EXECUTE FUNCTION rg_block()"
  }
  unblock_ledger() { ledger_sql "$1" "DROP TRIGGER rg_block ON disclosure; DROP FUNCTION rg_block()"; }
else
  ledger_sql() { python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.close()' "$1" "$2"; }
  block_ledger() {
    ledger_sql "$1" "CREATE TRIGGER rg_block BEFORE INSERT ON disclosure BEGIN SELECT RAISE(ABORT, 'blocked by the test'); END;"
  }
  unblock_ledger() { ledger_sql "$1" "DROP TRIGGER rg_block;"; }
fi
cleanup() {
  for db in "${databases[@]}"; do
    psql "$conninfo" -qAt -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Six studies of five patients (one permitted patient with two studies), one patient who
# denied the purpose, one with no decision (default deny).
samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
[ -d "$samples" ] || fail "pydicom's sample files are missing (python3-pydicom)"
in="$work/in"
make() {  # folder patient-id name study: two CT slices (MR_small is a SECONDARY image,
  # which export refuses without Clean Pixel Data: not what this test is about)
  mkdir -p "$in/$1"
  for s in ct1 ct2; do
    f="$in/$1/$s.dcm"
    cp "$samples/CT_small.dcm" "$f"
    dcmodify -nb -m "(0010,0020)=$2" -m "(0010,0010)=$3" \
      -m "(0020,000d)=1.2.826.0.1.3680043.10.1137.19.$4" \
      -m "(0020,000e)=1.2.826.0.1.3680043.10.1137.19.$4.$s" \
      -m "(0008,0018)=1.2.826.0.1.3680043.10.1137.19.$4.$s.1" "$f" || fail "dcmodify"
  done
}
make a1 MRN-A "Alpha^Anna" 1
make a2 MRN-A "Alpha^Anna" 2
make b MRN-B "Bravo^Bert" 3
make c MRN-C "Charlie^Cleo" 4
make d MRN-D "Delta^Dora" 5
make e MRN-E "Echo^Emil" 6
"$radguard" keygen "$work/k.key" >/dev/null || fail "keygen"
cat >"$work/consents.csv" <<'CSV'
patient_id,purpose,decision,date
MRN-A,research,permit,2025-01-10
MRN-B,research,deny,2025-02-01
MRN-C,research,permit,2025-03-01
MRN-D,research,permit,2025-03-02
CSV
registry=$(store registry) || fail "cannot make the registry"
"$radguard" consent import "$work/consents.csv" --registry "$registry" >"$work/consent.log" 2>&1 ||
  fail "consent import"
common=(--purpose research --recipient "Shard Lab" -k "$work/k.key" --registry "$registry")

# One export over everything.
ledger1=$(store ledger1) || fail "cannot make a ledger"
"$radguard" export "$in" -o "$work/single" "${common[@]}" --ledger "$ledger1" --no-progress \
  --report "$work/single.json" >"$work/single.log" 2>&1 || fail "the single export failed"
single=$(ls -d "$work"/single/release-*) || fail "the single export published no release"

# The same release cut into 3 shards, each staged by its array task, published once.
ledger2=$(store ledger2) || fail "cannot make a ledger"
cd "$work" || fail "cd"
"$radguard" plan "$in" --shards 3 -o plan --no-progress --sbatch -- export -o sharded \
  "${common[@]}" --ledger "$ledger2" >"$work/plan.log" 2>&1 || fail "plan --sbatch -- export"
grep -q -- "--shard" plan/run.sbatch || fail "run.sbatch does not stage shards"
grep -q "plan' 'publish\|plan publish" plan/merge.sbatch || fail "merge.sbatch does not publish"
for t in 0 1 2; do
  SLURM_ARRAY_TASK_ID=$t SLURM_CPUS_PER_TASK=1 bash plan/run.sbatch >"plan/logs/shard-$t.out" 2>&1 ||
    fail "shard $t failed"
  grep -q "exit 0" "plan/logs/shard-$t.out" || fail "shard $t did not end with exit 0"
  [ -z "$(ls "$work/sharded" | grep '^release-')" ] || fail "shard $t published something"
done
[ "$(entries "$ledger2")" = 0 ] || fail "a shard appended to the ledger"
bash plan/merge.sbatch >"$work/publish.log" 2>&1 || fail "publish failed"
releases=$(ls -d "$work"/sharded/release-* 2>/dev/null | wc -l)
[ "$releases" = 1 ] || fail "$releases release folders, not one"
sharded=$(ls -d "$work"/sharded/release-*)
[ -z "$(ls -A "$work/sharded" | grep -v '^release-')" ] || fail "staging left in the output: $(ls -A "$work/sharded")"
[ "$(entries "$ledger2")" = 1 ] || fail "not exactly one ledger entry: $(entries "$ledger2")"
"$radguard" ledger verify --ledger "$ledger2" --releases "$work/sharded" >"$work/verify.log" 2>&1 ||
  fail "ledger verify --releases on the sharded release"

# The same files, byte for byte, and the same manifest apart from its name and time.
diff -r -x manifest.json "$single" "$sharded" >"$work/diff.log" 2>&1 ||
  fail "the sharded release differs from the single export's"
python3 - "$single/manifest.json" "$sharded/manifest.json" "$work/single.json" plan/report.json <<'PY' ||
import json, sys
a, b, ra, rb = (json.load(open(p)) for p in sys.argv[1:])
for k in ("files", "counts", "profile", "key_fingerprint", "recipient", "purpose", "format"):
    assert a[k] == b[k], (k, a[k], b[k])
assert rb["status"] == "released" and rb["exit_code"] == ra["exit_code"] == 0, (ra["exit_code"], rb)
for k in ("instances", "studies", "patients", "excluded_studies", "excluded_by_reason", "files_seen"):
    assert ra["counts"][k] == rb["counts"][k], (k, ra["counts"][k], rb["counts"][k])
assert rb["counts"]["instances"] == 8 and rb["counts"]["excluded_studies"] == 2, rb["counts"]
PY
  fail "manifests or counts differ"
"$radguard" disclosures --patient MRN-A --ledger "$ledger2" --key "$work/k.key" --format json \
  | grep -q '"count": 1' || fail "MRN-A's two studies are not one disclosure"

# Publishing again is refused: the release is out, and recorded once.
if "$radguard" plan publish plan >"$work/again.log" 2>&1; then fail "a second publish succeeded"; fi
[ "$(entries "$ledger2")" = 1 ] || fail "a second publish appended to the ledger"

# A failed shard: nothing published, nothing recorded. One input vanishes after planning (a
# single export fails on a missing input too).
ledger3=$(store ledger3) || fail "cannot make a ledger"
"$radguard" plan "$in" --shards 3 -o plan3 --no-progress --sbatch -- export -o failing \
  "${common[@]}" --ledger "$ledger3" >"$work/plan3.log" 2>&1 || fail "plan 3"
victim=$(head -n 1 plan3/shard-0001.txt)
mv "$victim" "$work/moved.dcm"
for t in 0 1 2; do
  SLURM_ARRAY_TASK_ID=$t SLURM_CPUS_PER_TASK=1 bash plan3/run.sbatch >"plan3/logs/shard-$t.out" 2>&1
done
mv "$work/moved.dcm" "$victim"
grep -q '"part_status": "failed"' plan3/staged/shard-0001.json || fail "shard 1 did not record its failure"
if bash plan3/merge.sbatch >"$work/publish3.log" 2>&1; then fail "a release with a failed shard was published"; fi
grep -q "shard 1 failed" "$work/publish3.log" || fail "the refusal does not name the shard: $(cat "$work/publish3.log")"
[ -z "$(ls "$work/failing" | grep '^release-')" ] || fail "a release with a failed shard is visible"
[ "$(entries "$ledger3")" = 0 ] || fail "a release with a failed shard was recorded"

# Shard 1 run again (it succeeds now); shard 2's part lost: still nothing. Then all: published.
SLURM_ARRAY_TASK_ID=1 bash plan3/run.sbatch >plan3/logs/shard-1b.out 2>&1 || fail "shard 1 again"
mv plan3/staged/shard-0002.json "$work/part2.json"
if "$radguard" plan publish plan3 >"$work/publish3b.log" 2>&1; then fail "published without shard 2"; fi
grep -q "shard 2 staged nothing" "$work/publish3b.log" || fail "the refusal does not name shard 2"
[ "$(entries "$ledger3")" = 0 ] || fail "a release without shard 2 was recorded"
mv "$work/part2.json" plan3/staged/shard-0002.json
"$radguard" plan publish plan3 >"$work/publish3c.log" 2>&1 || fail "publish after the rerun"
[ "$(entries "$ledger3")" = 1 ] || fail "the rerun release is not recorded once"
diff -r -x manifest.json "$single" "$(ls -d "$work"/failing/release-*)" >"$work/diff3.log" 2>&1 ||
  fail "the release after a rerun differs from the single export's"
# Consent withdrawn between the shards and the publish (issue 19: publish decides consent
# again). MRN-C permitted research when the shards ran and denies it at publish: her study is
# left out (its files not in the release, her not in the ledger entry), the rest is published,
# and the exit status is 1. A registry that cannot be read refuses the publish (SQLite: moved).
ledger4=$(store ledger4) || fail "cannot make a ledger"
"$radguard" plan "$in" --shards 3 -o plan4 --no-progress --sbatch -- export -o withdrawn \
  "${common[@]}" --ledger "$ledger4" --audit-gate high >"$work/plan4.log" 2>&1 || fail "plan 4"
for t in 0 1 2; do
  SLURM_ARRAY_TASK_ID=$t SLURM_CPUS_PER_TASK=1 bash plan4/run.sbatch >"plan4/logs/shard-$t.out" 2>&1 ||
    fail "plan 4: shard $t failed"
done
"$radguard" consent set --patient MRN-C --purpose research --decision deny --registry "$registry" \
  >"$work/withdraw.log" 2>&1 || fail "consent set (withdrawal)"
if [ -z "$state" ]; then
  mv "$registry" "$work/registry-away.db"
  if "$radguard" plan publish plan4 >"$work/publish4a.log" 2>&1; then
    fail "published without a readable consent registry"
  fi
  [ "$(entries "$ledger4")" = 0 ] || fail "a release was recorded without a readable registry"
  [ -z "$(ls "$work/withdrawn" | grep '^release-')" ] || fail "a release without a registry is visible"
  mv "$work/registry-away.db" "$registry"
fi
# A staged file altered since its shard: refused before anything is removed or recorded (the
# ledger is made by then); restored, it passes the check again.
cp -a "$work/withdrawn" "$work/withdrawn-copy" || fail "cannot copy the staging"
find "$work/withdrawn" -name '*.dcm' -exec sh -c 'printf x >>"$1"' _ {} \;
if "$radguard" plan publish plan4 >"$work/publish4c.log" 2>&1; then fail "published altered files"; fi
grep -q "is altered since its shard staged it" "$work/publish4c.log" || fail "not the integrity refusal: $(cat "$work/publish4c.log")"
rm -rf "$work/withdrawn" && mv "$work/withdrawn-copy" "$work/withdrawn" || fail "cannot restore the staging"
# A publish that fails after consent was decided again (the ledger refuses the entry: a
# trigger) records nothing, publishes nothing and keeps the staging; once the cause is gone,
# publishing again succeeds, still without MRN-C (her files left the staging at the first try).
block_ledger "$ledger4" || fail "cannot block the ledger"
if "$radguard" plan publish plan4 >"$work/publish4b.log" 2>&1; then fail "published past a failing ledger"; fi
grep -q "could not be recorded" "$work/publish4b.log" || fail "not the ledger's refusal: $(cat "$work/publish4b.log")"
[ "$(entries "$ledger4")" = 0 ] || fail "a release was recorded past a failing ledger"
[ -z "$(ls "$work/withdrawn" | grep '^release-')" ] || fail "a release whose entry failed is visible"
unblock_ledger "$ledger4" || fail "cannot unblock the ledger"
"$radguard" plan publish plan4 --report "$work/publish4.json" >"$work/publish4.log" 2>&1
status=$?
[ "$status" = 1 ] || fail "publish with a withdrawn patient exited $status, not 1"
grep -q "LEFT OUT at publish" "$work/publish4.log" || fail "the publish does not say a patient was left out"
[ "$(entries "$ledger4")" = 1 ] || fail "the release with a withdrawn patient is not recorded once"
release4=$(ls -d "$work"/withdrawn/release-*) || fail "the rest of the release was not published"
[ -z "$(ls -A "$work/withdrawn" | grep -v '^release-')" ] || fail "staging left: $(ls -A "$work/withdrawn")"
"$radguard" disclosures --patient MRN-C --ledger "$ledger1" --key "$work/k.key" --format json \
  >"$work/c-single.json" || fail "disclosures of MRN-C (single export)"
"$radguard" disclosures --patient MRN-C --ledger "$ledger4" --key "$work/k.key" --format json \
  >"$work/c-withdrawn.json" || fail "disclosures of MRN-C (withdrawn)"
"$radguard" disclosures --patient MRN-A --ledger "$ledger4" --key "$work/k.key" --format json \
  | grep -q '"count": 1' || fail "MRN-A is not in the release after MRN-C withdrew"
c_study=$(python3 - "$work/c-single.json" "$work/c-withdrawn.json" "$work/publish4.json" \
  "$release4/manifest.json" <<'PY'
import json, sys
single, withdrawn, report, manifest = (json.load(open(p)) for p in sys.argv[1:])
assert withdrawn["count"] == 0, ("MRN-C is in the ledger entry", withdrawn)
studies = [s["study_uid"] for d in single["disclosures"] for s in d["studies"]]
assert len(studies) == 1, single
assert report["withdrawn_at_publish"] == {"patients": 1, "studies": 1, "instances": 2}, report
assert report["exit_code"] == 1 and report["status"] == "released", report
c = manifest["counts"]
assert c["instances"] == 6 and c["studies"] == 3 and c["excluded_studies"] == 3, c
assert c["excluded_by_reason"]["consent_denied"]["studies"] == 2, c
assert not any(f["path"].startswith(studies[0] + "/") for f in manifest["files"]), "MRN-C's file listed"
print(studies[0])
PY
) || fail "the publish with a withdrawn patient reports or records the wrong thing"
[ ! -e "$release4/$c_study" ] || fail "MRN-C's study is in the release"
diff -r -x manifest.json -x "$c_study" "$single" "$release4" >"$work/diff4.log" 2>&1 ||
  fail "the rest of the release differs from the single export's"
"$radguard" ledger verify --ledger "$ledger4" --releases "$work/withdrawn" >"$work/verify4.log" 2>&1 ||
  fail "ledger verify --releases after a withdrawal"

grep -q '"audit_gate": "high"' plan4/staged/shard-0000.json || fail "the part does not record the gate"

# --audit-gate runs at publish, over the whole release (it passed above): a release that keeps
# the patients' names is refused, nothing published, nothing recorded.
printf 'PatientName K\n' >"$work/keep-name.recipe"
ledger5=$(store ledger5) || fail "cannot make a ledger"
"$radguard" plan "$in" --shards 3 -o plan5 --no-progress --sbatch -- export -o gated \
  "${common[@]}" --ledger "$ledger5" --audit-gate high --recipe "$work/keep-name.recipe" \
  >"$work/plan5.log" 2>&1 || fail "plan 5"
for t in 0 1 2; do
  SLURM_ARRAY_TASK_ID=$t SLURM_CPUS_PER_TASK=1 bash plan5/run.sbatch >"plan5/logs/shard-$t.out" 2>&1 ||
    fail "plan 5: shard $t failed (a shard must stage, the gate is the publish's)"
done
if "$radguard" plan publish plan5 >"$work/publish5.log" 2>&1; then fail "the audit gate let names out"; fi
grep -q "release gate refused" "$work/publish5.log" || fail "the refusal is not the gate's: $(cat "$work/publish5.log")"
[ "$(entries "$ledger5")" = 0 ] || fail "a release the gate refused was recorded"
[ -z "$(ls "$work/gated" | grep '^release-')" ] || fail "a release the gate refused is visible"

# One normalisation of patient IDs (issue 19 review): a PatientID with a trailing tab is the
# registry's "MRN-T" at the shards and at publish alike, so under a permit default her
# withdrawal between the shards and the publish still leaves her out.
in6="$work/in6"
mkdir -p "$in6/t" "$in6/u"
for p in t u; do
  id=MRN-U
  [ "$p" = t ] && id=$'MRN-T\t'
  cp "$samples/CT_small.dcm" "$in6/$p/ct.dcm"
  dcmodify -nb -m "(0010,0020)=$id" -m "(0020,000d)=1.2.826.0.1.3680043.10.1137.19.6$p" \
    -m "(0020,000e)=1.2.826.0.1.3680043.10.1137.19.6$p.1" \
    -m "(0008,0018)=1.2.826.0.1.3680043.10.1137.19.6$p.1.1" "$in6/$p/ct.dcm" || fail "dcmodify 6"
done
[[ "$(dcmdump +P 0010,0020 "$in6/t/ct.dcm")" == *$'[MRN-T\t]'* ]] ||
  fail "the fixture's PatientID has no trailing tab"
registry6=$(store registry6) || fail "cannot make a registry"
printf 'patient_id,purpose,decision,date\nMRN-T,research,permit,2025-01-10\n' >"$work/consents6.csv"
"$radguard" consent import "$work/consents6.csv" --registry "$registry6" >"$work/consent6.log" 2>&1 ||
  fail "consent import 6"
"$radguard" consent default --purpose research --decision permit --registry "$registry6" \
  >>"$work/consent6.log" 2>&1 || fail "consent default permit"
ledger6=$(store ledger6) || fail "cannot make a ledger"
"$radguard" plan "$in6" --shards 2 -o plan6 --no-progress --sbatch -- export -o tabbed \
  --purpose research --recipient "Shard Lab" -k "$work/k.key" --registry "$registry6" \
  --ledger "$ledger6" >"$work/plan6.log" 2>&1 || fail "plan 6"
for t in 0 1; do
  SLURM_ARRAY_TASK_ID=$t SLURM_CPUS_PER_TASK=1 bash plan6/run.sbatch >"plan6/logs/shard-$t.out" 2>&1 ||
    fail "plan 6: shard $t failed"
done
grep -q '"consent_basis": "recorded"' plan6/staged/shard-000*.json ||
  fail "no part records that MRN-T's verdict came from her record"
"$radguard" consent set --patient MRN-T --purpose research --decision deny --registry "$registry6" \
  >"$work/withdraw6.log" 2>&1 || fail "consent set (withdrawal 6)"
"$radguard" plan publish plan6 --report "$work/publish6.json" >"$work/publish6.log" 2>&1
[ $? = 1 ] || fail "publish 6 did not leave a patient out: $(cat "$work/publish6.log")"
python3 - "$work/publish6.json" <<'PY' || fail "MRN-T (trailing tab) was not left out at publish"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["withdrawn_at_publish"] == {"patients": 1, "studies": 1, "instances": 1}, r
assert r["counts"]["instances"] == 1, r["counts"]
PY
"$radguard" disclosures --patient MRN-T --ledger "$ledger6" --key "$work/k.key" --format json \
  | grep -q '"count": 0' || fail "MRN-T is in the ledger entry"

echo "PASS: an export cut into 3 shards published once, with one ledger entry ($([ -n "$state" ] && echo PostgreSQL || echo SQLite))"
