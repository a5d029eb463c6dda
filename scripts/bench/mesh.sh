#!/usr/bin/env bash
# The per-job VPN as a star and as a mesh (issue 21), builtin backend, across
# the test cluster (scripts/testnet/cluster.sh), as the unprivileged test
# user, no --host-loopback:
#  1. iperf3 TCP member -> member for each fabric MTU in $BENCH_MESH_MTUS
#     (default 1500 9000): a `--topology mesh` VPN with the hub on h1, member
#     1 on h2 running `iperf3 -s`, member 2 on h3 joined with `--topology
#     star` (everything through the hub: two WireGuard hops and the hub's
#     forwarding) and member 3 on h4 joined as a mesh member (direct, one
#     hop); the raw fabric h4 -> h2 for scale. BENCH_MESH_SECONDS per run
#     (default 5).
#  2. The time from the last member's start to "every pair direct"
#     (`wgns vpn status` polled every 50 ms) with $BENCH_MESH_MEMBERS members
#     (default 16), each on a host of its own, the hub on h1.
# Needs root (the test hosts are network namespaces); as a normal user it
# says so and skips. WGNS_BIN picks the binary. Prints two tables.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "mesh: skipped (the test hosts need root: ip netns)"; exit 0; fi
source scripts/host-setup.sh
command -v iperf3 >/dev/null || { echo "bench mesh: iperf3 is missing (scripts/deps.sh installs it)" >&2; exit 1; }
bin=${WGNS_BIN:-$(bash scripts/build-static.sh --scratch-path "${VM_SCRATCH:-.build-static}" | tail -n1)}
C=$(pwd)/scripts/testnet/cluster.sh
secs=${BENCH_MESH_SECONDS:-5}
members=${BENCH_MESH_MEMBERS:-16}
work=$(mktemp -d /tmp/wgns-bench-mesh.XXXXXX)
chmod 755 "$work"
net=
cleanup() {
    [ -n "$net" ] && bash "$C" stop "$net"
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -m 755 "$work/w"
cp "$bin" "$work/w/wgns"
chown -R "$TEST_USER" "$work/w"
cd "$work/w"
on() { bash "$C" exec "$net" "$@"; }
gbits() { jq -r '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100' 2>/dev/null || echo failed; }
status=0

printf '\nMember -> member across the test cluster, builtin backend, iperf3 TCP, %s s each, Gbit/s:\n' "$secs"
printf '%-12s %10s %10s %16s %16s %10s\n' "fabric MTU" "wg0 MTU" "raw fabric" "star (via hub)" "mesh (direct)" "mesh/star"
for mtu in ${BENCH_MESH_MTUS:-1500 9000}; do
    net=$work/net-$mtu
    TESTNET_MTU=$mtu bash "$C" start "$net" 4 >/dev/null
    bash "$C" root "$net" h2 iperf3 -s -1 -D -B 10.231.0.2 -p 5201 >/dev/null
    sleep 0.2
    raw=$(bash "$C" root "$net" h4 iperf3 -c h2 -p 5201 -t "$secs" -J 2>/dev/null | gbits)
    rm -rf v; on h1 ./wgns vpn new v --peers 3 --subnet 10.97.0.0/24 --topology mesh >/dev/null
    on h1 ./wgns hub --backend builtin v --name bmh >hub.out 2>&1 &
    for _ in $(seq 200); do [ -e v/hub.endpoint ] && break; sleep 0.05; done
    on h2 ./wgns up --backend builtin v --peer 1 --name bm1 -- sleep 600 >/dev/null 2>&1 &
    on h3 ./wgns up --backend builtin --topology star v --peer 2 --name bm2 -- sleep 600 >/dev/null 2>&1 &
    on h4 ./wgns up --backend builtin v --peer 3 --name bm3 -- sleep 600 >/dev/null 2>&1 &
    for _ in $(seq 200); do on h1 ./wgns vpn status v 2>/dev/null | grep -q "^peer-3 .*direct to 1 of 2" && break; sleep 0.05; done
    wgmtu=$(on h2 ./wgns exec bm1 -- ip -o link show wg0 | sed "s/.* mtu \([0-9]*\) .*/\1/")
    row=()
    for k in 2 3; do
        on h2 ./wgns exec bm1 -- iperf3 -s -1 -B 10.97.0.2 -p 5202 >/dev/null 2>&1 &
        srv=$!
        sleep 0.3
        g=$(on h$((k + 1)) ./wgns exec bm$k -- sh -c 'for i in $(seq 50); do ping -c1 -W1 10.97.0.2 >/dev/null 2>&1 && break; done
            iperf3 -c 10.97.0.2 -p 5202 -t '"$secs"' -J' 2>/dev/null | gbits)
        [ "$g" = failed ] && status=1
        wait "$srv" 2>/dev/null || true
        row+=("$g")
    done
    ratio=$(awk -v a="${row[0]}" -v b="${row[1]}" 'BEGIN { if (a + 0 > 0) printf "%.2f", b / a; else print "-" }')
    printf '%-12s %10s %10s %16s %16s %10s\n' "$mtu" "$wgmtu" "$raw" "${row[0]}" "${row[1]}" "$ratio"
    for k in 1 2 3; do on h$((k + 1)) ./wgns down bm$k 2>/dev/null || true; done
    on h1 ./wgns down bmh 2>/dev/null || true
    wait
    bash "$C" stop "$net"; net=
done

printf '\nMesh of %s members (one host each, hub on h1), fabric 1500: last member started -> every pair direct:\n' "$members"
net=$work/net-n
bash "$C" start "$net" $((members + 1)) >/dev/null
rm -rf v; on h1 ./wgns vpn new v --peers "$members" --subnet 10.97.0.0/24 --topology mesh >/dev/null
on h1 ./wgns hub --backend builtin v --name bmh >hub.out 2>&1 &
for _ in $(seq 200); do [ -e v/hub.endpoint ] && break; sleep 0.05; done
for k in $(seq "$members"); do
    on h$((k + 1)) ./wgns up --backend builtin v --peer "$k" --name bm$k -- sleep 600 >/dev/null 2>&1 &
done
t0=$(date +%s.%N)
pairs=$((members * (members - 1)))
got=0
for _ in $(seq 1200); do
    got=$(on h1 ./wgns vpn status v 2>/dev/null | grep -o "direct to [0-9]*" | awk '{ s += $3 } END { print s + 0 }' || true)
    [ "$got" = "$pairs" ] && break
    sleep 0.05
done
t1=$(date +%s.%N)
if [ "$got" = "$pairs" ]; then
    # The last member's endpoint file: when its data plane was up.
    tp=$(stat -c %.9Y v/peer-*.endpoint | sort -n | tail -1)
    printf '%s members, %s directed pairs: %.2f s after the last `wgns up` was started (16 bring-ups at once on this machine included), %.2f s after the last member published its endpoint\n' \
        "$members" "$pairs" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$(awk -v a="$tp" -v b="$t1" 'BEGIN { print b - a }')"
else
    printf '%s members: only %s of %s directed pairs direct after %.0f s\n' "$members" "$got" "$pairs" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
    status=1
fi
for k in $(seq "$members"); do on h$((k + 1)) ./wgns down bm$k 2>/dev/null || true; done
on h1 ./wgns down bmh 2>/dev/null || true
wait
exit "$status"
