#!/usr/bin/env bash
# The whole test suite: host tests (swift test, rootless namespace scenarios
# run as an unprivileged user), then kernel WireGuard tests in a QEMU VM.
#   scripts/test.sh [--host-only | --vm-only]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=all
case "${1:-}" in
  --host-only) mode=host ;;
  --vm-only) mode=vm ;;
  "") ;;
  *) echo "usage: $0 [--host-only|--vm-only]" >&2; exit 2 ;;
esac

# Rootless scenarios need an unprivileged user (pasta refuses to run as root)
# and a usable /dev/net/tun. As root, make both; as a normal user, use yourself.
if [ "$(id -u)" = 0 ]; then
  id wgns-test >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin wgns-test
  chmod 0666 /dev/net/tun
  export WGNS_TEST_USER=wgns-test
fi

if [ "$mode" != vm ]; then
  swift build --build-tests
  swift test --skip-build
fi
if [ "$mode" != host ] && [ -x scripts/vm/test.sh ]; then
  bash scripts/vm/test.sh
fi
