#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for tests, from Debian's postgresql package, without
# systemd or the cluster wrappers: initdb in a fresh temporary folder, listening on 127.0.0.1
# only (and a socket in that folder), on a free port, password (SCRAM) login over TCP, fsync
# off. PostgreSQL refuses to run as root, so under root (CI) the server runs as `nobody`.
#   start_server.sh STATE   writes STATE/conninfo (libpq key=value with the password, mode
#                           0600) and STATE/datadir; stop_server.sh STATE stops and removes it.
# Tests read STATE/conninfo (RADGUARD_TEST_PG_FILE) or RADGUARD_TEST_PG. Without the server
# binaries it writes STATE/skip with the reason and exits 0, and the tests skip with it.
set -uo pipefail
state=${1:?usage: start_server.sh STATE}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$state" || exit 1
state=$(cd "$state" && pwd)
"$here/stop_server.sh" "$state" >/dev/null 2>&1  # a server an interrupted run left behind
rm -f "$state/conninfo" "$state/skip" "$state/datadir"

bindir=${RADGUARD_PG_BINDIR:-}
if [ -z "$bindir" ]; then
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bindir=$d; done
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ] || ! command -v psql >/dev/null; then
  echo "PostgreSQL server binaries not found (install Debian's postgresql: scripts/install-deps.sh)" \
    >"$state/skip"
  echo "SKIP: $(cat "$state/skip")" >&2
  exit 0
fi

data=$(mktemp -d /tmp/radguard-pg.XXXXXX) || exit 1
echo "$data" >"$state/datadir"
as_owner=()
if [ "$(id -u)" = 0 ]; then
  chown nobody "$data" || exit 1
  as_owner=(runuser -u nobody --)
fi
fail() {
  echo "start_server: $*" >&2
  for log in "$data"/*.log; do [ -f "$log" ] && { echo "----- $log" >&2; tail -n 30 "$log" >&2; }; done
  "$here/stop_server.sh" "$state" >/dev/null 2>&1
  exit 1
}
cd "$data" || exit 1
password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" >"$data/pwfile"
chmod 600 "$data/pwfile"
[ ${#as_owner[@]} -gt 0 ] && chown nobody "$data/pwfile"
"${as_owner[@]}" "$bindir/initdb" -D "$data/db" -U radguard --pwfile="$data/pwfile" -E UTF8 \
  --no-locale --auth-local=trust --auth-host=scram-sha-256 >"$data/initdb.log" 2>&1 ||
  fail "initdb failed"
rm -f "$data/pwfile"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
  fail "no free port"
"${as_owner[@]}" "$bindir/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$data -c fsync=off -c max_connections=200" \
  start >"$data/pg_ctl.log" 2>&1 || fail "the server did not start"

conninfo="host=127.0.0.1 port=$port user=radguard password=$password"
psql "$conninfo dbname=postgres" -qAt -c "CREATE DATABASE radguard_test" >/dev/null ||
  fail "cannot create the test database"
(umask 077 && printf '%s dbname=radguard_test sslmode=disable\n' "$conninfo" >"$state/conninfo")
echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $data"
