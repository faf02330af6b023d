#!/usr/bin/env bash
# Stops what start_cluster.sh DIR started (by the process IDs it recorded), leaving DIR.
dir=${1:?usage: stop_cluster.sh DIR}
stop() {  # pid-file
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
}
stop "$dir/slurmd.bgpid"
stop "$dir/slurmctld.bgpid"
stop "$dir/munge/munged.pid"
exit 0
