# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# The builtin backend against the kernel's WireGuard (issue 20): `wgns up
# --backend builtin --carrier none --name biN` started by uid 1000 (its data
# plane's UDP socket on the VM's loopback, ListenPort 54200+N) and a kernel
# WireGuard device kbN of the VM (port 54100+N, 10.94.N.1/24) as its peer.
# The job (10.94.N.2, root inside with --map-uid 0, so that it may ping)
# waits; the checks run from outside, in the job through `wgns exec`.
#   initiates-keepalive  the builtin side initiates on its own
#                        (PersistentKeepalive = 1: the kernel sees a handshake
#                        and its rx grow with no traffic), then ping and
#                        256 KiB over TCP checked by sha256, and `wgns show
#                        NAME` (dump and --json) agrees with `wg show`
#   kernel-initiates-psk-roaming  the kernel side initiates (it has the
#                        endpoint, the builtin side none), with a preshared
#                        key; then the kernel's listen port changes and its
#                        pings still get answers: the builtin side learnt the
#                        new source port from authenticated packets
#   wrong-psk            the kernel initiates, the keys differ: no handshake
#                        on either side, no ping
#   wrong-key            the builtin initiates to a kernel peer that knows
#                        another public key: the same
# Not here: a rekey under traffic (at least 120 s of protocol time; the unit
# tests cover it with an injected clock, and the wireguard-go interop test
# rekeys a live session).

# bi_peer N: the kernel side kbN and the keys k.key (kernel), b.key (builtin).
bi_peer() {
    n=$1 K=$(fresh_dev kb) kport=$((54100 + $1)) bport=$((54200 + $1)) name=bi$1
    wg genkey >k.key; wg genkey >b.key
    wg_new "$K"
    wg set "$K" listen-port "$kport" private-key k.key
    $IP addr add "10.94.$n.1/24" dev "$K"
    $IP link set "$K" up
}

# bi_conf [PEER LINES...]: b.conf for the builtin side, owned by the user.
# PEER_KEY overrides the peer's public key; NO_ENDPOINT leaves the endpoint out.
bi_conf() {
    {
        printf '[Interface]\nPrivateKey = %s\nAddress = 10.94.%s.2/24\nListenPort = %s\n\n' "$(cat b.key)" "$n" "$bport"
        printf '[Peer]\nPublicKey = %s\nAllowedIPs = 10.94.%s.0/24\n' "${PEER_KEY:-$(wg pubkey <k.key)}" "$n"
        [ -n "${NO_ENDPOINT:-}" ] || printf 'Endpoint = 127.0.0.1:%s\n' "$kport"
        for l in "$@"; do printf '%s\n' "$l"; done
    } >b.conf
    chown "$TEST_UID:$TEST_UID" b.conf . && chmod 0600 b.conf
}

# bi_up: the named tunnel, its job waiting; taken down when the test ends.
bi_up() {
    as_user wgns up --backend builtin --carrier none --map-uid 0 --map-gid 0 --name "$name" \
        "$PWD/b.conf" -- sh -c "echo >$PWD/ready; sleep 100" >up.out 2>&1 &
    trap 'as_user wgns down "$name" >/dev/null 2>&1; wait' EXIT
    i=0
    until [ -s ready ]; do
        i=$((i + 1)); [ $i -gt 300 ] && { cat up.out; fail "the builtin tunnel did not come up in 30 s"; }
        sleep 0.1
    done
}
bi_down() {
    as_user wgns down "$name" || fail "wgns down $name exited $?"
    wait
    trap - EXIT
    no_leftovers "wgns down $name"
}
# in_job COMMAND...: in the job's namespaces (stdin is /dev/null: as_user).
in_job() { as_user wgns exec "$name" -- "$@"; }

# The kernel side's figures for its one peer: handshake, rx, tx.
k_handshake() { wg show "$K" latest-handshakes | awk '{ print $2 }'; }
k_rx() { wg show "$K" transfer | awk '{ print $2 }'; }
# The builtin side's dump line for its peer (`wgns show NAME dump`), from the
# peer's public key on (whether or not the line starts with the device's name).
b_peer() {
    as_user wgns show "$name" dump >b.dump || fail "wgns show $name dump exited $?"
    awk -v k="$(wg pubkey <k.key)" '{ for (i = 1; i <= NF; i++) if ($i == k) {
        s = $i; for (j = i + 1; j <= NF; j++) s = s " " $j; print s; exit } }' b.dump
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
    s=$1; shift; i=0
    until "$@"; do i=$((i + 1)); [ $i -gt $((s * 10)) ] && return 1; sleep 0.1; done
}
k_has_handshake() { [ "$(k_handshake)" != 0 ]; }

