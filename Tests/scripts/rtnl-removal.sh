# shellcheck shell=sh
# RouteNetlinkTests (inFreshNamespace, RTNL the wgns-rtnl test helper):
# everything made through wgns-rtnl removed the same way, ip then showing
# what is left; after "---", the link deleted and the links listed.
"$RTNL" 'veth d0 d1' 'up d0' 'addr-add d0 10.1.0.2/24' 'addr-add d0 fd00::2/64' \
  'route-add 10.2.0.0/16 d0 100' 'rule-add not-fwmark 7 100 v4' 'rule-add suppress 254 v4'
"$RTNL" 'rule-del not-fwmark 7 100 v4' 'rule-del suppress 254 v4' 'route-del 10.2.0.0/16 d0 100' \
  'addr-del d0 10.1.0.2/24' 'addr-del d0 fd00::2/64' 'down d0'
ip -o addr show dev d0 scope global; ip route show table 100; ip rule; ip -o link show d0
echo ---
"$RTNL" 'delete d0' links
