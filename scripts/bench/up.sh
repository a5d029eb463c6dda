#!/usr/bin/env bash
# `wgns up` on the host (userspace backend, as an unprivileged user):
#  1. bring-up + teardown of `wgns up CONF -- true` against the same work done
#     by a shell pipeline (scripts/bench/pipeline.sh), slirp4netns and pasta
#     carriers: wall time (hyperfine) and peak RSS of the largest process;
#  2. iperf3 TCP throughput from a job to a hub through the tunnel, against
#     the same two carriers without WireGuard.
# Prints tables with ratios. Run by `make bench` (scripts/bench.sh), which
# sets WGNS_BIN to the portable release build; alone it builds that the same
# way (scripts/build-static.sh, scratch path $VM_SCRATCH or .build-static).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/host-setup.sh
bin=${WGNS_BIN:-$(bash scripts/build-static.sh --scratch-path "${VM_SCRATCH:-.build-static}" | tail -n1)}
work=$(mktemp -d /tmp/wgns-bench.XXXXXX)
chmod 755 "$work"
trap '[ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"' EXIT
cp "$bin" scripts/bench/pipeline.sh "$work/"
chown -R "$TEST_USER" "$work"
as_user() { (cd "$work" && run_as_test_user "$@"); }

# Peak memory of a whole run, every process together: the high-water mark of
# a fresh memory cgroup (v2 memory.peak or v1 memory.max_usage_in_bytes); "-"
# where this machine gives no writable memory cgroup. Page cache already warm
# from the timed runs is not charged again.
peak_memory() {
    local base cg v
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        base=/sys/fs/cgroup$(awk -F: '$1=="0"{print $3}' /proc/self/cgroup)
    else
        base=/sys/fs/cgroup/memory$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)
    fi
    cg=$base/wgns-bench-$$-$RANDOM
    mkdir "$cg" 2>/dev/null || { echo -; return; }
    (echo $BASHPID > "$cg/cgroup.procs" && cd "$work" && run_as_test_user sh -c "$1" >/dev/null 2>&1) || true
    v=$(cat "$cg/memory.peak" 2>/dev/null || cat "$cg/memory.max_usage_in_bytes" 2>/dev/null || echo -)
    # A process still exiting keeps the cgroup busy for a moment.
    for _ in $(seq 100); do rmdir "$cg" 2>/dev/null && break; sleep 0.01; done
    echo "$v"
}

port=$(free_port udp)
as_user ./wgns vpn new vpn --peers 2 --subnet 10.97.0.0/24 --endpoint "127.0.0.1:$port" >/dev/null
as_user sh -c 'umask 077; ./wgns strip vpn/peer-1.conf > peer-1.wg'
mtu=65440

if [ -z "${BENCH_SKIP_UP:-}" ]; then
echo
echo "wgns up CONF -- true versus the shell pipeline (userspace backend, $(nproc) cores), milliseconds:"
printf '%-12s %12s %12s %9s %14s %14s\n' carrier pipeline wgns ratio "pipeline mem" "wgns mem"
for carrier in slirp4netns pasta; do
    pipeline_cmd="./pipeline.sh --carrier $carrier peer-1.wg 10.97.0.2/24 $mtu true"
    wgns_cmd="./wgns up --carrier $carrier --backend userspace vpn/peer-1.conf -- true"
    args=(--warmup 3 --runs "${BENCH_RUNS:-30}" --export-json "$work/$carrier.json" -N)
    as_user hyperfine "${args[@]}" "$pipeline_cmd" "$wgns_cmd" >/dev/null
    python3 - "$work/$carrier.json" "$carrier" "$(peak_memory "$pipeline_cmd")" "$(peak_memory "$wgns_cmd")" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
pipe, wg = (r["median"] * 1000 for r in res)
fmt = lambda v: f"{v:.1f}"
ratio = f"{pipe / wg:.2f}x"
kb = lambda v: "-" if v == "-" else f"{int(v) / 1048576:.1f} MiB"
print(f"{sys.argv[2]:<12} {fmt(pipe):>12} {fmt(wg):>12} {ratio:>9} {kb(sys.argv[3]):>14} {kb(sys.argv[4]):>14}")
PY
done
echo "(median wall time; ratio = pipeline / wgns: above 1 means wgns is faster;"
echo " mem = peak memory of every process of the run together: a memory cgroup's high-water mark)"
fi

