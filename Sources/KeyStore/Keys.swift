import CSodium

/// What the three WireGuard key kinds share: 32 bytes, base64 as `wg`
/// writes it, constant-time equality.
public protocol WireGuardKey: Sendable, Hashable {
    /// Wraps already-validated storage. Not public API.
    init(storage: KeyBytes)
    /// The key's storage. Not public API.
    var storage: KeyBytes { get }
}

extension WireGuardKey {
    /// Decodes a key from `wg`'s base64 form (exactly 44 characters, trailing
    /// `=`, zero padding bits).
    public init(base64 text: String) throws(KeyStoreError) {
        var utf8 = Array(text.utf8)
        defer { sodium_memzero(&utf8, utf8.count) }
        let result = utf8.withUnsafeBytes { b in Result { () throws(KeyStoreError) in try Self(base64Bytes: b) } }
        self = try result.get()
    }

    /// Decodes a key from base64 bytes, without making a `String` of them
    /// (so that a secret read from a file can be wiped afterwards).
    public init(base64Bytes text: UnsafeRawBufferPointer) throws(KeyStoreError) {
        self.init(storage: try KeyBytes { (out) throws(KeyStoreError) in try decodeBase64(text, into: out) })
    }

    /// Wraps exactly 32 raw bytes.
    public init(rawBytes: UnsafeRawBufferPointer) throws(KeyStoreError) {
        guard rawBytes.count == keyLength else {
            throw KeyStoreError(.malformedKey, "key is \(rawBytes.count) bytes, expected \(keyLength)")
        }
        self.init(storage: KeyBytes { $0.copyMemory(from: rawBytes) })
    }

    /// Calls `body` with the key's 32 raw bytes; do not let them escape.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(storage.bytes)
    }

    /// True when all 32 bytes are zero (`wg` uses the zero key to mean "none").
    public var isZero: Bool { storage.isZero }

    public static func == (a: Self, b: Self) -> Bool { a.storage.equals(b.storage) }
    public func hash(into hasher: inout Hasher) { storage.hash(into: &hasher) }
}

/// A Curve25519 public key. Not secret: printing it is fine.
public struct PublicKey: WireGuardKey, CustomStringConvertible {
    public let storage: KeyBytes
    public init(storage: KeyBytes) { self.storage = storage }

    /// The all-zero key, a placeholder that no real peer has.
    public static var zero: PublicKey { PublicKey(storage: KeyBytes { _ in }) }

    /// The key in base64, as `wg` prints it.
    public var base64: String { encodeBase64(storage.bytes) }
    public var description: String { base64 }

    /// Appends the key in base64 to `out` (no `String` made).
    public func appendBase64(to out: inout [UInt8]) { KeyStore.appendBase64(storage.bytes, to: &out) }
}

/// A Curve25519 private key, wiped from memory when dropped. Its
/// `description` never shows the key; use `base64Secret()` deliberately.
public struct PrivateKey: WireGuardKey, CustomStringConvertible, CustomDebugStringConvertible {
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
        return PublicKey(storage: KeyBytes { out in
            _ = crypto_scalarmult_curve25519_base(
                out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                storage.pointer.baseAddress!.assumingMemoryBound(to: UInt8.self))
        })
    }

    /// The key in base64. The name is long on purpose: this is a secret.
    public func base64Secret() -> String { encodeBase64(storage.bytes) }
    public var description: String { "(private key)" }
    public var debugDescription: String { "PrivateKey(redacted)" }
}

/// A 32-byte preshared key, wiped from memory when dropped.
public struct PresharedKey: WireGuardKey, CustomStringConvertible, CustomDebugStringConvertible {
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
    public var description: String { "(preshared key)" }
    public var debugDescription: String { "PresharedKey(redacted)" }
}
