# shellcheck shell=sh disable=SC1090,SC1091,SC2034
# `wgns doctor` and `wgns up`, run by an unprivileged user (uid 1000), on a
# machine that says no, for real: the VM (root) sets the sysctl or breaks
# the device, the user runs doctor (exit 1, the reason and its fix) and
# `wgns up` (fails with the same reason in one line), then the VM restores
# it. (Ubuntu's kernel.apparmor_restrict_unprivileged_userns does not exist in
# Debian's kernels: DoctorVerdictTests judge that case. No backend at all is
# 06-no-backend.sh, early, while unloading wireguard deletes no big device.)

# refused_saying CHECK REASON FIX: refused (guest/lib.sh), and both doctor
# and wgns up give REASON and `fix: FIX`.
refused_saying() {
    refused "$1"
    grep -q -F "$2" doctor.out || fail "doctor does not say '$2'"
    grep -q -F "fix: $3" doctor.out || fail "doctor does not give the fix '$3'"
    grep -q -F "$2" up.err || fail "wgns up does not give doctor's reason"
    grep -q -F "fix: $3" up.err || fail "wgns up does not give doctor's fix"
}

conf() {
    job_conf 127.0.0.1:51820 >job.conf
    chown "$TEST_UID:$TEST_UID" . job.conf && chmod 0600 job.conf
}

ready_again() {
    as_user wgns doctor >doctor.out 2>&1 || { cat doctor.out; fail "doctor still fails after the restore"; }
}

sysctl_zero() {
    conf
    knob=$1
    saved=$(cat "/proc/sys/user/$knob")
    [ "$saved" != 0 ] || fail "user.$knob is already 0"
    undo() { echo "$saved" >"/proc/sys/user/$knob"; }
    echo 0 >"/proc/sys/user/$knob"
    refused_saying "user namespaces" "(user.$knob = 0)" "sudo sysctl -w user.$knob=15000"
    ready_again
}

tun_closed() {
    conf
    chmod 0600 /dev/net/tun
    undo() { chmod 0666 /dev/net/tun; }
    refused_saying "/dev/net/tun" "/dev/net/tun is mode 0600" "sudo chmod 0666 /dev/net/tun"
    ready_again
}

run_test root/doctor/max-user-namespaces-0 sysctl_zero max_user_namespaces
run_test root/doctor/max-net-namespaces-0 sysctl_zero max_net_namespaces
run_test root/doctor/dev-net-tun-0600 tun_closed
