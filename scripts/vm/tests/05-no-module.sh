# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# Runs first, while no WireGuard device exists: with the module unloaded,
# wgns says so in one line instead of failing obscurely; then it is loaded
# again for everything that follows.

no_module() {
    rmmod wireguard || fail "cannot unload wireguard (a device already exists?)"
    # No autoloading either (tests/01-autoload.sh covers that).
    saved=$(cat /proc/sys/kernel/modprobe)
    echo /nonexistent >/proc/sys/kernel/modprobe
    rc=0
    if $IP link add wgnomod type wireguard 2>/dev/null; then rc=1; fi
    job_conf 127.0.0.1:51820 >job.conf
    chown "$TEST_UID:$TEST_UID" . job.conf && chmod 0600 job.conf
    as_user wgns up --backend kernel "$PWD/job.conf" -- true >out 2>err && up=0 || up=$?
    echo "$saved" >/proc/sys/kernel/modprobe
    insmod /modules/*-wireguard.ko || fail "cannot load wireguard again"
    [ "$rc" = 0 ] || fail "ip link add type wireguard worked without the module"
    [ "$up" != 0 ] || fail "wgns up --backend kernel succeeded without the module"
    cat err
    [ "$(wc -l <err)" = 1 ] || fail "expected one error line"
    grep -q -i wireguard err || fail "the error does not say WireGuard is missing"
}

run_test root/no-module/wgns-up-backend-kernel no_module
