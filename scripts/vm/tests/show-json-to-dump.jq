# `wgns show IFACE --json --show-keys` → the lines `wg show IFACE dump` prints,
# minus the private key (wgns never shows it): the interface line starts at
# the public key. Accepts one device object or an array of them.
def hex: if . < 16 then "0123456789abcdef"[.:. + 1] else (. / 16 | floor | hex) + ("0123456789abcdef"[. % 16:. % 16 + 1]) end;
def none: if . == null or . == "" then "(none)" else . end;
def ips: if . == null or length == 0 then "(none)" else join(",") end;
def off: if . == null or . == 0 then "off" else tostring end;
(if type == "array" then .[] else . end)
| ([(.publicKey | none), (.listenPort // 0 | tostring),
    (.fwmark // 0 | if . == 0 then "off" else "0x" + hex end)] | join("\t")),
  (.peers[] |
    [.publicKey,
     (if has("presharedKey") then (.presharedKey | none) elif .hasPresharedKey then "(hidden)" else "(none)" end),
     (.endpoint | none), (.allowedIPs | ips),
     (.latestHandshake // 0 | tostring), (.transferRx // 0 | tostring), (.transferTx // 0 | tostring),
     (.persistentKeepalive | off)]
    | join("\t"))
