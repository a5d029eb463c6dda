import CWGShim
#if canImport(Glibc)
import Glibc
#endif

/// An owned file descriptor: one owner, closed exactly once (explicitly with
/// `close()` or when dropped).
public struct Descriptor: ~Copyable {
    /// The raw descriptor number.
    public let raw: Int32

    /// Takes ownership of `raw`.
    public init(owning raw: Int32) { self.raw = raw }

    /// Closes the descriptor now.
    public consuming func close() {
        Glibc.close(raw)
        discard self
    }

    /// Gives up ownership without closing, returning the number.
    public consuming func release() -> Int32 {
        let r = raw
        discard self
        return r
    }

    deinit { Glibc.close(raw) }

    /// Writes all of `bytes`, retrying short writes and EINTR.
    public func writeAll(_ bytes: some Collection<UInt8>) throws(TunnelError) {
        let a = Array(bytes)
        var off = 0
        while off < a.count {
            let n = try sysSize("write") { a.withUnsafeBytes { Glibc.write(raw, $0.baseAddress! + off, a.count - off) } }
            off += n
        }
    }

    /// Reads up to `max` bytes; an empty array means end of file.
    public func read(max: Int = 65536) throws(TunnelError) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        let n = try sysSize("read") { buf.withUnsafeMutableBytes { Glibc.read(raw, $0.baseAddress, max) } }
        return Array(buf[..<n])
    }

    /// Reads exactly `count` bytes, or fewer at end of file.
    public func read(exactly count: Int) throws(TunnelError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            let chunk = try read(max: count - out.count)
            if chunk.isEmpty { break }
            out += chunk
        }
        return out
    }
}

/// A pipe: both ends close-on-exec (`pipe2`).
struct Pipe: ~Copyable {
    var read: Descriptor
    var write: Descriptor

    init() throws(TunnelError) {
        var fds: [Int32] = [0, 0]
        try sys("pipe2") { CWGShim_pipe2(&fds, O_CLOEXEC) }
        read = Descriptor(owning: fds[0])
        write = Descriptor(owning: fds[1])
    }

    /// A connected pair of AF_UNIX SOCK_SEQPACKET sockets used as a one-way
    /// channel (`write` to `read`) that keeps message boundaries and can
    /// carry descriptors.
    static func messageChannel() throws(TunnelError) -> Pipe {
        var fds: [Int32] = [0, 0]
        try sys("socketpair") { socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
        return Pipe(read: Descriptor(owning: fds[0]), write: Descriptor(owning: fds[1]))
    }

    private init(read: consuming Descriptor, write: consuming Descriptor) {
        self.read = read
        self.write = write
    }
}

/// Reads lines from a descriptor, buffering what follows the last newline.
struct LineReader {
    var buffer: [UInt8] = []

    /// Appends what `fd` has now; returns false at end of file.
    mutating func fill(from fd: Int32) throws(TunnelError) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = try sysSize("read") { chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 4096) } }
        if n == 0 { return false }
        buffer += chunk[..<n]
        return true
    }

    /// Appends one message of the socket `fd` and returns the descriptors it
    /// carried (SCM_RIGHTS, close-on-exec); nil at end of file.
    mutating func receive(from fd: Int32) throws(TunnelError) -> [Int32]? {
        var chunk = [UInt8](repeating: 0, count: 4096)
        var fds = [Int32](repeating: -1, count: 8)
        var count: Int32 = 0
        let n = try sysSize("recvmsg") { chunk.withUnsafeMutableBytes { CWGShim_recv_fds(fd, $0.baseAddress, 4096, &fds, 8, &count) } }
        if n == 0 && count == 0 { return nil }
        buffer += chunk[..<n]
        return Array(fds[..<Int(count)])
    }

    /// The next complete line, without its newline.
    mutating func nextLine() -> String? {
        guard let nl = buffer.firstIndex(of: 10) else { return nil }
        let line = String(decoding: buffer[..<nl], as: UTF8.self)
        buffer.removeFirst(nl + 1)
        return line
    }
}
