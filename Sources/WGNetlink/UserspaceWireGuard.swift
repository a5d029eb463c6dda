import KeyStore
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The userspace backend: wireguard-go and other implementations of the
/// cross-platform UAPI text protocol on `DIR/NAME.sock` (`set=1`, `get=1`,
/// lowercase hex keys, an `errno=N` reply).
public struct UserspaceWireGuard: WireGuardControl, Sendable {
    /// Where the sockets are; `/var/run/wireguard` by default, as for wg.
    public var socketDirectory: String
    /// Descriptors read and discarded while an exchange waits on the socket
    /// (non-blocking ones): the daemon's log pipe. wireguard-go logs a line
    /// per peer and per allowed IP while it applies a `set`, and stops
    /// reading the request when its log pipe is full: a sender that does
    /// not drain it waits forever (50,000 AllowedIPs, 3,000 peers).
    public var drain: [Int32] = []

    /// A backend for the sockets in `socketDirectory`.
    public init(socketDirectory: String = "/var/run/wireguard") {
        self.socketDirectory = socketDirectory
    }

    /// The socket path of device `name`.
    public func socketPath(_ name: String) -> String { "\(socketDirectory)/\(name).sock" }

    /// True when `DIR/NAME.sock` exists and is a socket.
    public func hasDevice(_ name: String) -> Bool {
        var st = stat()
        return stat(socketPath(name), &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK
    }

    /// Sends `set=1` with the config and checks the `errno=0` reply.
    public func configure(_ device: String, _ config: DeviceConfig) throws(NetlinkError) {
        var request = UAPIRequest.set(config)
        defer { request.wipe() }
        let reply = try exchange(device, request.bytes, operation: "configure userspace WireGuard device \(device)")
        try Self.checkErrno(reply, operation: "configure userspace WireGuard device \(device)")
    }

    /// Sends `get=1` and parses the reply.
    public func device(_ name: String) throws(NetlinkError) -> Device {
        var reply = try exchange(name, Array("get=1\n\n".utf8), operation: "read userspace WireGuard device \(name)")
        defer { wipe(&reply) }
        return try UAPIRequest.parseGet(reply, name: name)
    }

    /// The names of every `*.sock` socket in the directory, sorted.
    public func deviceNames() throws(NetlinkError) -> [String] {
        guard let dir = opendir(socketDirectory) else {
            if errno == ENOENT { return [] }
            throw NetlinkError.system("list \(socketDirectory)", errno: errno)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasSuffix(".sock"), name.count > 5 else { continue }
            let device = String(name.dropLast(5))
            if hasDevice(device) { names.append(device) }
        }
        return names.sorted()
    }

    /// Connects to the device's socket, writes `request`, reads until the
    /// reply's closing blank line.
    private func exchange(_ name: String, _ request: [UInt8], operation: String) throws(NetlinkError) -> [UInt8] {
        let path = socketPath(name)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw NetlinkError(.invalidArgument, errno: ENAMETOOLONG, "cannot \(operation): socket path \(path) is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }
        let fd = try sys("cannot \(operation): socket") { socket(AF_UNIX, 1 | O_CLOEXEC /* SOCK_STREAM | SOCK_CLOEXEC: libmnl.h includes <sys/socket.h>, so in some build batches the enum is visible only through CLibMnl */, 0) }
        defer { Glibc.close(fd) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                Result { () throws(NetlinkError) in
                    _ = try sys("connect") { connect(fd, p, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
            }
        }
        if case .failure(let e) = connected {
            if e.errno == .noSuchFileOrDirectory || e.errno == .connectionRefused {
                throw NetlinkError(.noUserspaceDevice, errno: e.errno,
                                   "cannot \(operation): no userspace WireGuard device \(name) (nothing listens on \(path))")
            }
            if e.errno == .permissionDenied || e.errno == .notPermitted {
                throw NetlinkError(.permissionDenied, errno: e.errno, "cannot \(operation): permission denied on \(path)")
            }
            throw NetlinkError(e.code, errno: e.errno, "cannot \(operation): connect to \(path): \(e.errno.map { "\($0)" } ?? "failed")")
        }
        try request.withUnsafeBytes { raw in
            Result { () throws(NetlinkError) in
                var offset = 0
                while offset < raw.count {
                    try waitFor(fd, POLLOUT)
                    let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                    if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                    if n < 0 { throw NetlinkError.system("cannot \(operation): write to \(path)", errno: errno) }
                    offset += n
                }
            }
        }.get()
        var reply: [UInt8] = []
        reply.reserveCapacity(65536)
        var chunk = [UInt8](repeating: 0, count: 65536)
        defer { wipe(&chunk) }
        while true {
            try waitFor(fd, POLLIN)
            let n = try chunk.withUnsafeMutableBytes { raw in
                Result { () throws(NetlinkError) in
                    try sys("cannot \(operation): read from \(path)") { recv(fd, raw.baseAddress, raw.count, 0) }
                }
            }.get()
            if n == 0 { break }
            reply.append(contentsOf: chunk[0..<n])
            // The reply ends with an empty line.
            if reply.count >= 2 && reply[reply.count - 1] == 10 && reply[reply.count - 2] == 10 { break }
        }
        return reply
    }

    /// Waits until `fd` is ready for `events`, reading and discarding
    /// `drain` meanwhile.
    private func waitFor(_ fd: Int32, _ events: Int32) throws(NetlinkError) {
        var sources = drain
        var scratch = [UInt8](repeating: 0, count: sources.isEmpty ? 0 : 65536)
        while true {
            var fds = [pollfd(fd: fd, events: Int16(events), revents: 0)] + sources.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                throw NetlinkError.system("poll", errno: errno)
            }
            for k in 1..<fds.count where fds[k].revents != 0 {
                // A closed log (the daemon died) is dropped from the set.
                if read(fds[k].fd, &scratch, scratch.count) == 0 { sources.removeAll { $0 == fds[k].fd } }
            }
            if fds[0].revents != 0 { return }
        }
    }

    /// Throws when the reply's `errno=` is not 0.
    static func checkErrno(_ reply: [UInt8], operation: String) throws(NetlinkError) {
        guard let line = reply.split(separator: 10).last(where: { $0.starts(with: Array("errno=".utf8)) }) else {
            throw NetlinkError(.protocolError, "cannot \(operation): no errno in the reply")
        }
        let value = Int32(String(decoding: line.dropFirst(6), as: UTF8.self)) ?? Int32(EPROTO)
        if value != 0 {
            let e = abs(value)
            throw NetlinkError(e == EINVAL ? .invalidArgument : .system, errno: e,
                               "cannot \(operation): the userspace WireGuard refused it: \(errnoText(e))")
        }
    }
}
