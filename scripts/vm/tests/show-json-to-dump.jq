# `wgns show IFACE --json` → the lines `wg show IFACE dump` prints.
# Accepts one device object or an array of them (one device expected).
def hex: if . < 16 then "0123456789abcdef"[.:. + 1] else (. / 16 | floor | hex) + ("0123456789abcdef"[. % 16:. % 16 + 1]) end;
def none: if . == null or . == "" then "(none)" else . end;
def ips: if . == null or length == 0 then "(none)" else join(",") end;
(if type == "array" then .[0] else . end) as $d
| ([($d.privateKey | none), ($d.publicKey | none), ($d.listenPort // 0 | tostring),
    (($d.fwmark // $d.firewallMark // 0) as $m | if $m == 0 then "off" else "0x" + ($m | hex) end)] | join("\t")),
  ($d.peers[] |
    [.publicKey, (.presharedKey | none), (.endpoint | none), (.allowedIPs | ips),
     (.latestHandshake // 0 | tostring), (.transferRx // .receiveBytes // 0 | tostring),
     (.transferTx // .transmitBytes // 0 | tostring),
     ((.persistentKeepalive // .persistentKeepaliveInterval // 0) as $k | if $k == 0 then "off" else ($k | tostring) end)]
    | join("\t"))
