#!/usr/bin/env bash
# radguard on a shared PostgreSQL registry and ledger (issue 19): consent import into a
# postgresql:// registry, two `radguard export` processes at once into one postgresql://
# ledger (both recorded, the chain verifies, accountings find both), and a wrong password
# or an unreachable server failing closed without the password in any message.
#   pg_export_test.sh RADGUARD STATE    STATE: the folder tests/pg/start_server.sh wrote
set -euo pipefail
radguard=$1
state=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ -f "$state/skip" ]; then echo "SKIP: $(cat "$state/skip")"; exit 77; fi
[ -s "$state/conninfo" ] || fail "no test server ($state/conninfo): did pg.start fail?"
conninfo=$(cat "$state/conninfo")
field() { tr ' ' '\n' <<<"$conninfo" | sed -n "s/^$1=//p"; }
host=$(field host) port=$(field port) user=$(field user) password=$(field password)
[ -n "$password" ] || fail "the test server's connection string has no password"

work=$(mktemp -d /tmp/radguard-pg-export.XXXXXX)
ledger_db="rg_ledger_$$" registry_db="rg_registry_$$"
cleanup() {
  psql "$conninfo" -qAt -c "DROP DATABASE IF EXISTS $ledger_db" -c "DROP DATABASE IF EXISTS $registry_db" \
    >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$conninfo" -qAt -c "CREATE DATABASE $ledger_db" -c "CREATE DATABASE $registry_db" >/dev/null
# The test server has no TLS: without sslmode=disable radguard would refuse it (below).
ledger="postgresql://$user:$password@$host:$port/$ledger_db?sslmode=disable"
registry="postgresql://$user:$password@$host:$port/$registry_db?sslmode=disable"

samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
mkdir -p "$work/in/a" "$work/in/b" "$work/in/c"
make() {  # folder patient-id name study-suffix
  cp "$samples/CT_small.dcm" "$1/$3.dcm"
  dcmodify -nb -m "(0010,0020)=$2" -m "(0010,0010)=$3" -m "(0020,000d)=1.2.826.0.1.3680043.10.1137.8$4" \
    -m "(0008,0018)=1.2.826.0.1.3680043.10.1137.8$4.1" "$1/$3.dcm"
}
make "$work/in/a" MRN-ALPHA "Alpha^Anna" 1
make "$work/in/b" MRN-BRAVO "Bravo^Bert" 2
make "$work/in/c" MRN-CHARLIE "Charlie^Cleo" 3
"$radguard" keygen "$work/k.key" >/dev/null
cat >"$work/consents.csv" <<'CSV'
patient_id,purpose,decision,date
MRN-ALPHA,ai-training,permit,2025-01-10
MRN-BRAVO,ai-training,deny,2025-02-01
MRN-CHARLIE,ai-training,permit,2025-03-01
CSV

# Readers refuse a registry that was never made (an empty database is not an empty registry).
if "$radguard" consent show --patient MRN-ALPHA --registry "$registry" >"$work/out.log" 2>&1; then
  fail "consent show read a registry that does not exist"
fi
"$radguard" consent import "$work/consents.csv" --registry "$registry" >>"$work/out.log" 2>&1 ||
  fail "consent import into PostgreSQL: $(cat "$work/out.log")"
"$radguard" consent show --patient MRN-CHARLIE --registry "$registry" --json >"$work/show.json"
grep -q '"decision": "permit"' "$work/show.json" || fail "consent show from PostgreSQL"

# A dry run before the ledger's tables exist runs (against an empty ledger) and makes nothing.
"$radguard" export "$work/in/a" --output "$work/dry" --purpose ai-training --recipient "Dry" \
  --key "$work/k.key" --registry "$registry" --ledger "$ledger" --dry-run \
  --no-progress >"$work/dry.log" 2>&1 || fail "dry run on a new PostgreSQL ledger: $(cat "$work/dry.log")"
[ ! -e "$work/dry" ] || fail "the dry run wrote an output folder"
if "$radguard" ledger verify --ledger "$ledger" >"$work/dry-verify.log" 2>&1; then
  fail "the dry run created the ledger"
fi

# Two exports at once (two processes, as two Slurm shards would) into one ledger.
"$radguard" export "$work/in/a" --output "$work/out" --purpose ai-training --recipient "Shard 0" \
  --key "$work/k.key" --registry "$registry" --ledger "$ledger" --report "$work/r1.json" \
  --no-progress >"$work/e1.log" 2>&1 &
p1=$!
"$radguard" export "$work/in/c" --output "$work/out" --purpose ai-training --recipient "Shard 1" \
  --key "$work/k.key" --registry "$registry" --ledger "$ledger" --report "$work/r2.json" \
  --no-progress >"$work/e2.log" 2>&1 &
p2=$!
wait "$p1" || fail "concurrent export 1: $(cat "$work/e1.log")"
wait "$p2" || fail "concurrent export 2: $(cat "$work/e2.log")"
grep -q '"status": "released"' "$work/r1.json" || fail "export 1 not released"
grep -q '"status": "released"' "$work/r2.json" || fail "export 2 not released"

"$radguard" ledger verify --ledger "$ledger" --json >"$work/verify.json" || fail "the ledger does not verify"
grep -q '"entries": 2' "$work/verify.json" || fail "an entry was lost: $(cat "$work/verify.json")"
grep -q '"intact": true' "$work/verify.json" || fail "the chain is broken: $(cat "$work/verify.json")"
"$radguard" ledger list --ledger "$ledger" --json >"$work/list.json"
grep -q '"Shard 0"' "$work/list.json" && grep -q '"Shard 1"' "$work/list.json" || fail "ledger list"
"$radguard" disclosures --patient MRN-ALPHA --ledger "$ledger" --key "$work/k.key" --format json \
  | grep -q '"count": 1' || fail "accounting for MRN-ALPHA"
"$radguard" disclosures --patient MRN-BRAVO --ledger "$ledger" --key "$work/k.key" \
  | grep -q '0 disclosures' || fail "accounting for an opted-out patient"
# The chain as stored: entry 2 links to entry 1.
linked=$(psql "$conninfo dbname=$ledger_db" -qAt -c \
  "SELECT count(*) FROM disclosure b JOIN disclosure a ON b.prev_hash = a.entry_hash AND b.sequence = a.sequence + 1")
[ "$linked" = 1 ] || fail "entry 2 does not link to entry 1"

# Tampering through SQL is refused by the triggers (update, delete, truncate).
for sql in "UPDATE disclosure SET recipient = 'x'" "DELETE FROM disclosure" "TRUNCATE disclosure"; do
  if psql "$conninfo dbname=$ledger_db" -qAt -v ON_ERROR_STOP=1 -c "$sql" >/dev/null 2>&1; then
    fail "the ledger accepted: $sql"
  fi
done

# Fail closed: a wrong password and a closed port stop the export before anything is released.
bad="postgresql://$user:Wrong-Secret-123@$host:$port/$ledger_db?sslmode=disable"
if "$radguard" export "$work/in/a" --output "$work/bad" --purpose ai-training --recipient X \
  --key "$work/k.key" --registry "$registry" --ledger "$bad" --no-progress >"$work/bad.log" 2>&1; then
  fail "export ran with a wrong ledger password"
fi
closed="postgresql://$user:$password@127.0.0.1:1/$ledger_db?sslmode=disable"
if "$radguard" ledger verify --ledger "$closed" >>"$work/bad.log" 2>&1; then
  fail "ledger verify succeeded against a closed port"
fi
[ ! -e "$work/bad" ] || [ -z "$(ls -A "$work/bad")" ] || fail "a release was published without a ledger"
grep -q "postgresql://$user@" "$work/bad.log" || fail "the error does not name the server: $(cat "$work/bad.log")"

# A target that names no sslmode is encrypted or refused: this server has no TLS, so the
# connection is refused (never libpq's silent fallback to plain text), and the message says why.
plain="postgresql://$user:$password@$host:$port/$ledger_db"
if "$radguard" ledger verify --ledger "$plain" >"$work/nossl.log" 2>&1; then
  fail "a URL without sslmode connected to a server without TLS"
fi
grep -q "sslmode=require" "$work/nossl.log" && grep -q "offers no TLS" "$work/nossl.log" ||
  fail "the refusal does not say why: $(cat "$work/nossl.log")"

# A pg_service.conf section: its sslmode=disable is not taken (a shared file is no explicit
# choice; the target's sslmode=disable is), and its verify-full is not weakened to require
# (radguard passes libpq an sslmode, so libpq would never apply the service's).
services="$work/pg_service.conf"
for mode in disable verify-full; do
  printf '[rg_%s]\nhost=%s\nport=%s\nuser=%s\npassword=%s\ndbname=%s\nsslmode=%s\n' \
    "$mode" "$host" "$port" "$user" "$password" "$ledger_db" "$mode" >>"$services"
done
chmod 600 "$services"
if PGSERVICEFILE="$services" "$radguard" ledger verify --ledger "postgres:service=rg_disable" \
  >"$work/svc-disable.log" 2>&1; then
  fail "a service's sslmode=disable connected without TLS"
fi
grep -q "sslmode=require, from radguard's default" "$work/svc-disable.log" ||
  fail "the service's disable was not overridden: $(cat "$work/svc-disable.log")"
if PGSERVICEFILE="$services" "$radguard" ledger verify --ledger "postgres:service=rg_verify-full" \
  >"$work/svc-full.log" 2>&1; then
  fail "a service's sslmode=verify-full connected without TLS"
fi
grep -q "sslmode=verify-full, from its service's pg_service.conf" "$work/svc-full.log" ||
  fail "the service's verify-full was weakened: $(cat "$work/svc-full.log")"
# The same service named by PGSERVICE rather than the target: its verify-full still applies;
# a service radguard cannot find is refused, not connected with require.
if PGSERVICEFILE="$services" PGSERVICE=rg_verify-full "$radguard" ledger verify \
  --ledger "postgres:application_name=radguard" >"$work/svc-env.log" 2>&1; then
  fail "PGSERVICE's sslmode=verify-full connected without TLS"
fi
grep -q "sslmode=verify-full, from its service's pg_service.conf" "$work/svc-env.log" ||
  fail "PGSERVICE's verify-full was weakened: $(cat "$work/svc-env.log")"
if PGSERVICEFILE="$services" PGSERVICE=rg_nowhere "$radguard" ledger verify \
  --ledger "postgres:application_name=radguard" >"$work/svc-missing.log" 2>&1; then
  fail "a service no file defines was connected"
fi
grep -q "in no pg_service.conf radguard can read" "$work/svc-missing.log" ||
  fail "the unknown service's refusal does not say why: $(cat "$work/svc-missing.log")"

# No password and no patient identity in anything radguard printed or wrote.
for f in "$work"/*.log "$work"/*.json; do
  if grep -q -e "$password" -e "Wrong-Secret-123" "$f"; then fail "a password appears in $(basename "$f")"; fi
done
for secret in MRN-ALPHA MRN-CHARLIE Alpha Charlie; do
  if psql "$conninfo dbname=$ledger_db" -qAt -c "SELECT body FROM disclosure" | grep -q "$secret"; then
    fail "$secret appears in the ledger"
  fi
done
echo "PASS: two concurrent exports recorded in one PostgreSQL ledger, chain intact"
