# Sourced by the test and benchmark scripts: rootless scenarios need an
# unprivileged user (pasta refuses to run as root) and a usable /dev/net/tun.
# As root, make both (user wgns-test); as a normal user, use yourself.
# Defines TEST_USER and run_as_test_user CMD...; as root, exports
# WGNS_TEST_USER, which the swift tests read.
if [ "$(id -u)" = 0 ]; then
  id wgns-test >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin wgns-test
  chmod 0666 /dev/net/tun
  TEST_USER=wgns-test
  export WGNS_TEST_USER=wgns-test
  run_as_test_user() { setpriv --reuid=wgns-test --regid=wgns-test --clear-groups env HOME=/tmp "$@"; }
else
  TEST_USER=$(id -un)
  run_as_test_user() { "$@"; }
fi
