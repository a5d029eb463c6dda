import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// Output built in one byte buffer and written with as few `write`s as
/// possible. Everything wgns prints goes through it: `print` looks up
/// protocol conformances at run time, which costs start-up time.
struct Output {
    var bytes: [UInt8] = []
    init(capacity: Int = 4096) { bytes.reserveCapacity(capacity) }
    mutating func add(_ s: String) { bytes.append(contentsOf: s.utf8) }
    mutating func add(_ n: some UnsignedInteger & FixedWidthInteger) { appendDecimal(n, to: &bytes) }
    mutating func add(_ n: Int64) {
        if n < 0 { bytes.append(45) }
        appendDecimal(n.magnitude, to: &bytes)
    }
    /// Writes everything to `fd` (stdout by default), then wipes the buffer (it may hold a key).
    mutating func flush(to fd: Int32 = STDOUT_FILENO) throws {
        defer { bytes.withUnsafeMutableBytes { if let p = $0.baseAddress { explicit_bzero(p, $0.count) } }; bytes.removeAll(keepingCapacity: true) }
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw CLIError("cannot write output: \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
    }

    /// Writes `text` to stdout at once.
    static func write(_ text: String) throws {
        var out = Output(capacity: text.utf8.count)
        out.add(text)
        try out.flush()
    }
}
