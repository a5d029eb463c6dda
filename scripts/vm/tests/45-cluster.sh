# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# The test cluster of scripts/testnet/cluster.sh, built inside the VM: four
# hosts h1..h4 (network and UTS namespaces on a bridge, their names in the
# cluster's hosts file), and a per-job VPN across it with kernel WireGuard on
# every host and every wgns run by the unprivileged user, with no
# --host-loopback: `wgns hub` on h1 (pasta forwards its UDP port from h1's
# address) and `wgns up` on h2..h4, reaching the hub by the name h1 through
# the carrier. Checked: the tunnel MTU is the fabric's minus 80 (1500 and
# 9000); every peer pings the hub and every other peer; between peers a DF
# packet of the tunnel MTU crosses and one byte more is refused, and no host
# fragments or reassembles anything; a file crosses over TCP with its
# checksum; the hub shows the three handshakes. After `wgns down`, no
# process of the user is left; after `cluster.sh stop`, no namespace and no
# link.

CLUSTER=/vm/testnet/cluster.sh

# The peers' job: /vm/jobs/member.sh (Tests/jobs/member.sh, the host tests'
# own), peer K of N on host h(K+1) at 10.97.0.(K+1), with DF probes; peer 2
# sends peer 1 the file over TCP (upload-send and upload-recv, with busybox
# nc and bash's /dev/tcp). The peers meet through files in the shared
# working directory (up.K, done.K).
MEMBER=/vm/jobs/member.sh

# Every network and UTS namespace a process is in, one a line (one ls:
# a readlink a process costs seconds under TCG).
# A process that is exiting (or a zombie) still lists its ns links but they
# no longer resolve (no " -> "): it holds no namespace, so it is not counted.
cluster_namespaces() {
    ls -l /proc/[0-9]*/ns/net /proc/[0-9]*/ns/uts 2>/dev/null | sed -n 's/.* -> //p' | sort -u
}

