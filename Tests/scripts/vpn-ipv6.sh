# shellcheck shell=bash disable=SC2154
# VPNHubTests: a dual-stack VPN (UDP PORT on 127.0.0.1); peer 2, isolated,
# pings peer 1 and the hub over IPv6.
"$W" vpn new v --peers 2 --subnet 10.97.0.0/24 --subnet fd97::/64 --endpoint "127.0.0.1:$PORT" > /dev/null || exit 9
start_hub
rm -f up; mkfifo up
"$W" up --backend "${BACKEND:-wireguard-go}" v --peer 1 -- sh -c 'echo > up; sleep 30' > job.1.out 2>&1 &
J1=$!
read x < up
"$W" up --backend "${BACKEND:-wireguard-go}" v --peer 2 --isolate -- sh -c '
  for t in 1 2 3 4 5; do ping -c1 -W2 fd97::2 > /dev/null 2>&1 && { echo "v6 peer reached"; break; }; done
  ping -c1 -W2 fd97::1 > /dev/null 2>&1 && echo "v6 hub reached"'
kill -TERM $J1; wait $J1
kill -HUP $H; wait $H; echo "hub status $?"
cat hub.out
rm -f up job.1.out
