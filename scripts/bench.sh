#!/usr/bin/env bash
# Benchmarks (`make bench`). Each section prints a table with ratios.
#   scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Start-up natively: scripts/bench/startup.sh ------------------------------
# `wgns showconf wg0` against `wg showconf wg0` of a peerless wireguard-go
# device (hyperfine -N --warmup 20) and the binary's size; BENCH_BEFORE_BIN
# adds another wgns build to both.

# --- Kernel WireGuard in a VM: wgns against wireguard-tools -----------------
# One QEMU (TCG) boot; in it, showconf of a peerless device (start-up plus one
# round trip, BENCH_REPS + 2 runs each), setconf of 10,000 peers and of one peer with
# 10,000 allowed IPs into fresh devices (wg and wgns alternating, BENCH_REPS
# runs each, default 3), and `wgns show --json` (and `wgns show all dump`)
# against `wg show all dump` on one 10,000-peer device (BENCH_REPS + 2 runs
# each), and `wgns check` of the two big configs (parsing alone,
# no wg counterpart). Figures are the median run; ratio = wgns / wg (below 1:
# wgns faster). Then `wgns up --backend kernel --carrier slirp4netns CONF --
# true` against scripts/bench/pipeline-kernel.sh (the same by hand), as an
# unprivileged user, BENCH_UP_REPS runs each (default 15), and wgns up -v's
# step timings once. Last, one hop of throughput to a kernel WireGuard peer in
# the guest: BENCH_TP_MIB MiB (default 8) BENCH_TP_REPS times (default 3)
# from a job on kernel WireGuard through slirp4netns, through pasta, and on
# the builtin backend (--carrier none), MB/s and builtin / each carrier
# (BENCH_TP_ONLY=1: only this part).
bench_vm() {
    source scripts/vm/lib.sh
    mkdir -p "$VM_CACHE"
    vm_kernel
    vm_build_wgns
    local work log
    work=$(mktemp -d "$VM_CACHE/bench.XXXXXX")
    trap 'rm -rf "$work"' RETURN
    bash scripts/vm/gen-configs.sh "$work/data"
    vm_initramfs "$work/initrd.cpio" "$VM_GUEST/bench.sh" "$work/data"
    log=$work/console.log
    # The run counts reach the guest script as environment (see vm_boot).
    local VM_APPEND="${VM_APPEND:-}${BENCH_REPS:+ BENCH_REPS=$BENCH_REPS}${BENCH_UP_REPS:+ BENCH_UP_REPS=$BENCH_UP_REPS}${BENCH_TP_MIB:+ BENCH_TP_MIB=$BENCH_TP_MIB}${BENCH_TP_REPS:+ BENCH_TP_REPS=$BENCH_TP_REPS}${BENCH_TP_ONLY:+ BENCH_TP_ONLY=$BENCH_TP_ONLY}"
    local t1 t2 ok=yes
    t1=$(date +%s.%N)
    vm_boot "$work/initrd.cpio" "$log" "${VM_TIMEOUT:-420}" || ok=no
    t2=$(date +%s.%N)
    cp "$log" "$VM_CACHE/bench-console.log"
    echo
    echo "Kernel WireGuard (QEMU TCG, $VM_KVER), median of runs, milliseconds:"
    tr -d '\r' <"$log" | sed 's/^[^@]*@@/@@/' | awk -v want_tp=$((${BENCH_TP_MIB:-8} * 1048576)) -v ok="$ok" -v wall="$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }')" '
        function median(list,    n, a, i, j, t) {
            n = split(list, a, " ")
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        /^@@VM-BOOTED/ { booted = substr($2, 8) }
        /^@@BENCH / {
            if (!($2 in seen)) { seen[$2] = 1; order[++ncase] = $2 }
            if ($3 == "pipeline") up[$2] = 1
            if ($5 == "failed") failed[$2, $3] = 1
            else runs[$2, $3] = runs[$2, $3] " " ($5 / 1000)
        }
        /^@@BENCH-ERR / || /^@@BENCH-NOTE / { sub(/^@@BENCH-[A-Z]+ /, "  "); if (!($0 in noted)) { noted[$0] = 1; notes = notes $0 "\n" } }
        # @@BENCH-TP CASE RUN BYTES MICROSECONDS: MB/s (10^6 bytes) of each run.
        /^@@BENCH-TP / {
            if (!($2 in tpseen)) { tpseen[$2] = 1; tporder[++ntp] = $2 }
            if ($5 == "failed" || $4 + 0 < want_tp) tpfailed[$2] = 1
            else tpruns[$2] = tpruns[$2] " " ($4 / $5)
        }
        /^@@BENCH-STEP / { sub(/^@@BENCH-STEP /, "  "); steps = steps $0 "\n" }
        # cell(CASE, TOOL): the median, "failed" or "-"; sets m[TOOL]
        function cell(c, t) {
            m[t] = ((c, t) in runs && !((c, t) in failed)) ? median(runs[c, t]) : ""
            return ((c, t) in failed) ? "failed" : (m[t] == "" ? "-" : sprintf("%.1f", m[t]))
        }
        END {
            if (ncase) printf "%-28s %10s %10s %8s\n", "case", "wg", "wgns", "wgns/wg"
            for (i = 1; i <= ncase; i++) {
                c = order[i]
                if (c in up) continue
                ws = cell(c, "wg"); ns = cell(c, "wgns")
                printf "%-28s %10s %10s %8s\n", c, ws, ns, (m["wg"] != "" && m["wgns"] != "" && m["wg"] > 0 ? sprintf("%.2f", m["wgns"] / m["wg"]) : "-")
            }
            # wgns up against the shell pipeline, in the host section'"'"'s style.
            for (i = 1; i <= ncase; i++) {
                c = order[i]
                if (!(c in up)) continue
                if (!header++) {
                    printf "\nwgns up CONF -- true versus the shell pipeline (kernel backend, as uid 1000 in the VM), median ms:\n"
                    printf "%-28s %10s %10s %8s %6s\n", "case", "pipeline", "wgns", "ratio", "runs"
                }
                ps = cell(c, "pipeline"); ns = cell(c, "wgns")
                printf "%-28s %10s %10s %8s %6d\n", c, ps, ns, (m["pipeline"] != "" && m["wgns"] != "" && m["wgns"] > 0 ? sprintf("%.2fx", m["pipeline"] / m["wgns"]) : "-"), split(runs[c, "wgns"], tmp, " ")
            }
            if (header) print "(ratio = pipeline / wgns: above 1 means wgns is faster)"
            if (steps != "") printf "wgns up -v, one run (kernel backend, slirp4netns):\n%s", steps
            if (ntp) {
                printf "\nOne hop to a kernel WireGuard peer in the VM (%d MiB per run, job -> peer), median MB/s:\n", want_tp / 1048576
                for (i = 1; i <= ntp; i++) {
                    c = tporder[i]
                    tp[c] = (c in tpfailed || !(c in tpruns)) ? "" : median(tpruns[c])
                    printf "%-28s %10s\n", c, tp[c] == "" ? "failed" : sprintf("%.1f", tp[c])
                }
                for (i = 1; i <= ntp; i++) {
                    c = tporder[i]
                    if (c == "builtin" || tp[c] == "" || tp["builtin"] == "") continue
                    printf "builtin / %-18s %9.2fx\n", c, tp["builtin"] / tp[c]
                }
            }
            printf "%s", notes
            printf "VM: booted in %ss (guest uptime), whole VM run %ss\n", booted, wall
            if (ok != "yes") print "VM: did not finish (see the console log)"
        }'
    [ "$ok" = yes ]
}

# Each section runs even if an earlier one failed; the exit status says
# whether all of them worked.
status=0
# Every section measures the binary users are told to install: the portable
# release build (scripts/build-static.sh, scratch path $VM_SCRATCH or
# .build-static), built once.
if [ -z "${WGNS_BIN:-}" ]; then
    WGNS_BIN=$(bash scripts/build-static.sh --scratch-path "${VM_SCRATCH:-.build-static}" | tail -n1)
fi
export WGNS_BIN
# BENCH_VM_ONLY=1: the VM section alone (with BENCH_TP_ONLY=1 too: only its
# throughput part).
if [ -n "${BENCH_VM_ONLY:-}" ]; then bench_vm; exit; fi
bash scripts/bench/startup.sh || { echo "bench: the start-up section failed" >&2; status=1; }
bench_vm || { echo "bench: the VM section failed" >&2; status=1; }
bash scripts/bench/up.sh || { echo "bench: the wgns up section failed" >&2; status=1; }
bash scripts/bench/vpn.sh || { echo "bench: the per-job VPN section failed" >&2; status=1; }
bash scripts/bench/cluster.sh || { echo "bench: the test cluster section failed" >&2; status=1; }
# The encrypted path alone: one hop across the test cluster per backend and
# carrier, against Debian 12's and 13's wireguard-go to themselves.
bash scripts/bench/dataplane.sh || { echo "bench: the data plane section failed" >&2; status=1; }
# --- Cold starts on a fresh test cluster: scripts/bench/cold-start.sh ---------
# BENCH_COLD_RUNS (default 100) fresh clusters per carrier and backend: hub on
# h1, two members started together; the time to each first answered ping
# (member to hub, member to member): min/median/p90/max and the count over 1 s.
bash scripts/bench/cold-start.sh || { echo "bench: the cold-start section failed" >&2; status=1; }
# --- The kill -9 matrix: scripts/bench/kill9.sh --------------------------------
# SIGKILL to each process of a running `wgns up` (BENCH_KILL9_RUNS, default 100,
# per process and carrier): runs that left a process, a namespace, a file, or
# let a marked datagram out in the clear.
bash scripts/bench/kill9.sh || { echo "bench: the kill -9 section failed" >&2; status=1; }
# --- Hub restarts: scripts/bench/hub-restart.sh ------------------------------
# A member keeps running while its hub is restarted 20 times (picked port and
# fixed port): the time from the new hub's "up" to the first answered ping.
bash scripts/bench/hub-restart.sh || { echo "bench: the hub-restart section failed" >&2; status=1; }
# --- The mesh: scripts/bench/mesh.sh -------------------------------------------
# Member -> member throughput across the test cluster, star against mesh, and
# the time from the last member's start to every pair direct.
bash scripts/bench/mesh.sh || { echo "bench: the mesh section failed" >&2; status=1; }
exit "$status"
