# shellcheck shell=sh
# ConfigCommandTests, in `unshare -r -n -m`: `sh strip-compare.sh WGNS WG
# WIREGUARD_GO FILE...` starts a wireguard-go device wgt, then for each
# FILE sets the device from `wgns strip FILE` (FILE.ours, its showconf
# FILE.ours.show) and from `wg-quick strip FILE` (FILE.theirs,
# FILE.theirs.show). Prints STRIPFAIL FILE, OURS-REJECTED FILE,
# THEIRS-REJECTED FILE, or COMPARE FILE when both were accepted.
set -u
wgns=$1 wg=$2 wggo=$3
shift 3
umask 077
mount -t tmpfs -o mode=0700 none /run
WG_PROCESS_FOREGROUND=1 "$wggo" wgt >/dev/null 2>&1 &
go=$!
trap 'kill $go 2>/dev/null; wait $go 2>/dev/null' EXIT
for i in $(seq 200); do [ -S /run/wireguard/wgt.sock ] && break; sleep 0.02; done
for f in "$@"; do
    "$wgns" strip "$f" > "$f.ours" || echo "STRIPFAIL $f"
    "$wg" setconf wgt /dev/null
    if "$wg" setconf wgt "$f.ours"; then "$wg" showconf wgt > "$f.ours.show"; else echo "OURS-REJECTED $f"; fi
    if wg-quick strip "$f" > "$f.theirs" 2>/dev/null && "$wg" setconf wgt /dev/null && "$wg" setconf wgt "$f.theirs" 2>/dev/null; then
        "$wg" showconf wgt > "$f.theirs.show"
        echo "COMPARE $f"
    else
        echo "THEIRS-REJECTED $f"
    fi
done
