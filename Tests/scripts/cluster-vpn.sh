# shellcheck shell=bash disable=SC2154
# ClusterTests' all-to-all scenario, sourced by ClusterTests.Fixture.sh (which
# gives C, D, W, PORT, `on HOST CMD...` and `onroot HOST CMD...`), in the
# work folder W: a VPN of PEERS peers, its hub on h1 (reached by the name h1),
# peer K on host h(K+1) under CARRIER, every wgns with WGNS_OPTS. Each peer's
# job is jobs/member.sh with DF probes, peer 2 sending peer 1 an 8 MiB file.
# Prints the file's checksum ("sent SHA256"), the hub's up line, each job's
# status and output and the MTU wgns chose, the bring-up time (hub start to
# the last peer having reached everyone), every host's fragmentation
# counters before and after ("before|after frag hK created C reassembled
# R"), and the hub's status.
# IP fragmentation counters of every host (/proc/net/snmp, per network
# namespace), each line prefixed with $1.
frag() {
    for h in $(. "$D/env"; echo $TESTNET_HOSTS); do
        onroot "$h" awk -v h="$h" -v p="$1" '/^Ip:/ { if (!n++) { for (i = 1; i <= NF; i++) col[$i] = i } else print p " frag " h " created " $col["FragCreates"] " reassembled " $col["ReasmReqds"] }' /proc/net/snmp
    done
}
head -c 8388608 /dev/urandom > data.bin; chmod 644 data.bin
echo "sent $(sha256sum < data.bin | cut -d' ' -f1)"
on h1 ./wgns vpn new v --peers "$PEERS" --subnet 10.97.0.0/24 --endpoint "h1:$PORT" > /dev/null || exit 9
frag before
t0=$(date +%s.%N)
on h1 ./wgns hub $WGNS_OPTS v --name "hub$PORT" > hub.out 2> hub.err &
H=$!
for i in $(seq 200); do grep -q '^wgns hub: up' hub.out && break; kill -0 $H 2>/dev/null || break; sleep 0.05; done
cat hub.out
for k in $(seq "$PEERS"); do
    on h$((k + 1)) ./wgns up -v $WGNS_OPTS --carrier "$CARRIER" v --peer $k -- \
        env MEMBER_DF=yes MEMBER_SEND=2 sh jobs/member.sh $k "$PEERS" > job.$k.out 2> job.$k.err &
    eval J$k=\$!
done
for k in $(seq "$PEERS"); do eval wait \$J$k; echo "job $k status $?"; done
for k in $(seq "$PEERS"); do cat job.$k.out; grep -h "MTU wg0" job.$k.err | sed "s/^/peer $k: /"; done
last=$(cat reached.* | sort -n | tail -1)
echo "bring-up $(awk -v a=$t0 -v b=$last 'BEGIN { printf "%.2f", b - a }') s"
frag after
on h1 ./wgns down "hub$PORT"; wait $H; echo "hub status $?"
