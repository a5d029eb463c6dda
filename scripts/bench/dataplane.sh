#!/usr/bin/env bash
# The encrypted path's throughput, one hop across the test cluster
# (scripts/testnet/cluster.sh), iperf3 TCP for BENCH_DP_SECONDS (default 5)
# per cell, for each fabric MTU in BENCH_DP_MTUS (default 1500 9000):
#   - the fabric itself (h3 -> h2, no WireGuard);
#   - the references, as root and with no carrier: Debian 12's wireguard-go
#     (0.0.20220316) to itself and Debian 13's (0.0.20231211, fetched once
#     into build-cache/ by scripts/fetch-trixie.sh; it makes its own TUN with
#     offloads) to itself, h2 -> h1, tunnel MTU = fabric - 80;
#   - wgns: `wgns up` on h2 as the test user, for each backend and carrier
#     (BENCH_DP_CELLS, default "wireguard-go:slirp4netns wireguard-go:pasta
#     builtin:none"), to Debian 13's wireguard-go on h1 (root) with
#     `iperf3 -s` on its tunnel address: one WireGuard hop, the job as sender.
# Each wgns cell also reports the CPU time of its processes (wgns, its
# carrier or data plane, the job's iperf3: the reaped children of this shell,
# from `times`) per GiB moved, and the ratio of its figure to
# the best wireguard-go reference of the same MTU. Needs root (test hosts).
set -euo pipefail
source "$(dirname "$0")/cluster-lib.sh"
bench_cluster_setup "data plane throughput"
wg12=$(command -v wireguard-go) || { echo "bench dataplane: wireguard-go is missing" >&2; exit 1; }
wg13=$(bash "$repo/scripts/fetch-trixie.sh" wireguard-go 0.0.20231211 "$repo/build-cache/wireguard-go-13")/usr/bin/wireguard-go
secs=${BENCH_DP_SECONDS:-5}
pids=()
bench_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
root() { bash "$C" root "$net" "$@"; }

# ref_device HOST NAME BINARY ADDR MTU PORT KEYFILE PEERPUB PEERALLOWED [ENDPOINT]
# A wireguard-go device as root on HOST, in the foreground (-f) so that it
# ends with this script.
ref_device() {
    local host=$1 name=$2 binary=$3 addr=$4 mtu=$5 port=$6 key=$7 pub=$8 allowed=$9 endpoint=${10:-}
    WG_PROCESS_FOREGROUND=1 bash "$C" root "$net" "$host" "$binary" -f "$name" >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -S "/var/run/wireguard/$name.sock" ] && break; sleep 0.05; done
    root "$host" wg set "$name" private-key "$key" listen-port "$port" peer "$pub" allowed-ips "$allowed" ${endpoint:+endpoint "$endpoint"}
    root "$host" ip addr add "$addr/24" dev "$name"
    root "$host" ip link set "$name" mtu "$mtu" up
}

# children_cpu: sets cpu to the user+sys centiseconds of this shell's reaped children
# (`times`, run without a subshell so that it reports this shell's). A cell's
# `wgns up` and everything under it (carrier, data plane, the job's iperf3)
# are waited for by their parents, so the cell's CPU time is the difference.
children_cpu() {
    times >"$work/times"
    cpu=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } } END { printf "%.0f", s * 100 }' "$work/times")
}

