#!/usr/bin/env bash
# The README's main command (`make demo`): on this one machine and with no
# root anywhere, a per-job private VPN: a hub and three jobs, each in its own
# rootless namespace, reaching each other through WireGuard. As root, the
# demo runs as the unprivileged user wgns-test (pasta refuses to run as root)
# on a cluster of four test hosts (scripts/testnet/cluster.sh: network
# namespaces on a private bridge): the hub on h1, reached by name, and one
# job on each of h2..h4, as on a real cluster. As a normal user, who cannot
# make such hosts, everything runs on this host and the jobs reach the hub
# through the host's loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/host-setup.sh
cluster=$(pwd)/scripts/testnet/cluster.sh
[ -x .build/debug/wgns ] || swift build
work=$(mktemp -d /tmp/wgns-demo.XXXXXX)
chmod 755 "$work"
cp .build/debug/wgns "$work/"
# The member job of every multi-node test (Tests/jobs/member.sh).
cp -r Tests/jobs "$work/jobs"
chown -R "$TEST_USER" "$work"
hub=
net=
cleanup() {
    [ -n "$hub" ] && kill "$hub" 2>/dev/null && wait "$hub" 2>/dev/null
    [ -n "$net" ] && bash "$cluster" stop "$net"
    rm -rf "$work"
}
trap cleanup EXIT
as_user() { (cd "$work" && run_as_test_user "$@"); }
n=3
# on HOST CMD...: CMD as the test user on test host HOST (h1 holds the hub,
# hK+1 job K), or on this host when there is no cluster.
on() { local h=$1; shift; if [ -n "$net" ]; then (cd "$work" && bash "$cluster" exec "$net" "$h" "$@"); else as_user "$@"; fi; }
exec_on() { local h=$1; shift; cd "$work"; if [ -n "$net" ]; then exec bash "$cluster" exec "$net" "$h" "$@"; else exec_as_test_user "$@"; fi; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
port=$(free_port udp)

if [ "$(id -u)" = 0 ]; then
    net=$work/net
    step "a cluster of $((n + 1)) test hosts: network namespaces on a private bridge (scripts/testnet/cluster.sh)"
    TESTNET_MTU=${TESTNET_MTU:-1500} bash "$cluster" start "$net" $((n + 1))
    endpoint=h1:$port
    echo "hosts file, as every test host sees it as /etc/hosts:"; sed 's/^/  /' "$net/hosts"
else
    step "no test cluster (making test hosts needs root): hub and jobs on this host, through its loopback"
    endpoint=127.0.0.1:$port
fi

step "keys, exactly as wg makes them"
as_user sh -c 'umask 077; ./wgns genkey > job.key'
echo "wgns pubkey: $(as_user sh -c './wgns pubkey < job.key')"
command -v wg >/dev/null && echo "wg pubkey:   $(as_user sh -c 'wg pubkey < job.key')"

step "a private VPN for one job: a hub and $n peers (wgns vpn new), as user $TEST_USER"
as_user ./wgns vpn new vpn --peers $n --subnet 10.97.0.0/24 --endpoint "$endpoint" --psk
ls -l "$work/vpn"

step "the hub${net:+ on h1}, in its own rootless namespace, on UDP port $port of its host (builtin backend: its data plane binds the port itself; with kernel WireGuard pasta forwards it)"
(exec_on h1 ./wgns hub vpn --name wgns-demo-hub) >"$work/hub.out" 2>&1 &
hub=$!
for _ in $(seq 100); do grep -q "up," "$work/hub.out" 2>/dev/null && break; sleep 0.05; done
cat "$work/hub.out"

step "$n jobs${net:+ on h2..h$((n + 1))}, each in its own namespace (wgns up vpn --peer K), pinging each other through the hub"
# Every job (Tests/jobs/member.sh, the tests' own) says where it is, waits
# until all are up, pings the hub and the others by name, then waits until
# all are done, so that nobody leaves while others still ping it.
job() {
    local k=$1
    on "h$((k + 1))" ./wgns up vpn --peer "$k" $( [ "$k" = $n ] && echo --isolate ) -- \
        env MEMBER_TARGETS=name sh jobs/member.sh
}
pids=()
for k in $(seq $n); do job "$k" >"$work/job-$k.out" 2>&1 & pids+=($!); done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
cat "$work"/job-*.out
echo "(peer-$n ran with --isolate: its namespace holds only lo and wg0)"

step "what the hub saw (wgns show wgns-demo-hub${net:+, on h1})"
on h1 ./wgns show wgns-demo-hub | grep -E "^peer|endpoint|handshake|transfer|allowed"

step "teardown"
on h1 ./wgns down wgns-demo-hub
wait "$hub" 2>/dev/null || true
hub=
# Only the demo's own: processes of the test user working in its folder.
left=0
for p in $(pgrep -u "$TEST_USER" -f "wgns|slirp4netns|pasta|wireguard-go" || true); do
    case "$(readlink "/proc/$p/cwd" 2>/dev/null)" in "$work"*) left=$((left + 1)) ;; esac
done
echo "processes left behind by the demo: $left"
if [ -n "$net" ]; then bash "$cluster" stop "$net"; net=; echo "test cluster removed"; fi
if grep -q "cannot reach" "$work"/job-*.out || [ "$status" != 0 ]; then
    echo "demo: some peers could not reach each other" >&2
    exit 1
fi
echo "every peer reached every other peer through the VPN"
