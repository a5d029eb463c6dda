# shellcheck shell=bash disable=SC2154
# BuiltinTests.builtinHubWithMixedMembers: a builtin hub named NAME (UDP PORT
# on 127.0.0.1, no pasta) and three members running jobs/member.sh: peer 1
# on the builtin backend, peer 2 on wireguard-go, peer 3 on auto's choice;
# then the hub's children, what `show` says, and the hub's end on SIGINT.
"$W" vpn new v --peers 3 --subnet 10.97.0.0/24 --endpoint "127.0.0.1:$PORT" > /dev/null || exit 9
"$W" hub --backend builtin --name "$NAME" v > hub.out 2> hub.err &
H=$!
for i in $(seq 1 200); do grep -q '^wgns hub: up' hub.out && break; kill -0 $H 2>/dev/null || break; sleep 0.05; done
echo "hub children: $(for c in $(pgrep -P $H); do cat /proc/$c/comm; done | sort | tr '\n' ' ')"
"$W" up --backend builtin v --peer 1 -- sh jobs/member.sh 1 3 > job.1.out 2>&1 & J1=$!
"$W" up --backend wireguard-go v --peer 2 -- sh jobs/member.sh 2 3 > job.2.out 2>&1 & J2=$!
"$W" up v --peer 3 -- sh jobs/member.sh 3 3 > job.3.out 2>&1 & J3=$!
wait $J1; echo "job 1 status $?"; wait $J2; echo "job 2 status $?"; wait $J3; echo "job 3 status $?"
cat job.1.out job.2.out job.3.out
"$W" show "$NAME" > show.out; echo "show status $?"
kill -INT $H; wait $H; echo "hub status $?"
cat hub.out hub.err
rm -f up.* done.* reached.* job.*.out