# cluster_vpn FABRIC_MTU N CARRIER1 CARRIER2 CARRIER3: peer K on host h(K+1)
# through CARRIERK (N: this test's number, for its port and hub name).
cluster_vpn() {
    mtu=$1 port=$((52000 + $2)) hub_name=chub$2 w=$PWD
    shift 2
    carriers="$*"
    tmtu=$((mtu - 80))
    chown "$TEST_UID:$TEST_UID" . && chmod 0755 .
    on() { TESTNET_USER=$TEST_UID bash $CLUSTER exec "$w/net" "$@"; }
    # IP fragmentation counters of every host (host.pids: "hK PID" a line,
    # PID a process in it): "hK created C reassembled R".
    frag() {
        while read -r h p; do
            awk -v h="$h" '/^Ip:/ { if (!n++) { for (i = 1; i <= NF; i++) col[$i] = i }
                else print h " created " $col["FragCreates"] " reassembled " $col["ReasmReqds"] }' "/proc/$p/net/snmp"
        done <host.pids
    }
    cluster_namespaces >ns.before
    trap 'bash $CLUSTER stop "$w/net"' EXIT
    TESTNET_MTU=$mtu bash $CLUSTER start "$w/net" 4 >cluster.out 2>&1 || { cat cluster.out; fail "cluster.sh start failed"; }
    for h in h1 h2 h3 h4; do echo "$h $(bash $CLUSTER pid "$w/net" $h)"; done >host.pids
    dd if=/dev/urandom of=data.bin bs=65536 count=16 2>/dev/null && chmod 0644 data.bin
    sent=$(sha256sum <data.bin | cut -d' ' -f1)
    as_user wgns vpn new "$w/v" --peers 3 --subnet 10.97.0.0/24 --endpoint "h1:$port" >/dev/null || fail "wgns vpn new failed"
    frag >frag.before
    on h1 wgns hub --backend kernel --name "$hub_name" "$w/v" >hub.out 2>hub.err &
    hub=$!
    i=0
    until grep -q '^wgns hub: up' hub.out; do
        i=$((i + 1))
        { [ $i -gt 300 ] || ! kill -0 $hub 2>/dev/null; } && { cat hub.out hub.err; fail "the hub did not come up"; }
        sleep 0.1
    done
    k=0
    for carrier in $carriers; do
        k=$((k + 1))
        on "h$((k + 1))" wgns up -v --backend kernel --carrier "$carrier" "$w/v" --peer $k -- \
            env MEMBER_DF=yes MEMBER_SEND=2 sh $MEMBER $k 3 >job.$k.out 2>job.$k.err &
        eval "job$k=\$!"
    done
    : >status
    for k in 1 2 3; do eval "wait \$job$k" && r=0 || r=$?; echo "job $k status $r" >>status; done
    frag >frag.after
    on h1 wgns show "$hub_name" >show.out 2>&1 || true
    on h1 wgns down "$hub_name" || true
    wait $hub && hrc=0 || hrc=$?
    cat hub.out status job.1.out job.2.out job.3.out
    grep -h 'MTU wg0' job.1.err job.2.err job.3.err || true
    grep -q '^wgns hub: up, wg0 10.97.0.1/24' hub.out || fail "no up line from the hub"
    for k in 1 2 3; do
        grep -q -x "job $k status 0" status || { cat job.$k.err; fail "peer $k's job did not exit 0"; }
        grep -q -x "peer-$k wg0 is kernel WireGuard" job.$k.out || fail "peer $k's wg0 is not kernel WireGuard"
        grep -q -x "peer-$k wg0 mtu $tmtu" job.$k.out || fail "peer $k's wg0 MTU is not $tmtu (fabric $mtu - 80)"
        grep -q -E "endpoints resolved, MTU wg0 $tmtu( |,|\$)" job.$k.err || fail "peer $k's wgns did not say it chose MTU $tmtu"
        grep -q -x "peer-$k reaches 10.97.0.1" job.$k.out || fail "peer $k does not reach the hub"
        for j in 1 2 3; do
            [ $j = $k ] && continue
            a=10.97.0.$((j + 1))
            grep -q -x "peer-$k reaches $a" job.$k.out || fail "peer $k does not reach peer $j"
            grep -q -x "peer-$k df $tmtu to $a fits" job.$k.out || fail "a DF packet of $tmtu from peer $k to peer $j did not cross"
            grep -q -x "peer-$k df $((tmtu + 1)) to $a refused" job.$k.out || fail "a DF packet of $((tmtu + 1)) from peer $k to peer $j was not refused"
        done
    done
    grep -q -x "received 1048576 $sent from 10.97.0.3" job.1.out || fail "the file did not arrive whole from peer 2 (sent 1048576 bytes, sha256 $sent)"
    grep -q -x "checksums match: 1048576 $sent to 10.97.0.2:5001" job.2.out || fail "peer 2 did not hear back the file's checksum"
    same_file frag.before frag.after "the hosts' fragmentation counters"
    [ "$(grep -c 'latest handshake' show.out)" = 3 ] || { cat show.out; fail "the hub does not show three handshakes"; }
    [ "$hrc" = 0 ] || { cat hub.err; fail "the hub exited $hrc"; }
    no_leftovers "wgns down and the peers' jobs"
    bash $CLUSTER stop "$w/net" || fail "cluster.sh stop failed"
    [ ! -e net/made ] || fail "cluster.sh stop left its record net/made"
    left=$($IP -o link show | grep ': wt' || true)
    [ -z "$left" ] || { echo "$left"; fail "links left after cluster.sh stop"; }
    cluster_namespaces >ns.after
    same_file ns.before ns.after "the namespaces in use before the cluster and after its stop"
}

# Two clusters, each carrier on both fabrics, and peers of both carriers
# reaching each other on each.
if [ -x /bin/bash ] && [ -f $CLUSTER ] && [ -f $MEMBER ] && command -v slirp4netns >/dev/null && command -v pasta >/dev/null; then
    run_test user/cluster-kernel/mtu1500-slirp4netns-pasta cluster_vpn 1500 1 slirp4netns pasta slirp4netns
    run_test user/cluster-kernel/mtu9000-pasta-slirp4netns cluster_vpn 9000 2 pasta slirp4netns pasta
else
    echo "@@VM-ERROR bash, the test cluster's cluster.sh, the member job, slirp4netns or pasta missing from the initramfs (scripts/vm/lib.sh copies them)"
fi
