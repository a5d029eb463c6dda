import KeyStore
#if canImport(Glibc)
import Glibc
#endif

/// The UAPI text protocol's encoding and decoding, built straight into and
/// parsed straight out of byte arrays.
struct UAPIRequest {
    /// The request text.
    var bytes: [UInt8]

    /// Wipes the request (it may hold private and preshared keys).
    mutating func wipe() { KeyStore.wipe(&bytes) }

    /// `set=1` for `config`, ending with the blank line.
    static func set(_ config: DeviceConfig) -> UAPIRequest {
        var out: [UInt8] = []
        out.reserveCapacity(64 + config.peers.count * 160)
        func line(_ key: String, _ value: String) {
            out.append(contentsOf: key.utf8); out.append(61); out.append(contentsOf: value.utf8); out.append(10)
        }
        func keyLine<K: WireGuardKey>(_ key: String, _ k: K) {
            out.append(contentsOf: key.utf8); out.append(61)
            appendHex(k, to: &out)
            out.append(10)
        }
        out.append(contentsOf: "set=1\n".utf8)
        if let k = config.privateKey { keyLine("private_key", k) }
        if let p = config.listenPort { line("listen_port", String(p)) }
        if let m = config.firewallMark { line("fwmark", String(m)) }
        if config.replacePeers { line("replace_peers", "true") }
        for peer in config.peers {
            keyLine("public_key", peer.publicKey)
            if peer.remove { line("remove", "true"); continue }
            if peer.updateOnly { line("update_only", "true") }
            if let k = peer.presharedKey { keyLine("preshared_key", k) }
            if let e = peer.endpoint {
                out.append(contentsOf: "endpoint=".utf8); e.appendText(to: &out); out.append(10)
            }
            if let k = peer.persistentKeepaliveInterval { line("persistent_keepalive_interval", String(k)) }
            if peer.replaceAllowedIPs { line("replace_allowed_ips", "true") }
            for ip in peer.allowedIPs {
                out.append(contentsOf: "allowed_ip=".utf8); ip.network.appendText(to: &out); out.append(10)
            }
        }
        out.append(10)
        return UAPIRequest(bytes: out)
    }

