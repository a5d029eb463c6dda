import POSIX
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads, through POSIX's Descriptor.
enum FileIO {
    /// Reads a whole file (see `Descriptor.readAll`).
    static func readAll(_ path: String) throws(Errno) -> [UInt8] {
        try Descriptor.open(path, O_RDONLY).readAll()
    }
}

/// Reads a small file (a /proc file) whole, as text.
func readSmallFile(_ path: String) throws(TunnelError) -> String {
    do { return String(decoding: try FileIO.readAll(path), as: UTF8.self) } catch {
        throw TunnelError(.system, "open \(path)", errno: error)
    }
}
