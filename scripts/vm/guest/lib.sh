# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# Guest-side helpers for the VM tests (busybox sh). Sourced by /vm/main.sh and
# by every file in /vm/tests.
#
# A test file declares its tests:
#   run_test NAME FUNC [ARGS]        FUNC as root, in the VM's own namespaces
#   run_test_user NAME FUNC [ARGS]   FUNC as uid 1000 inside `unshare -U -r -n`
# NAME is one word (e.g. root/setconf/peers-1000). FUNC runs in a subshell with `set -e` in a fresh working directory; it
# fails by exiting non-zero (see fail, same_file). Results go to the console:
#   @@TEST PASS|FAIL SECONDS NAME
#   @@LOG NAME line          (the end of a failed test's output)
#
# Busybox here runs its own applets before PATH: call the real util-linux
# and iproute2 tools by absolute path ($IP, $UNSHARE, $SETPRIV).

IP=/usr/sbin/ip
UNSHARE=/usr/bin/unshare
SETPRIV=/usr/bin/setpriv
PING=/usr/bin/ping
DATA=/vm/data
TEST_UID=1000

fail() { echo "FAIL: $*" >&2; exit 1; }

# as_user COMMAND...: run as uid $TEST_UID with no terminal (as in CI).
as_user() { $SETPRIV --reuid=$TEST_UID --regid=$TEST_UID --clear-groups env HOME=/home/user "$@" </dev/null; }

# job_conf ENDPOINT: on stdout, a job's config with a fresh key, address
# 10.97.0.2/24 and one peer (another fresh key) at ENDPOINT for 10.97.0.0/24.
job_conf() {
    cat <<EOF
[Interface]
PrivateKey = $(wg genkey)
Address = 10.97.0.2/24

[Peer]
PublicKey = $(wg genkey | wg pubkey)
Endpoint = $1
AllowedIPs = 10.97.0.0/24
EOF
}

# refused CHECK: on a VM that the caller has broken, `wgns doctor` and
# `wgns up` (./job.conf, slirp4netns) as the user, then the caller's `undo`.
# Doctor must exit 1 with a line `fail CHECK...`; wgns up must fail with one
# line; no process of the user may be left. Their outputs stay in doctor.out
# and up.err for the caller's own checks of what they said.
refused() {
    as_user wgns doctor >doctor.out 2>&1 && drc=0 || drc=$?
    as_user wgns up --carrier slirp4netns "$PWD/job.conf" -- true >up.out 2>up.err && urc=0 || urc=$?
    undo
    cat doctor.out up.err
    [ "$drc" = 1 ] || fail "doctor exited $drc, not 1"
    grep -q "^fail $1" doctor.out || fail "doctor does not fail '$1'"
    [ "$urc" != 0 ] || fail "wgns up succeeded"
    [ "$(grep -c . up.err)" = 1 ] || fail "wgns up said more than one line"
    no_leftovers "the refused wgns up"
}

# no_leftovers WHAT: fails if any process of uid $TEST_UID is still there.
no_leftovers() {
    sleep 0.2
    left=$(ps -o pid,user,args | awk '$2 == "user" || $2 == "1000"' | grep -v -e ' ps ' -e ' awk ' || true)
    [ -z "$left" ] || { echo "$left"; fail "processes left after $1 ended"; }
}

# same_file EXPECTED ACTUAL WHAT: byte-identical, or the first differences.
same_file() {
    if ! cmp -s "$1" "$2"; then
        echo "FAIL: $3 differs ($1 expected, $2 actual):" >&2
        diff "$1" "$2" 2>&1 | head -n 20 | cut -c 1-200 >&2
        exit 1
    fi
}

now() { cut -d' ' -f1 /proc/uptime; }

# A fresh WireGuard device: wg_new NAME
wg_new() { $IP link add "$1" type wireguard || fail "ip link add $1 type wireguard"; }

# Each device gets a name never used before in this VM (big devices are never
# deleted: that takes minutes under TCG).
fresh_dev() {
    n=$(($(cat /tmp/.devices 2>/dev/null || echo 0) + 1))
    echo "$n" >/tmp/.devices
    echo "${1:-wg}$n"
}

# wg's showconf with the ListenPort line replaced, so that devices set from
# per-side copies of one config (different ports) can be compared.
with_port() { sed "s/^ListenPort = .*/ListenPort = $2/" "$1"; }

_test_dir() {
    d=$(mktemp -d /tmp/t.XXXXXX)
    [ "$1" = user ] && chown "$TEST_UID:$TEST_UID" "$d"
    echo "$d"
}

_report() { # NAME RC START LOG
    t=$(awk -v a="$3" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
    if [ "$2" = 0 ]; then
        echo "@@TEST PASS ${t}s $1"
    else
        echo "@@TEST FAIL ${t}s $1"
        tail -n 25 "$4" | sed "s|^|@@LOG $1 |"
    fi
}

# _watched LOG COMMAND...: COMMAND in the background, killed after
# $VM_TEST_TIMEOUT seconds (default 120) so that one hung test cannot eat the
# whole VM run; returns its status.
_watched() {
    log=$1; shift
    "$@" >"$log" 2>&1 &
    pid=$!
    (sleep "${VM_TEST_TIMEOUT:-120}"; kill -KILL "$pid" 2>/dev/null) &
    watchdog=$!
    wait "$pid"; rc=$?
    kill "$watchdog" 2>/dev/null
    [ "$rc" = 137 ] && echo "FAIL: killed (SIGKILL; the limit is ${VM_TEST_TIMEOUT:-120}s)" >>"$log"
    return "$rc"
}

_in_dir() { cd "$1" || exit 1; shift; set -e; "$@"; }

# /vm/data/test-filter (from scripts/vm/test.sh PATTERN): run only the tests
# whose names match this extended regular expression.
# /vm/data/test-exclude: skip the tests whose names match this one.
_skip() {
    [ -n "$VM_RUN_ONE" ] && return 0
    [ -f "$DATA/test-exclude" ] && echo "$1" | grep -q -E -f "$DATA/test-exclude" && return 0
    [ -f "$DATA/test-filter" ] && ! echo "$1" | grep -q -E -f "$DATA/test-filter"
}

run_test() {
    _skip "$1" && return 0
    name=$1; shift
    d=$(_test_dir root); start=$(now)
    _watched "$d.log" _in_dir "$d" "$@"
    _report "$name" $? "$start" "$d.log"
}

run_test_user() {
    _skip "$1" && return 0
    name=$1; shift
    d=$(_test_dir user); start=$(now)
    _watched "$d.log" _in_dir "$d" $SETPRIV --reuid=$TEST_UID --regid=$TEST_UID --clear-groups \
        $UNSHARE -U -r -n /bin/sh /vm/run-one.sh "$VM_TEST_FILE" "$@"
    _report "$name" $? "$start" "$d.log"
}
