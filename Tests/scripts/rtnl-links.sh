# shellcheck shell=sh
# RouteNetlinkTests (inFreshNamespace: sh in unshare -Urn, RTNL the
# wgns-rtnl test helper): a veth pair, addresses, routes and wg-quick's
# rules made through wgns-rtnl's steps, then, after "---", what iproute2's
# ip sees of them.
"$RTNL" 'veth d0 d1' 'up lo' 'up d0' 'mtu d0 1400' 'addr-add d0 10.1.0.2/24' \
  'addr-add d0 fd00::2/64' 'route-add 10.2.0.0/16 d0' 'route-add 0.0.0.0/0 d0 51820' \
  'route-add fd01::/64 d0' 'route-add ::/0 d0 51820' \
  'rule-add not-fwmark 51820 51820 v4' 'rule-add suppress 254 v4' \
  'rule-add not-fwmark 51820 51820 v6' 'rule-add suppress 254 v6' \
  links 'index d0' 'index nope' 'route-get 10.2.3.4'
echo ---
ip -o link show d0
ip -o addr show dev d0 scope global
ip route show table main
ip route show table 51820
ip -6 route show table 51820
ip rule
ip -6 rule
