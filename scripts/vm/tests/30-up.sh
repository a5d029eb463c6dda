# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# `wgns up` with the kernel backend, started by an unprivileged user (uid
# 1000): the job's tunnel reaches a hub (a kernel WireGuard device of the VM,
# on its loopback) through the carrier's 10.0.2.2, under both carriers, with
# the job as root inside (--map-uid 0) and as the user's own uid. Checks: a
# ping and a TCP transfer with a checksum through the tunnel, the exit status,
# and that nothing is left running afterwards.

# hub_up N: hub device hubN on port 52000+N, 10.98.N.1/24, and job.conf for
# the job (10.98.N.2/24, endpoint 10.0.2.2), owned by the user, mode 0600.
hub_up() {
    n=$1 hub=$(fresh_dev hub)
    wg genkey >hub.key; wg genkey >job.key
    $IP link add "$hub" type wireguard
    wg set "$hub" listen-port $((52000 + n)) private-key hub.key \
        peer "$(wg pubkey <job.key)" allowed-ips "10.98.$n.2/32"
    $IP addr add "10.98.$n.1/24" dev "$hub"
    $IP link set "$hub" up
    cat >job.conf <<EOF
[Interface]
PrivateKey = $(cat job.key)
Address = 10.98.$n.2/24

[Peer]
PublicKey = $(wg pubkey <hub.key)
Endpoint = 10.0.2.2:$((52000 + n))
AllowedIPs = 10.98.$n.0/24
PersistentKeepalive = 1
EOF
    rm -f job.key
    chown "$TEST_UID:$TEST_UID" job.conf . && chmod 0600 job.conf
}


# up_tunnel CARRIER MAPUID N
up_tunnel() {
    carrier=$1 map=$2 n=$3 port=$((53000 + $3))
    hub_up "$n"
    head -c 262144 /dev/urandom >payload && chmod 0644 payload
    nc -l -p "$port" -e sh -c "cat >$PWD/received" &
    listener=$!
    if [ "$map" = 0 ]; then opts="--map-uid 0 --map-gid 0"; want_uid=0; else opts=""; want_uid=$TEST_UID; fi
    # shellcheck disable=SC2086
    as_user wgns up --backend kernel --carrier "$carrier" --host-loopback $opts "$PWD/job.conf" -- sh -c "
        set -e
        [ \"\$(id -u)\" = $want_uid ] || { echo \"uid inside is \$(id -u), not $want_uid\"; exit 10; }
        [ \$(ip -o link show | grep -c ': wg0:') = 1 ] || { ip -o link show; exit 11; }
        # Root inside is root of the job's own user namespace: no power over wg0.
        if /usr/bin/wg set wg0 listen-port 1 2>/dev/null; then echo 'job could reconfigure wg0'; exit 12; fi
        if [ $want_uid = 0 ]; then
            $PING -c 1 -W 5 10.98.$n.1 >/dev/null || { echo 'no ping reply through the tunnel'; exit 13; }
        fi
        nc -w 10 10.98.$n.1 $port <$PWD/payload || { echo 'TCP transfer failed'; exit 14; }
        exit 7" && rc=0 || rc=$?
    [ "$rc" = 7 ] || { kill "$listener" 2>/dev/null; fail "wgns up exited $rc, not the job's 7"; }
    wait "$listener" || true
    [ "$(md5sum <payload)" = "$(md5sum <received)" ] || fail "payload changed in transit"
    wg show "$hub" latest-handshakes | awk '$2 == 0 { exit 1 }' || fail "no handshake on $hub"
    no_leftovers "wgns up"
}

# A command that does not exist: one line, non-zero, nothing left.
up_missing_command() {
    hub_up "$1"
    if as_user wgns up --backend kernel --host-loopback "$PWD/job.conf" -- /nonexistent/cmd 2>err; then
        fail "wgns up of a missing command succeeded"
    fi
    [ "$(wc -l <err)" = 1 ] || { cat err; fail "expected one error line"; }
    no_leftovers "wgns up"
}

if command -v slirp4netns >/dev/null; then
    run_test user/up-kernel/slirp4netns-root-inside up_tunnel slirp4netns 0 1
    run_test user/up-kernel/slirp4netns-own-uid up_tunnel slirp4netns 1000 2
fi
if command -v pasta >/dev/null; then
    run_test user/up-kernel/pasta-root-inside up_tunnel pasta 0 3
    run_test user/up-kernel/pasta-own-uid up_tunnel pasta 1000 4
fi
run_test user/up-kernel/missing-command up_missing_command 5
