# shellcheck shell=bash disable=SC2154
# VPNHubTests: a named isolated tunnel NAME (peer 1 of a VPN whose hub would
# be at 127.0.0.1:PORT) without a job; `wgns exec` into it lists its
# interfaces, `status` reads its device, `down` ends it.
"$W" vpn new v --peers 1 --subnet 10.97.0.0/24 --endpoint "127.0.0.1:$PORT" > /dev/null || exit 9
"$W" up --backend "${BACKEND:-wireguard-go}" --name "$NAME" --isolate v --peer 1 > named.out 2>&1 &
P=$!
for i in $(seq 1 200); do "$W" list | grep -qx "$NAME" && "$W" exec "$NAME" -- true 2>/dev/null && break; sleep 0.05; done
"$W" exec "$NAME" -- sh -c 'echo "interfaces $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort | tr "\n" " ")"'
"$W" status "$NAME" | head -1
"$W" down "$NAME"; wait $P; echo "up status $?"
