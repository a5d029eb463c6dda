# shellcheck shell=bash disable=SC2154
# VPNHubTests: a VPN made without --endpoint; the hub picks its port and
# publishes it (mode and contents shown), a second hub on the same VPN is
# refused, and three peers run jobs/member.sh by name; the endpoint file
# goes with the hub.
"$W" vpn new v --peers 3 > /dev/null || exit 9
cat v/hub.conf v/peer-1.conf | grep -ic '^ListenPort\|^Endpoint' | sed 's/^/ports in configs /'
start_hub
stat -c 'endpoint file mode %a' v/hub.endpoint
head -1 v/hub.endpoint | sed 's/^/published /'
"$W" hub --backend "${BACKEND:-wireguard-go}" v > second.out 2> second.err; echo "second hub status $?"
for k in 1 2 3; do "$W" up --backend "${BACKEND:-wireguard-go}" v --peer $k -- env MEMBER_TARGETS=name sh jobs/member.sh $k 3 > job.$k.out 2>&1 & eval J$k=\$!; done
wait $J1; echo "job 1 status $?"; wait $J2; echo "job 2 status $?"; wait $J3; echo "job 3 status $?"
cat job.1.out job.2.out job.3.out second.err
kill -TERM $H; wait $H; echo "hub status $?"
cat hub.out
[ -e v/hub.endpoint ] && echo "endpoint left" || echo "endpoint gone"
rm -f up.* done.* reached.* job.*.out second.*
