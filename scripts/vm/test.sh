#!/usr/bin/env bash
# Kernel WireGuard tests: boots a Debian kernel (QEMU, TCG) whose initramfs
# holds wgns, wg, busybox and the tests in scripts/vm/tests, runs them as root
# and as an unprivileged user in a user namespace, and prints each result.
# Ends with "N passed, M failed"; exits non-zero if any test failed or the VM
# did not finish.
#   scripts/vm/test.sh [PATTERN]   only tests whose names match PATTERN (ERE)
# Environment: VM_TIMEOUT (whole VM, seconds, default 420), VM_TEST_TIMEOUT
# (one test, default 120), WGNS_BIN (use this wgns instead of building it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

filter=${1:-}
VM_APPEND="${VM_APPEND:-}${VM_TEST_TIMEOUT:+ VM_TEST_TIMEOUT=$VM_TEST_TIMEOUT}"
t0=$(date +%s.%N)
mkdir -p "$VM_CACHE"
vm_kernel
vm_build_wgns
work=$(mktemp -d "$VM_CACHE/test.XXXXXX")
trap 'rm -rf "$work"' EXIT
bash "$here/gen-configs.sh" "$work/data"
cp "$here/../../Tests/containment/attack.sh" "$work/data/attack.sh"
[ -z "$filter" ] || printf '%s\n' "$filter" >"$work/data/test-filter"
vm_initramfs "$work/initrd.cpio" "$VM_GUEST/run-tests.sh" "$work/data"
t1=$(date +%s.%N)
log=$work/console.log
echo "vm: booting $VM_KVER (console kept in vm-cache/test-console.log)" >&2
finished=yes
vm_boot "$work/initrd.cpio" "$log" "${VM_TIMEOUT:-420}" || finished=no
t2=$(date +%s.%N)
cp "$log" "$VM_CACHE/test-console.log"

tr -d '\r' <"$log" | awk -v finished="$finished" '
    { sub(/^[^@]*@@/, "@@") }   # the console may prefix a line with escape codes
    /^@@VM-BOOTED/ { booted = $2 }
    /^@@VM-ERROR/ { print "vm: " substr($0, 12); errors++ }
    /^@@TEST PASS / { printf "ok    %-50s %s\n", $4, $3; pass++ }
    /^@@TEST FAIL / { printf "FAIL  %-50s %s\n", $4, $3; fail++ }
    /^@@LOG / { sub(/^@@LOG [^ ]+ /, "      "); print }
    /^@@VM-DONE/ { done = $2 }
    END {
        if (booted == "") print "vm: the VM never finished booting (see the console log)"
        else printf "vm: booted in %ss (guest uptime), tests done at %s\n", substr(booted, 8), substr(done, 8)
        if (finished != "yes") { print "vm: the VM did not finish: counted as a failure"; fail++ }
        if (errors) fail += errors
        printf "%d passed, %d failed\n", pass, fail
        exit (fail > 0 || pass == 0) ? 1 : 0
    }' >"$work/report" && rc=0 || rc=$?
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "vm: build %.1fs, VM run %.1fs\n", b - a, c - b }' >&2
cat "$work/report"
exit "$rc"
