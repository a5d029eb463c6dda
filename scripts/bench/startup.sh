#!/usr/bin/env bash
# Start-up of the static binary, natively: `wgns showconf wg0` against
# `wg showconf wg0` on a peerless wireguard-go device (one UAPI round trip,
# so almost all of it is exec and start-up), hyperfine -N --warmup 20, as an
# unprivileged user in namespaces of its own (user, network, mount: the
# device and its socket exist only there). Also the binary's size on disk,
# as built and with its DWARF stripped (what `make dist` ships).
#   scripts/bench/startup.sh            WGNS_BIN as bench.sh sets it, else builds
#   BENCH_BEFORE_BIN=PATH ...           also measures another wgns (e.g. main's)
# Run by `make bench` (scripts/bench.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/host-setup.sh
bin=${WGNS_BIN:-$(bash scripts/build-static.sh --scratch-path "${VM_SCRATCH:-.build-static}" | tail -n1)}
command -v wireguard-go >/dev/null || { echo "startup.sh: no wireguard-go" >&2; exit 1; }
work=$(mktemp -d /tmp/wgns-startup.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
cp "$bin" "$work/wgns"
names=(wgns)
if [ -n "${BENCH_BEFORE_BIN:-}" ]; then
    cp "$BENCH_BEFORE_BIN" "$work/wgns-before"
    names+=(wgns-before)
fi
chown -R "$TEST_USER" "$work"
runs=${BENCH_STARTUP_RUNS:-200}
# In the namespaces: a private /run for wireguard-go's socket, the device,
# then hyperfine over wg and each wgns.
inner='
set -e
mount -t tmpfs none /run && mkdir -p /run/wireguard
WG_PROCESS_FOREGROUND=1 wireguard-go wg0 >/dev/null 2>&1 &
go=$!
for _ in $(seq 200); do [ -S /run/wireguard/wg0.sock ] && break; sleep 0.01; done
[ -S /run/wireguard/wg0.sock ] || { echo "startup.sh: wireguard-go made no socket" >&2; exit 1; }
wg showconf wg0 >/dev/null
cmds=("wg showconf wg0")
for n in '"${names[*]}"'; do ./$n showconf wg0 >/dev/null; cmds+=("./$n showconf wg0"); done
hyperfine -N --warmup 20 --runs '"$runs"' --export-json results.json "${cmds[@]}" >/dev/null 2>hyperfine.log || { cat hyperfine.log >&2; exit 1; }
kill $go
'
(cd "$work" && run_as_test_user unshare -Urnm --keep-caps bash -c "$inner")
echo
echo "Start-up: showconf of a peerless wireguard-go device, natively (hyperfine -N, $runs runs), milliseconds:"
python3 - "$work/results.json" "$bin" "${BENCH_BEFORE_BIN:-}" <<'PY'
import json, os, subprocess, sys, tempfile
res = json.load(open(sys.argv[1]))["results"]
wg = res[0]["median"] * 1000
print(f"{'command':<34} {'median':>8} {'mean':>8} {'vs wg':>7}")
for r in res:
    m = r["median"] * 1000
    print(f"{r['command']:<34} {m:8.2f} {r['mean'] * 1000:8.2f} {m / wg:6.2f}x")
print()
print(f"{'binary':<34} {'on disk':>10} {'no DWARF':>10}  linked")
for label, path in (("wgns", sys.argv[2]), ("wgns-before", sys.argv[3])):
    if not path:
        continue
    with tempfile.TemporaryDirectory() as d:
        s = os.path.join(d, "b")
        subprocess.run(["strip", "--strip-debug", "-o", s, path], check=True)
        small = os.path.getsize(s)
    ldd = subprocess.run(["ldd", path], capture_output=True, text=True)
    libs = [l.split()[0] for l in ldd.stdout.splitlines() if "=>" in l]
    how = "static" if "not a dynamic" in ldd.stdout + ldd.stderr else "needs " + " ".join(libs)
    mb = lambda v: f"{v / 1048576:.1f} MiB"
    print(f"{label:<34} {mb(os.path.getsize(path)):>10} {mb(small):>10}  {how}")
PY
