import CLibMnl
#if canImport(Glibc)
import Glibc
#endif

/// A listening AF_UNIX socket of this network namespace, as the kernel's
/// sock_diag reports it.
public struct ListeningUnixSocket: Sendable, Hashable {
    /// The bound name: for an abstract one, without its leading NUL and
    /// with a leading "@" (as /proc/net/unix and `ss` show it).
    public var name: String
    /// The uid of the socket's owner (whoever created it); nil on a kernel
    /// older than 5.3, which does not report it.
    public var uid: UInt32?
    /// The socket's inode.
    public var inode: UInt32
}

/// The unix side of NETLINK_SOCK_DIAG (`ss -xl`): which abstract names are
/// bound, and by which uid, without connecting to any of them (a connect
/// can be starved by whoever floods the listener; this cannot).
public enum UnixSocketDiag {
    /// Every listening unix socket of this network namespace whose name
    /// starts with `prefix` (wraps a SOCK_DIAG_BY_FAMILY dump with
    /// UDIAG_SHOW_NAME | UDIAG_SHOW_UID).
    public static func listening(prefix: String = "") throws(NetlinkError) -> [ListeningUnixSocket] {
        let fd = try sys("sock_diag socket") { socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 4 /* NETLINK_SOCK_DIAG */) }
        defer { close(fd) }
        // nlmsghdr (16) + unix_diag_req (24): family, protocol, pad,
        // states (1 << TCP_LISTEN), ino (0: all), show, cookie.
        var req = [UInt8](repeating: 0, count: 40)
        func put32(_ v: UInt32, at o: Int) { withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { req[o + i] = b } } }
        func put16(_ v: UInt16, at o: Int) { withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { req[o + i] = b } } }
        put32(40, at: 0)
        put16(20 /* SOCK_DIAG_BY_FAMILY */, at: 4)
        put16(UInt16(NLM_F_REQUEST | NLM_F_DUMP), at: 6)
        put32(1, at: 8)
        req[16] = UInt8(AF_UNIX)
        put32(1 << 10 /* TCP_LISTEN */, at: 20)
        put32(0x01 | 0x40 /* UDIAG_SHOW_NAME | UDIAG_SHOW_UID */, at: 28)
        _ = try sys("sock_diag request") { req.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } }
        var found: [ListeningUnixSocket] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        let wanted = Array(prefix.utf8)
        while true {
            let n = try sys("sock_diag reply") { buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
            if n == 0 { return found }
            var o = 0
            while o + 16 <= n {
                func u32(_ at: Int) -> UInt32 { UInt32(buf[at]) | UInt32(buf[at + 1]) << 8 | UInt32(buf[at + 2]) << 16 | UInt32(buf[at + 3]) << 24 }
                func u16(_ at: Int) -> Int { Int(buf[at]) | Int(buf[at + 1]) << 8 }
                let len = Int(u32(o)), type = u16(o + 4)
                guard len >= 16, o + len <= n else { return found }
                if type == Int(NLMSG_DONE) { return found }
                if type == Int(NLMSG_ERROR) {
                    let e = len >= 20 ? -Int32(bitPattern: u32(o + 16)) : EPROTO
                    throw NetlinkError.system("sock_diag", errno: e)
                }
                // unix_diag_msg (16): family, type, state, pad, ino, cookie; then attributes.
                if len >= 32 {
                    let inode = u32(o + 20)
                    var name: String?
                    var uid: UInt32?
                    var a = o + 32
                    while a + 4 <= o + len {
                        let alen = u16(a), atype = u16(a + 2)
                        guard alen >= 4, a + alen <= o + len else { break }
                        let payload = Array(buf[(a + 4)..<(a + alen)])
                        if atype == 0 /* UNIX_DIAG_NAME */ {
                            name = payload.first == 0 ? "@" + String(decoding: payload.dropFirst(), as: UTF8.self)
                                                      : String(decoding: payload.prefix { $0 != 0 }, as: UTF8.self)
                        } else if atype == 7 /* UNIX_DIAG_UID */, alen >= 8 {
                            uid = u32(a + 4)
                        }
                        a += (alen + 3) & ~3
                    }
                    if let name, Array(name.utf8).starts(with: wanted) {
                        found.append(ListeningUnixSocket(name: name, uid: uid, inode: inode))
                    }
                }
                o += (len + 3) & ~3
            }
        }
    }
}
