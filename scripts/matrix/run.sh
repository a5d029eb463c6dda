#!/usr/bin/env bash
# The version matrix: `wgns up` in the userlands a cluster will have, with
# each carrier and wireguard-go found there, to a wireguard-go peer on this
# host, carrying a ping and a TCP upload, leaving nothing behind.
#
#   scripts/matrix/run.sh [PATTERN]    only cells whose name matches PATTERN (ERE)
#
# Userlands: Debian 12 is this host; Debian 11 and 13 are debootstrap
# --variant=minbase roots, made once (about 40 s each) and kept in
# $MATRIX_CACHE (default matrix-cache/, gitignored), entered with bubblewrap
# as the unprivileged test user (bwrap pivots into the root, so user
# namespaces still work inside; a chroot would forbid them). Debian 11 has no
# wireguard-go package: its cells borrow this host's (Debian 12's, which
# needs glibc 2.34: it comes with its own loader and libc, see below). The peer always runs on the host (pasta forwarding its UDP port),
# the job's endpoint is 10.0.2.2 with --host-loopback: all traffic stays on
# this machine.
#
# Kernel WireGuard on Debian 11's, 12's and 13's kernels is the VM's part
# (scripts/vm/test.sh with VM_KERNEL_SUITE).
#
# Prints one line per cell and "N passed, N failed"; exits non-zero on any
# failure. Environment: WGNS_BIN (the binary; default scripts/build-static.sh's
# fully static one, as scripts/test.sh and the VM use),
# MATRIX_CACHE, MATRIX_MIRROR (Debian mirror for debootstrap; default: the
# one this machine's apt uses for its own release),
# MATRIX_BYTES (upload size, default 4000000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
filter=${1:-}
source scripts/host-setup.sh
PATH=$PATH:/usr/sbin:/sbin
cache=${MATRIX_CACHE:-$repo/matrix-cache}
host_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
mirror=${MATRIX_MIRROR:-$(apt-get indextargets --format '$(SITE) $(RELEASE)' 2>/dev/null | awk -v r="$host_suite" '$2 == r { print $1; exit }')}
bytes=${MATRIX_BYTES:-4000000}
t_start=$(date +%s.%N)
die() { echo "matrix: $*" >&2; exit 1; }
command -v bwrap >/dev/null || die "bwrap is not installed (apt-get install bubblewrap)"

# A userland root for SUITE with PACKAGES, made once. The folder's name holds
# a hash of the package list, so that changing the list makes a new root.
root_for() {
    local suite=$1 packages=$2 key dir
    key=$(printf '%s %s' "$suite" "$packages" | sha256sum | cut -c1-10)
    dir=$cache/$suite-$key
    if [ ! -f "$dir/.done" ]; then
        [ "$(id -u)" = 0 ] || die "no cached $suite root in $cache, and making one needs root (debootstrap)"
        command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
        echo "matrix: debootstrap $suite ($packages), once" >&2
        rm -rf "$dir" "$dir.tmp"
        mkdir -p "$cache"
        # shellcheck disable=SC2086 # no mirror: debootstrap's own default
        debootstrap --variant=minbase --include="$packages" "$suite" "$dir.tmp" $mirror >"$cache/$suite.log" 2>&1 \
            || die "debootstrap $suite failed (see $cache/$suite.log)"
        mv "$dir.tmp" "$dir"
        touch "$dir/.done"
    fi
    echo "$dir"
}

# Version of PACKAGE installed in ROOT ("" if none).
pkg_version() { dpkg-query --admindir="$1/var/lib/dpkg" -W -f '${Version}' "$2" 2>/dev/null || true; }

if [ -n "${WGNS_BIN:-}" ]; then
    bin=$WGNS_BIN
else
    bin=$(bash scripts/build-static.sh | tail -n1)
fi
[ -x "$bin" ] || die "no wgns binary at $bin"

