# shellcheck shell=bash
# ClusterTests, as root, on the two hosts of cluster.sh (C) in D: h2 reaches
# h1 by name; who a command on h1 runs as (TESTNET_USER) and where; whether
# h1 has a default route or reaches anything off the bridge; whether the
# bridge (wtTAGbr) has an address; a host that does not exist.
bash "$C" root "$D" h2 ping -c1 -W2 h1 > /dev/null && echo "h2 reaches h1 by name"
bash "$C" exec "$D" h1 sh -c 'echo "user $(id -un) on $(cat /etc/hostname)"'
bash "$C" root "$D" h1 ip route | grep -q default && echo "h1 has a default route"
bash "$C" root "$D" h1 ip route get 192.0.2.1 2>&1 | grep -q unreachable && echo "h1 reaches nothing else"
ip -o addr show dev "wt${TAG}br" | grep -q inet && echo "the bridge has an address"
bash "$C" exec "$D" h9 true; echo "h9 status $?"
