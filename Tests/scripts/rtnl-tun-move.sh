# shellcheck shell=sh
# RouteNetlinkTests (inFreshNamespace, RTNL the wgns-rtnl test helper): a
# TUN device (as wireguard-go makes) moved by fd into a second network
# namespace of the same user namespace; the links before, after "---" in
# this namespace, and after a second "---" in the other one.
ip tuntap add t0 mode tun
"$RTNL" links
unshare -n sleep 30 & child=$!
while [ "$(readlink /proc/$child/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do :; done
"$RTNL" "move t0 /proc/$child/ns/net"
echo ---
"$RTNL" links
echo ---
nsenter --net=/proc/$child/ns/net "$RTNL" links
kill $child
