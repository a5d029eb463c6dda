import CWGShim
import POSIX
#if canImport(Glibc)
import Glibc
#endif

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
        let n = try sys("read") { chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 4096) } }
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
        let n = try sys("recvmsg") { chunk.withUnsafeMutableBytes { CWGShim_recv_fds(fd, $0.baseAddress, 4096, &fds, 8, &count) } }
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
