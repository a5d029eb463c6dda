# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# `wgns doctor` and `wgns up` as an unprivileged user (uid 1000) with no
# WireGuard backend at all: the module unloaded, no module for the kernel on
# disk, no wireguard-go. Early (after 05-no-module), while no WireGuard device
# exists: unloading the module deletes every device, which for the big ones
# of the later tests takes minutes under TCG.

no_backend() {
    job_conf 127.0.0.1:51820 >job.conf
    chown "$TEST_UID:$TEST_UID" . job.conf && chmod 0600 job.conf
    rmmod wireguard || fail "cannot unload wireguard"
    mv /lib/modules /lib/modules.hidden
    undo() { mv /lib/modules.hidden /lib/modules; insmod /modules/*-wireguard.ko; }
    refused "kernel WireGuard"
    grep -q "no WireGuard backend at all" doctor.out || fail "doctor does not say there is no backend"
    grep -q -i "no WireGuard" up.err || fail "wgns up does not say there is no WireGuard"
    as_user wgns doctor >doctor.out 2>&1 || { cat doctor.out; fail "doctor still fails after the restore"; }
}

run_test root/doctor/no-wireguard-backend no_backend
