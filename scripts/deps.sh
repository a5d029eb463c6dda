#!/usr/bin/env bash
# Installs every Debian package wgns builds with, tests with and benchmarks
# with. Run as root on a fresh Debian 12 machine (Swift itself is assumed).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then exec sudo "$0" "$@"; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    libsodium-dev libmnl-dev libb2-dev pkg-config libstdc++-12-dev \
    wireguard-tools wireguard-go slirp4netns passt iproute2 iputils-ping \
    qemu-system-x86 busybox-static kmod cpio iperf3 hyperfine procps util-linux \
    slurmctld slurmd slurm-client munge python3 \
    jq ethtool coreutils gzip binutils debootstrap bubblewrap zsh fish groff-base man-db nftables
