#!/usr/bin/env bash
# A throwaway Slurm cluster on this one host: munged with a private socket,
# slurmctld, and one slurmd per logical node, all state under one folder.
#
#   cluster.sh start DIR [NODES]   start (default 2 nodes: n1, n2); prints DIR/env
#   cluster.sh stop DIR            stop exactly the daemons started, by their pids
#
# After start, `source DIR/env` gives SLURM_CONF so that srun/sinfo use it.
# Needs root (slurmd launches tasks as the submitting user) and Debian's
# slurmctld slurmd slurm-client munge (scripts/deps.sh installs them).
set -euo pipefail

cmd=${1:?usage: cluster.sh start|stop DIR [NODES]}
dir=${2:?usage: cluster.sh start|stop DIR [NODES]}
nodes=${3:-2}

stop() {
  for pidfile in "$dir"/run/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for pidfile in "$dir"/run/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    # Bounded wait for each daemon to go.
    for _ in $(seq 100); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

# free_port tcp: the daemons' ports (scripts/free-port.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../free-port.sh"

# The daemons must not inherit the caller's descriptors: a caller that waits
# for its pipes to close (a test runner) would wait for them forever.
for fd in /proc/$$/fd/*; do
  n=${fd##*/}
  [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-" 2>/dev/null || true
done

case "$cmd" in
stop) stop; exit 0 ;;
start) ;;
*) echo "cluster.sh: unknown command '$cmd' (expected start or stop)" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "cluster.sh: must run as root (slurmd starts tasks as their user)" >&2; exit 1; }
for b in munged slurmctld slurmd srun; do
  command -v "$b" >/dev/null || { echo "cluster.sh: $b is missing: apt-get install --no-install-recommends slurmctld slurmd slurm-client munge" >&2; exit 1; }
done

mkdir -p "$dir"/{run,log,state,munge}
chmod 755 "$dir" "$dir/run"
# The munge socket must be reachable by the users who submit jobs.
chmod 755 "$dir/munge"
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
munged </dev/null >/dev/null 2>&1 --force --socket="$dir/munge/munge.sock" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"

host=$(hostname)
ctld_port=$(free_port tcp)
{
  echo "ClusterName=wgnstest"
  echo "SlurmctldHost=$host(127.0.0.1)"
  echo "SlurmctldPort=$ctld_port"
  echo "SlurmUser=root"
  echo "SlurmdUser=root"
  echo "AuthType=auth/munge"
  echo "CredType=cred/munge"
  echo "AuthInfo=socket=$dir/munge/munge.sock"
  echo "StateSaveLocation=$dir/state"
  echo "SlurmdSpoolDir=$dir/state/slurmd-%n"
  echo "SlurmctldPidFile=$dir/run/slurmctld.pid"
  echo "SlurmdPidFile=$dir/run/slurmd-%n.pid"
  echo "SlurmctldLogFile=$dir/log/slurmctld.log"
  echo "SlurmdLogFile=$dir/log/slurmd-%n.log"
  echo "ProctrackType=proctrack/linuxproc"
  echo "TaskPlugin=task/none"
  echo "JobAcctGatherType=jobacct_gather/none"
  echo "AccountingStorageType=accounting_storage/none"
  echo "SchedulerType=sched/builtin"
  echo "SelectType=select/cons_tres"
  echo "SelectTypeParameters=CR_Core"
  echo "SlurmdParameters=config_overrides"
  echo "ReturnToService=2"
  echo "MpiDefault=none"
  echo "NodeName=DEFAULT CPUs=2 RealMemory=1000 State=UNKNOWN"
  names=()
  for i in $(seq 1 "$nodes"); do
    echo "NodeName=n$i NodeHostname=$host NodeAddr=127.0.0.1 Port=$(free_port tcp)"
    names+=("n$i")
  done
  echo "PartitionName=debug Nodes=$(IFS=,; echo "${names[*]}") Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
} > "$dir/slurm.conf"
chmod 644 "$dir/slurm.conf"
echo "export SLURM_CONF=$dir/slurm.conf" > "$dir/env"

export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF" </dev/null >/dev/null 2>&1
for i in $(seq 1 "$nodes"); do slurmd -f "$SLURM_CONF" -N "n$i" </dev/null >/dev/null 2>&1; done

# Ready when every node is idle (bounded: about 20 s).
for _ in $(seq 200); do
  idle=$(sinfo -h -o '%t %D' 2>/dev/null | awk '$1=="idle"{n+=$2} END{print n+0}')
  [ "$idle" = "$nodes" ] && exit 0
  sleep 0.1
done
echo "cluster.sh: the nodes did not become idle; logs in $dir/log" >&2
sinfo >&2 || true
stop
exit 1
