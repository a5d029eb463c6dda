#!/usr/bin/env bash
# Start-up cost in the QEMU TCG VM: `BIN showconf DEV` of a peerless kernel
# WireGuard device for wg and for each wgns binary given (default: the
# portable build, scripts/build-static.sh), with address-space randomisation
# on and off (see README.md, "Timing under TCG"). Prints the median ms.
#   scripts/vm/startup-bench.sh [WGNS_BINARY...]
# Environment: STARTUP_RUNS (runs per binary and setting, default 21).
# Used to compare ways of linking wgns (figures in scripts/build-static.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
mkdir -p "$VM_CACHE"
vm_kernel
vm_build_wgns
work=$(mktemp -d "$VM_CACHE/startup.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data/bin"
[ $# -gt 0 ] || set -- "$VM_WGNS"
i=0
for bin in "$@"; do
    [ -x "$bin" ] || vm_die "$bin is not an executable"
    i=$((i + 1))
    # Numbered, so that two builds with the same file name stay apart.
    cp "$bin" "$work/data/bin/$i-$(basename "$bin")"
    strip "$work/data/bin/$i-$(basename "$bin")" 2>/dev/null || true
    # Its libraries (a build linked another way may need some the VM's wgns
    # does not), put in place by the guest.
    mkdir -p "$work/data/lib"
    { ldd "$bin" 2>/dev/null || true; } | awk '/=> \// { print $3 }' | while read -r lib; do cp -L "$lib" "$work/data/lib/"; done
done
cat >"$work/main.sh" <<'EOF'
. /vm/lib.sh
cd /tmp || exit 1
N=${STARTUP_RUNS:-21}
cp -n /vm/data/lib/* /lib/x86_64-linux-gnu/ 2>/dev/null
wg_new sdev
printf '[Interface]\nListenPort = 39000\n' >zero.conf
wg setconf sdev zero.conf
for aslr in 2 0; do
    echo "$aslr" >/proc/sys/kernel/randomize_va_space
    i=0
    while [ "$i" -lt "$N" ]; do
        for bin in /usr/bin/wg /vm/data/bin/*; do
            if elapsed /tmp/us "$bin" showconf sdev >/dev/null 2>&1; then
                echo "@@ST $aslr $(basename "$bin") $(cat /tmp/us)"
            else
                echo "@@ST-FAIL $aslr $(basename "$bin")"
            fi
        done
        i=$((i + 1))
    done
done
EOF
VM_APPEND="${VM_APPEND:-}${STARTUP_RUNS:+ STARTUP_RUNS=$STARTUP_RUNS}"
vm_initramfs "$work/initrd.cpio" "$work/main.sh" "$work/data"
ok=yes
vm_boot "$work/initrd.cpio" "$work/console.log" "${VM_TIMEOUT:-600}" || ok=no
echo "showconf of a peerless device in the VM (QEMU TCG), median ms:"
tr -d '\r' <"$work/console.log" | sed 's/^[^@]*@@/@@/' | awk '
    function median(list,    n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    /^@@ST / { if (!($3 in seen)) { seen[$3] = 1; order[++n] = $3 }; runs[$3, $2] = runs[$3, $2] " " ($4 / 1000) }
    /^@@ST-FAIL / { failed[$3] = 1 }
    END {
        printf "%-32s %12s %12s\n", "binary", "ASLR on", "ASLR off"
        for (i = 1; i <= n; i++) {
            b = order[i]
            printf "%-32s %12.1f %12.1f%s\n", b, median(runs[b, 2]), median(runs[b, 0]), (b in failed) ? "  (some runs failed)" : ""
        }
    }'
[ "$ok" = yes ] || { echo "vm: the VM did not finish (console: $work/console.log)" >&2; exit 1; }
