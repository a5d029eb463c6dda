import KeyStore

extension Device {
    /// The device as a UAPI `get=1` reply (what wireguard-go answers): the
    /// interface's keys and port, then each peer's, ending with `errno=0`
    /// and a blank line. It holds the private and preshared keys: wipe it.
    /// The built-in data plane answers its supervisor with it.
    public func uapiText() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160 + peers.reduce(0) { $0 + 320 + $1.allowedIPs.count * 48 })
        func line(_ key: StaticString, _ value: some UnsignedInteger & FixedWidthInteger) {
            out.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
            out.append(61); appendDecimal(value, to: &out); out.append(10)
        }
        func keyLine<K: WireGuardKey>(_ key: StaticString, _ k: K) {
            out.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
            out.append(61); appendHex(k, to: &out); out.append(10)
        }
        if let k = privateKey { keyLine("private_key", k) }
        line("listen_port", listenPort)
        if firewallMark != 0 { line("fwmark", firewallMark) }
        for p in peers {
            keyLine("public_key", p.publicKey)
            if let k = p.presharedKey { keyLine("preshared_key", k) }
            line("protocol_version", p.protocolVersion)
            if let e = p.endpoint { out.append(contentsOf: "endpoint=".utf8); e.appendText(to: &out); out.append(10) }
            line("last_handshake_time_sec", UInt64(max(0, p.lastHandshake.seconds)))
            line("last_handshake_time_nsec", UInt64(max(0, p.lastHandshake.nanoseconds)))
            line("tx_bytes", p.transmitBytes)
            line("rx_bytes", p.receiveBytes)
            line("persistent_keepalive_interval", p.persistentKeepaliveInterval)
            for ip in p.allowedIPs { out.append(contentsOf: "allowed_ip=".utf8); ip.appendText(to: &out); out.append(10) }
        }
        out.append(contentsOf: "errno=0\n\n".utf8)
        return out
    }

    /// Reads a UAPI `get=1` reply (`uapiText`, or wireguard-go's) as the
    /// device `name`; throws on a malformed reply or a non-zero `errno=`.
    public init(uapiText: [UInt8], name: String) throws(NetlinkError) {
        self = try UAPIRequest.parseGet(uapiText, name: name)
    }
}
