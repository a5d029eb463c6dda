#!/usr/bin/env bash
# A throwaway Slurm cluster whose nodes are test hosts of
# scripts/testnet/cluster.sh (network + UTS namespaces on a private bridge,
# each with its own address and name): h1 is the controller and login host
# (munged, slurmctld; srun and sbatch run there), h2..h(NODES+1) are the
# compute nodes, one slurmd inside each host's namespace with NodeAddr its
# address. A job step therefore runs on a host of its own, and reaches the
# other hosts only across the bridge. All state lives under DIR, which every
# host sees (the shared file system of a real cluster).
#
#   cluster.sh start DIR [NODES]     NODES compute nodes (default 2: h2, h3)
#   cluster.sh stop DIR              cancel what still runs, stop every daemon, remove
#                                    the hosts and everything start made under DIR
#   cluster.sh exec DIR HOST CMD...  run CMD on HOST as the test user (wgns-test),
#                                    with SLURM_CONF set: `exec DIR h1 srun ...`
#   cluster.sh root DIR HOST CMD...  the same as root
#
# DIR/env gives SLURM_CONF, SLURM_TESTNET (the test hosts' folder, for
# scripts/testnet/cluster.sh), SLURM_LOGIN (h1) and SLURM_NODES (h2 h3 ...).
# Nothing listens outside the hosts' namespaces except munged's socket, a file
# in DIR. Needs root (slurmd starts tasks as their user), iproute2 and
# Debian's slurmctld slurmd slurm-client munge (scripts/deps.sh installs them).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
testnet="$here/../testnet/cluster.sh"
usage() { echo "usage: cluster.sh start DIR [NODES] | stop DIR | exec|root DIR HOST CMD..." >&2; exit 64; }
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage
net="$dir/net"
# What start makes under DIR (an empty or new folder), besides the hosts'
# folder; the first, written before any other, marks DIR as a cluster's, so
# that stop never removes anything from a folder that is not one.
made=(slurm-cluster run log state munge slurm.conf cgroup.conf env)

# On HOST as root, the daemons' way in; quiet, with nothing inherited.
on_root() { bash "$testnet" root "$net" "$@" </dev/null >/dev/null 2>&1; }

# True while pid $1 is a live (not zombie) process named $2. A daemon's
# orphans are reaped late here: kill -0 alone would wait on zombies.
alive() {
  [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] &&
    [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# The jobs the controller knows (none if it does not answer within 3 s).
queued() { timeout 3 bash "$testnet" root "$net" h1 squeue -h -o %i 2>/dev/null </dev/null || true; }

stop() {
  local pidfile pid name jobs m
  if alive "$(cat "$dir/run/slurmctld.pid" 2>/dev/null)" slurmctld; then
    export SLURM_CONF="$dir/slurm.conf"
    # Jobs still running end as Slurm ends them (their steps get SIGTERM,
    # so wgns tears its namespaces down); bounded, the kill below is the rest.
    jobs=$(queued)
    if [ -n "$jobs" ]; then
      on_root h1 scancel $jobs || true
      for _ in $(seq 100); do [ -z "$(queued)" ] && break; sleep 0.1; done
    fi
  fi
  # The nodes first, then the controller, then munge (which both use), each
  # by its pid if that is still the daemon, with a bounded wait, then killed.
  for pidfile in "$dir"/run/slurmd-*.pid "$dir/run/slurmctld.pid" "$dir/run/munged.pid"; do
    pid=$(cat "$pidfile" 2>/dev/null || true)
    name=${pidfile##*/}; name=${name%.pid}; name=${name%%-*}
    alive "$pid" "$name" || continue
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" "$name" || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  done
  # Whatever is still on a host (a step, a task, a job's carrier) dies with it.
  bash "$testnet" stop "$net"
  [ -f "$dir/slurm-cluster" ] || return 0
  rmdir "$net" 2>/dev/null || true
  for m in "${made[@]}"; do rm -rf "${dir:?}/$m"; done
  rmdir "$dir" 2>/dev/null || true
}

case "$cmd" in
stop) stop; exit 0 ;;
exec|root)
  [ -n "${3:-}" ] || usage
  export SLURM_CONF="$dir/slurm.conf"
  exec bash "$testnet" "$cmd" "$net" "${@:3}" ;;
start) ;;
*) usage ;;
esac

