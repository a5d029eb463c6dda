#!/bin/sh
# The shell pipeline that does by hand what
#   wgns up --carrier slirp4netns --backend kernel CONF -- COMMAND
# does, with the kernel's WireGuard: unshare, slirp4netns (the same options
# wgns gives it: sandbox and seccomp on, readiness by --ready-fd, stop by
# --exit-fd), ip link add ... type wireguard, wg setconf, ip address/MTU/up,
# the route for AllowedIPs, the command, then teardown (the namespaces, and
# the device with them, end when the command does). The reference for the VM
# benchmark (scripts/vm/guest/bench.sh); the userspace one is pipeline.sh.
#   pipeline-kernel.sh WG_CONF ADDRESS MTU ROUTE COMMAND...
# WG_CONF is what `wg setconf` reads (wgns strip output). For busybox sh (the
# VM's) or bash (`read -n`). The tools are run by path, the first found in
# /usr/sbin, /usr/bin, /sbin, /bin, so that busybox's applets are not used.
set -eu
conf=$1 addr=$2 mtu=$3 route=$4
shift 4
tool() {
    for dir in /usr/sbin /usr/bin /sbin /bin; do
        [ -x "$dir/$1" ] && { echo "$dir/$1"; return; }
    done
    echo "pipeline-kernel.sh: no $1" >&2
    exit 1
}
UNSHARE=$(tool unshare) IP=$(tool ip) WG=$(tool wg) SLIRP=$(tool slirp4netns)
d=$(mktemp -d)
child= slirp=
trap 'kill $child $slirp 2>/dev/null || true; rm -rf "$d"' EXIT
mkfifo "$d/ns" "$d/go" "$d/ready" "$d/exit"

"$UNSHARE" -Urnm --propagation private /bin/sh -c '
    set -e
    echo > "$1/ns"
    read _ < "$1/go"
    "$2" link set lo up
    "$2" link add wg0 type wireguard
    "$3" setconf wg0 "$4"
    "$2" address add "$5" dev wg0
    "$2" link set wg0 mtu "$6" up
    "$2" route replace "$7" dev wg0
    shift 7
    "$@"' sh "$d" "$IP" "$WG" "$conf" "$addr" "$mtu" "$route" "$@" &
child=$!

read -r _ <"$d/ns"               # the namespaces exist now
exec 5<>"$d/exit"                # held open: slirp4netns runs until it is closed
"$SLIRP" --configure --mtu=65520 --disable-host-loopback --enable-sandbox --enable-seccomp \
    --ready-fd=3 --exit-fd=4 "$child" tap0 3>"$d/ready" 4<"$d/exit" 5>&- >/dev/null 2>&1 &
slirp=$!
read -r -n 1 _ <"$d/ready"       # slirp4netns writes "1", no newline
echo go >"$d/go"
status=0
wait "$child" || status=$?
exec 5>&-
wait "$slirp" || true
child= slirp=
exit $status
