# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# `wgns doctor` and `wgns up` as an unprivileged user (uid 1000) with no
# kernel WireGuard and no wireguard-go: the module unloaded, no module for
# the kernel on disk. The builtin backend is what is left: doctor is
# satisfied and says so, and `wgns up` (auto) runs the job on it, with no
# carrier for an isolated job. Early (after 05-no-module), while no
# WireGuard device exists: unloading the module deletes every device, which
# for the big ones of the later tests takes minutes under TCG.

no_kernel_wireguard() {
    job_conf 127.0.0.1:51820 >job.conf
    chown "$TEST_UID:$TEST_UID" . job.conf && chmod 0600 job.conf
    rmmod wireguard || fail "cannot unload wireguard"
    mv /lib/modules /lib/modules.hidden
    undo() { mv /lib/modules.hidden /lib/modules; insmod /modules/*-wireguard.ko; }
    as_user wgns doctor >doctor.out 2>&1 && drc=0 || drc=$?
    as_user wgns up -v --isolate "$PWD/job.conf" -- sh -c 'ip -o link show | cut -d: -f2 | tr -d " " | tr "\n" " "' >up.out 2>up.err && urc=0 || urc=$?
    undo
    cat doctor.out up.out up.err
    [ "$drc" = 0 ] || fail "doctor exited $drc, not 0"
    grep -q "the builtin backend is used instead" doctor.out || fail "doctor does not say the builtin backend is used"
    grep -q "^ok   wgns up: backend builtin" doctor.out || fail "doctor does not say what wgns up would use"
    [ "$urc" = 0 ] || fail "wgns up exited $urc"
    grep -q "backend builtin" up.err || fail "wgns up -v does not name the builtin backend"
    [ "$(cat up.out)" = "lo wg0 " ] || fail "the isolated job sees more than lo and wg0"
    no_leftovers "wgns up on the builtin backend"
    as_user wgns doctor >doctor.out 2>&1 || { cat doctor.out; fail "doctor fails after the restore"; }
}

run_test root/doctor/no-kernel-wireguard no_kernel_wireguard
