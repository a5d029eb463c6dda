#!/usr/bin/env bash
# iperf3 TCP throughput across the test cluster (scripts/testnet/cluster.sh),
# userspace backend, as the unprivileged test user: the hub on h1, peer 1 on
# h2 runs `iperf3 -s`, peer 2 on h3 sends to it through the hub (two
# WireGuard hops), for each fabric MTU in $BENCH_CLUSTER_MTUS (default
# 1500 9000 2044) and each carrier of the peers (slirp4netns, pasta; the hub
# is always pasta). BENCH_CLUSTER_SECONDS per run (default 5). Needs root
# (the test hosts are network namespaces); as a normal user it says so and
# skips. WGNS_BIN picks the binary. Prints one table.
set -euo pipefail
source "$(dirname "$0")/cluster-lib.sh"
bench_cluster_setup "cluster throughput"
secs=${BENCH_CLUSTER_SECONDS:-5}
hub=
bench_cleanup() { [ -n "$hub" ] && { kill "$hub" 2>/dev/null; wait "$hub" 2>/dev/null || true; }; }
on() { bash "$C" exec "$net" "$@"; }
port=$(free_port udp)

printf '\nThroughput across the test cluster, iperf3 TCP peer (h3) -> hub (h1) -> peer (h2), %s s each, Gbit/s:\n' "$secs"
printf '%-12s %10s %10s %12s %12s\n' "fabric MTU" "wg0 MTU" "raw fabric" "slirp4netns" "pasta"
status=0
for mtu in ${BENCH_CLUSTER_MTUS:-1500 9000 2044}; do
    net=$work/net-$mtu
    TESTNET_MTU=$mtu bash "$C" start "$net" 3 >/dev/null
    # The fabric itself, host to host, for scale.
    bash "$C" root "$net" h2 iperf3 -s -1 -D -B 10.231.0.2 -p 5201 >/dev/null
    sleep 0.2
    raw=$(bash "$C" root "$net" h3 iperf3 -c h2 -p 5201 -t "$secs" -J 2>/dev/null | gbit)
    rm -rf v; on h1 ./wgns vpn new v --peers 2 --subnet 10.97.0.0/24 --endpoint "h1:$port" >/dev/null
    bash "$C" exec "$net" h1 ./wgns hub v --name "bench-cluster-$port" >hub.out 2>&1 &
    hub=$!
    for _ in $(seq 200); do grep -qs "up," hub.out && break; sleep 0.05; done
    row=() wgmtu=?
    for carrier in slirp4netns pasta; do
        rm -f ready
        on h2 ./wgns up --carrier "$carrier" v --peer 1 -- sh -c 'ip -o link show wg0 | sed "s/.* mtu \([0-9]*\) .*/\1/" > mtu; touch ready; exec iperf3 -s -1 -B 10.97.0.2 -p 5202' >/dev/null 2>&1 &
        srv=$!
        for _ in $(seq 200); do [ -e ready ] && break; sleep 0.05; done
        wgmtu=$(cat mtu 2>/dev/null || echo ?)
        g=$(on h3 ./wgns up --carrier "$carrier" v --peer 2 -- sh -c '
            for i in $(seq 50); do ping -c1 -W1 10.97.0.2 >/dev/null 2>&1 && break; done
            iperf3 -c 10.97.0.2 -p 5202 -t '"$secs"' -J' 2>/dev/null | gbit)
        [ "$g" != failed ] || status=1
        kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true
        row+=("$g")
    done
    on h1 ./wgns down "bench-cluster-$port" || true
    wait "$hub" 2>/dev/null || true; hub=
    printf '%-12s %10s %10s %12s %12s\n' "$mtu" "$wgmtu" "$raw" "${row[0]}" "${row[1]}"
    bash "$C" stop "$net"; net=
done
exit "$status"
