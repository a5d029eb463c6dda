#!/usr/bin/env bash
# A cluster of test hosts on this one machine: N network namespaces, each with
# its own address and name on a private subnet, joined by a bridge in the
# machine's namespace. Nothing routes that subnet anywhere else: the bridge has
# no address, the machine's namespace has no route to the subnet, and the
# hosts have no default route.
#
#   cluster.sh start DIR [N]        N hosts h1..hN (default 3) at 10.231.0.1..N
#   cluster.sh stop DIR             remove exactly what start made (recorded in DIR/made)
#   cluster.sh exec DIR HOST CMD... run CMD on HOST as the test user (wgns-test as root)
#   cluster.sh root DIR HOST CMD... run CMD on HOST as root
#   cluster.sh link DIR HOST up|down   the host's link to the bridge
#   cluster.sh vanish DIR HOST      the host dies: every process in it is killed,
#                                   its namespace and link are removed
#   cluster.sh ns DIR HOST          print the host's namespace name
#
# Knobs, read by start: TESTNET_MTU (1500; 9000; 2044 as IPoIB datagram mode),
# TESTNET_DELAY_MS and TESTNET_LOSS_PCT (each way, on every host's link: a
# relay process in the machine's namespace between the host's link and the
# bridge delays and drops frames, since this kernel has no sch_netem).
#
# DIR/hosts is the cluster's hosts file; each host sees it as /etc/hosts (and
# a resolv.conf without servers) through `ip netns exec`'s /etc/netns/NAME.
# DIR/env gives TESTNET_NS_h1=... TESTNET_ADDR_h1=... TESTNET_HOSTS=...
# Needs root, iproute2, and python3 and ethtool for the relay.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { echo "usage: cluster.sh start DIR [N] | stop DIR | exec|root DIR HOST CMD... | link DIR HOST up|down | vanish DIR HOST | ns DIR HOST" >&2; exit 64; }
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage
subnet=10.231.0

# The namespace names are unique to DIR, so that clusters of several runs
# can exist at once.
tag=$(printf '%s' "$(cd "$dir" 2>/dev/null && pwd || echo "$dir")" | sha1sum | cut -c1-6)
nsname() { echo "wgns-$tag-$1"; }

record() { echo "$*" >> "$dir/made"; }

# Removes what DIR/made lists, last made first; safe to run twice.
stop() {
  [ -f "$dir/made" ] || return 0
  local kind name pids
  tac "$dir/made" | while read -r kind name; do
    case "$kind" in
      pid) kill -9 "$name" 2>/dev/null || true ;;
      netns)
        if [ -e "/run/netns/$name" ]; then
          # Every process still in the host dies with it.
          pids=$(ip netns pids "$name" 2>/dev/null || true)
          [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
          ip netns del "$name" 2>/dev/null || true
        fi ;;
      link) ip link del "$name" 2>/dev/null || true ;;
      file) rm -f "$name" ;;
      dir) rmdir "$name" 2>/dev/null || true ;;
    esac
  done
  rm -f "$dir/made"
}

host_ns() {
  local h=${1:?host}
  grep -q "^netns $(nsname "$h")\$" "$dir/made" 2>/dev/null || { echo "cluster.sh: no host $h in $dir" >&2; exit 1; }
  nsname "$h"
}

case "$cmd" in
stop) stop; exit 0 ;;
ns) host_ns "${3:-}"; exit 0 ;;
exec|root)
  ns=$(host_ns "${3:-}"); shift 3
  [ "${1:-}" = -- ] && shift
  if [ "$cmd" = root ] || [ "$(id -u)" != 0 ]; then exec ip netns exec "$ns" "$@"; fi
  exec ip netns exec "$ns" setpriv --reuid=wgns-test --regid=wgns-test --clear-groups env HOME=/tmp "$@" ;;
link)
  ns=$(host_ns "${3:-}")
  case "${4:-}" in up|down) ;; *) usage ;; esac
  ip -n "$ns" link set eth0 "$4"; exit 0 ;;
vanish)
  ns=$(host_ns "${3:-}")
  pids=$(ip netns pids "$ns" || true)
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  ip netns del "$ns"
  # The host's end of its link goes with the namespace's; a relay's links are ours.
  ip link del "wt$tag${3#h}r" 2>/dev/null || true
  exit 0 ;;
start) ;;
*) usage ;;
esac

