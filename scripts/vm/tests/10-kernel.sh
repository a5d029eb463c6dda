# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# The harness itself: the WireGuard module is loaded and a device can be made
# and configured with wg, as root and as an unprivileged user in a user namespace.

kernel_wireguard() {
    [ -d /sys/module/wireguard ] || fail "wireguard module not loaded"
    dev=$(fresh_dev)
    wg_new "$dev"
    wg set "$dev" listen-port 51000 fwmark 0x1
    [ "$(wg show "$dev" listen-port)" = 51000 ] || fail "wg set $dev listen-port did not stick"
    [ "$(wg show "$dev" fwmark)" = 0x1 ] || fail "wg set $dev fwmark did not stick"
    $IP link set "$dev" up
    $IP link del "$dev"
}

user_is_unprivileged() {
    # Inside the user namespace we look like root, but the kernel sees uid 1000.
    [ "$(id -u)" = 0 ] || fail "not mapped to root inside the user namespace"
    [ "$(awk '{ print $2 }' /proc/self/uid_map)" = "$TEST_UID" ] || fail "uid_map is not $TEST_UID: $(cat /proc/self/uid_map)"
    # A network namespace of our own: only lo in it.
    [ "$($IP -o link show | wc -l)" = 1 ] || { $IP -o link show; fail "not in a fresh network namespace"; }
    # The VM's own (non-network) sysctls stay out of reach.
    if echo intruder 2>/dev/null >/proc/sys/kernel/hostname; then fail "could write kernel.hostname"; fi
}

run_test root/kernel/wireguard-device kernel_wireguard
run_test_user user/kernel/unprivileged-userns user_is_unprivileged
run_test_user user/kernel/wireguard-device kernel_wireguard
