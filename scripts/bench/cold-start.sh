#!/usr/bin/env bash
# Cold starts on a fresh test cluster (issue 19, item 12): BENCH_COLD_RUNS
# times (default 100) per carrier and backend, a new cluster
# (scripts/testnet/cluster.sh start: new bridge, new veths), `wgns vpn new`
# with 2 peers, the hub on h1, then peer 1 on h2 and peer 2 on h3 started
# together; each member's job pings the hub, then the other member, until
# answered (pings of 0.2 s each, one after the other). The time of a ping is
# from the moment both `wgns up` were launched to its first answer; the
# cluster is stopped after each run. Prints the distribution (min, median,
# 90th percentile, max, and how many took over 1 s) per carrier of the
# members (slirp4netns, pasta; the hub's is always pasta) and per backend
# (BENCH_COLD_BACKENDS, default "wireguard-go default": the userspace
# wireguard-go backend held fixed, and what `auto` picks on this host).
# A ping not answered within BENCH_COLD_TIMEOUT s (default 15) counts as that.
# Needs root (the test hosts are network namespaces); wgns runs as the test
# user. BENCH_COLD_CARRIERS picks carriers; WGNS_BIN the binary (default:
# the debug build). BENCH_KEEP=1 keeps the work folder (per-run times in
# times.CARRIER.BACKEND).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "cold starts: skipped (the test hosts need root)"; exit 0; fi
source scripts/host-setup.sh
bin=${WGNS_BIN:-.build/debug/wgns}
C=$(pwd)/scripts/testnet/cluster.sh
n=${BENCH_COLD_RUNS:-100}
limit=${BENCH_COLD_TIMEOUT:-15}
work=$(mktemp -d /tmp/wgns-bench-cold.XXXXXX)
chmod 755 "$work"
mkdir -m 755 "$work/w"
cp "$bin" "$work/w/wgns"
net= hub=
cleanup() {
    [ -n "$hub" ] && { kill "$hub" 2>/dev/null; wait "$hub" 2>/dev/null || true; }
    [ -n "$net" ] && bash "$C" stop "$net" || true
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
# The member's job: $1 = the other member's name.
cat > "$work/w/job.sh" <<'EOS'
until ping -c1 -W0.2 hub >/dev/null 2>&1; do :; done
date +%s.%N > "hub.$WGNS_PEER"
until ping -c1 -W0.2 "$1" >/dev/null 2>&1; do :; done
date +%s.%N > "other.$WGNS_PEER"
# Up until the other member has reached this one too.
until [ -e other.1 ] && [ -e other.2 ]; do sleep 0.01; done
EOS
chown -R "$TEST_USER" "$work/w"
cd "$work/w"
on() { bash "$C" exec "$net" "$@"; }
# The backend's flag: wireguard-go is `--backend wireguard-go` where that
# name exists (the built-in backend's branch), `--backend userspace` before.
backend_flag() {
    case "$1" in
    default) ;;
    wireguard-go) if ./wgns up --help 2>&1 | grep -q 'wireguard-go'; then echo --backend wireguard-go; else echo --backend userspace; fi ;;
    *) echo --backend "$1" ;;
    esac
}
# One cold start; prints "H1 O1 H2 O2" (seconds; $limit when not answered).
one() {
    local carrier=$1 bflag=$2 t0 p1 p2 k f out=""
    net=$work/net
    bash "$C" start "$net" 3 >/dev/null
    rm -rf v hub.out hub.[12] other.[12]
    on h1 ./wgns vpn new v --peers 2 --endpoint h1:51820 >/dev/null
    on h1 ./wgns hub v >hub.out 2>&1 &
    hub=$!
    for _ in $(seq 400); do grep -qs "up" hub.out && break; sleep 0.01; done
    t0=$(date +%s.%N)
    on h2 timeout "$limit" ./wgns up --carrier "$carrier" $bflag v --peer 1 -- sh job.sh peer-2 >m1.out 2>&1 & p1=$!
    on h3 timeout "$limit" ./wgns up --carrier "$carrier" $bflag v --peer 2 -- sh job.sh peer-1 >m2.out 2>&1 & p2=$!
    wait "$p1" "$p2" || true
    for k in 1 2; do
        for f in hub other; do
            if [ -s "$f.$k" ]; then out="$out $(echo "$(cat "$f.$k") - $t0" | bc)"; else out="$out $limit"; fi
        done
    done
    kill "$hub" 2>/dev/null; wait "$hub" 2>/dev/null || true; hub=
    bash "$C" stop "$net"; net=
    echo $out
}
printf '%-12s %-13s %5s %7s %7s %7s %7s %6s\n' carrier backend pings min median p90 max ">1s"
for backend in ${BENCH_COLD_BACKENDS:-wireguard-go default}; do
    bflag=$(backend_flag "$backend")
    for carrier in ${BENCH_COLD_CARRIERS:-slirp4netns pasta}; do
        : > "$work/times.$carrier.$backend"
        for i in $(seq "$n"); do
            one "$carrier" "$bflag" >> "$work/times.$carrier.$backend"
        done
        tr ' ' '\n' < "$work/times.$carrier.$backend" | grep . | sort -n | awk -v c="$carrier" -v b="$backend" '
            { t[NR] = $1; if ($1 > 1) over++ }
            function p(q,  i) { i = int((q * NR + 99) / 100); if (i < 1) i = 1; return t[i] }
            END { printf "%-12s %-13s %5d %7.3f %7.3f %7.3f %7.3f %6d\n", c, b, NR, p(0), p(50), p(90), p(100), over }'
    done
done
echo "(seconds from launching both members to each first answered ping, member to hub and member to member; $n fresh clusters per row; 2 shared cores, timings noisy)"
