# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# A per-job VPN with the kernel backend, started by an unprivileged user (uid
# 1000): `wgns vpn new`, `wgns hub` in its own namespace (pasta forwards its
# port from the VM's loopback), a peer, and an isolated peer (--isolate: its
# kernel WireGuard link is created beside the carrier's tap device and then
# moved into the job's own namespace) that reaches the other peer through the
# hub, sees only lo and wg0, and cannot reach the host's loopback.
# `wgns show NAME` reads the named hub from outside; nothing is left after.


# vpn_hub_and_isolated_peer N
vpn_hub_and_isolated_peer() {
    port=$((54000 + $1)) d=$PWD
    chown "$TEST_UID:$TEST_UID" .
    as_user wgns vpn new "$d/v" --peers 2 --subnet 10.97.0.0/24 --endpoint "127.0.0.1:$port" >/dev/null
    as_user wgns hub --backend kernel --name vmhub "$d/v" >hub.out 2>&1 &
    hub=$!
    i=0
    until grep -q '^wgns hub: up' hub.out; do
        i=$((i + 1)); [ $i -gt 300 ] && { cat hub.out; fail "the hub did not come up"; }; sleep 0.1
    done
    as_user wgns up --backend kernel --map-uid 0 --map-gid 0 "$d/v" --peer 1 -- sh -c "
        touch $d/up1; i=0
        until [ -e $d/done2 ] || [ \$i -gt 600 ]; do sleep 0.1; i=\$((i + 1)); done" >job1.out 2>&1 &
    j1=$!
    i=0
    until [ -e up1 ]; do i=$((i + 1)); [ $i -gt 300 ] && { cat job1.out; fail "peer 1 did not come up"; }; sleep 0.1; done
    as_user wgns up --backend kernel --map-uid 0 --map-gid 0 --isolate "$d/v" --peer 2 -- sh -c "
        [ \$(ip -o link show | wc -l) = 2 ] && ip -o link show | grep -q ': wg0:' || { ip -o link show; exit 11; }
        if $PING -c 1 -W 1 10.0.2.2 >/dev/null 2>&1; then echo 'the isolated job reached the host loopback'; exit 12; fi
        ok=no
        for t in 1 2 3 4 5; do $PING -c 1 -W 2 10.97.0.2 >/dev/null 2>&1 && { ok=yes; break; }; done
        [ \$ok = yes ] || { echo 'no reply from peer 1 through the hub'; exit 13; }
        $PING -c 1 -W 2 10.97.0.1 >/dev/null 2>&1 || { echo 'no reply from the hub'; exit 14; }
        exit 7" && rc=0 || rc=$?
    touch done2
    wait $j1 || true
    [ "$rc" = 7 ] || { cat hub.out job1.out; as_user wgns down vmhub; fail "the isolated peer exited $rc, not 7"; }
    as_user wgns show vmhub >show.out || { as_user wgns down vmhub; fail "wgns show vmhub failed"; }
    as_user wgns down vmhub
    wait $hub || fail "the hub exited non-zero"
    grep -q '^wgns hub: up, wg0 10.97.0.1/24, UDP port' hub.out || { cat hub.out; fail "no up line from the hub"; }
    [ "$(grep -c 'latest handshake' show.out)" = 2 ] || { cat show.out; fail "the hub does not show two handshakes"; }
    no_leftovers "the VPN"
}

if command -v pasta >/dev/null && command -v slirp4netns >/dev/null; then
    run_test user/vpn-kernel/hub-and-isolated-peer vpn_hub_and_isolated_peer 1
fi
