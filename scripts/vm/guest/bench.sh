# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# /vm/main.sh for scripts/bench.sh: wgns against wg on the kernel module, in
# one VM run. Lines on the console: @@BENCH CASE TOOL RUN MILLISECONDS
# (or @@BENCH CASE TOOL RUN failed). Fresh device names for every run; no
# device is ever deleted.
. /vm/lib.sh
cd /tmp || exit 1
: >/tmp/.devices
clock() { /usr/bin/date +%s%N; }
REPS=${BENCH_REPS:-3}

# timed CASE TOOL RUN COMMAND...: one timed run of COMMAND, output discarded.
timed() {
    c=$1 t=$2 r=$3; shift 3
    a=$(clock)
    if "$@" >/dev/null 2>/tmp/bench.err; then
        b=$(clock)
        echo "@@BENCH $c $t $r $(( (b - a) / 1000 ))"
    else
        echo "@@BENCH $c $t $r failed"
        head -n 3 /tmp/bench.err | sed 's/^/@@BENCH-ERR /'
    fi
}

# set_case CASE CONFIG: setconf of CONFIG into a fresh device, wg and wgns
# alternating (wg wgns, wgns wg, ...), REPS times each.
set_case() {
    i=1
    while [ "$i" -le "$REPS" ]; do
        for tool in $( [ $((i % 2)) = 1 ] && echo "wg wgns" || echo "wgns wg"); do
            dev=$(fresh_dev b); wg_new "$dev"
            with_port "$DATA/$2.conf" $((40000 + ${dev#b})) >"$dev.conf"
            timed "$1" "$tool" "$i" "$tool" setconf "$dev" "$dev.conf"
        done
        i=$((i + 1))
    done
}

# Start-up and one round trip: showconf of a device with no peer.
dev=$(fresh_dev b); wg_new "$dev"
with_port "$DATA/zero.conf" 39998 >zero.conf
wg setconf "$dev" zero.conf
i=1
while [ "$i" -le $((REPS + 2)) ]; do
    timed showconf-0-peers wg "$i" wg showconf "$dev"
    timed showconf-0-peers wgns "$i" wgns showconf "$dev"
    i=$((i + 1))
done

# Show: one device with 10,000 peers, alone in this network namespace, so that
# `wg show all dump` and `wgns show --json` read the same thing.
dev=$(fresh_dev b); wg_new "$dev"
with_port "$DATA/peers-10000.conf" 39999 >show.conf
wg setconf "$dev" show.conf
i=1
while [ "$i" -le $((REPS + 2)) ]; do
    timed show-10000-peers wg "$i" wg show all dump
    timed show-10000-peers wgns "$i" wgns show --json
    i=$((i + 1))
done
# Parsing alone (no wg counterpart): where wgns setconf spends its time.
timed parse-10000-peers wgns 1 wgns check show.conf
timed parse-10000-allowed-ips wgns 1 wgns check "$DATA/aips-10000.conf"
# Sanity: wgns read the whole device.
n=$(wgns show --json 2>/dev/null | jq "[.[].peers[]] | length" 2>/dev/null || echo "?")
echo "@@BENCH-NOTE wgns show --json saw $n peers (10000 expected)"

set_case setconf-10000-peers peers-10000
set_case setconf-10000-allowed-ips aips-10000
