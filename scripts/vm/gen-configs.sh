#!/usr/bin/env bash
# Writes the WireGuard configs the VM tests and the benchmark use into DIR,
# each already in the exact form `wg showconf` prints it back (clamped
# private keys, canonical prefixes, the kernel's peer order), so that a
# device's showconf can be compared with the file byte for byte.
# Keys are random 32-byte strings (a public key need not have a private key
# behind it for the kernel to accept it); generated with awk, no python.
#   scripts/vm/gen-configs.sh DIR
set -euo pipefail
dir=${1:?usage: gen-configs.sh DIR}
mkdir -p "$dir"
nkeys=30000
head -c $((32 * nkeys)) /dev/urandom | od -An -v -tx1 -w32 | tr -d ' ' |
awk -v dir="$dir" '
function hexval(c) { return index("0123456789abcdef", c) - 1 }
# base64 of the 32 bytes in hex string h; clamp=1 applies X25519 clamping.
function b64(h, clamp,    i, n, b, out, v) {
    n = 0
    for (i = 1; i <= 64; i += 2) b[n++] = hexval(substr(h, i, 1)) * 16 + hexval(substr(h, i + 1, 1))
    if (clamp) {
        b[0] = b[0] - b[0] % 8
        b[31] = (b[31] % 64) + 64
    }
    out = ""
    for (i = 0; i + 2 < 32; i += 3) {
        v = b[i] * 65536 + b[i + 1] * 256 + b[i + 2]
        out = out substr(A, int(v / 262144) + 1, 1) substr(A, int(v / 4096) % 64 + 1, 1) \
                  substr(A, int(v / 64) % 64 + 1, 1) substr(A, v % 64 + 1, 1)
    }
    v = b[30] * 65536 + b[31] * 256
    out = out substr(A, int(v / 262144) + 1, 1) substr(A, int(v / 4096) % 64 + 1, 1) substr(A, int(v / 64) % 64 + 1, 1) "="
    return out
}
function key(clamp) { return b64(K[kn++], clamp) }
function iface(f, port, fwmark) {
    printf "[Interface]\nListenPort = %d\n", port > f
    if (fwmark != "") printf "FwMark = %s\n", fwmark > f
    printf "PrivateKey = %s\n", key(1) > f
}
# Peer number i of a generated set: IPv4 and IPv6 endpoints, some preshared
# keys and keepalives, one IPv4 /32 and one IPv6 /128 each.
function v4(i) { return sprintf("10.%d.%d.%d", int(i / 65536) % 256, int(i / 256) % 256, i % 256) }
function v6(i) { return (i < 65536) ? sprintf("fd00::%x", i) : sprintf("fd00::%x:%x", int(i / 65536), i % 65536) }
function peer(f, i, pub, psk, seed) {
    printf "\n[Peer]\nPublicKey = %s\n", pub > f
    if (psk != "") printf "PresharedKey = %s\n", psk > f
    printf "AllowedIPs = %s/32, %s/128\n", v4(i + seed), v6(i + seed) > f
    if (i % 2 == 0) printf "Endpoint = 192.0.2.%d:%d\n", i % 250 + 1, 10000 + i % 50000 > f
    else printf "Endpoint = [2001:db8::%x]:%d\n", i, 10000 + i % 50000 > f
    if (i % 5 == 0) printf "PersistentKeepalive = %d\n", 25 + i % 100 > f
}
function peers(f, n,    i) {
    for (i = 1; i <= n; i++) peer(f, i, key(0), (i % 7 == 0) ? key(0) : "", 0)
}
BEGIN { A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" }
{ K[NR - 1] = $0 }
END {
    kn = 0
    f = dir "/zero.conf"; iface(f, 51820, "0x42"); printf "\n" > f; close(f)

    f = dir "/one.conf"; iface(f, 51821, "")
    printf "\n[Peer]\nPublicKey = %s\nPresharedKey = %s\n", key(0), key(0) > f
    printf "AllowedIPs = 10.1.0.1/32, 192.168.0.0/16, fd00:1::/64, ::/0\n" > f
    printf "Endpoint = [2001:db8::1]:51820\nPersistentKeepalive = 25\n" > f
    close(f)

    f = dir "/v6.conf"; iface(f, 51822, "0xff00")
    printf "\n[Peer]\nPublicKey = %s\nAllowedIPs = fd00:2::1/128\nEndpoint = [::1]:65535\n", key(0) > f
    printf "\n[Peer]\nPublicKey = %s\nAllowedIPs = fd00:2::2/128\nEndpoint = [2001:db8:ffff:ffff:ffff:ffff:ffff:fffe]:1\n", key(0) > f
    printf "\n[Peer]\nPublicKey = %s\nAllowedIPs = 0.0.0.0/0\nEndpoint = 127.0.0.1:51000\n", key(0) > f
    close(f)

    f = dir "/peers-1000.conf"; iface(f, 51823, ""); peers(f, 1000); close(f)
    f = dir "/peers-10000.conf"; iface(f, 51824, ""); peers(f, 10000); close(f)

    # One peer with 10,000 allowed IPs: 5,000 IPv4 /32 and 5,000 IPv6 /128.
    f = dir "/aips-10000.conf"; iface(f, 51825, "")
    printf "\n[Peer]\nPublicKey = %s\nAllowedIPs = ", key(0) > f
    for (i = 0; i < 5000; i++) printf "%s/32, ", v4(i + 65536) > f
    for (i = 0; i < 5000; i++) printf "%s/128%s", v6(i + 65536), (i < 4999 ? ", " : "\n") > f
    printf "Endpoint = [2001:db8::ffff]:51820\n" > f
    close(f)

    # Sync: a base of 300 peers; next keeps every peer not divisible by 10
    # (in order), changes the endpoint of every 3rd and the allowed IPs of
    # every 4th, gives every 7th a new preshared key, and adds 50 peers.
    n = 300
    for (i = 1; i <= n; i++) { P[i] = key(0); S[i] = (i % 7 == 0) ? key(0) : ""; S2[i] = (i % 7 == 0) ? key(0) : "" }
    f = dir "/sync-base.conf"; iface(f, 51826, "")
    for (i = 1; i <= n; i++) peer(f, i, P[i], S[i], 0)
    close(f)
    f = dir "/sync-next.conf"; iface(f, 51826, "")
    for (i = 1; i <= n; i++) {
        if (i % 10 == 0) continue
        printf "\n[Peer]\nPublicKey = %s\n", P[i] > f
        if (S2[i] != "") printf "PresharedKey = %s\n", S2[i] > f
        if (i % 4 == 0) printf "AllowedIPs = %s/32, %s/128\n", v4(i + 70000), v6(i + 70000) > f
        else printf "AllowedIPs = %s/32, %s/128\n", v4(i), v6(i) > f
        if (i % 3 == 0) printf "Endpoint = [2001:db8:1::%x]:%d\n", i, 20000 + i > f
        else if (i % 2 == 0) printf "Endpoint = 192.0.2.%d:%d\n", i % 250 + 1, 10000 + i % 50000 > f
        else printf "Endpoint = [2001:db8::%x]:%d\n", i, 10000 + i % 50000 > f
        if (i % 5 == 0) printf "PersistentKeepalive = %d\n", 25 + i % 100 > f
    }
    for (i = n + 1; i <= n + 50; i++) peer(f, i, key(0), "", 0)
    close(f)

    # Add: 100 new peers on top of sync-base (addconf keeps what is there).
    f = dir "/add-extra.conf"; printf "[Interface]\n" > f
    for (i = n + 1; i <= n + 100; i++) { pk = key(0); peer(f, i, pk, "", 1000) }
    close(f)
}'
# add-expected = sync-base followed by the added peers, with sync-base's interface.
{ cat "$dir/sync-base.conf"; sed '1d' "$dir/add-extra.conf"; } >"$dir/add-expected.conf"
