# shellcheck shell=bash disable=SC2154
# ClusterTests' fault scenario, sourced by ClusterTests.Fixture.sh (C, D, W,
# PORT, `on`, `onroot`) on a cluster of 4 hosts: the hub on h1, peers 1..3 on
# h2..h4 (slirp4netns), each running jobs/prober.sh. Then one fault after
# another: h1's link down 5 s; the hub killed (SIGKILL) and started again
# with the same config; h4 vanishing (`cluster.sh vanish`). Prints, after
# each, how long until every surviving pair carried traffic again ("...
# recovered in S s", or "never"), what is left of h4, each job's status and
# how many times it started, and the hub's status.
now() { date +%s.%N; }
# recovered SINCE LIMIT PAIRS...: waits until every pair K:T has an
# ok.K.T newer than SINCE; prints the seconds it took, or "never".
recovered() {
    since=$1; limit=$2; shift 2
    while :; do
        all=yes
        for p in "$@"; do
            o=ok.${p%:*}.${p#*:}
            [ -e $o ] && awk -v a="$(cat $o)" -v b=$since 'BEGIN { exit !(a > b) }' || { all=no; break; }
        done
        [ $all = yes ] && { awk -v a=$since -v b="$(now)" 'BEGIN { printf "%.1f\n", b - a }'; return 0; }
        awk -v a=$since -v b="$(now)" -v l=$limit 'BEGIN { exit !(b - a > l) }' && { echo never; return 1; }
        sleep 0.1
    done
}
pairs() { for k in "$@"; do echo "$k:1"; for j in "$@"; do [ $j = $k ] || echo "$k:$((j + 1))"; done; done; }
# Started straight from here (cluster.sh execs wgns), so that $H is wgns itself.
hub() { bash "$C" exec "$D" h1 ./wgns hub --backend wireguard-go v --name hub$PORT >> hub.out 2>> hub.err & H=$!; }
on h1 ./wgns vpn new v --peers 3 --subnet 10.97.0.0/24 --endpoint h1:$PORT > /dev/null || exit 9
hub
for i in $(seq 200); do grep -q '^wgns hub: up' hub.out && break; sleep 0.05; done
for k in 1 2 3; do bash "$C" exec "$D" h$((k + 1)) ./wgns up --backend wireguard-go v --peer $k -- sh jobs/prober.sh $k 3 > job.$k.out 2>&1 & eval J$k=\$!; done
t=$(now); echo "first contact $(recovered $t 60 $(pairs 1 2 3)) s"

onroot h1 ip link set eth0 down; sleep 5; onroot h1 ip link set eth0 up; t=$(now)
echo "link flap: recovered in $(recovered $t 30 $(pairs 1 2 3)) s"

kill -KILL $H; wait $H 2>/dev/null
sleep 1
on h1 ./wgns list | grep -qx hub$PORT && echo "killed hub still listed"
hub; t=$(now)
echo "hub restart: recovered in $(recovered $t 90 $(pairs 1 2 3)) s"

# h4 (peer 3) vanishes: note its wgns and every descendant first.
ns=$(bash "$C" ns "$D" h4)
gone=$(ps -e -o pid=,ppid= | awk -v root=$J3 '{ kids[$2] = kids[$2] " " $1 } END { n = split(root, q, " "); for (i = 1; i <= n; i++) { printf "%s ", q[i]; m = split(kids[q[i]], c, " "); for (j = 1; j <= m; j++) q[++n] = c[j] } }')
echo "h4 processes $(echo $gone | wc -w)"
bash "$C" vanish "$D" h4; t=$(now)
echo "after vanish: recovered in $(recovered $t 30 $(pairs 1 2 | grep -v ':4$')) s"
sleep 1
left=""; for p in $gone; do [ -e /proc/$p ] && [ "$(awk '{print $3}' /proc/$p/stat 2>/dev/null)" != Z ] && left="$left $p"; done
echo "h4 left:${left:- nothing}"
for p in /proc/[0-9]*; do [ "$(readlink $p/ns/net 2>/dev/null)" = "$ns" ] && { echo "h4 namespace still there"; break; }; done
on h1 ./wgns list | grep -qx hub$PORT && echo "hub still up"

touch stop
wait $J1; echo "job 1 status $?"; wait $J2; echo "job 2 status $?"
for k in 1 2 3; do echo "job $k started $(wc -l < started.$k) times"; done
on h1 ./wgns down hub$PORT; wait $H; echo "hub status $?"
