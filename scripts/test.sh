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

source scripts/host-setup.sh

# Every test runs the binary users install: the static release build
# (scripts/build-static.sh), through $WGNS_BIN (Tests/TestSupport/Run.swift,
# scripts/vm/lib.sh). Set WGNS_BIN to test another build.
if [ -z "${WGNS_BIN:-}" ]; then
  WGNS_BIN=$(bash scripts/build-static.sh | tail -n1)
fi
export WGNS_BIN

if [ "$mode" != vm ]; then
  swift build --build-tests
  swift test --skip-build
fi
if [ "$mode" != host ] && [ -x scripts/vm/test.sh ]; then
  bash scripts/vm/test.sh
fi