n=${3:-3}
mtu=${TESTNET_MTU:-1500}
delay=${TESTNET_DELAY_MS:-0}
loss=${TESTNET_LOSS_PCT:-0}
case "$n" in ''|*[!0-9]*) echo "cluster.sh: N must be a number from 1 to 200, not '$n'" >&2; exit 64 ;; esac
[ "$n" -ge 1 ] && [ "$n" -le 200 ] || { echo "cluster.sh: N must be from 1 to 200, not $n" >&2; exit 64; }
case "$mtu" in ''|*[!0-9]*) echo "cluster.sh: TESTNET_MTU must be a number, not '$mtu'" >&2; exit 64 ;; esac
[ "$mtu" -ge 1280 ] && [ "$mtu" -le 65535 ] || { echo "cluster.sh: TESTNET_MTU must be from 1280 to 65535, not $mtu" >&2; exit 64; }
case "$delay" in ''|*[!0-9.]*) echo "cluster.sh: TESTNET_DELAY_MS must be a number of milliseconds, not '$delay'" >&2; exit 64 ;; esac
case "$loss" in ''|*[!0-9.]*) echo "cluster.sh: TESTNET_LOSS_PCT must be a percentage, not '$loss'" >&2; exit 64 ;; esac
[ "$(id -u)" = 0 ] || { echo "cluster.sh: must run as root (ip netns add)" >&2; exit 1; }
# The relays must not inherit the caller's descriptors: a caller that waits
# for its pipes to close (a test runner) would wait for them forever.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null || true
done
mkdir -p "$dir"
[ ! -s "$dir/made" ] || { echo "cluster.sh: $dir already holds a cluster (stop it first)" >&2; exit 1; }
# Whatever fails halfway, what was made goes again.
trap 'status=$?; [ $status = 0 ] || stop; exit $status' EXIT

impaired=no
awk -v d="$delay" -v l="$loss" 'BEGIN { exit !(d + 0 > 0 || l + 0 > 0) }' && impaired=yes

br=wt${tag}br
ip link add "$br" mtu "$mtu" type bridge
record link "$br"
echo 1 > "/proc/sys/net/ipv6/conf/$br/disable_ipv6"
ip link set "$br" up

: > "$dir/hosts.tmp"
echo "127.0.0.1 localhost" >> "$dir/hosts.tmp"
for k in $(seq "$n"); do echo "$subnet.$k h$k" >> "$dir/hosts.tmp"; done
mv "$dir/hosts.tmp" "$dir/hosts"
{ echo "TESTNET_HOSTS=\"$(seq -f 'h%g' -s ' ' "$n")\""; echo "TESTNET_MTU=$mtu"; } > "$dir/env"

for k in $(seq "$n"); do
  ns=$(nsname "h$k")
  ip netns add "$ns"
  record netns "$ns"
  [ -d /etc/netns ] || { mkdir /etc/netns; record dir /etc/netns; }
  mkdir -p "/etc/netns/$ns"
  record dir "/etc/netns/$ns"
  cp "$dir/hosts" "/etc/netns/$ns/hosts"
  record file "/etc/netns/$ns/hosts"
  echo "# the test cluster has no DNS server" > "/etc/netns/$ns/resolv.conf"
  record file "/etc/netns/$ns/resolv.conf"
  echo "h$k" > "/etc/netns/$ns/hostname"
  record file "/etc/netns/$ns/hostname"
  # The host's end (in the machine's namespace) is wtTAGKh; inside it is eth0.
  ip link add "wt$tag${k}h" mtu "$mtu" type veth peer name eth0 mtu "$mtu" netns "$ns"
  record link "wt$tag${k}h"
  echo 1 > "/proc/sys/net/ipv6/conf/wt$tag${k}h/disable_ipv6"
  ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6'
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$subnet.$k/24" dev eth0
  ip -n "$ns" link set eth0 up
  if [ "$impaired" = yes ]; then
    # The relay copies frames as they are: a checksum left to the "hardware"
    # (a veth's offload) would arrive unfinished, so the host computes its own.
    ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null
    # eth0 <-> wtTAGKh ~relay~ wtTAGKr <-> wtTAGKb (on the bridge)
    ip link add "wt$tag${k}r" mtu "$mtu" type veth peer name "wt$tag${k}b" mtu "$mtu"
    record link "wt$tag${k}r"
    for l in "wt$tag${k}r" "wt$tag${k}b"; do echo 1 > "/proc/sys/net/ipv6/conf/$l/disable_ipv6"; done
    ip link set "wt$tag${k}b" master "$br" up
    ip link set "wt$tag${k}r" up
    ip link set "wt$tag${k}h" up
    python3 "$here/relay.py" "wt$tag${k}h" "wt$tag${k}r" "$delay" "$loss" "$mtu" </dev/null >"$dir/relay-h$k.log" 2>&1 &
    record pid $!
    record file "$dir/relay-h$k.log"
  else
    ip link set "wt$tag${k}h" master "$br" up
  fi
  { echo "TESTNET_NS_h$k=$ns"; echo "TESTNET_ADDR_h$k=$subnet.$k"; } >> "$dir/env"
done
record file "$dir/hosts"
record file "$dir/env"

# Ready when every host reaches every other (and every relay runs).
for k in $(seq "$n"); do
  for j in $(seq "$n"); do
    [ "$j" = "$k" ] && continue
    ok=no
    for _ in $(seq 50); do
      ip netns exec "$(nsname "h$k")" ping -c1 -W1 "$subnet.$j" >/dev/null 2>&1 && { ok=yes; break; }
    done
    [ $ok = yes ] || { echo "cluster.sh: h$k cannot reach h$j over the bridge" >&2; exit 1; }
  done
done
echo "cluster: $n hosts (h1..h$n, $subnet.1-$n/24), MTU $mtu, delay ${delay} ms, loss ${loss}% each way; hosts file $dir/hosts"
