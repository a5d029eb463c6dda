# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# Runs first. The VM booted without inserting wireguard (VM_DEFER_WIREGUARD=1)
# but with the kernel's modules under /lib/modules and kmod as /sbin/modprobe,
# as a distribution kernel is. There is no wireguard-go in the VM, so an
# unprivileged `wgns up --backend auto` can only succeed on the kernel
# backend, which it must try because the module exists for this kernel
# (creating the link loads it).

autoload() {
    [ ! -d /sys/module/wireguard ] || fail "wireguard is already loaded: the VM must boot without it"
    [ -x /sbin/modprobe ] || fail "no /sbin/modprobe in the VM"
    ! command -v wireguard-go >/dev/null || fail "the VM has wireguard-go: the test needs the kernel backend to be the only one"
    job_conf 127.0.0.1:51820 >job.conf
    chown "$TEST_UID:$TEST_UID" . job.conf && chmod 0600 job.conf
    as_user wgns up -v --backend auto --carrier slirp4netns "$PWD/job.conf" -- true >out 2>err ||
        { cat err; fail "wgns up --backend auto failed with the module on disk but not loaded"; }
    grep -q 'backend wg0: kernel' err || { cat err; fail "wgns -v does not say it used the kernel backend"; }
    [ -d /sys/module/wireguard ] || fail "wireguard still not loaded after wgns up"
    $IP -d link show 2>/dev/null | grep -q 'wireguard' && fail "a wireguard link was left behind in the VM's namespace"
    no_leftovers "wgns up"
}

run_test root/autoload/auto-backend-loads-the-module autoload
# Whatever happened above (or if the filter skipped it), the tests after this
# one need the module.
[ -d /sys/module/wireguard ] || insmod /modules/*-wireguard.ko || echo "@@VM-ERROR cannot insert wireguard"
