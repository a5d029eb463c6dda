#!/usr/bin/env bash
# The shell pipeline that does by hand what
#   wgns up --carrier CARRIER --backend userspace CONF -- COMMAND
# does: unshare, the carrier with the options wgns gives it (slirp4netns:
# sandbox and seccomp on, readiness by --ready-fd, stop by --exit-fd; pasta:
# it returns once the namespace is set up, stop by kill),
# wireguard-go on a private /run, wg setconf, ip address/MTU/up, the command,
# then teardown (ip link del ends wireguard-go). The benchmark's reference.
#   pipeline.sh [--carrier slirp4netns|pasta] WG_CONF ADDRESS MTU COMMAND...
# WG_CONF is what `wg setconf` reads (wgns strip output).
set -euo pipefail
carrier=slirp4netns
if [ "${1:-}" = --carrier ]; then carrier=$2; shift 2; fi
conf=$1 addr=$2 mtu=$3
shift 3
d=$(mktemp -d)
child= slirp=
trap 'kill $child $slirp 2>/dev/null || true; rm -rf "$d"' EXIT
mkfifo "$d/ns" "$d/go" "$d/ready" "$d/exit"

unshare -Urnm --propagation private sh -c '
    echo > "$1/ns"
    read _ < "$1/go"
    mount -t tmpfs none /run
    ip link set lo up
    wireguard-go wg0 >/dev/null 2>&1
    wg setconf wg0 "$2"
    ip address add "$3" dev wg0
    ip link set wg0 mtu "$4" up
    shift 4
    "$@"; status=$?
    ip link del wg0
    exit $status' sh "$d" "$conf" "$addr" "$mtu" "$@" &
child=$!

read -r _ <"$d/ns"               # the namespaces exist now
if [ "$carrier" = pasta ]; then
    # The options wgns gives pasta; without --foreground it returns once
    # the namespace is configured, leaving itself in the background.
    pasta --config-net --quiet -a 10.0.2.100 -n 24 -g 10.0.2.2 --ns-ifname tap0 \
        --mtu 65520 --dns-forward 10.0.2.3 --no-map-gw -t none -u none -T none -U none \
        --netns "/proc/$child/ns/net" --userns "/proc/$child/ns/user" -P "$d/pasta.pid" >/dev/null 2>&1
    slirp=$(cat "$d/pasta.pid")
    echo go >"$d/go"
    status=0
    wait "$child" || status=$?
    # Stopped as wgns stops it, with SIGKILL, and waited for as wgns waits for
    # its carrier: until it has exited. It is not our child, so that is when
    # it is a zombie or gone (this host's init reaps orphans seconds late).
    kill -KILL "$slirp" 2>/dev/null || true
    while read -r _ _ state _ 2>/dev/null <"/proc/$slirp/stat" && [ "$state" != Z ]; do :; done
    child= slirp=
    exit $status
fi
exec 5<>"$d/exit"                # held open: slirp4netns runs until it is closed
slirp4netns --configure --mtu=65520 --disable-host-loopback --enable-sandbox --enable-seccomp \
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
