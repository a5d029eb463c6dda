#!/usr/bin/env bash
# The README's main command (`make demo`): what wgns does, on this one machine.
set -euo pipefail
cd "$(dirname "$0")/.."
wgns=${WGNS:-$PWD/.build/debug/wgns}
[ -x "$wgns" ] || swift build
work=$(mktemp -d /tmp/wgns-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "keys, exactly as wg makes them"
umask 077
"$wgns" genkey > "$work/job.key"
echo "public key: $("$wgns" pubkey < "$work/job.key")"
if command -v wg >/dev/null; then echo "wg agrees:  $(wg pubkey < "$work/job.key")"; fi

step "a per-job private VPN: a hub and 3 peers"
"$wgns" vpn new "$work/vpn" --peers 3 --subnet 10.97.0.0/24 --subnet fd97::/64 --endpoint 127.0.0.1:51820 --psk
ls -l "$work/vpn"
echo; sed -n '/^\[Interface\]/,/^$/p' "$work/vpn/peer-2.conf" | grep -v PrivateKey

step "configs are checked before anything is created"
"$wgns" check "$work/vpn/hub.conf" "$work/vpn/peer-1.conf" && echo "hub.conf and peer-1.conf are valid"
printf '[Interface]\nListenPort = 99999\n' > "$work/bad.conf"
"$wgns" check "$work/bad.conf" || true

step "what wg setconf reads (wgns strip), secrets elided here"
"$wgns" strip "$work/vpn/peer-1.conf" | sed -E 's/(Key = ).*/\1(elided)/'

step "this machine"
"$wgns" doctor || true
