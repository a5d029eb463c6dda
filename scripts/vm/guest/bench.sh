# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# /vm/main.sh for scripts/bench.sh: wgns against wg on the kernel module, and
# `wgns up` with the kernel backend against the same work done by hand
# (/vm/pipeline-kernel.sh), in one VM run. Lines on the console:
#   @@BENCH CASE TOOL RUN MICROSECONDS   (or @@BENCH CASE TOOL RUN failed)
#   @@BENCH-STEP LINE                    (wgns up -v, once)
# Fresh device names for every run; no device is ever deleted.
. /vm/lib.sh
cd /tmp || exit 1
: >/tmp/.devices
REPS=${BENCH_REPS:-3}
UP_REPS=${BENCH_UP_REPS:-15}
TP_MIB=${BENCH_TP_MIB:-8}
TP_REPS=${BENCH_TP_REPS:-3}

# timed CASE TOOL RUN COMMAND...: one timed run of COMMAND, output discarded.
# /usr/bin/elapsed (guest/elapsed.c) times it: static and at a fixed address,
# it adds about 1 ms here, where GNU date added about 35 ms to every figure.
# With RUNAS=as_user the command (and its timer) runs as uid $TEST_UID.
timed() {
    c=$1 t=$2 r=$3; shift 3
    rm -f /tmp/bench.us
    if ${RUNAS:-} /usr/bin/elapsed /tmp/bench.us "$@" >/dev/null 2>/tmp/bench.err; then
        echo "@@BENCH $c $t $r $(cat /tmp/bench.us)"
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

# Throughput, one hop: a kernel WireGuard device of the VM (tN, 10.95.N.1) as
# the peer of a `wgns up` job (10.95.N.2, as uid 1000, root inside): the job's
# kernel WireGuard through slirp4netns and through pasta (endpoint 10.0.2.2,
# --host-loopback), and the builtin backend (--carrier none, endpoint
# 127.0.0.1). The job serves TP_MIB MiB of zeros on TCP (busybox nc -e dd), a fresh job for each of
# TP_REPS runs; the VM's side times each download (its nc ends when the job's dd
# does and every byte has arrived), so the data goes job -> peer, as a job's
# upload would. Lines: @@BENCH-TP CASE RUN BYTES MICROSECONDS.
tp_case() { # CASE BACKEND CARRIER ENDPOINT N [UP OPTIONS...]
    c=$1 backend=$2 carrier=$3 ep=$4 n=$5; shift 5
    d=$(mktemp -d /tmp/tp.XXXXXX); chown "$TEST_UID:$TEST_UID" "$d"
    K=$(fresh_dev t) port=$((54500 + n))
    wg genkey >"$d/k.key"; wg genkey >"$d/j.key"
    wg_new "$K"
    wg set "$K" listen-port "$port" private-key "$d/k.key" peer "$(wg pubkey <"$d/j.key")" allowed-ips "10.95.$n.2/32"
    $IP addr add "10.95.$n.1/24" dev "$K"; $IP link set "$K" up
    printf '[Interface]\nPrivateKey = %s\nAddress = 10.95.%s.2/24\n\n[Peer]\nPublicKey = %s\nEndpoint = %s:%s\nAllowedIPs = 10.95.%s.0/24\n' \
        "$(cat "$d/j.key")" "$n" "$(wg pubkey <"$d/k.key")" "$ep" "$port" "$n" >"$d/job.conf"
    chown "$TEST_UID:$TEST_UID" "$d/job.conf"; chmod 0600 "$d/job.conf"
    count=$((TP_MIB * 16))
    mkfifo "$d/hold"
    r=1
    while [ "$r" -le "$TP_REPS" ]; do
        # One job a run: it serves one download (its tunnel comes up untimed)
        # and stays until the VM's side has it all (a job that ended at once
        # would take its namespace, and what its socket still held, with it).
        # shellcheck disable=SC2086
        as_user wgns up --backend "$backend" --carrier "$carrier" --map-uid 0 --map-gid 0 "$@" "$d/job.conf" -- sh -c "
            $PING -c 1 -W 10 10.95.$n.1 >/dev/null || exit 1
            echo >$d/ready$r
            nc -l -p 5001 -e dd if=/dev/zero bs=65536 count=$count 2>/dev/null
            sleep 100" >"$d/up.out" 2>&1 &
        job=$!
        i=0
        until [ -s "$d/ready$r" ]; do
            i=$((i + 1))
            if [ $i -gt 600 ] || ! kill -0 "$job" 2>/dev/null; then break; fi
            sleep 0.1
        done
        # Until the job's nc listens (refused at once before that).
        t=0
        while rm -f "$d/tp.us" "$d/tp.out"; ! /usr/bin/elapsed "$d/tp.us" sh -c "timeout 60 nc 10.95.$n.2 5001 <>$d/hold >$d/tp.out" || [ ! -s "$d/tp.out" ]; do
            t=$((t + 1)); [ $t -gt 10 ] && break
            kill -0 "$job" 2>/dev/null || break
            sleep 0.3
        done
        if [ -s "$d/tp.out" ] && [ -s "$d/tp.us" ]; then
            echo "@@BENCH-TP $c $r $(wc -c <"$d/tp.out") $(cat "$d/tp.us")"
        else
            echo "@@BENCH-TP $c $r 0 failed"; head -n 3 "$d/up.out" | sed 's/^/@@BENCH-ERR /'
        fi
        kill "$job" 2>/dev/null
        wait "$job"
        r=$((r + 1))
    done
    rm -rf "$d"
}
tp_all() {
    tp_case kernel-slirp4netns kernel slirp4netns 10.0.2.2 1 --host-loopback
    tp_case kernel-pasta kernel pasta 10.0.2.2 2 --host-loopback
    tp_case builtin builtin none 127.0.0.1 3
}
if [ -n "${BENCH_TP_ONLY:-}" ]; then tp_all; return 0 2>/dev/null || exit 0; fi

# Start-up and one round trip: showconf of a device with no peer.
dev=$(fresh_dev b); wg_new "$dev"
with_port "$DATA/zero.conf" 39998 >zero.conf
wg setconf "$dev" zero.conf
# showconf_case CASE: REPS + 2 runs each.
showconf_case() {
    i=1
    while [ "$i" -le $((REPS + 2)) ]; do
        timed "$1" wg "$i" wg showconf "$dev"
        timed "$1" wgns "$i" wgns showconf "$dev"
        i=$((i + 1))
    done
}
showconf_case showconf-0-peers
# The same with address-space randomisation off. QEMU TCG translates guest
# code again wherever it runs at a new address, so with randomisation every
# run pays for translating all the code it executes (most of the figure
# above); without it, runs after the first reuse the translations, which is
# closer to what the work itself costs.
echo 0 >/proc/sys/kernel/randomize_va_space
showconf_case showconf-0-peers-no-aslr
echo 2 >/proc/sys/kernel/randomize_va_space

# Show: one device with 10,000 peers, alone in this network namespace, so that
# `wg show all dump` and `wgns show --json` (the issue's pair) or
# `wgns show all dump` read the same thing.
dev=$(fresh_dev b); wg_new "$dev"
with_port "$DATA/peers-10000.conf" 39999 >show.conf
wg setconf "$dev" show.conf
i=1
while [ "$i" -le $((REPS + 2)) ]; do
    timed show-10000-peers wg "$i" wg show all dump
    timed show-10000-peers wgns "$i" wgns show --json
    # The same output format on both sides.
    timed show-dump-10000-peers wg "$i" wg show all dump
    timed show-dump-10000-peers wgns "$i" wgns show all dump
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

# `wgns up --backend kernel --carrier slirp4netns CONF -- true` against
# /vm/pipeline-kernel.sh doing the same by hand, both as uid $TEST_UID,
# alternating (pipeline first on odd runs), UP_REPS runs each after one
# warm-up run each. The peer's endpoint is a TEST-NET address behind the VM's
# dummy eth0: nothing answers, and `true` sends nothing. wgns picks MTU 1420
# (eth0's 1500 - 80); the pipeline is given the same.
up=$(mktemp -d /tmp/up.XXXXXX)
chown "$TEST_UID:$TEST_UID" "$up"
cd "$up" || exit 1
job_conf 192.0.2.1:51820 >job.conf
wgns strip job.conf >job.wg
chown "$TEST_UID:$TEST_UID" job.conf job.wg && chmod 0600 job.conf job.wg
pipeline="sh /vm/pipeline-kernel.sh $up/job.wg 10.97.0.2/24 1420 10.97.0.0/24 true"
wgns_up="wgns up --carrier slirp4netns --backend kernel $up/job.conf -- true"
# up_case CASE: one warm-up run each, then UP_REPS timed runs each.
# shellcheck disable=SC2086  # $pipeline and $wgns_up are split into words on purpose
up_case() {
    timed "$1" pipeline 0 $pipeline >/dev/null
    timed "$1" wgns 0 $wgns_up >/dev/null
    i=1
    while [ "$i" -le "$UP_REPS" ]; do
        if [ $((i % 2)) = 1 ]; then
            timed "$1" pipeline "$i" $pipeline
            timed "$1" wgns "$i" $wgns_up
        else
            timed "$1" wgns "$i" $wgns_up
            timed "$1" pipeline "$i" $pipeline
        fi
        i=$((i + 1))
    done
}
RUNAS=as_user
up_case up-kernel-slirp4netns
# Without address-space randomisation (see showconf-0-peers-no-aslr): closer
# to what the work costs outside an emulator.
echo 0 >/proc/sys/kernel/randomize_va_space
up_case up-kernel-slirp4netns-no-aslr
echo 2 >/proc/sys/kernel/randomize_va_space
# Where wgns's time goes: its own step log, once.
as_user wgns up -v --carrier slirp4netns --backend kernel "$up/job.conf" -- true 2>&1 | sed 's/^/@@BENCH-STEP /'
RUNAS=
no_leftovers "the up benchmark" >/dev/null 2>&1 || echo "@@BENCH-NOTE processes of uid $TEST_UID left after the up benchmark"
cd /tmp || exit 1
# Last: the throughput (above), so that the figures before it stay as they were.
tp_all