(umask 077; wg genkey >k1; wg genkey >k2); wg pubkey <k1 >p1; wg pubkey <k2 >p2
printf '\nOne WireGuard hop across the test cluster (h2 -> h1), iperf3 TCP, %s s each, Gbit/s (ratio to the best wireguard-go reference):\n' "$secs"
printf '%-8s %-7s %-28s %10s %8s %12s\n' "fabric" "wg MTU" "path" "Gbit/s" "ratio" "CPU s/GiB"
status=0
for mtu in ${BENCH_DP_MTUS:-1500 9000}; do
    wgmtu=$((mtu - 80))
    net=$work/net-$mtu
    TESTNET_MTU=$mtu bash "$C" start "$net" 3 >/dev/null
    root h2 iperf3 -s -1 -D -B 10.231.0.2 -p 5201 >/dev/null; sleep 0.2
    raw=$(root h3 iperf3 -c h2 -p 5201 -t "$secs" -J 2>/dev/null | gbit)
    printf '%-8s %-7s %-28s %10s %8s %12s\n' "$mtu" "-" "fabric (no WireGuard)" "$raw" "" ""
    best=0
    for ref in 12 13; do
        b=$wg12; [ "$ref" = 13 ] && b=$wg13
        ref_device h1 "wgr$ref-$mtu-a" "$b" 10.98.0.1 "$wgmtu" 51820 "$(pwd)/k1" "$(cat p2)" 10.98.0.2/32
        ref_device h2 "wgr$ref-$mtu-b" "$b" 10.98.0.2 "$wgmtu" 51821 "$(pwd)/k2" "$(cat p1)" 10.98.0.1/32 10.231.0.1:51820
        root h1 iperf3 -s -1 -D -B 10.98.0.1 -p 5202 >/dev/null; sleep 0.2
        root h2 ping -c1 -W2 10.98.0.1 >/dev/null 2>&1 || true
        g=$(root h2 iperf3 -c 10.98.0.1 -p 5202 -t "$secs" -J 2>/dev/null | gbit)
        root h1 ip link del "wgr$ref-$mtu-a" 2>/dev/null || true
        root h2 ip link del "wgr$ref-$mtu-b" 2>/dev/null || true
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; pids=()
        printf '%-8s %-7s %-28s %10s %8s %12s\n' "$mtu" "$wgmtu" "wireguard-go $ref <-> itself" "$g" "" ""
        best=$(awk -v a="$best" -v b="$g" 'BEGIN { print (b + 0 > a + 0) ? b : a }')
    done
    # wgns cells: to Debian 13's wireguard-go on h1, key 1, listening on 51820.
    ref_device h1 "wgp-$mtu" "$wg13" 10.98.0.1 "$wgmtu" 51820 "$(pwd)/k1" "$(cat p2)" 10.98.0.2/32
    cat >peer.conf <<CONF
[Interface]
PrivateKey = $(cat k2)
Address = 10.98.0.2/24
[Peer]
PublicKey = $(cat p1)
AllowedIPs = 10.98.0.1/32
Endpoint = 10.231.0.1:51820
CONF
    chmod 600 peer.conf; chown "$TEST_USER" peer.conf
    for cell in ${BENCH_DP_CELLS:-wireguard-go:slirp4netns wireguard-go:pasta builtin:none}; do
        backend=${cell%%:*} carrier=${cell#*:}
        root h1 iperf3 -s -1 -D -B 10.98.0.1 -p 5203 >/dev/null; sleep 0.2
        children_cpu; c0=$cpu
        out=$(bash "$C" exec "$net" h2 ./wgns up --backend "$backend" --carrier "$carrier" peer.conf -- sh -c '
            for i in $(seq 50); do ping -c1 -W1 10.98.0.1 >/dev/null 2>&1 && break; done
            iperf3 -c 10.98.0.1 -p 5203 -t '"$secs"' -J' 2>"$work/err" || true)
        g=$(printf '%s' "$out" | gbit)
        bytes=$(printf '%s' "$out" | jq -r '.end.sum_received.bytes // 0' 2>/dev/null || echo 0)
        children_cpu; c1=$cpu
        if [ "$g" = failed ] || [ -z "$g" ]; then
            g=failed; status=1
            echo "  $backend/$carrier: $(tail -n1 "$work/err")" >&2
        fi
        root h1 pkill -f "iperf3 -s -1 -D -B 10.98.0.1 -p 5203" 2>/dev/null || true
        ratio=$(awk -v a="$g" -v b="$best" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "-" }')
        cpu=$(awk -v t="$((c1 - c0))" -v hz=100 -v b="$bytes" 'BEGIN { if (b > 0) printf "%.2f", (t / hz) / (b / 1073741824); else print "-" }')
        printf '%-8s %-7s %-28s %10s %8s %12s\n' "$mtu" "$wgmtu" "wgns $backend/$carrier" "$g" "$ratio" "$cpu"
    done
    root h1 ip link del "wgp-$mtu" 2>/dev/null || true
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; pids=()
    bash "$C" stop "$net"; net=
done
echo "(CPU s/GiB: every process of a cell, wgns, its carrier or data plane and the job's iperf3, per GiB received by h1)"
exit "$status"