deb11=$(root_for bullseye slirp4netns,iputils-ping)
deb13=$(root_for trixie slirp4netns,passt,wireguard-go,iputils-ping)
[ -x /usr/bin/wireguard-go ] || die "this host has no /usr/bin/wireguard-go (Debian 12's, also lent to Debian 11)"
# Debian 12's wireguard-go for Debian 11's root: it needs glibc 2.34, so it
# goes in with this host's loader and libc beside it, started by a small
# wrapper (which wgns does not recognise as wireguard-go's code: it lets it
# make its own TUN device, the path for any unknown build).
lent=$deb11/opt/wgns-lent
if [ "$(id -u)" = 0 ]; then
    rm -rf "$lent" && mkdir -p "$lent"
    cp -L /usr/bin/wireguard-go /lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/libc.so.6 "$lent/"
    printf '#!/bin/sh\nexec /opt/wgns-lent/ld-linux-x86-64.so.2 --library-path /opt/wgns-lent /opt/wgns-lent/wireguard-go "$@"\n' \
        >"$deb11/usr/local/bin/wireguard-go"
    chmod 0755 "$deb11/usr/local/bin/wireguard-go"
fi
[ -x "$lent/wireguard-go" ] || die "Debian 12's wireguard-go is not in $lent (run once as root)"

work=$(mktemp -d /tmp/wgns-matrix.XXXXXX)
chmod 0755 "$work"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
cp "$bin" "$work/wgns"
# The upload's two sides, the same as every test's (Tests/jobs/).
cp "$repo/Tests/jobs/upload-recv" "$repo/Tests/jobs/upload-send" "$work/"
chmod 0755 "$work/wgns"
W=$work/wgns

pass=0 fail=0
# A cell's job, run by bash in the userland under test (bash and coreutils,
# no python): ping the peer, then upload BYTES random bytes to it, checked
# end to end (upload-send). Arguments: DIR BYTES.
job='ping -c 2 -W 5 10.99.0.1 || { echo "job: ping failed"; exit 10; }
head -c "$2" /dev/urandom >"$1/data" && exec bash "$1/upload-send" 10.99.0.1 5000 "$1/data"'
# Live processes (not zombies) of session SID.
session_processes() {
    # A process may go while cat reads: that is no error here.
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v s="$1" '{ pid = $1; sub(/^.*\) /, ""); if ($4 == s && $1 != "Z") print pid }'
}

