#!/usr/bin/env bash
# Stops the test server start_server.sh STATE started and removes its data folder.
set -uo pipefail
state=${1:?usage: stop_server.sh STATE}
[ -f "$state/datadir" ] || exit 0
data=$(cat "$state/datadir")
case "$data" in /tmp/radguard-pg.*) ;; *) echo "stop_server: unexpected data folder $data" >&2; exit 1 ;; esac
bindir=${RADGUARD_PG_BINDIR:-}
if [ -z "$bindir" ]; then
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && bindir=$d; done
fi
if [ -f "$data/db/postmaster.pid" ] && [ -n "$bindir" ]; then
  as_owner=()
  [ "$(id -u)" = 0 ] && as_owner=(runuser -u nobody --)
  (cd "$data" && "${as_owner[@]}" "$bindir/pg_ctl" -D "$data/db" -m fast -w -t 30 stop >/dev/null 2>&1)
fi
rm -rf "$data"
rm -f "$state/datadir" "$state/conninfo"
