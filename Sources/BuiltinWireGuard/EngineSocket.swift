import POSIX
import SystemPackage
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// The built-in backend's UDP socket, bound in the host's network namespace
/// (the process that binds it decides which): one dual-stack IPv6 socket
/// (`IPV6_V6ONLY` off, IPv4 peers as `::ffff:a.b.c.d`), or an IPv4 one where
/// the host has no IPv6.
public struct EngineSocket: ~Copyable {
    /// The bound socket.
    public let descriptor: Descriptor
    /// AF_INET6 (dual-stack) or AF_INET.
    public let family: Int32
    /// The port it is bound to (the one asked for, or the kernel's pick for 0).
    public let port: UInt16

    /// Binds a UDP socket to `port` on every address of the host (as the
    /// kernel's WireGuard does: `socket`, `setsockopt(IPV6_V6ONLY, 0)`,
    /// `bind`, `getsockname`); 0 lets the kernel pick the port.
    public static func bind(port: UInt16) throws(IOError) -> EngineSocket {
        var zero: Int32 = 0
        let size = socklen_t(MemoryLayout<Int32>.size)
        if let fd = try? valueOrErrno({ socket(AF_INET6, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0) }) {
            let d = Descriptor(owning: fd)
            _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, size)
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            var len = socklen_t(MemoryLayout<sockaddr_in6>.size)
            let r = withUnsafeMutablePointer(to: &sin6) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
            }
            guard r else {
                let e = Errno(rawValue: errno)
                d.close()
                throw IOError(.bind, errno: e, "cannot bind the UDP socket to port \(port) on the host")
            }
            return EngineSocket(descriptor: d, family: AF_INET6, port: UInt16(bigEndian: sin6.sin6_port))
        }
        // No IPv6 on this host.
        let fd: Int32
        do { fd = try valueOrErrno { socket(AF_INET, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0) } } catch {
            throw IOError(.socket, errno: error, "cannot open a UDP socket on the host")
        }
        let d = Descriptor(owning: fd)
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let r = withUnsafeMutablePointer(to: &sin) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard r else {
            let e = Errno(rawValue: errno)
            d.close()
            throw IOError(.bind, errno: e, "cannot bind the UDP socket to port \(port) on the host")
        }
        return EngineSocket(descriptor: d, family: AF_INET, port: UInt16(bigEndian: sin.sin_port))
    }

    /// Gives up the descriptor (to a forked data plane, say) and returns its number.
    public consuming func release() -> Int32 { descriptor.release() }
}

/// A peer's address as a `sockaddr` for a socket of `family`: IPv4 becomes
/// `::ffff:a.b.c.d` on a dual-stack socket. No allocation.
struct SocketAddressStorage {
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    /// False when the address cannot be reached from a socket of `family`
    /// (IPv6 on an IPv4-only socket).
    mutating func set(_ a: SocketAddress, family: Int32) -> Bool {
        switch a.address {
        case let .v4(b0, b1, b2, b3):
            if family == AF_INET6 {
                return withUnsafeMutableBytes(of: &storage) { raw in
                    var sin6 = sockaddr_in6()
                    sin6.sin6_family = sa_family_t(AF_INET6)
                    sin6.sin6_port = a.port.bigEndian
                    withUnsafeMutableBytes(of: &sin6.sin6_addr) { p in
                        p.initializeMemory(as: UInt8.self, repeating: 0)
                        p[10] = 0xff; p[11] = 0xff; p[12] = b0; p[13] = b1; p[14] = b2; p[15] = b3
                    }
                    raw.storeBytes(of: sin6, as: sockaddr_in6.self)
                    length = socklen_t(MemoryLayout<sockaddr_in6>.size)
                    return true
                }
            }
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = a.port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { p in p[0] = b0; p[1] = b1; p[2] = b2; p[3] = b3 }
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: sin, as: sockaddr_in.self) }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            return true
        case let .v6(bytes):
            guard family == AF_INET6 else { return false }
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = a.port.bigEndian
            sin6.sin6_scope_id = a.scopeID
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { dst in bytes.withUnsafeBytes { dst.copyMemory(from: $0) } }
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: sin6, as: sockaddr_in6.self) }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            return true
        }
    }

    /// The address in `storage` (as `recvfrom` filled it), with
    /// `::ffff:a.b.c.d` read back as IPv4; nil for another family.
    func address() -> SocketAddress? {
        withUnsafeBytes(of: storage) { raw -> SocketAddress? in
            let family = Int32(raw.load(as: sa_family_t.self))
            if family == AF_INET {
                let sin = raw.load(as: sockaddr_in.self)
                return withUnsafeBytes(of: sin.sin_addr) { b in
                    SocketAddress(address: .v4(b[0], b[1], b[2], b[3]), port: UInt16(bigEndian: sin.sin_port))
                }
            }
            guard family == AF_INET6 else { return nil }
            let sin6 = raw.load(as: sockaddr_in6.self)
            return withUnsafeBytes(of: sin6.sin6_addr) { b -> SocketAddress? in
                let port = UInt16(bigEndian: sin6.sin6_port)
                var mapped = b[10] == 0xff && b[11] == 0xff
                for k in 0..<10 where b[k] != 0 { mapped = false }
                if mapped { return SocketAddress(address: .v4(b[12], b[13], b[14], b[15]), port: port) }
                return SocketAddress(address: .v6(IPv6Bytes(b)), port: port, scopeID: sin6.sin6_scope_id)
            }
        }
    }
}
