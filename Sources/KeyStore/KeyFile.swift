import CSodium
import POSIX
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Reading and writing key files: one base64 key and a newline, mode 0600.
public enum KeyFile {
    /// Parses one key from text the way `wg pubkey` reads its input: the 44
    /// characters of the key first, then nothing but whitespace.
    public static func parse<K: WireGuardKey>(_ type: K.Type, from bytes: [UInt8]) throws(KeyStoreError) -> K {
        guard bytes.count >= keyBase64Length else {
            throw KeyStoreError(.malformedKey, "key is not \(keyBase64Length) base64 characters ending in '=' (got \(bytes.count) characters)")
        }
        let rest = bytes[keyBase64Length...]
        if rest.contains(where: { !isSpace($0) }) {
            throw KeyStoreError(.trailingCharacters, "trailing characters found after the key")
        }
        return try bytes[..<keyBase64Length].withUnsafeBytes { b in
            Result { () throws(KeyStoreError) in try K(base64Bytes: b) }
        }.get()
    }

    /// Reads a key file. A private or preshared key file that group or others
    /// can read, or that belongs to another user, is refused, naming the file
    /// and the fix; so is anything but a regular file (a FIFO would hang the
    /// read, a directory or device is a mistake).
    public static func read<K: WireGuardKey>(_ type: K.Type, path: String, secret: Bool = true) throws(KeyStoreError) -> K {
        // O_NONBLOCK: opening a FIFO must not wait for a writer.
        let file = try Descriptor.open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY, orThrow: "cannot open key file \(path)")
        let fd = file.raw
        var st = stat()
        _ = try sys("cannot stat key file \(path)") { fstat(fd, &st) }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFREG else {
            let what = kind == S_IFIFO ? "a FIFO" : kind == S_IFDIR ? "a directory" : kind == S_IFSOCK ? "a socket" : "a device"
            throw KeyStoreError(.malformedKey, "key file \(path) is \(what), not a regular file")
        }
        if secret, st.st_uid != geteuid() {
            throw KeyStoreError(.insecurePermissions,
                "key file \(path) belongs to uid \(st.st_uid), not to you (uid \(geteuid())): use a key file of your own")
        }
        let perm = st.st_mode & 0o777
        if secret, perm & 0o077 != 0 {
            throw KeyStoreError(.insecurePermissions,
                "key file \(path) is readable by others (mode \(String(perm, radix: 8))); run: chmod 600 \(path)")
        }
        var buf = [UInt8](repeating: 0, count: 256)
        defer { wipe(&buf) }
        var used = 0
        while used < buf.count {
            let n = try sys("cannot read key file \(path)") {
                buf.withUnsafeMutableBytes { b in Glibc.read(fd, b.baseAddress! + used, b.count - used) }
            }
            if n == 0 { break }
            used += n
        }
        var content = Array(buf[..<used])
        defer { wipe(&content) }
        do {
            return try parse(K.self, from: content)
        } catch {
            throw KeyStoreError(error.code, "\(path): \(error.message)")
        }
    }

    /// Writes `text` (a key in base64 plus newline) to `path` atomically:
    /// a temporary file created with mode 0600 in the same directory, synced,
    /// then renamed over `path`.
    public static func write<K: WireGuardKey>(_ key: K, to path: String) throws(KeyStoreError) {
        var text = key.withUnsafeBytes { Array(encodeBase64($0).utf8) } + [UInt8(ascii: "\n")]
        defer { wipe(&text) }
        try writeSecretFile(text, to: path)
    }

    /// Writes bytes to `path` atomically with mode 0600 (temporary file in the
    /// same directory, `fsync`, `rename`). Used for keys and for configs that
    /// hold keys.
    public static func writeSecretFile(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(KeyStoreError) {
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        var template = Array("\(dir.isEmpty ? "/" : dir)/.wgns-XXXXXX".utf8CString)
        let file = Descriptor(owning: try sys("cannot create a temporary file next to \(path)") {
            template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        })
        let tmp = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        _ = try sys("cannot set the mode of \(tmp)") { fchmod(file.raw, mode) }
        do throws(Errno) { try file.writeAll(bytes) } catch { throw KeyStoreError(.system, "cannot write \(tmp)", errno: error) }
        _ = try sys("cannot sync \(tmp)") { fsync(file.raw) }
        _ = try sys("cannot rename \(tmp) to \(path)") { rename(tmp, path) }
        ok = true
    }

    /// Flushes a directory's entries (renames into it) to disk (`fsync` on
    /// the directory).
    public static func syncDirectory(_ path: String) throws(KeyStoreError) {
        let dir = try Descriptor.open(path, O_RDONLY | O_DIRECTORY, orThrow: "cannot open \(path)")
        _ = try sys("cannot sync \(path)") { fsync(dir.raw) }
    }

    static func isSpace(_ c: UInt8) -> Bool {
        c == 0x20 || (c >= 0x09 && c <= 0x0d)
    }
}

/// A system call through POSIX.valueOrErrno (EINTR retried); failure
/// becomes a `KeyStoreError` naming `what`.
@discardableResult
func sys<T: FixedWidthInteger>(_ what: @autoclosure () -> String, _ call: () -> T) throws(KeyStoreError) -> T {
    try valueOrErrno(call) { KeyStoreError(.system, what(), errno: $0) }
}

extension Descriptor {
    /// `Descriptor.open`, failing with a `KeyStoreError` naming `what`.
    static func open(_ path: String, _ flags: Int32, orThrow what: @autoclosure () -> String) throws(KeyStoreError) -> Descriptor {
        do { return try Descriptor.open(path, flags) } catch { throw KeyStoreError(.system, what(), errno: error) }
    }
}
