import KeyStore
import POSIX
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// Output built in one byte buffer and written with as few `write`s as
/// possible. Everything wgns prints goes through it: `print` looks up
/// protocol conformances at run time, which costs start-up time.
struct Output {
    var bytes: [UInt8] = []
    /// Where `spill` writes (nil: only `flush` writes).
    var spillFD: Int32?
    /// A failed `spill`, reported by the next `flush`.
    private var spillError: CLIError?
    init(capacity: Int = 4096) { bytes.reserveCapacity(capacity) }

    /// Output that goes out in pieces of about `chunk` bytes while it is
    /// built (`spill`), so that a dump of 10,000 peers never sits whole in
    /// memory.
    init(streamingTo fd: Int32 = STDOUT_FILENO, chunk: Int = 1 << 16) {
        bytes.reserveCapacity(chunk + 4096)
        spillFD = fd
    }

    /// Writes what is there if it is a chunk's worth (streaming outputs only).
    mutating func spill() {
        guard let fd = spillFD, spillError == nil, bytes.count >= 1 << 16 else { return }
        do { try flush(to: fd) } catch { spillError = error as? CLIError ?? CLIError(error) }
    }
    mutating func add(_ s: String) { bytes.append(contentsOf: s.utf8) }
    mutating func add(_ n: some UnsignedInteger & FixedWidthInteger) { appendDecimal(n, to: &bytes) }
    mutating func add(_ n: Int64) {
        if n < 0 { bytes.append(45) }
        appendDecimal(n.magnitude, to: &bytes)
    }
    /// Writes everything to `fd` (stdout by default), then wipes the buffer (it may hold a key).
    mutating func flush(to fd: Int32 = STDOUT_FILENO) throws {
        if let e = spillError { throw e }
        defer { KeyStore.wipe(&bytes); bytes.removeAll(keepingCapacity: true) }
        do { try POSIX.writeAll(fd, bytes) } catch { throw CLIError("cannot write output: \(error)") }
    }

    /// Writes `text` to stdout at once.
    static func write(_ text: String) throws {
        var out = Output(capacity: text.utf8.count)
        out.add(text)
        try out.flush()
    }
}
