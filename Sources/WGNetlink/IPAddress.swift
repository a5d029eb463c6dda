#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address, stored in network byte order.
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes, network order.
    case v4(UInt8, UInt8, UInt8, UInt8)
    /// 16 bytes, network order.
    case v6(IPv6Bytes)

    /// Parses dotted-quad IPv4 or any IPv6 text form (`inet_pton`).
    /// Returns nil for anything else, including host names.
    public init?(_ text: some StringProtocol) {
        var s = String(text)
        guard let a = s.withUTF8({ IPAddress(utf8: $0) }) else { return nil }
        self = a
    }

    /// Parses address text given as UTF-8 bytes, exactly as `inet_pton`
    /// would (dotted quad without leading zeros, or any IPv6 form), without
    /// making a `String`: IPv4 is parsed here, IPv6 by `inet_pton`.
    public init?(utf8 text: UnsafeBufferPointer<UInt8>) {
        guard !text.isEmpty, text.count <= 45 else { return nil }
        if !text.contains(UInt8(ascii: ":")) {
            var octets: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
            var part = 0, value = 0, digits = 0, first: UInt8 = 0
            func store() -> Bool {
                guard digits > 0, value <= 255, !(digits > 1 && first == UInt8(ascii: "0")) else { return false }
                switch part {
                case 0: octets.0 = UInt8(value)
                case 1: octets.1 = UInt8(value)
                case 2: octets.2 = UInt8(value)
                default: octets.3 = UInt8(value)
                }
                return true
            }
            for c in text {
                if c == UInt8(ascii: ".") {
                    guard part < 3, store() else { return nil }
                    part += 1; value = 0; digits = 0
                } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                    if digits == 0 { first = c }
                    digits += 1
                    guard digits <= 3 else { return nil }
                    value = value * 10 + Int(c - UInt8(ascii: "0"))
                } else {
                    return nil
                }
            }
            guard part == 3, store() else { return nil }
            self = .v4(octets.0, octets.1, octets.2, octets.3)
            return
        }
        var v6 = in6_addr()
        // NUL-terminated on the stack for inet_pton (at most 45 + 1 bytes).
        let ok = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { cstr -> Bool in
            for (i, c) in text.enumerated() {
                guard c != 0 else { return false }
                cstr[i] = CChar(bitPattern: c)
            }
            cstr[text.count] = 0
            return inet_pton(AF_INET6, cstr.baseAddress!, &v6) == 1
        }
        guard ok else { return nil }
        self = .v6(withUnsafeBytes(of: &v6) { IPv6Bytes($0) })
    }

    /// Wraps 4 or 16 raw bytes in network order.
    public init?(bytes: some Collection<UInt8>) {
        guard let a = Array(bytes).withUnsafeBytes({ IPAddress(bytes: $0) }) else { return nil }
        self = a
    }

    /// Wraps 4 or 16 raw bytes in network order, as netlink carries them
    /// (no copy for IPv4).
    public init?(bytes: UnsafeRawBufferPointer) {
        switch bytes.count {
        case 4: self = .v4(bytes[0], bytes[1], bytes[2], bytes[3])
        case 16: self = .v6(IPv6Bytes(bytes))
        default: return nil
        }
    }

    /// Appends the canonical text (as `description`) to `out` without
    /// making a `String`, exactly as glibc's `inet_ntop` writes it (which
    /// `wg` uses), but without its `sprintf` per group: a dump of 10,000
    /// peers prints tens of thousands of addresses.
    public func appendText(to out: inout [UInt8]) {
        switch self {
        case let .v4(a, b, c, d):
            appendDecimal(a, to: &out); out.append(46)
            appendDecimal(b, to: &out); out.append(46)
            appendDecimal(c, to: &out); out.append(46)
            appendDecimal(d, to: &out)
        case let .v6(bytes):
            IPAddress.appendIPv6(bytes, to: &out)
        }
    }

    /// IPv6 text: lowercase hex groups without leading zeros; the longest
    /// run of two or more zero groups (the first of equals) written `::`;
    /// the last 32 bits as a dotted quad when the first 96 bits are zero
    /// (`::1.2.3.4`, except for `::` and `::1`-style short runs) or are
    /// `::ffff` (mapped IPv4).
    private static func appendIPv6(_ b: IPv6Bytes, to out: inout [UInt8]) {
        let group = { (i: Int) -> Int in Int(b[2 * i]) << 8 | Int(b[2 * i + 1]) }
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0...8 {
            if i < 8 && group(i) == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var i = 0
        while i < 8 {
            if i == bestStart {
                out.append(58)
                i += bestLength
                if i == 8 { out.append(58) }
                continue
            }
            if i != 0 { out.append(58) }
            if i == 6 && bestStart == 0 && (bestLength == 6 || (bestLength == 5 && group(5) == 0xffff)) {
                appendDecimal(b[12], to: &out); out.append(46)
                appendDecimal(b[13], to: &out); out.append(46)
                appendDecimal(b[14], to: &out); out.append(46)
                appendDecimal(b[15], to: &out)
                return
            }
            let g = group(i)
            var shift = 12
            while shift > 0 && (g >> shift) & 15 == 0 { shift -= 4 }
            while shift >= 0 {
                let d = UInt8((g >> shift) & 15)
                out.append(d < 10 ? 48 + d : 87 + d)  // 0-9, a-f
                shift -= 4
            }
            i += 1
        }
    }

    /// The address's bytes in network order (4 or 16 of them).
    public var bytes: [UInt8] {
        switch self {
        case let .v4(a, b, c, d): return [a, b, c, d]
        case let .v6(b): return b.withUnsafeBytes { Array($0) }
        }
    }

    /// True for IPv6.
    public var isV6: Bool { if case .v6 = self { return true } else { return false } }

    /// `AF_INET` or `AF_INET6`.
    public var family: Int32 { isV6 ? AF_INET6 : AF_INET }

    /// The longest prefix length for this family: 32 or 128.
    public var maxPrefixLength: UInt8 { isV6 ? 128 : 32 }

    /// Canonical text (as `inet_ntop`): `10.0.0.1`, `fd00::1`.
    public var description: String {
        var out: [UInt8] = []
        out.reserveCapacity(46)
        appendText(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The address with every bit past `prefixLength` cleared.
    public func masked(to prefixLength: UInt8) -> IPAddress {
        switch self {
        case let .v4(a, b, c, d):
            let v = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
            let r = v & (prefixLength == 0 ? 0 : prefixLength >= 32 ? ~0 : ~0 << (32 - UInt32(prefixLength)))
            return .v4(UInt8(r >> 24), UInt8(truncatingIfNeeded: r >> 16), UInt8(truncatingIfNeeded: r >> 8),
                       UInt8(truncatingIfNeeded: r))
        case let .v6(b):
            return .v6(b.masked(to: prefixLength))
        }
    }
}

/// An address with a prefix length: an interface address (`10.0.0.2/24`)
/// or a network (`0.0.0.0/0`), as in `Address =` and `AllowedIPs =`.
public struct IPPrefix: Sendable, Hashable, CustomStringConvertible {
    /// The address as written (not masked).
    public var address: IPAddress
    /// Number of leading bits that make the network.
    public var prefixLength: UInt8

    /// Wraps an address and a prefix length (at most 32 or 128).
    public init?(address: IPAddress, prefixLength: UInt8) {
        guard prefixLength <= address.maxPrefixLength else { return nil }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `ADDR/LEN` or a bare `ADDR` (meaning /32 or /128) from
    /// UTF-8 bytes, without making a `String`.
    public init?(utf8 text: UnsafeBufferPointer<UInt8>) {
        guard let slash = text.firstIndex(of: UInt8(ascii: "/")) else {
            guard let addr = IPAddress(utf8: text) else { return nil }
            self.init(address: addr, prefixLength: addr.maxPrefixLength)
            return
        }
        guard let addr = IPAddress(utf8: UnsafeBufferPointer(rebasing: text[..<slash])) else { return nil }
        guard let len = parseDecimal(text[(slash + 1)...], maxDigits: 3, max: 255) else { return nil }
        self.init(address: addr, prefixLength: UInt8(len))
    }

    /// Parses `ADDR/LEN` or a bare `ADDR` (meaning /32 or /128).
    public init?(_ text: some StringProtocol) {
        var s = String(text)
        guard let p = s.withUTF8({ IPPrefix(utf8: $0) }) else { return nil }
        self = p
    }

    /// The network this prefix names, host bits cleared.
    public var network: IPPrefix { IPPrefix(address: address.masked(to: prefixLength), prefixLength: prefixLength)! }

    /// `ADDR/LEN`.
    public var description: String { "\(address)/\(prefixLength)" }

    /// Appends `ADDR/LEN` to `out` without making a `String`.
    public func appendText(to out: inout [UInt8]) {
        address.appendText(to: &out)
        out.append(47)
        appendDecimal(prefixLength, to: &out)
    }
}

/// A UDP endpoint: an IP address and a port.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address.
    public var address: IPAddress
    /// The port, host order.
    public var port: UInt16
    /// For IPv6 link-local addresses, the scope id; 0 otherwise.
    public var scopeID: UInt32

    /// Wraps an address and a port.
    public init(address: IPAddress, port: UInt16, scopeID: UInt32 = 0) {
        self.address = address
        self.port = port
        self.scopeID = scopeID
    }

    /// Appends the endpoint as wg prints it (`1.2.3.4:5`, `[fd00::1]:5`,
    /// `[fe80::1%eth0]:5`) to `out` without making a `String`.
    public func appendText(to out: inout [UInt8]) {
        guard address.isV6 else {
            address.appendText(to: &out)
            out.append(58)
            appendDecimal(port, to: &out)
            return
        }
        out.append(91)
        address.appendText(to: &out)
        if scopeID != 0 {
            out.append(37)
            var name = (UInt64(0), UInt64(0), UInt64(0))  // 24 bytes > IF_NAMESIZE
            let found = withUnsafeMutableBytes(of: &name) { buf -> Bool in
                let p = buf.baseAddress!.assumingMemoryBound(to: CChar.self)
                guard if_indextoname(scopeID, p) != nil else { return false }
                out.append(contentsOf: UnsafeRawBufferPointer(start: buf.baseAddress, count: strlen(p)))
                return true
            }
            if !found { appendDecimal(scopeID, to: &out) }
        }
        out.append(contentsOf: [93, 58])
        appendDecimal(port, to: &out)
    }

    /// `1.2.3.4:51820`, `[fd00::1]:51820` or `[fe80::1%eth0]:51820`, as
    /// `wg` prints endpoints (`appendText`).
    public var description: String {
        var out: [UInt8] = []
        appendText(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// A number written in 1 to `maxDigits` ASCII digits (leading zeros
/// allowed) that is at most `max`; nil for anything else.
@inlinable
public func parseDecimal(_ digits: some Collection<UInt8>, maxDigits: Int, max: Int) -> Int? {
    guard !digits.isEmpty, digits.count <= maxDigits else { return nil }
    var value = 0
    for c in digits {
        guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { return nil }
        value = value * 10 + Int(c - UInt8(ascii: "0"))
    }
    return value <= max ? value : nil
}

/// Appends an unsigned number's decimal digits to `out`.
public func appendDecimal(_ value: some UnsignedInteger & FixedWidthInteger, to out: inout [UInt8]) {
    var v = UInt64(value)
    if v < 10 { out.append(48 + UInt8(v)); return }
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes >= 20 digits
    withUnsafeMutableBytes(of: &digits) { d in
        var i = d.count
        while v > 0 { i -= 1; d[i] = 48 + UInt8(v % 10); v /= 10 }
        out.append(contentsOf: d[i...])
    }
}

/// The 16 bytes of an IPv6 address, network order, held inline: a dump of
/// 10,000 peers makes tens of thousands of addresses, none on the heap.
public struct IPv6Bytes: Sendable, Hashable {
    private var storage: (UInt64, UInt64)

    /// Copies exactly 16 bytes.
    public init(_ raw: UnsafeRawBufferPointer) {
        precondition(raw.count == 16)
        storage = (raw.loadUnaligned(as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }

    /// Calls `body` with the 16 bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage, body)
    }

    /// The address with every bit past `prefixLength` cleared.
    func masked(to prefixLength: UInt8) -> IPv6Bytes {
        func mask(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? ~0 : ~0 << UInt64(64 - bits) }
        var m = self
        let n = Int(prefixLength)
        m.storage = ((UInt64(bigEndian: storage.0) & mask(n)).bigEndian, (UInt64(bigEndian: storage.1) & mask(n - 64)).bigEndian)
        return m
    }

    /// Byte `i` (0 to 15).
    public subscript(i: Int) -> UInt8 { withUnsafeBytes { $0[i] } }

    public static func == (a: Self, b: Self) -> Bool { a.storage == b.storage }
    public func hash(into hasher: inout Hasher) { hasher.combine(storage.0); hasher.combine(storage.1) }
}
