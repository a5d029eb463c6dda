# shellcheck shell=bash disable=SC2016
# VPNHubTests: two VPNs, a and b, each with `wgns hub DIR -- COMMAND` at once:
# COMMAND says what it sees (WGNS_ENDPOINT, WGNS_HUB, WGNS_PEERS, its
# network namespace), checks the published endpoint, resolves peer-2 inside
# the hub's namespace, has peer 1 ping the hub, and exits 7 (a) or 0 (b).
"$W" vpn new a --peers 2 > /dev/null && "$W" vpn new b --peers 2 > /dev/null || exit 9
cmd='echo "$1 sees $WGNS_ENDPOINT hub $WGNS_HUB peers $WGNS_PEERS netns $(readlink /proc/self/ns/net)"
     [ "$(head -1 $1/hub.endpoint)" = "$WGNS_ENDPOINT" ] && echo "$1 endpoint published"
     "$W" exec hub-$1 -- getent hosts peer-2 | tr -s " " | sed "s/^/$1 hub resolves /"
     "$W" up --backend "${BACKEND:-wireguard-go}" $1 --peer 1 -- ping -c1 -W5 hub.vpn > /dev/null && echo "$1 peer reaches hub"
     sleep 1; exit $2'
"$W" hub --backend "${BACKEND:-wireguard-go}" a --name hub-a -- sh -c "$cmd" x a 7 > a.out 2>&1 &
A=$!
"$W" hub --backend "${BACKEND:-wireguard-go}" b --name hub-b -- sh -c "$cmd" x b 0 > b.out 2>&1 &
B=$!
wait $A; echo "a status $?"; wait $B; echo "b status $?"
cat a.out b.out
echo "host netns $(readlink /proc/self/ns/net)"
ls a b | tr '\n' ' '; echo
rm -f a.out b.out
