#!/usr/bin/env bash
# Starts a single-node Slurm cluster for tests, without systemd: a munge key and munged, a
# minimal slurm.conf for localhost (2 CPUs, one partition, no cgroups, no accounting), then
# slurmctld -D and slurmd -D in the background, and waits until the node is idle.
#   start_cluster.sh DIR     everything (config, state, logs, sockets, pid files) goes in DIR
# Afterwards: export SLURM_CONF=DIR/slurm.conf for sinfo, sbatch, squeue; stop with
# stop_cluster.sh DIR. Exit 77 when the packages (slurm-wlm, munge) are not installed, 1 on
# any failure (with the daemons' logs on stderr).
set -uo pipefail
dir=${1:?usage: start_cluster.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
for tool in munged slurmctld slurmd sinfo sbatch squeue; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "SKIP: $tool not found: install Debian's slurm-wlm and munge (scripts/install-deps.sh)" >&2
    exit 77
  fi
done
export PATH="$PATH:/usr/sbin"
mkdir -p "$dir"/{state,spool,log,munge} || exit 1
chmod 700 "$dir" "$dir/munge"
dir=$(cd "$dir" && pwd)

fail() {
  echo "start_cluster: $*" >&2
  for log in "$dir"/log/*.log; do
    [ -f "$log" ] && { echo "----- $log" >&2; tail -n 40 "$log" >&2; }
  done
  "$here/stop_cluster.sh" "$dir" >/dev/null 2>&1
  exit 1
}

# munge: a fresh key, its own socket (never the system's /run/munge).
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none || fail "no munge key"
chmod 400 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
  --seed-file="$dir/munge/munged.seed" || fail "munged did not start"
for _ in $(seq 50); do [ -S "$dir/munge/munge.sock" ] && break; sleep 0.1; done
[ -S "$dir/munge/munge.sock" ] || fail "munged made no socket in 5 s"

# Ports picked at random so that two clusters (or a system one) do not meet.
port=$((20000 + RANDOM % 20000))
user=$(id -un)
cat >"$dir/slurm.conf" <<CONF
ClusterName=radguardtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"

slurmctld -D -i -f "$SLURM_CONF" >>"$dir/log/slurmctld.out" 2>&1 &
echo $! >"$dir/slurmctld.bgpid"
for _ in $(seq 100); do sinfo -h >/dev/null 2>&1 && break; sleep 0.2; done
sinfo -h >/dev/null 2>&1 || fail "slurmctld does not answer after 20 s"
slurmd -D -N localhost -f "$SLURM_CONF" >>"$dir/log/slurmd.out" 2>&1 &
echo $! >"$dir/slurmd.bgpid"
state=
for _ in $(seq 150); do
  state=$(sinfo -h -n localhost -o %T 2>/dev/null | head -n 1)
  [ "$state" = idle ] && break
  sleep 0.2
done
if [ "$state" != idle ]; then
  cp "$dir"/log/*.out "$dir/log/" 2>/dev/null
  for out in "$dir"/log/*.out; do [ -s "$out" ] && { echo "----- $out" >&2; tail -n 20 "$out" >&2; }; done
  fail "node localhost is '$state', not idle, after 30 s"
fi
echo "start_cluster: node localhost idle (SLURM_CONF=$SLURM_CONF)"