    /// Parses a `get=1` reply into a `Device`; throws on a non-zero `errno=`.
    static func parseGet(_ reply: [UInt8], name: String) throws(NetlinkError) -> Device {
        var device = Device(name: name)
        var peers: [Peer] = []
        var current: Peer?
        var errnoValue: Int32?
        let operation = "read userspace WireGuard device \(name)"
        func bad(_ line: ArraySlice<UInt8>) -> NetlinkError {
            NetlinkError(.protocolError, "cannot \(operation): malformed reply line \"\(String(decoding: line.prefix(80), as: UTF8.self))\"")
        }
        try reply.withUnsafeBufferPointer { (buf) throws(NetlinkError) in
            var start = 0
            while start < buf.count {
                let base = UnsafeRawPointer(buf.baseAddress!)
                var end = buf.count
                if let nl = memchr(base + start, 10, buf.count - start) { end = UnsafeRawPointer(nl) - base }
                defer { start = end + 1 }
                if end == start { continue }
                guard let eqp = memchr(base + start, 61, end - start) else { throw bad(reply[start..<end]) }
                let eq = UnsafeRawPointer(eqp) - base
                let field = UnsafeBufferPointer(rebasing: buf[start..<eq])
                let value = UnsafeBufferPointer(rebasing: buf[(eq + 1)..<end])
                func number<T: FixedWidthInteger>(_: T.Type) throws(NetlinkError) -> T {
                    var v: T = 0
                    guard !value.isEmpty else { throw bad(reply[start..<end]) }
                    for c in value {
                        guard c >= 48 && c <= 57 else { throw bad(reply[start..<end]) }
                        let (m, o1) = v.multipliedReportingOverflow(by: 10)
                        let (a, o2) = m.addingReportingOverflow(T(c - 48))
                        guard !o1 && !o2 else { throw bad(reply[start..<end]) }
                        v = a
                    }
                    return v
                }
                func key<K: WireGuardKey>(_: K.Type) throws(NetlinkError) -> K {
                    guard let k = decodeHexKey(K.self, UnsafeRawBufferPointer(value)) else { throw bad(reply[start..<end]) }
                    return k
                }
                // Compared as bytes, most frequent first: a dump of 10,000
                // peers has about 100,000 lines.
                func isField(_ name: StaticString) -> Bool {
                    field.count == name.utf8CodeUnitCount && memcmp(field.baseAddress!, name.utf8Start, field.count) == 0
                }
                if isField("allowed_ip") {
                    guard let p = IPPrefix(utf8: value) else { throw bad(reply[start..<end]) }
                    current?.allowedIPs.append(p)
                } else if isField("public_key") {
                    if let p = current { peers.append(p) }
                    current = Peer(publicKey: try key(PublicKey.self))
                } else if isField("preshared_key") {
                    let k = try key(PresharedKey.self)
                    current?.presharedKey = k.isZero ? nil : k
                } else if isField("endpoint") {
                    guard let e = parseEndpoint(value) else { throw bad(reply[start..<end]) }
                    current?.endpoint = e
                } else if isField("last_handshake_time_sec") {
                    current?.lastHandshake.seconds = try number(Int64.self)
                } else if isField("last_handshake_time_nsec") {
                    current?.lastHandshake.nanoseconds = try number(Int64.self)
                } else if isField("tx_bytes") {
                    current?.transmitBytes = try number(UInt64.self)
                } else if isField("rx_bytes") {
                    current?.receiveBytes = try number(UInt64.self)
                } else if isField("persistent_keepalive_interval") {
                    current?.persistentKeepaliveInterval = try number(UInt16.self)
                } else if isField("protocol_version") {
                    current?.protocolVersion = try number(UInt32.self)
                } else if isField("private_key") {
                    let k = try key(PrivateKey.self)
                    if !k.isZero { device.privateKey = k; device.publicKey = k.publicKey }
                } else if isField("listen_port") {
                    device.listenPort = try number(UInt16.self)
                } else if isField("fwmark") {
                    device.firewallMark = try number(UInt32.self)
                } else if isField("errno") {
                    errnoValue = Int32(String(decoding: value, as: UTF8.self)) ?? EPROTO
                }
                // Anything else: newer implementations may add keys.
            }
        }
        if let p = current { peers.append(p) }
        guard let e = errnoValue else {
            throw NetlinkError(.protocolError, "cannot \(operation): the reply has no errno line")
        }
        if e != 0 {
            throw NetlinkError(.system, errno: abs(e), "cannot \(operation): the userspace WireGuard said \(errnoText(abs(e)))")
        }
        device.peers = peers
        return device
    }

    /// `1.2.3.4:5` or `[v6%scope]:5`.
    static func parseEndpoint(_ value: UnsafeBufferPointer<UInt8>) -> SocketAddress? {
        guard let colon = value.lastIndex(of: UInt8(ascii: ":")),
              let port = parseDecimal(value[(colon + 1)...], maxDigits: 5, max: 65535) else { return nil }
        var host = value[..<colon]
        if host.first == UInt8(ascii: "[") && host.last == UInt8(ascii: "]") { host = host.dropFirst().dropLast() }
        var scope: UInt32 = 0
        if let pct = host.firstIndex(of: UInt8(ascii: "%")) {
            let zone = String(decoding: host[(pct + 1)...], as: UTF8.self)
            scope = UInt32(zone) ?? if_nametoindex(zone)
            host = host[..<pct]
        }
        guard let a = IPAddress(utf8: UnsafeBufferPointer(rebasing: host)) else { return nil }
        return SocketAddress(address: a, port: UInt16(port), scopeID: scope)
    }
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

/// Appends a key as 64 lowercase hex digits.
func appendHex<K: WireGuardKey>(_ key: K, to out: inout [UInt8]) {
    key.withUnsafeBytes { raw in
        for b in raw {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 15)])
        }
    }
}

/// Decodes 64 hex digits into a key; nil for anything else.
func decodeHexKey<K: WireGuardKey>(_: K.Type, _ text: UnsafeRawBufferPointer) -> K? {
    guard text.count == 64 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
    // On the stack, wiped after: it may be a private or preshared key.
    return withUnsafeTemporaryAllocation(byteCount: 32, alignment: 16) { raw -> K? in
        defer { KeyStore.wipe(raw.baseAddress, count: 32) }
        for i in 0..<32 {
            guard let h = nibble(text[2 * i]), let l = nibble(text[2 * i + 1]) else { return nil }
            raw[i] = h << 4 | l
        }
        return try? K(rawBytes: UnsafeRawBufferPointer(raw))
    }
}
