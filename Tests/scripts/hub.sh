# shellcheck shell=bash
# For VPNHubTests' scripts (UpFixture.script puts it before them): in the
# fixture folder, with W the wgns binary and the VPN in v/. Every wgns up
# and hub of these scripts runs on BACKEND (default wireguard-go).
# start_hub [NAME]: starts `wgns hub v` (named NAME when given) in the
# background, its pid H, and waits (10 s at most) for its "up" line.
start_hub() {
    "$W" hub --backend "${BACKEND:-wireguard-go}" ${1:+--name "$1"} v > hub.out 2> hub.err &
    H=$!
    for i in $(seq 1 200); do grep -q '^wgns hub: up' hub.out && break; kill -0 $H 2>/dev/null || break; sleep 0.05; done
}