# One cell: NAME USERLAND ROOT CARRIER WIREGUARD_GO_LABEL [BWRAP ARGS...]
# ROOT "/" runs the job on the host itself.
cell() {
    local name=$1 root=$2 carrier=$3 label=$4
    shift 4
    [ -z "$filter" ] || [[ $name =~ $filter ]] || return 0
    local dir=$work/$name t0 t1 port jobkey peerkey why=
    t0=$(date +%s.%N)
    mkdir -m 0755 "$dir"
    port=$(( (RANDOM % 19000) + 40000 ))
    jobkey=$("$W" genkey) peerkey=$("$W" genkey)
    umask 077
    cat >"$dir/job.conf" <<EOF
[Interface]
PrivateKey = $jobkey
Address = 10.99.0.2/24

[Peer]
PublicKey = $(echo "$peerkey" | "$W" pubkey)
AllowedIPs = 10.99.0.0/24
Endpoint = 10.0.2.2:$port
PersistentKeepalive = 25
EOF
    cat >"$dir/peer.conf" <<EOF
[Interface]
PrivateKey = $peerkey
ListenPort = $port
Address = 10.99.0.1/24

[Peer]
PublicKey = $(echo "$jobkey" | "$W" pubkey)
AllowedIPs = 10.99.0.2/32

[Namespace]
Carrier = pasta
ForwardUDP = $port
EOF
    umask 022
    chown -R "$TEST_USER" "$dir"
    local envs=(env -i "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    # The peer: this host's userland, in a session of its own.
    mkfifo "$dir/ready" && chown "$TEST_USER" "$dir/ready"
    (cd "$dir" && exec_as_test_user "${envs[@]}" HOME="$dir" setsid bash -c 'echo $$ >peer.sid; exec "$@"' _ \
        "$W" up --backend wireguard-go peer.conf -- bash "$work/upload-recv" 5000 ready) >"$dir/peer.out" 2>&1 &
    local peer=$! x
    # Opened read-write, so that the open itself never blocks on a dead peer.
    exec 5<>"$dir/ready"
    if ! read -r -t 30 x <&5; then why="the peer did not start: $(tr '\n' ' ' <"$dir/peer.out")"; fi
    # The job, in the userland under test, in a session of its own.
    local jrc=0 jw=$dir jdir=$dir
    local wrap=()
    if [ "$root" != / ]; then
        jdir=/mnt jw=/mnt/wgns
        cp "$W" "$dir/wgns"
        cp "$work/upload-send" "$dir/"
        wrap=(bwrap --bind "$root" / --proc /proc --dev /dev --dev-bind /dev/net/tun /dev/net/tun
              --bind "$dir" /mnt --chdir /mnt "$@")
    else
        jw=$W
        cp "$work/upload-send" "$dir/"
    fi
    if [ -z "$why" ]; then
        (cd "$dir" && exec_as_test_user "${envs[@]}" HOME="$jdir" TMPDIR="$jdir" setsid bash -c 'echo $$ >job.sid; exec "$@"' _ \
            "${wrap[@]}" "$jw" up -v --backend userspace --carrier "$carrier" --host-loopback "$jdir/job.conf" \
            -- bash -c "$job" _ "$jdir" "$bytes") >"$dir/job.out" 2>"$dir/job.err" || jrc=$?
        # A failed job leaves the peer waiting for its client: stop it.
        [ "$jrc" = 0 ] || kill -TERM "$peer" 2>/dev/null || true
        if [ "$jrc" != 0 ]; then
            why="wgns up exited $jrc: $(grep -v '^  *[0-9.]* ms' "$dir/job.err" | tail -n 3 | tr '\n' ' ') $(tail -n 2 "$dir/job.out" | tr '\n' ' ')"
        elif ! grep -q 'checksums match' "$dir/job.out"; then
            why="the job did not report a transfer: $(tr '\n' ' ' <"$dir/job.out")"
        elif ! grep -q 'backend wg0: userspace (wireguard-go)' "$dir/job.err"; then
            why="wgns -v does not name the userspace backend"
        fi
    fi
    exec 5<&-
    local prc=0
    wait "$peer" || prc=$?
    if [ -z "$why" ] && [ "$prc" != 0 ]; then why="the peer exited $prc: $(tail -n 3 "$dir/peer.out" | tr '\n' ' ')"; fi
    # Nothing left behind: no live process in either session, no pid FIFO folder.
    local s left
    for s in job peer; do
        [ -f "$dir/$s.sid" ] || continue
        left=$(session_processes "$(cat "$dir/$s.sid")" | tr '\n' ' ')
        if [ -z "$why" ] && [ -n "$left" ]; then why="left behind by the $s: $(for p in $left; do tr '\0' ' ' </proc/$p/cmdline 2>/dev/null; echo -n '; '; done)"; fi
    done
    if [ -z "$why" ] && ls -d "$dir"/wgns-pasta.* >/dev/null 2>&1; then why="left behind: $(ls -d "$dir"/wgns-pasta.*)"; fi
    t1=$(date +%s.%N)
    local took
    took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1fs", b - a }')
    if [ -z "$why" ]; then
        printf 'ok    %-24s %-34s %-44s %s\n' "$name" "$carrier ${carrier_version}" "$label" "$took"
        pass=$((pass + 1))
    else
        printf 'FAIL  %-24s %-34s %-44s %s\n      %s\n' "$name" "$carrier ${carrier_version}" "$label" "$took" "$why"
        fail=$((fail + 1))
    fi
}

wggo12="wireguard-go $(pkg_version / wireguard-go)"
wggo13="wireguard-go $(pkg_version "$deb13" wireguard-go)"

carrier_version=$(pkg_version "$deb11" slirp4netns)
cell debian11-slirp4netns "$deb11" slirp4netns "$wggo12 (Debian 12's, lent)"
carrier_version=$(pkg_version / slirp4netns)
cell debian12-slirp4netns / slirp4netns "$wggo12"
carrier_version=$(pkg_version / passt)
cell debian12-pasta / pasta "$wggo12"
carrier_version=$(pkg_version "$deb13" slirp4netns)
cell debian13-slirp4netns "$deb13" slirp4netns "$wggo13"
carrier_version=$(pkg_version "$deb13" passt)
cell debian13-pasta "$deb13" pasta "$wggo13"

awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "matrix: %.1fs\n", b - a }' >&2
echo "$pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
