import POSIX
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Small file helpers over swift-system's `FileDescriptor`.
enum FileIO {
    /// Reads a whole file (`open`, `read` until EOF).
    static func readAll(_ path: String) throws -> [UInt8] {
        let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec)
        return try fd.closeAfter {
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
                if n == 0 { return out }
                out += chunk[..<n]
            }
        }
    }
}
