import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// An owned file descriptor: one owner, closed exactly once (with the
/// consuming `close()` or when dropped). Reads and writes retry EINTR and
/// short transfers.
public struct Descriptor: ~Copyable {
    /// The raw descriptor number, for system calls; the descriptor still owns it.
    public let raw: Int32

    /// Takes ownership of `raw`.
    public init(owning raw: Int32) { self.raw = raw }

    /// Opens `path` close-on-exec (`open(2)` flags and mode).
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(Errno) -> Descriptor {
        Descriptor(owning: try valueOrErrno { Glibc.open(path, flags | O_CLOEXEC, mode) })
    }

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

    /// Writes all of `bytes` (in place: a buffer holding a key is not copied).
    public func writeAll(_ bytes: [UInt8]) throws(Errno) {
        try POSIX.writeAll(raw, bytes)
    }

    /// Reads up to `max` bytes; an empty array means end of file.
    public func read(max: Int = 65536) throws(Errno) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        let n = try valueOrErrno { buf.withUnsafeMutableBytes { Glibc.read(raw, $0.baseAddress, max) } }
        return Array(buf[..<n])
    }

    /// Reads exactly `count` bytes, or fewer at end of file.
    public func read(exactly count: Int) throws(Errno) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            let chunk = try read(max: count - out.count)
            if chunk.isEmpty { break }
            out += chunk
        }
        return out
    }

    /// Reads until end of file into one buffer sized by `fstat` (a file
    /// may hold keys: no chunk or second copy is left behind). It grows in
    /// place only past that size: sockets, pipes, /proc files.
    public func readAll() throws(Errno) -> [UInt8] {
        var st = stat()
        let size = fstat(raw, &st) == 0 && st.st_mode & S_IFMT == S_IFREG ? Int(st.st_size) : 0
        var out = [UInt8](repeating: 0, count: max(size + 1, 4096))
        var used = 0
        while true {
            if used == out.count { out += [UInt8](repeating: 0, count: out.count) }
            let n = try valueOrErrno { out.withUnsafeMutableBytes { Glibc.read(raw, $0.baseAddress! + used, $0.count - used) } }
            if n == 0 { break }
            used += n
        }
        out.removeLast(out.count - used)
        return out
    }
}

/// Writes all of `bytes` to a descriptor this code does not own (stdout,
/// stderr), retrying EINTR and short writes: the one write-all loop.
public func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
    var off = 0
    while off < bytes.count {
        off += try valueOrErrno { bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) } }
    }
}
