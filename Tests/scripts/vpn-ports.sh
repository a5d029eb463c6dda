# shellcheck shell=bash disable=SC2016,SC2154
# VPNHubTests: UDP ports P, P+1 and P+3 held by another socket
# (jobs/hold-udp.py); three hubs in turn with --ports P-(P+3), each with a
# peer pinging it; then a range where every port is taken, and a bad range.
"$W" vpn new v --peers 1 > /dev/null || exit 9
python3 jobs/hold-udp.py $P $((P + 1)) $((P + 3)) & H=$!
for i in $(seq 200); do [ -e held ] && break; sleep 0.02; done
for i in 1 2 3; do
  "$W" hub --backend "${BACKEND:-wireguard-go}" v --ports $P-$((P + 3)) -- sh -c 'echo "hub at $WGNS_ENDPOINT"; "$W" up --backend "${BACKEND:-wireguard-go}" v --peer 1 -- ping -c1 -W5 hub > /dev/null && echo "peer reaches hub"'
done
"$W" hub --backend "${BACKEND:-wireguard-go}" v --ports $P-$((P + 1)) -- true; echo "all taken status $?"
"$W" hub --backend "${BACKEND:-wireguard-go}" v --ports 9-2 -- true; echo "bad range status $?"
rm -f held; wait $H
