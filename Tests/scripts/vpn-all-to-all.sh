# shellcheck shell=bash disable=SC2154
# VPNHubTests: a hub named NAME (UDP PORT on 127.0.0.1) and three peers, each
# running jobs/member.sh; then what `show` and `status` say from outside, the
# hub's end on SIGINT, and that it is no longer listed.
"$W" vpn new v --peers 3 --subnet 10.97.0.0/24 --endpoint "127.0.0.1:$PORT" > /dev/null || exit 9
start_hub "$NAME"
"$W" list | grep -x "$NAME" && echo "hub listed"
for k in 1 2 3; do "$W" up --backend "${BACKEND:-wireguard-go}" v --peer $k -- sh jobs/member.sh $k 3 > job.$k.out 2>&1 & eval J$k=\$!; done
wait $J1; echo "job 1 status $?"; wait $J2; echo "job 2 status $?"; wait $J3; echo "job 3 status $?"
cat job.1.out job.2.out job.3.out
"$W" show "$NAME" > show.out; echo "show status $?"
"$W" status "$NAME" | grep -c '^peer: ' | sed 's/^/status peers /'
kill -INT $H; wait $H; echo "hub status $?"
cat hub.out
"$W" list | grep -x "$NAME" || echo "hub gone"
rm -f up.* done.* reached.* job.*.out
