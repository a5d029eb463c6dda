# `wgns show IFACE --json --show-keys` → the lines `wg show IFACE dump` prints,
# minus the private key (wgns never shows it): the interface line starts at
# the public key. Accepts one device object or an array of them.
# Allowed IPs come out as a JSON array (jq 1.6's join is quadratic, too slow
# for 10,000 under TCG); json_to_dump in 20-interop.sh turns it into a,b,c.
def hex: if . < 16 then "0123456789abcdef"[.:. + 1] else (. / 16 | floor | hex) + ("0123456789abcdef"[. % 16:. % 16 + 1]) end;
def none: if . == null or . == "" then "(none)" else . end;
def off: if . == null or . == 0 then "off" else tostring end;
(if type == "array" then .[] else . end)
| ([(.publicKey | none), (.listenPort // 0), (.fwmark // 0 | if . == 0 then "off" else "0x" + hex end)] | @tsv),
  (.peers[] |
    [.publicKey,
     (if has("presharedKey") then (.presharedKey | none) elif .hasPresharedKey then "(hidden)" else "(none)" end),
     (.endpoint | none), (.allowedIPs // [] | if length == 0 then "(none)" else tostring end),
     (.latestHandshake // 0), (.transferRx // 0), (.transferTx // 0), (.persistentKeepalive | off)]
    | @tsv)
