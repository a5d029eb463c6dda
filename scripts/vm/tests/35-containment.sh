# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# Containment on the kernel backend: Tests/containment/attack.sh (copied to
# /vm/data) runs as the job of an unprivileged `wgns up` in every mode
# (MapUid the user's own and 0; split, split with --isolate, full tunnel).
# Every attack must be blocked (the host's /run sockets, the config on disk
# and, by the filter being on, TIOCSTI among them), except tap0 under a
# split tunnel that was not isolated, which is the documented way out of a split tunnel; and one
# control run with --net-admin must find wg0 open (so the attacks can fail).

# contained MAPUID split|isolated|full|admin
contained() {
    map=$1 tunnel=$2
    allowed=10.97.0.0/24
    [ "$tunnel" = full ] && allowed="0.0.0.0/1, 128.0.0.0/1, ::/0"
    printf '[Interface]\nPrivateKey = %s\nAddress = 10.97.0.2/24\n\n[Peer]\nPublicKey = %s\nEndpoint = 10.0.2.2:51999\nAllowedIPs = %s\n' \
        "$(wg genkey)" "$(wg genkey | wg pubkey)" "$allowed" >job.conf
    cp "$DATA/attack.sh" attack.sh
    chown "$TEST_UID:$TEST_UID" job.conf attack.sh . && chmod 0600 job.conf && chmod 0755 attack.sh
    # A listener on the VM's loopback stands for "the host".
    nc -l -p 52999 -e true >/dev/null 2>&1 &
    listener=$!
    opts=""
    [ "$map" = 0 ] && opts="--map-uid 0 --map-gid 0"
    [ "$tunnel" = isolated ] && opts="$opts --isolate"
    [ "$tunnel" = admin ] && opts="--net-admin --host-loopback"
    # shellcheck disable=SC2086
    as_user wgns up --backend kernel $opts "$PWD/job.conf" -- sh "$PWD/attack.sh" 52999 "$PWD/job.conf" >out 2>err || { cat out err; fail "wgns up failed"; }
    kill "$listener" 2>/dev/null || true
    grep -q '^DONE' out || { cat out err; fail "the attack script did not finish"; }
    if [ "$tunnel" = admin ]; then
        for a in wg-showconf wg-set ip-link ip-addr ip-route resolv-remount host-loopback; do
            grep -q "^ATTACK $a OPEN" out || { cat out; fail "control: $a was not open to a --net-admin job"; }
        done
    else
        for a in wg-showconf wg-set ip-link ip-addr ip-route resolv-write resolv-remount resolv-umount setns processes memory host-loopback \
                 run-sockets config-file; do
            grep -q "^ATTACK $a blocked" out || { cat out; fail "$a: $(grep "^ATTACK $a " out)"; }
        done
        if [ "$tunnel" = split ]; then
            grep -q '^ATTACK bind-tap0 OPEN' out || { cat out; fail "a split tunnel should keep tap0"; }
        else
            grep -q '^ATTACK bind-tap0 blocked' out || { cat out; fail "tap0 visible to an isolated job"; }
            grep -q '^INFO links lo wg0 $' out || { cat out; fail "an isolated job sees more than lo and wg0"; }
        fi
        [ "$tunnel" != full ] || grep -q '^INFO resolv 0 $' out || { cat out; fail "a full tunnel without DNS has a resolver"; }
        [ "$map" != 0 ] || grep -q '^INFO low-port ok' out || { cat out; fail "MapUid 0 cannot bind port 80"; }
        grep -q '^INFO ping ok' out || { cat out; fail "ping (iputils) does not work inside"; }
        # The VM has no python3 for the TIOCSTI attack itself: the filter must be on.
        grep -q '^INFO seccomp 2 no-new-privs 1$' out || { cat out; fail "the job runs without the TIOCSTI seccomp filter"; }
    fi
    no_leftovers "wgns up"
}

# (Not $t: the test runner's own functions use that name.)
for tunnel_kind in split isolated full; do
    run_test user/containment-kernel/own-uid-$tunnel_kind contained 1000 $tunnel_kind
    run_test user/containment-kernel/root-inside-$tunnel_kind contained 0 $tunnel_kind
done
run_test user/containment-kernel/net-admin-control contained 0 admin
