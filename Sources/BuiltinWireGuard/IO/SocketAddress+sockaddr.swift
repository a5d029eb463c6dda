import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// Room for either socket address: `sockaddr_in6` is the larger.
let socketAddressStorageSize = MemoryLayout<sockaddr_in6>.size

extension SocketAddress {
    /// Reads a `sockaddr_in` or `sockaddr_in6` (an IPv4-mapped IPv6 address
    /// becomes IPv4, as a dual-stack socket reports IPv4 peers); nil for
    /// other families or a short `length`.
    init?(sockaddr p: UnsafeRawPointer, length: Int) {
        guard length >= MemoryLayout<sa_family_t>.size else { return nil }
        switch Int32(p.loadUnaligned(as: sa_family_t.self)) {
        case AF_INET:
            guard length >= MemoryLayout<sockaddr_in>.size else { return nil }
            let sin = p.loadUnaligned(as: sockaddr_in.self)
            let a = withUnsafeBytes(of: sin.sin_addr) { ($0[0], $0[1], $0[2], $0[3]) }
            self.init(address: .v4(a.0, a.1, a.2, a.3), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            guard length >= MemoryLayout<sockaddr_in6>.size else { return nil }
            let sin6 = p.loadUnaligned(as: sockaddr_in6.self)
            let port = UInt16(bigEndian: sin6.sin6_port)
            let address = withUnsafeBytes(of: sin6.sin6_addr) { b -> IPAddress in
                let mapped = b.loadUnaligned(as: UInt64.self) == 0 && b.loadUnaligned(fromByteOffset: 8, as: UInt32.self) == UInt32(0x0000_ffff).bigEndian
                return mapped ? .v4(b[12], b[13], b[14], b[15]) : .v6(IPv6Bytes(b))
            }
            self.init(address: address, port: port, scopeID: address.isV6 ? sin6.sin6_scope_id : 0)
        default:
            return nil
        }
    }

    /// Writes the address as a `sockaddr_in` (when `asIPv6` is false) or a
    /// `sockaddr_in6` (IPv4 as IPv4-mapped, for a dual-stack socket) into
    /// `p`, which has room for a `sockaddr_in6`; returns its length, or 0
    /// when an IPv6 address is to be written as IPv4.
    func writeSockaddr(to p: UnsafeMutableRawPointer, asIPv6: Bool) -> Int {
        if !asIPv6 {
            guard case let .v4(a, b, c, d) = address else { return 0 }
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0[0] = a; $0[1] = b; $0[2] = c; $0[3] = d }
            p.storeBytes(of: sin, as: sockaddr_in.self)
            return MemoryLayout<sockaddr_in>.size
        }
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        switch address {
        case let .v4(a, b, c, d):
            withUnsafeMutableBytes(of: &sin6.sin6_addr) {
                $0[10] = 0xff; $0[11] = 0xff; $0[12] = a; $0[13] = b; $0[14] = c; $0[15] = d
            }
        case let .v6(bytes):
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { dst in bytes.withUnsafeBytes { dst.copyMemory(from: $0) } }
            sin6.sin6_scope_id = scopeID
        }
        p.storeBytes(of: sin6, as: sockaddr_in6.self)
        return MemoryLayout<sockaddr_in6>.size
    }
}