initiates_keepalive() {
    bi_peer "$1"
    wg set "$K" peer "$(wg pubkey <b.key)" allowed-ips "10.94.$n.2/32"
    bi_conf "PersistentKeepalive = 1"
    bi_up
    wait_for 15 k_has_handshake || { wg show "$K"; fail "no handshake from the builtin side's keepalive"; }
    rx1=$(k_rx); sleep 3; rx2=$(k_rx)
    [ "$rx2" -ge $((rx1 + 64)) ] || fail "kernel rx $rx1 -> $rx2 in 3 s: no keepalives seen"
    in_job $PING -c 1 -W 5 "10.94.$n.1" >/dev/null || fail "no ping reply from the kernel side"
    head -c 262144 /dev/urandom >payload && chmod 0644 payload
    nc -l -p $((53100 + n)) -e sh -c "cat >$PWD/received" &
    listener=$!
    in_job sh -c "nc -w 10 10.94.$n.1 $((53100 + n)) <$PWD/payload" || { kill "$listener"; fail "TCP transfer failed"; }
    wait "$listener" || true
    [ "$(sha256sum <payload)" = "$(sha256sum <received)" ] || fail "payload changed in transit"
    # wgns show NAME against wg show: keys, endpoints, a handshake and bytes each way.
    b_peer >b.line
    wg show "$K" dump | sed -n 2p >k.line
    read -r bpub _ bep _ bhs brx btx bka <b.line || fail "no peer in wgns show $name dump"
    read -r kpub _ kep _ khs krx ktx _ <k.line
    [ "$bpub" = "$(wg pubkey <k.key)" ] || fail "wgns show $name: peer $bpub"
    [ "$kpub" = "$(wg pubkey <b.key)" ] || fail "wg show $K: peer $kpub"
    [ "$bep" = "127.0.0.1:$kport" ] || fail "wgns show $name: endpoint $bep"
    [ "$kep" = "127.0.0.1:$bport" ] || fail "wg show $K: endpoint $kep (the builtin side's port is $bport)"
    [ "$bhs" != 0 ] && [ "$khs" != 0 ] || fail "handshakes: wgns $bhs, wg $khs"
    [ "$bka" = 1 ] || fail "wgns show $name: persistent keepalive $bka"
    [ "$btx" -ge 262144 ] && [ "$krx" -ge 262144 ] || fail "the payload is not in tx $btx / rx $krx"
    [ "$brx" -gt 0 ] && [ "$ktx" -gt 0 ] || fail "nothing came back: rx $brx / tx $ktx"
    as_user wgns show "$name" --json >show.json || fail "wgns show $name --json exited $?"
    jq -e --arg k "$bpub" '(if type == "array" then .[0] else . end) | .peers[0]
        | .publicKey == $k and .latestHandshake > 0 and .transferRx > 0 and .transferTx >= 262144' show.json >/dev/null \
        || { cat show.json; fail "wgns show $name --json disagrees"; }
    bi_down
}

kernel_initiates_psk_roaming() {
    bi_peer "$1"
    wg genpsk >psk
    wg set "$K" peer "$(wg pubkey <b.key)" allowed-ips "10.94.$n.2/32" \
        preshared-key psk endpoint "127.0.0.1:$bport"
    NO_ENDPOINT=1 bi_conf "PresharedKey = $(cat psk)"
    bi_up
    $PING -c 1 -W 5 "10.94.$n.2" >/dev/null || fail "no ping reply from the builtin side"
    [ "$(k_handshake)" != 0 ] || fail "no handshake on $K"
    read -r _ _ bep _ <<EOF
$(b_peer)
EOF
    [ "$bep" = "127.0.0.1:$kport" ] || fail "the builtin side learnt endpoint $bep, not 127.0.0.1:$kport"
    # Roaming: the kernel side now sends from another port.
    new=$((54300 + n))
    wg set "$K" listen-port "$new"
    $PING -c 2 -W 5 "10.94.$n.2" >/dev/null || fail "no ping reply after the kernel side moved to port $new"
    read -r _ _ bep _ <<EOF
$(b_peer)
EOF
    [ "$bep" = "127.0.0.1:$new" ] || fail "after roaming the builtin side's endpoint is $bep, not 127.0.0.1:$new"
    in_job $PING -c 1 -W 5 "10.94.$n.1" >/dev/null || fail "no ping from the job after roaming"
    bi_down
}

# fails_closed: no handshake on either side and no ping, either way.
fails_closed() {
    if $PING -c 2 -W 2 "10.94.$n.2" >/dev/null 2>&1; then fail "ping from the kernel side got through"; fi
    if in_job $PING -c 2 -W 2 "10.94.$n.1" >/dev/null 2>&1; then fail "ping from the job got through"; fi
    [ "$(k_handshake)" = 0 ] || fail "$K has a handshake"
    read -r _ _ _ _ bhs _ <<EOF
$(b_peer)
EOF
    [ "$bhs" = 0 ] || fail "the builtin side has a handshake ($bhs)"
    bi_down
}

wrong_psk() {
    bi_peer "$1"
    wg genpsk >psk
    wg set "$K" peer "$(wg pubkey <b.key)" allowed-ips "10.94.$n.2/32" \
        preshared-key psk endpoint "127.0.0.1:$bport"
    NO_ENDPOINT=1 bi_conf "PresharedKey = $(wg genpsk)"
    bi_up
    fails_closed
}

wrong_key() {
    bi_peer "$1"
    wg set "$K" peer "$(wg genkey | wg pubkey)" allowed-ips "10.94.$n.2/32"
    bi_conf
    bi_up
    fails_closed
}

run_test user/builtin-interop/initiates-keepalive initiates_keepalive 1
run_test user/builtin-interop/kernel-initiates-psk-roaming kernel_initiates_psk_roaming 2
run_test user/builtin-interop/wrong-psk wrong_psk 3
run_test user/builtin-interop/wrong-key wrong_key 4
