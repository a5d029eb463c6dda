# Sourced by the test and benchmark scripts: rootless scenarios need an
# unprivileged user (pasta refuses to run as root) and a usable /dev/net/tun.
# As root, make both (user wgns-test); as a normal user, use yourself.
# Defines TEST_USER, run_as_test_user CMD... and exec_as_test_user CMD... (the
# same, replacing the shell: in `( exec_as_test_user CMD ) &`, $! is CMD's
# pid); as root, exports WGNS_TEST_USER, which the swift tests read, and
# WGNS_NEIGHBOUR_USER (wgns-neighbour): another uid on the same node, the
# hostile neighbour of the tests that try to take the hub's port, flood a
# named tunnel's socket or own a folder the test user trusts.
if [ "$(id -u)" = 0 ]; then
  id wgns-test >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin wgns-test
  id wgns-neighbour >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin wgns-neighbour
  export WGNS_NEIGHBOUR_USER=wgns-neighbour
  chmod 0666 /dev/net/tun
  TEST_USER=wgns-test
  export WGNS_TEST_USER=wgns-test
  as_test_user=(setpriv --reuid=wgns-test --regid=wgns-test --clear-groups env HOME=/tmp)
else
  TEST_USER=$(id -un)
  as_test_user=()
fi
run_as_test_user() { "${as_test_user[@]}" "$@"; }
exec_as_test_user() { exec "${as_test_user[@]}" "$@"; }
# free_port [udp|tcp] (scripts/free-port.sh).
source "$(dirname "${BASH_SOURCE[0]}")/free-port.sh"
