import KeyStore
import POSIX
#if canImport(Glibc)
import Glibc
#endif

enum GenKey {
    static let command = Command(name: "genkey", abstract: "Print a new private key (base64), as `wg genkey`.") { _ in
        try writeSecret { PrivateKey.generate().appendBase64Secret(to: &$0) }
    }
}

enum GenPSK {
    static let command = Command(name: "genpsk", abstract: "Print a new preshared key (base64), as `wg genpsk`.") { _ in
        try writeSecret { PresharedKey.generate().appendBase64Secret(to: &$0) }
    }
}

enum PubKey {
    static let command = Command(
        name: "pubkey", abstract: "Read a private key on stdin, print its public key, as `wg pubkey`.") { _ in try run() }

    static func run() throws {
        var input = readStdin(limit: 4096)
        defer { KeyStore.wipe(&input) }
        let key: PublicKey
        do {
            key = try KeyFile.parse(PrivateKey.self, from: input).publicKey
        } catch {
            throw CLIError("stdin: \(error.message)")
        }
        try Output.write(key.base64 + "\n")
    }
}

/// Writes a secret and a newline to stdout, warning (as `wg` does) when
/// stdout is a file that others can read.
func writeSecret(_ text: String) throws {
    try writeSecret(capacity: text.utf8.count + 1) { $0.append(contentsOf: text.utf8) }
}

/// The same for a secret that `append` writes into the (wiped) buffer.
func writeSecret(capacity: Int = 64, _ append: (inout [UInt8]) -> Void) throws {
    var st = stat()
    if fstat(STDOUT_FILENO, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_mode & 0o077 != 0 {
        printError("warning: writing a secret key to a file others can read")
    }
    // One buffer big enough from the start (no copies left behind by
    // growing), wiped after.
    var line: [UInt8] = []
    line.reserveCapacity(capacity)
    defer { KeyStore.wipe(&line) }
    append(&line)
    line.append(10)
    do { try POSIX.writeAll(STDOUT_FILENO, line) } catch { throw CLIError("cannot write to stdout: \(error)") }
}

/// Reads stdin up to `limit` bytes.
func readStdin(limit: Int) -> [UInt8] {
    var buf = [UInt8](repeating: 0, count: limit)
    var used = 0
    while used < limit {
        let n = try? valueOrErrno { buf.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress! + used, limit - used) } }
        guard let n, n > 0 else { break }
        used += n
    }
    let out = Array(buf[..<used])
    KeyStore.wipe(&buf)
    return out
}