nodes=${3:-2}
case "$nodes" in ''|*[!0-9]*) echo "cluster.sh: NODES must be a number from 1 to 100, not '$nodes'" >&2; exit 64 ;; esac
[ "$nodes" -ge 1 ] && [ "$nodes" -le 100 ] || { echo "cluster.sh: NODES must be from 1 to 100, not $nodes" >&2; exit 64; }
[ "$(id -u)" = 0 ] || { echo "cluster.sh: must run as root (slurmd starts tasks as their user)" >&2; exit 1; }
for b in munged slurmctld slurmd srun ip; do
  command -v "$b" >/dev/null || { echo "cluster.sh: $b is missing: apt-get install --no-install-recommends slurmctld slurmd slurm-client munge iproute2" >&2; exit 1; }
done
# Everything in DIR is then the cluster's, which stop removes.
[ -z "$(ls -A "$dir" 2>/dev/null)" ] || { echo "cluster.sh: $dir is not empty (a cluster in it? stop it first)" >&2; exit 1; }

# The daemons must not inherit the caller's descriptors: a caller that waits
# for its pipes to close (a test runner) would wait for them forever.
for fd in /proc/$$/fd/*; do
  n=${fd##*/}
  [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-" 2>/dev/null || true
done

# Whatever fails halfway, what was made goes again (the logs are shown first).
fail() {
  echo "cluster.sh: $*" >&2
  for l in "$dir"/log/*.log; do [ -s "$l" ] && { echo "== $l" >&2; tail -n 20 "$l" >&2; }; done
  exit 1
}
trap 'status=$?; [ $status = 0 ] || stop; exit $status' EXIT

mkdir -p "$dir"
chmod 755 "$dir"
echo "a Slurm cluster of scripts/slurm/cluster.sh: stop it with cluster.sh stop $dir" > "$dir/slurm-cluster"
bash "$testnet" start "$net" $((nodes + 1)) >/dev/null || fail "the test hosts did not start"
# shellcheck disable=SC1091
source "$net/env"
names=()
for k in $(seq 2 $((nodes + 1))); do names+=("h$k"); done

mkdir -p "$dir"/{run,log,state,munge}
chmod 755 "$dir/run"
# The munge socket must be reachable by the users who submit jobs.
chmod 755 "$dir/munge"
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
# One munged for the whole cluster, on h1: its socket is a file in DIR, which
# every host reaches (a path, not the network).
on_root h1 munged --force --socket="$dir/munge/munge.sock" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" ||
  fail "munged did not start"

{
  echo "ClusterName=wgnstest"
  echo "SlurmctldHost=h1($TESTNET_ADDR_h1)"
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
  # The daemons are in this cluster's own namespaces: the default ports
  # (6817, 6818) meet no other cluster's.
  echo "NodeName=DEFAULT CPUs=2 RealMemory=1000 State=UNKNOWN"
  for h in "${names[@]}"; do
    addr=TESTNET_ADDR_$h
    echo "NodeName=$h NodeHostname=$h NodeAddr=${!addr}"
  done
  echo "PartitionName=debug Nodes=$(IFS=,; echo "${names[*]}") Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
} > "$dir/slurm.conf"
chmod 644 "$dir/slurm.conf"
# A host sees its own sysfs, with no cgroup hierarchy in it, and nothing here
# uses cgroups (proctrack/linuxproc, task/none): naming a plugin keeps slurmd
# from looking for a hierarchy to detect one.
echo "CgroupPlugin=cgroup/v1" > "$dir/cgroup.conf"
chmod 644 "$dir/cgroup.conf"
{
  echo "export SLURM_CONF=$dir/slurm.conf"
  echo "export SLURM_TESTNET=$net"
  echo "export SLURM_LOGIN=h1"
  echo "export SLURM_NODES=\"${names[*]}\""
} > "$dir/env"

export SLURM_CONF="$dir/slurm.conf"
on_root h1 slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start"
for h in "${names[@]}"; do on_root "$h" slurmd -f "$SLURM_CONF" -N "$h" || fail "slurmd on $h did not start"; done

# Ready when every node is idle (bounded: about 20 s).
for _ in $(seq 200); do
  idle=$(bash "$testnet" root "$net" h1 sinfo -h -o '%t %D' 2>/dev/null </dev/null | awk '$1=="idle"{n+=$2} END{print n+0}')
  [ "$idle" = "$nodes" ] && { echo "slurm: controller on h1, nodes ${names[*]} ($TESTNET_HOSTS on the test bridge); SLURM_CONF=$SLURM_CONF"; exit 0; }
  sleep 0.1
done
fail "the nodes did not become idle: $(bash "$testnet" root "$net" h1 sinfo -h 2>&1 </dev/null | tr '\n' ';')"
