# shellcheck shell=bash
# SlurmTests, as root: a `cluster.sh start` (SLURM_CLUSTER) into DIR that
# fails halfway, then what it left. HOW=link: the link name of h2 (tagged
# TAG) is taken beforehand, so the hosts fail; HOW=slurmd: a slurmd that
# exits 1 comes first on PATH (from BIN), so munged and slurmctld start but
# the nodes do not. Prints "status N", then a line for each thing left: a
# daemon of DIR, a file, a keeper, a link.
case $HOW in
link) ip link add "wt${TAG}2h" type veth peer name "wt${TAG}2x"
      bash "$SLURM_CLUSTER" start "$DIR" 2; echo "status $?"
      ip link del "wt${TAG}2h" ;;
slurmd) mkdir -p "$BIN"; printf '#!/bin/sh\nexit 1\n' > "$BIN/slurmd"; chmod 755 "$BIN/slurmd"
      PATH=$BIN:$PATH bash "$SLURM_CLUSTER" start "$DIR" 2; echo "status $?" ;;
esac
ps -e -o args= | grep -q "[/]${DIR#/}/" && echo "a daemon: $(ps -e -o args= | grep "[/]${DIR#/}/")"
[ -e "$DIR" ] && echo "files: $(find "$DIR")"
pgrep -f "^wgns-$TAG-h" > /dev/null && echo "a keeper"
ip -o link | grep -q " wt$TAG" && echo "a link"
true
