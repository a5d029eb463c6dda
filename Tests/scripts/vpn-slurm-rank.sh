# shellcheck shell=bash disable=SC2154
# VPNHubTests: a VPN of 3 peers (hub at 127.0.0.1:PORT) entered with
# SLURM_PROCID and no --peer (ranks 0 and 2 say their address), --peer over
# the rank, and the errors: a rank beyond the VPN, no rank, --peer 0, a
# folder with no VPN.
"$W" vpn new v --peers 3 --subnet 10.97.0.0/24 --endpoint "127.0.0.1:$PORT" > /dev/null || exit 9
for rank in 0 2; do SLURM_PROCID=$rank "$W" up --backend "${BACKEND:-wireguard-go}" v -- sh -c "echo rank $rank \$(ip -o -4 addr show wg0 | tr -s ' ' | cut -d' ' -f4)"; done
SLURM_PROCID=0 "$W" up --backend "${BACKEND:-wireguard-go}" v --peer 2 -- sh -c "echo explicit \$(ip -o -4 addr show wg0 | tr -s ' ' | cut -d' ' -f4)"
SLURM_PROCID=3 "$W" up --backend "${BACKEND:-wireguard-go}" v -- true; echo "rank 3 status $?"
"$W" up --backend "${BACKEND:-wireguard-go}" v -- true; echo "no rank status $?"
"$W" up --backend "${BACKEND:-wireguard-go}" v --peer 0 -- true; echo "peer 0 status $?"
mkdir empty; "$W" up --backend "${BACKEND:-wireguard-go}" empty --peer 1 -- true; echo "empty status $?"
