#!/usr/bin/env bash
# A cluster of test hosts on this one machine: N network namespaces, each with
# its own address and name on a private subnet, joined by a bridge in the
# machine's namespace. Nothing routes that subnet anywhere else: the bridge has
# no address, the machine's namespace has no route to the subnet, and the
# hosts have no default route.
#
#   cluster.sh start DIR [N]        N hosts h1..hN (default 3) at 10.231.0.1..N
#   cluster.sh stop DIR             remove exactly what start made (recorded in DIR/made)
#   cluster.sh exec DIR HOST CMD... run CMD on HOST as the test user: $TESTNET_USER (a uid, or a
#                                   name that is also its group's), default wgns-test
#   cluster.sh root DIR HOST CMD... run CMD on HOST as root
#   cluster.sh link DIR HOST up|down   the host's link to the bridge
#   cluster.sh vanish DIR HOST      the host dies: every process in it is killed,
#                                   its namespace and link are removed
#   cluster.sh ns DIR HOST          print the host's network namespace (net:[INODE])
#   cluster.sh pid DIR HOST         print the pid of a process in the host (its keeper):
#                                   /proc/PID/net/ is the host's, nsenter -t PID enters it
#
# Knobs, read by start: TESTNET_MTU (1500; 9000; 2044 as IPoIB datagram mode),
# TESTNET_DELAY_MS and TESTNET_LOSS_PCT (each way, on every host's link: a
# relay process in the machine's namespace between the host's link and the
# bridge delays and drops frames, since this kernel has no sch_netem).
#
# Each host's network (and UTS: its hostname is hK) namespace is held by a keeper process (`sleep`, named
# wgns-TAG-hK) rather than a mount in /run/netns: the machine's mount table
# never changes (tests elsewhere count its mounts). DIR/hosts is the
# cluster's hosts file; `exec` and `root` run CMD in a private mount namespace
# where it is /etc/hosts (with a resolv.conf without servers, an
# /etc/hostname of hK, and the host's own /sys), as `ip netns exec` does.
# DIR/env gives TESTNET_ADDR_h1=... TESTNET_HOSTS=...
# Needs root, iproute2, and python3 and ethtool for the relay.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { echo "usage: cluster.sh start DIR [N] | stop DIR | exec|root DIR HOST CMD... | link DIR HOST up|down | vanish DIR HOST | ns|pid DIR HOST" >&2; exit 64; }
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage
subnet=10.231.0

# The namespace names are unique to DIR, so that clusters of several runs
# can exist at once.
tag=$(printf '%s' "$(cd "$dir" 2>/dev/null && pwd || echo "$dir")" | sha1sum | cut -c1-6)
nsname() { echo "wgns-$tag-$1"; }
# The keeper's pid of host $1, from DIR/made.
keeper() { awk -v h="$1" '$1 == "keeper" && $2 == h { print $3 }' "$dir/made" 2>/dev/null | tail -1; }
# Every process whose network namespace is $1 (net:[INODE]). One ls, not a
# readlink a process: under the VM's TCG each of those costs tens of ms.
ns_pids() {
  ls -l /proc/[0-9]*/ns/net 2>/dev/null | awk -v n="$1" '$NF == n { split($(NF - 2), a, "/"); print a[3] }'
  return 0
}

record() { echo "$*" >> "$dir/made"; }

# Removes what DIR/made lists, last made first; safe to run twice.
stop() {
  [ -f "$dir/made" ] || return 0
  local kind name pids
  tac "$dir/made" | while read -r kind name; do
    case "$kind" in
      pid) kill -9 "$name" 2>/dev/null || true ;;
      keeper)
        # Every process still in the host dies with it (its keeper last).
        local k=${name#* } net
        net=$(readlink "/proc/$k/ns/net" 2>/dev/null) || continue
        [ "$(cat "/proc/$k/comm" 2>/dev/null)" = sleep ] || continue
        pids=$(ns_pids "$net")
        [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true ;;
      link) ip link del "$name" 2>/dev/null || true ;;
      file) rm -f "$name" ;;
      dir) rmdir "$name" 2>/dev/null || true ;;
    esac
  done
  rm -f "$dir/made"
}

# The keeper's pid of host $1, or a one-line error.
host_pid() {
  local h=${1:-} k
  k=$(keeper "$h")
  [ -n "$h" ] && [ -n "$k" ] && [ -e "/proc/$k/ns/net" ] || { echo "cluster.sh: no host ${h:-(none given)} in $dir" >&2; exit 1; }
  echo "$k"
}

