#!/usr/bin/env bash
# A per-job VPN on the host (userspace backend, as an unprivileged user):
#  1. bring-up: from starting `wgns hub` (which picks its port and publishes
#     it in DIR) to every one of N peers (`wgns up DIR --peer K`, each in its
#     own namespace, taking the endpoint from DIR) having pinged every other
#     peer through the hub, for N in $BENCH_VPN_SIZES (default 4 16 64 128),
#     each $BENCH_VPN_REPEAT times (default 1); the "late" column counts the
#     pings that got no reply within their second (a peer the hub had not
#     heard from yet);
#  2. `wgns vpn new --peers 1000` and a hub of 1000 peers until it is up;
#  3. iperf3 TCP throughput between two peers through the hub, and from a
#     peer to the hub itself (`wgns exec` into the named hub).
# WGNS_BIN picks the binary (default: the portable release build, as up.sh
# makes it). Prints three tables.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/host-setup.sh
bin=${WGNS_BIN:-$(bash scripts/build-static.sh --scratch-path "${VM_SCRATCH:-.build-static}" | tail -n1)}
work=$(mktemp -d /tmp/wgns-bench-vpn.XXXXXX)
chmod 755 "$work"
hub= name=
# A named hub stops with `wgns down NAME` (a background job of a script ignores SIGINT).
stop_hub() { if [ -n "$hub" ]; then as_user ./wgns down "$name" 2>/dev/null || true; wait "$hub" 2>/dev/null || true; hub=; fi; }
trap 'stop_hub; [ -z "${inotify_was:-}" ] || echo "$inotify_was" > /proc/sys/fs/inotify/max_user_instances; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"' EXIT
cp "$bin" "$work/wgns"
# Each wireguard-go holds an inotify instance (on its UAPI socket), and the
# kernel allows a user 128 by default: 128 peers of one user on one host
# fail with "too many open files". Raised for the run (as root), restored after.
inotify=/proc/sys/fs/inotify/max_user_instances
inotify_was=$(cat $inotify)
if [ "$(id -u)" = 0 ] && [ "$inotify_was" -lt 1024 ]; then echo 1024 > $inotify; else inotify_was=; fi
# Peer K of N, in the run's own folder RUN: say it is up, wait for all,
# ping every other peer (retrying while the hub has not yet heard from it,
# up to 30 s), note the time, wait until all are done. Each run has a new
# folder: markers left by an earlier run once let peers start before the
# others were up and leave while others still pinged them ("no reply from
# peer 61" in a 64-peer run after another one).
cat > "$work/peer.sh" <<'EOF'
k=$1; n=$2; cd "$3" || exit 1
touch up.$k
all() { j=1; while [ $j -le $n ]; do [ -e $1.$j ] || return 1; j=$((j+1)); done; }
until all up; do sleep 0.01; done
j=1
while [ $j -le $n ]; do
  if [ $j != $k ]; then
    t=0
    until ping -c1 -W1 peer-$j > /dev/null 2>&1; do
      t=$((t+1)); echo "peer $k: no reply from peer $j within 1 s" >> late.$k
      [ $t -ge 30 ] && { echo "peer $k: no reply from peer $j" >&2; date +%s.%N > failed.$k; touch done.$k; exit 1; }
    done
  fi
  j=$((j+1))
done
date +%s.%N > done.$k.tmp && mv done.$k.tmp done.$k
w=0; until all done; do sleep 0.01; w=$((w+1)); [ $w -lt 30000 ] || exit 1; done
EOF
chown -R "$TEST_USER" "$work"
as_user() { (cd "$work" && run_as_test_user "$@"); }

start_hub() {  # start_hub DIR NAME: returns once the hub says it is up
    name=$2
    (cd "$work" && run_as_test_user ./wgns hub --name "$2" "$1" > "$work/hub.out" 2>&1) &
    hub=$!
    local i
    for i in $(seq 1 500); do grep -q '^wgns hub: up' "$work/hub.out" && return 0; kill -0 "$hub" 2>/dev/null || break; sleep 0.01; done
    echo "bench: the hub did not come up: $(cat "$work/hub.out")" >&2
    return 1
}

