import CSodium

/// Runs `sodium_init()` once per process; every entry point that uses
/// libsodium touches this first.
let sodiumReady: Void = {
    // sodium_init returns 1 when already initialised, -1 on failure.
    precondition(sodium_init() >= 0, "libsodium failed to initialise")
}()

/// Length in bytes of every WireGuard key (Curve25519 private, public, preshared).
public let keyLength = 32
/// Length in characters of a key in base64, as `wg` reads and writes it.
public let keyBase64Length = 44

/// Appends the base64 of exactly 32 bytes to `out`, with no intermediate
/// string (a dump of 10,000 peers prints 10,000 keys).
func appendBase64(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
    _ = sodiumReady
    precondition(bytes.count == keyLength)
    let start = out.count
    out.append(contentsOf: repeatElement(0, count: keyBase64Length + 1))
    out.withUnsafeMutableBufferPointer { o in
        _ = sodium_bin2base64(UnsafeMutableRawPointer(o.baseAddress! + start).assumingMemoryBound(to: CChar.self),
                              keyBase64Length + 1,
                              bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count,
                              sodium_base64_VARIANT_ORIGINAL)
    }
    out.removeLast()  // the NUL
}

/// Encodes exactly 32 bytes as standard padded base64 (`sodium_bin2base64`).
func encodeBase64(_ bytes: UnsafeRawBufferPointer) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(keyBase64Length + 1)
    defer { wipe(&out) }
    appendBase64(bytes, to: &out)
    return String(decoding: out, as: UTF8.self)
}

/// Decodes a 44-character key the way `wg` does: exactly 44 characters, the
/// last one `=`, standard alphabet, zero padding bits (`sodium_base642bin`).
/// Writes 32 bytes into `into`.
func decodeBase64(_ text: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) throws(KeyStoreError) {
    _ = sodiumReady
    precondition(out.count == keyLength)
    guard text.count == keyBase64Length, text[keyBase64Length - 1] == UInt8(ascii: "=") else {
        throw KeyStoreError(.malformedKey, "key is not \(keyBase64Length) base64 characters ending in '=' (got \(text.count) characters)")
    }
    var binLen = 0
    var end: UnsafePointer<CChar>? = nil
    let rc = text.withMemoryRebound(to: CChar.self) { t in
        sodium_base642bin(out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count,
                          t.baseAddress, t.count, nil, &binLen, &end,
                          sodium_base64_VARIANT_ORIGINAL)
    }
    let consumed = end.map { UnsafeRawPointer($0) - text.baseAddress! } ?? 0
    guard rc == 0, binLen == keyLength, consumed == keyBase64Length else {
        wipe(out.baseAddress, count: out.count)
        throw KeyStoreError(.malformedKey, "key is not valid base64 (bad character or non-zero padding bits)")
    }
}

/// The version of the libsodium wgns runs with (`sodium_version_string`).
public var libsodiumVersion: String { String(cString: sodium_version_string()) }

/// Overwrites a buffer that held secret text with zeros (`sodium_memzero`,
/// which the compiler may not elide).
public func wipe(_ bytes: inout [UInt8]) {
    sodium_memzero(&bytes, bytes.count)
}

/// Overwrites `count` bytes at `pointer` with zeros (`sodium_memzero`): the
/// same wipe for memory that is not an array (a stack buffer, a slice).
public func wipe(_ pointer: UnsafeMutableRawPointer?, count: Int) {
    guard let pointer, count > 0 else { return }
    sodium_memzero(pointer, count)
}
