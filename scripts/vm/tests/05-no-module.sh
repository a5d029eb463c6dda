# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# Runs first, while no WireGuard device exists: with the module unloaded,
# wgns says so in one line instead of failing obscurely; then it is loaded
# again for everything that follows.

no_module() {
    rmmod wireguard || fail "cannot unload wireguard (a device already exists?)"
    rc=0
    if $IP link add wgnomod type wireguard 2>/dev/null; then rc=1; fi
    cat >job.conf <<EOF2
[Interface]
PrivateKey = $(wg genkey)
Address = 10.97.0.2/24

[Peer]
PublicKey = $(wg genkey | wg pubkey)
Endpoint = 127.0.0.1:51820
AllowedIPs = 10.97.0.0/24
EOF2
    chown "$TEST_UID:$TEST_UID" . job.conf && chmod 0600 job.conf
    $SETPRIV --reuid=$TEST_UID --regid=$TEST_UID --clear-groups env HOME=/home/user \
        wgns up --backend kernel "$PWD/job.conf" -- true </dev/null >out 2>err && up=0 || up=$?
    insmod /modules/*-wireguard.ko || fail "cannot load wireguard again"
    [ "$rc" = 0 ] || fail "ip link add type wireguard worked without the module"
    [ "$up" != 0 ] || fail "wgns up --backend kernel succeeded without the module"
    cat err
    [ "$(wc -l <err)" = 1 ] || fail "expected one error line"
    grep -q -i wireguard err || fail "the error does not say WireGuard is missing"
}

run_test root/no-module/wgns-up-backend-kernel no_module