# --- throughput ---------------------------------------------------------------
# Hub: wgns up with pasta forwarding the WireGuard port, iperf3 server inside.
# Job: wgns up with slirp4netns, iperf3 client to the hub's tunnel address.
# Raw: the same two carriers without WireGuard: iperf3 server in a namespace
# whose TCP port pasta forwards, client under slirp4netns reaching it at
# 10.0.2.2. The client retries until the server answers (a tunnel's first
# packet waits for the handshake; iperf3 -J exits 0 even on errors, so its
# JSON is read); the servers run until they are stopped.
secs=${BENCH_SECONDS:-5}
iperf_port=$(free_port tcp)
client="for i in \$(seq 100); do iperf3 -c %s -p $iperf_port -t $secs -J > %s 2>/dev/null; grep -q '\"error\"' %s || exit 0; sleep 0.1; done; exit 1"
# Like as_user, for `( exec_as_user CMD ) REDIRECTIONS &`: the command takes
# over the subshell, so $! is its pid.
exec_as_user() { cd "$work" && exec_as_test_user "$@"; }
as_user mkfifo "$work/srv.ns" "$work/cli.ns" "$work/cli.go" "$work/cli.ready" "$work/cli.exit"

(exec_as_user ./wgns up --carrier pasta --backend userspace vpn/hub.conf -- iperf3 -s -p "$iperf_port") >"$work/hub.log" 2>&1 &
hub=$!
as_user ./wgns up --carrier slirp4netns --backend userspace vpn/peer-1.conf -- \
    sh -c "$(printf "$client" 10.97.0.1 "$work/tunnel.json" "$work/tunnel.json")" || echo "bench: tunnel iperf3 failed" >&2
kill -TERM $hub 2>/dev/null || true
wait $hub 2>/dev/null || true

(exec_as_user unshare -Urn sh -c "ip link set lo up; echo \$\$ > '$work/srv.ns'; exec iperf3 -s -p $iperf_port") >/dev/null 2>&1 &
srv=$!
read -r srv_pid <"$work/srv.ns"
(exec_as_user pasta --config-net -q -f -t "$iperf_port" -u none -T none -U none \
    --netns "/proc/$srv_pid/ns/net" --userns "/proc/$srv_pid/ns/user") >/dev/null 2>&1 &
pasta=$!
(exec_as_user unshare -Urn sh -c "echo \$\$ > '$work/cli.ns'; read _ < '$work/cli.go'; $(printf "$client" 10.0.2.2 "$work/raw.json" "$work/raw.json")") &
cli=$!
read -r cli_pid <"$work/cli.ns"
exec 7<>"$work/cli.exit"        # slirp4netns runs until this is closed
(exec_as_user slirp4netns --configure --mtu=65520 --ready-fd=3 --exit-fd=4 "$cli_pid" tap0) \
    3>"$work/cli.ready" 4<"$work/cli.exit" 7>&- >/dev/null 2>&1 &
read -r -n 1 _ <"$work/cli.ready"
echo go > "$work/cli.go"
wait $cli || echo "bench: raw iperf3 failed" >&2
exec 7>&-
kill $srv $pasta 2>/dev/null || true
wait 2>/dev/null || true

echo
echo "TCP throughput job -> hub, ${secs} s iperf3 (slirp4netns -> host loopback -> pasta), Gbit/s:"
python3 - "$work/raw.json" "$work/tunnel.json" <<'PY'
import json, sys
def gbps(p):
    try: return json.load(open(p))["end"]["sum_received"]["bits_per_second"] / 1e9
    except Exception: return None
raw, tun = gbps(sys.argv[1]), gbps(sys.argv[2])
f = lambda v: "failed" if v is None else f"{v:.2f}"
print(f"{'raw carriers':<28} {f(raw):>8}")
print(f"{'through the WireGuard tunnel':<28} {f(tun):>8}")
if raw and tun: print(f"{'tunnel / raw':<28} {tun / raw:>8.2f}")
PY
