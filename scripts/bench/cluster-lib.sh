# Sourced by the benchmarks that run on the test cluster (cluster.sh,
# dataplane.sh): `bench_cluster_setup WHAT` checks for root and iperf3, sets
# repo, bin (the wgns binary), C (scripts/testnet/cluster.sh), work (a scratch
# folder removed on exit) and net (the cluster's folder while one runs,
# stopped on exit), and enters $work/w, which holds a copy of wgns the test
# user can run. A script's own clean-up goes in bench_cleanup (called first).
# gbit reads iperf3 -J from stdin and prints Gbit/s, or "failed".
bench_cleanup() { :; }
bench_cluster_setup() {
    cd "$(dirname "${BASH_SOURCE[0]}")/../.."
    repo=$(pwd)
    if [ "$(id -u)" != 0 ]; then echo "$1: skipped (the test hosts need root: ip netns)"; exit 0; fi
    source scripts/host-setup.sh
    command -v iperf3 >/dev/null || { echo "bench: iperf3 is missing (scripts/deps.sh installs it)" >&2; exit 1; }
    bin=${WGNS_BIN:-$(bash scripts/build-static.sh --scratch-path "${VM_SCRATCH:-.build-static}" | tail -n1)}
    C=$(pwd)/scripts/testnet/cluster.sh
    work=$(mktemp -d /tmp/wgns-bench.XXXXXX)
    chmod 755 "$work"
    net=
    trap 'bench_cleanup; [ -n "$net" ] && bash "$C" stop "$net"; rm -rf "$work"' EXIT
    mkdir -m 755 "$work/w"
    cp "$bin" "$work/w/wgns"
    chown -R "$TEST_USER" "$work/w"
    cd "$work/w"
}
gbit() {
    local g
    g=$(jq -r '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100' 2>/dev/null || true)
    case $g in ''|null) echo failed ;; *) echo "$g" ;; esac
}
