import CSodium

/// What the three WireGuard key kinds share: 32 bytes, base64 as `wg`
/// writes it, constant-time equality.
public protocol WireGuardKey: Sendable, Hashable {
    /// A key whose 32 bytes `fill` writes (already validated). Not public API.
    init<E: Error>(filling fill: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E)
    /// Calls `body` with the key's 32 raw bytes; do not let them escape.
    func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R
}

extension WireGuardKey {
    /// Decodes a key from `wg`'s base64 form (exactly 44 characters, trailing
    /// `=`, zero padding bits).
    public init(base64 text: String) throws(KeyStoreError) {
        var utf8 = Array(text.utf8)
        defer { wipe(&utf8) }
        let result = utf8.withUnsafeBytes { b in Result { () throws(KeyStoreError) in try Self(base64Bytes: b) } }
        self = try result.get()
    }

    /// Decodes a key from base64 bytes, without making a `String` of them
    /// (so that a secret read from a file can be wiped afterwards).
    public init(base64Bytes text: UnsafeRawBufferPointer) throws(KeyStoreError) {
        try self.init { (out: UnsafeMutableRawBufferPointer) throws(KeyStoreError) in try decodeBase64(text, into: out) }
    }

    /// Wraps exactly 32 raw bytes.
    public init(rawBytes: UnsafeRawBufferPointer) throws(KeyStoreError) {
        guard rawBytes.count == keyLength else {
            throw KeyStoreError(.malformedKey, "key is \(rawBytes.count) bytes, expected \(keyLength)")
        }
        self.init { (out: UnsafeMutableRawBufferPointer) in out.copyMemory(from: rawBytes) }
    }

    /// True when all 32 bytes are zero (`wg` uses the zero key to mean "none").
    public var isZero: Bool {
        withUnsafeBytes { sodium_is_zero($0.baseAddress!.assumingMemoryBound(to: UInt8.self), keyLength) == 1 }
    }

    /// Constant-time comparison (`sodium_memcmp`).
    public static func == (a: Self, b: Self) -> Bool {
        a.withUnsafeBytes { x in b.withUnsafeBytes { y in sodium_memcmp(x.baseAddress, y.baseAddress, keyLength) == 0 } }
    }
    public func hash(into hasher: inout Hasher) { withUnsafeBytes { hasher.combine(bytes: $0) } }
}

/// The key kinds that are secrets keep their bytes in a `KeyBytes`: one
/// heap buffer, wiped when the last copy goes.
protocol SecretKey: WireGuardKey {
    init(storage: KeyBytes)
    var storage: KeyBytes { get }
}

extension SecretKey {

    public init<E: Error>(filling fill: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        self.init(storage: try KeyBytes(fill))
    }
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(storage.bytes)
    }
}

/// A Curve25519 public key. Not secret: printing it is fine. Its bytes are
/// held inline (a device dump holds one per peer: no heap, no wiping).
public struct PublicKey: WireGuardKey, CustomStringConvertible {
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    public init<E: Error>(filling fill: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        try Swift.withUnsafeMutableBytes(of: &words) { (raw) throws(E) in try fill(raw) }
    }
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try Swift.withUnsafeBytes(of: words) { (raw) throws(E) in try body(raw) }
    }

    /// The all-zero key, a placeholder that no real peer has.
    public static var zero: PublicKey { PublicKey() }
    private init() {}

    /// The key in base64, as `wg` prints it.
    public var base64: String { withUnsafeBytes { encodeBase64($0) } }
    public var description: String { base64 }

    /// Appends the key in base64 to `out` (no `String` made).
    public func appendBase64(to out: inout [UInt8]) { withUnsafeBytes { KeyStore.appendBase64($0, to: &out) } }
}

/// A Curve25519 private key, wiped from memory when dropped. Its
/// `description` never shows the key; use `base64Secret()` deliberately.
public struct PrivateKey: SecretKey, CustomStringConvertible, CustomDebugStringConvertible {
    public let storage: KeyBytes
    public init(storage: KeyBytes) { self.storage = storage }

    /// A fresh key: 32 bytes from `randombytes_buf`, clamped as `wg genkey`
    /// clamps (low 3 bits cleared, bit 255 cleared, bit 254 set).
    public static func generate() -> PrivateKey {
        _ = sodiumReady
        return PrivateKey(storage: KeyBytes { p in
            randombytes_buf(p.baseAddress!, keyLength)
            p[0] &= 248
            p[31] = (p[31] & 127) | 64
        })
    }

    /// The matching public key (`crypto_scalarmult_curve25519_base`, which
    /// clamps its input exactly as WireGuard does).
    public var publicKey: PublicKey {
        _ = sodiumReady
        return PublicKey { (out: UnsafeMutableRawBufferPointer) in
            _ = crypto_scalarmult_curve25519_base(
                out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                storage.pointer.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// The key in base64. The name is long on purpose: this is a secret.
    public func base64Secret() -> String { encodeBase64(storage.bytes) }
    /// The same appended to `out`, with no `String` left behind (the caller wipes `out`).
    public func appendBase64Secret(to out: inout [UInt8]) { appendBase64(storage.bytes, to: &out) }
    public var description: String { "(private key)" }
    public var debugDescription: String { "PrivateKey(redacted)" }
}

/// A 32-byte preshared key, wiped from memory when dropped.
public struct PresharedKey: SecretKey, CustomStringConvertible, CustomDebugStringConvertible {
    public let storage: KeyBytes
    public init(storage: KeyBytes) { self.storage = storage }

    /// 32 fresh random bytes (`randombytes_buf`), as `wg genpsk`.
    public static func generate() -> PresharedKey {
        _ = sodiumReady
        return PresharedKey(storage: KeyBytes { randombytes_buf($0.baseAddress!, keyLength) })
    }

    /// The all-zero key, which tells WireGuard to remove a preshared key.
    public static var zero: PresharedKey { PresharedKey(storage: KeyBytes { _ in }) }

    /// The key in base64. The name is long on purpose: this is a secret.
    public func base64Secret() -> String { encodeBase64(storage.bytes) }
    /// The same appended to `out`, with no `String` left behind (the caller wipes `out`).
    public func appendBase64Secret(to out: inout [UInt8]) { appendBase64(storage.bytes, to: &out) }
    public var description: String { "(preshared key)" }
    public var debugDescription: String { "PresharedKey(redacted)" }
}
