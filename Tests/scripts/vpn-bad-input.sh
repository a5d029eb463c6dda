# shellcheck shell=bash disable=SC2154
# VPNHubTests: bad input around a published endpoint, each with its status:
# a folder that is no VPN, an --advertise that does not resolve, no hub
# within --wait, a bad --wait, a rank beyond the VPN, a stale endpoint file
# (its hub killed), and a new hub replacing it.
"$W" vpn new v --peers 2 > /dev/null || exit 9
mkdir plain
"$W" hub --backend "${BACKEND:-wireguard-go}" plain; echo "plain hub status $?"
"$W" up --backend "${BACKEND:-wireguard-go}" plain -- true; echo "plain up status $?"
"$W" hub --backend "${BACKEND:-wireguard-go}" v --advertise no-such-host.invalid -- true; echo "advertise status $?"
"$W" up --backend "${BACKEND:-wireguard-go}" v --peer 1 --wait 0.5 -- true; echo "no hub status $?"
"$W" up --backend "${BACKEND:-wireguard-go}" v --peer 1 --wait soon -- true; echo "bad wait status $?"
SLURM_PROCID=2 "$W" up --backend "${BACKEND:-wireguard-go}" v --wait 1 -- true; echo "rank status $?"
# A hub killed with SIGKILL leaves its file: it is stale, not an endpoint.
start_hub
kill -KILL $H; wait $H 2>/dev/null
for i in $(seq 100); do pgrep -u $(id -u) -f "$PWD/wgns hub" > /dev/null || break; sleep 0.05; done
[ -e v/hub.endpoint ] && echo "stale file there"
"$W" up --backend "${BACKEND:-wireguard-go}" v --peer 1 --wait 0.5 -- true; echo "stale status $?"
# A new hub replaces it.
"$W" hub --backend "${BACKEND:-wireguard-go}" v -- "$W" up --backend "${BACKEND:-wireguard-go}" v --peer 2 -- ping -c1 -W5 hub > /dev/null; echo "replaced status $?"
ls v | tr '\n' ' '; echo