case "$cmd" in
stop) stop; exit 0 ;;
ns) readlink "/proc/$(host_pid "${3:-}")/ns/net"; exit 0 ;;
pid) host_pid "${3:-}"; exit 0 ;;
exec|root)
  k=$(host_pid "${3:-}"); h=$3; shift 3
  [ "${1:-}" = -- ] && shift
  user=()
  u=${TESTNET_USER:-wgns-test}
  # setpriv by its path: a busybox sh (the VM's) would run its own applet,
  # which has no --reuid.
  [ "$cmd" = exec ] && user=("$(command -v setpriv)" --reuid="$u" --regid="$u" --clear-groups env HOME=/tmp)
  # A private mount namespace (slave: nothing goes back to the machine's)
  # with the cluster's /etc files and this host's /sys.
  exec nsenter -t "$k" -n -u -- unshare -m --propagation slave -- sh -c '
    mount --bind "$1/hosts" /etc/hosts && mount --bind "$1/resolv.conf" /etc/resolv.conf &&
      mount --bind "$1/hostname-$2" /etc/hostname && umount -l /sys && mount -t sysfs sysfs /sys || exit 125
    shift 2; exec "$@"' sh "$dir" "$h" "${user[@]}" "$@" ;;
link)
  k=$(host_pid "${3:-}")
  case "${4:-}" in up|down) ;; *) usage ;; esac
  nsenter -t "$k" -n ip link set eth0 "$4"; exit 0 ;;
vanish)
  net=$(readlink "/proc/$(host_pid "${3:-}")/ns/net")
  # Killed until none is left: a process may fork while we kill.
  for _ in 1 2 3 4 5; do
    pids=$(ns_pids "$net")
    [ -n "$pids" ] || break
    kill -9 $pids 2>/dev/null || true
    sleep 0.1
  done
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
[ "$(id -u)" = 0 ] || { echo "cluster.sh: must run as root (it makes network namespaces and links)" >&2; exit 1; }
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
record file "$dir/hosts"
{ echo "TESTNET_HOSTS=\"$(seq -f 'h%g' -s ' ' "$n")\""; echo "TESTNET_MTU=$mtu"; } > "$dir/env"
record file "$dir/env"

echo "# the test cluster has no DNS server" > "$dir/resolv.conf"
record file "$dir/resolv.conf"
for k in $(seq "$n"); do
  ns=$(nsname "h$k")
  # Its own network and UTS namespaces: a node has its own name (wgns hub
  # advertises it), which the hosts file resolves.
  unshare -n -u bash -c 'hostname "$1" && exec -a "$0" sleep infinity' "$ns" "h$k" </dev/null >/dev/null 2>&1 &
  pid=$!
  record keeper "h$k" "$pid"
  for _ in $(seq 100); do [ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/$$/ns/net)" ] && break; sleep 0.01; done
  inside() { nsenter -t "$pid" -n "$@"; }
  echo "h$k" > "$dir/hostname-h$k"
  record file "$dir/hostname-h$k"
  # The host's end (in the machine's namespace) is wtTAGKh; inside it is eth0.
  ip link add "wt$tag${k}h" mtu "$mtu" type veth peer name eth0 mtu "$mtu" netns "$pid"
  record link "wt$tag${k}h"
  echo 1 > "/proc/sys/net/ipv6/conf/wt$tag${k}h/disable_ipv6"
  inside sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6'
  inside ip link set lo up
  inside ip addr add "$subnet.$k/24" dev eth0
  inside ip link set eth0 up
  if [ "$impaired" = yes ]; then
    # The relay copies frames as they are: a checksum left to the "hardware"
    # (a veth's offload) would arrive unfinished, so the host computes its own.
    inside ethtool -K eth0 tx off >/dev/null
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
  echo "TESTNET_ADDR_h$k=$subnet.$k" >> "$dir/env"
done

# Ready when every host reaches every other (and every relay runs).
for k in $(seq "$n"); do
  for j in $(seq "$n"); do
    [ "$j" = "$k" ] && continue
    ok=no
    for _ in $(seq 50); do
      nsenter -t "$(keeper "h$k")" -n ping -c1 -W1 "$subnet.$j" >/dev/null 2>&1 && { ok=yes; break; }
    done
    [ $ok = yes ] || { echo "cluster.sh: h$k cannot reach h$j over the bridge" >&2; exit 1; }
  done
done
echo "cluster: $n hosts (h1..h$n, $subnet.1-$n/24), MTU $mtu, delay ${delay} ms, loss ${loss}% each way; hosts file $dir/hosts"
