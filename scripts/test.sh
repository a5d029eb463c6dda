#!/usr/bin/env bash
# The whole test suite: host tests (swift test, rootless namespace scenarios
# run as an unprivileged user), the version matrix (scripts/matrix/run.sh:
# Debian 11, 12 and 13 userlands), then kernel WireGuard tests in a QEMU VM.
#   scripts/test.sh [--host-only | --vm-only | --matrix-only]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=all
case "${1:-}" in
  --host-only) mode=host ;;
  --vm-only) mode=vm ;;
  --matrix-only) mode=matrix ;;
  "") ;;
  *) echo "usage: $0 [--host-only|--vm-only|--matrix-only]" >&2; exit 2 ;;
esac

source scripts/host-setup.sh

# Every test runs the binary users install: the static release build
# (scripts/build-static.sh), through $WGNS_BIN (Tests/TestSupport/Run.swift,
# scripts/vm/lib.sh). Set WGNS_BIN to test another build.
if [ -z "${WGNS_BIN:-}" ]; then
  WGNS_BIN=$(bash scripts/build-static.sh | tail -n1)
fi
export WGNS_BIN
# Debian 13's wireguard-go (it uses TUN offloads), once into build-cache/: the
# builtin backend's interop tests meet it as well as this host's Debian 12 one.
bash scripts/fetch-trixie.sh wireguard-go 0.0.20231211 "$(pwd)/build-cache/wireguard-go-13" >/dev/null

if [ "$mode" = all ] || [ "$mode" = host ]; then
  swift build --build-tests
  swift test --skip-build
fi
if [ "$mode" = all ] || [ "$mode" = matrix ]; then
  bash scripts/matrix/run.sh
fi
if [ "$mode" = all ] || [ "$mode" = vm ]; then
  bash scripts/vm/test.sh
fi
