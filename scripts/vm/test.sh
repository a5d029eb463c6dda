#!/usr/bin/env bash
# Kernel WireGuard tests: boots Debian kernels (QEMU, TCG) whose initramfs
# holds wgns, wg, busybox and the tests in scripts/vm/tests, runs them as root
# and as an unprivileged user in a user namespace, and prints each result.
# One boot per kernel: this machine's release's cloud kernel (Debian 12: 6.1)
# runs every test; Debian 11's (5.10) and 13's (6.12) run every test but the
# 10,000-peer scale ones (VM_OTHER_KERNELS_EXCLUDE), which test wgns's own
# netlink paging more than the kernel. The guest boots without the wireguard
# module (VM_DEFER_WIREGUARD=1): tests/01-autoload.sh has the kernel load it.
# Ends with "N passed, M failed"; exits non-zero if any test failed or a VM
# did not finish.
#   scripts/vm/test.sh [PATTERN]   only tests whose names match PATTERN (ERE)
# Environment: VM_KERNEL_SUITES (default "bookworm bullseye trixie", this
# machine's release first), VM_TIMEOUT (one VM, seconds, default 420),
# VM_TEST_TIMEOUT (one test, default 120), WGNS_BIN (use this wgns instead of
# building it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

filter=${1:-}
host_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
suites=${VM_KERNEL_SUITES:-$host_suite bullseye trixie}
other_exclude=${VM_OTHER_KERNELS_EXCLUDE:-peers-10000|aips-10000|dump-while-changing}
append="${VM_APPEND:-} VM_DEFER_WIREGUARD=1${VM_TEST_TIMEOUT:+ VM_TEST_TIMEOUT=$VM_TEST_TIMEOUT}"
mkdir -p "$VM_CACHE"
t0=$(date +%s.%N)
vm_build_wgns
work=$(mktemp -d "$VM_CACHE/test.XXXXXX")
trap 'rm -rf "$work"' EXIT
bash "$here/gen-configs.sh" "$work/data"
cp "$here/../../Tests/containment/attack.sh" "$work/data/attack.sh"
[ -z "$filter" ] || printf '%s\n' "$filter" >"$work/data/test-filter"

rc=0 total_pass=0 total_fail=0
for suite in $suites; do
    VM_KERNEL_SUITE=$suite
    vm_kernel
    rm -f "$work/data/test-exclude"
    [ "$suite" = "$host_suite" ] || [ -z "$other_exclude" ] || printf '%s\n' "$other_exclude" >"$work/data/test-exclude"
    t1=$(date +%s.%N)
    vm_initramfs "$work/initrd.cpio" "$VM_GUEST/run-tests.sh" "$work/data"
    log=$work/console.log
    echo "vm: booting $VM_KVER (Debian $suite; console kept in vm-cache/test-console-$suite.log)" >&2
    finished=yes
    VM_APPEND=$append vm_boot "$work/initrd.cpio" "$log" "${VM_TIMEOUT:-420}" || finished=no
    t2=$(date +%s.%N)
    cp "$log" "$VM_CACHE/test-console-$suite.log"
    tr -d '\r' <"$log" | awk -v finished="$finished" -v k="$VM_KVER" '
        { sub(/^[^@]*@@/, "@@") }   # the console may prefix a line with escape codes
        /^@@VM-BOOTED/ { booted = $2 }
        /^@@VM-ERROR/ { print "vm: " k ": " substr($0, 12); errors++ }
        /^@@TEST PASS / { printf "ok    %-26s %-50s %s\n", k, $4, $3; pass++ }
        /^@@TEST FAIL / { printf "FAIL  %-26s %-50s %s\n", k, $4, $3; fail++ }
        /^@@LOG / { sub(/^@@LOG [^ ]+ /, "      "); print }
        /^@@VM-DONE/ { done = $2 }
        END {
            if (booted == "") print "vm: " k ": the VM never finished booting (see the console log)"
            else printf "vm: %s: booted in %ss (guest uptime), tests done at %s\n", k, substr(booted, 8), substr(done, 8)
            if (finished != "yes") { print "vm: " k ": the VM did not finish: counted as a failure"; fail++ }
            if (errors) fail += errors
            if (pass == 0) fail++
            printf "%d %d\n", pass, fail >"/dev/stderr"
        }' >"$work/report" 2>"$work/counts"
    cat "$work/report"
    read -r p f <"$work/counts"
    total_pass=$((total_pass + p)) total_fail=$((total_fail + f))
    awk -v a="$t1" -v b="$t2" -v k="$VM_KVER" 'BEGIN { printf "vm: %s: initramfs and VM run %.1fs\n", k, b - a }' >&2
done
awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "vm: all kernels %.1fs\n", b - a }' >&2
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ] && [ "$total_pass" -gt 0 ]