echo
echo "Per-job VPN bring-up: wgns hub + N x wgns up DIR --peer K, until every peer has pinged every other through the hub (userspace backend, $(nproc) cores):"
printf '%-8s %4s %10s %10s %12s %6s\n' peers run seconds pings "pings/peer" late
status=0
for n in ${BENCH_VPN_SIZES:-4 16 64 128}; do
  for run in $(seq 1 "${BENCH_VPN_REPEAT:-1}"); do
    runs=runs/$n.$run
    as_user rm -rf vpn "$runs"
    as_user mkdir -p "$runs"
    as_user ./wgns vpn new vpn --peers "$n" --subnet 10.97.0.0/16 --force > /dev/null
    t0=$(date +%s.%N)
    start_hub vpn "vb$$-$n" || { status=1; continue; }
    pids=()
    for k in $(seq 1 "$n"); do
        (cd "$work" && run_as_test_user ./wgns up vpn --peer "$k" -- sh peer.sh "$k" "$n" "$runs" > "$work/$runs/job.$k.out" 2>&1) &
        pids+=($!)
    done
    ok=yes
    for p in "${pids[@]}"; do wait "$p" || ok=no; done
    # What the hub saw of each peer, for a failed run (kept with BENCH_KEEP).
    [ $ok = yes ] || as_user ./wgns show "$name" dump > "$work/$runs/hub.dump" 2>&1 || true
    stop_hub
    late=$(cat "$work/$runs"/late.* 2>/dev/null | wc -l || true)
    if [ $ok = yes ]; then
        last=$(cat "$work/$runs"/done.* | sort -n | tail -1)
        printf '%-8s %4s %10.3f %10d %12d %6d\n' "$n" "$run" "$(awk -v a="$t0" -v b="$last" 'BEGIN { print b - a }')" $((n * (n - 1))) $((n - 1)) "$late"
    else
        printf '%-8s %4s %10s %10s %12s %6d\n' "$n" "$run" failed - - "$late"
        cat "$work/$runs"/job.*.out | sort | uniq -c | head -5 >&2
        status=1
    fi
  done
done

echo
echo "A VPN of 1000 peers: writing it, and its hub until it is up:"
as_user rm -rf vpn
t0=$(date +%s.%N)
as_user ./wgns vpn new vpn --peers 1000 --subnet 10.97.0.0/16 --force > /dev/null
t1=$(date +%s.%N)
start_hub vpn "vb$$-1000" || status=1
t2=$(date +%s.%N)
stop_hub
printf '%-34s %8.3f s\n' "wgns vpn new --peers 1000" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    "wgns hub (1000 peers) until up" "$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')" \
    "both" "$(awk -v a="$t0" -v b="$t2" 'BEGIN { print b - a }')"

echo
echo "iperf3 TCP throughput through the VPN (5 s each), Gbit/s:"
port=$(free_port)
as_user rm -rf vpn
as_user ./wgns vpn new vpn --peers 2 --subnet 10.97.0.0/24 --endpoint "127.0.0.1:$port" --force > /dev/null
start_hub vpn "bench-hub-$port"
gbits() { python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'; }
as_user rm -f ready; as_user mkfifo ready
(cd "$work" && run_as_test_user ./wgns up vpn --peer 1 -- sh -c 'iperf3 -s -1 -B 10.97.0.2 > /dev/null 2>&1 & sleep 0.2; echo > ready; wait' > /dev/null 2>&1) &
server=$!
read -r _ < "$work/ready"
p2p=$(as_user ./wgns up vpn --peer 2 -- iperf3 -c 10.97.0.2 -t 5 -J 2>/dev/null | gbits || echo failed)
wait "$server" || true
(cd "$work" && run_as_test_user ./wgns exec "$name" -- sh -c 'iperf3 -s -1 -B 10.97.0.1 > /dev/null 2>&1 & sleep 0.2; echo > ready; wait' > /dev/null 2>&1) &
server=$!
read -r _ < "$work/ready"
tohub=$(as_user ./wgns up vpn --peer 2 -- iperf3 -c 10.97.0.1 -t 5 -J 2>/dev/null | gbits || echo failed)
wait "$server" || true
stop_hub
printf '%-34s %8s\n' "peer -> peer (through the hub)" "$p2p" "peer -> hub" "$tohub"
left=0
for p in $(pgrep -u "$TEST_USER" || true); do [ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$work" ] && left=$((left + 1)); done
[ "$left" = 0 ] || { echo "bench: $left processes of the benchmark left behind" >&2; status=1; }
exit "$status"
