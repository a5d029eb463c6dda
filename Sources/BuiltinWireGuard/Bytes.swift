#if canImport(Glibc)
import Glibc
#endif
import CSodium
import KeyStore

/// A fixed number of bytes held inline (no heap): hashes, public keys,
/// MACs, nonces and the fields of the wire messages.
protocol FixedBytes: Sendable, Equatable {
    /// How many bytes.
    static var count: Int { get }
    /// All zeros.
    init()
}

extension FixedBytes {
    /// Copies the first `Self.count` bytes of `raw` (which must hold at least that many).
    init(_ raw: UnsafeRawBufferPointer) {
        precondition(raw.count >= Self.count)
        self.init()
        Swift.withUnsafeMutableBytes(of: &self) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[..<Self.count])) }
    }

    /// Calls `body` with the bytes.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: self) { try body(UnsafeRawBufferPointer(rebasing: $0[..<Self.count])) }
    }

    /// Calls `body` with the bytes to write.
    mutating func withMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeMutableBytes(of: &self) { try body(UnsafeMutableRawBufferPointer(rebasing: $0[..<Self.count])) }
    }

    /// Writes the bytes at `offset` of `out`.
    func write(to out: UnsafeMutableRawBufferPointer, at offset: Int) {
        withBytes { UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + Self.count)]).copyMemory(from: $0) }
    }

    /// Reads `Self.count` bytes at `offset` of `raw`.
    init(_ raw: UnsafeRawBufferPointer, at offset: Int) {
        self.init(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + Self.count)]))
    }

    /// Constant-time comparison (`sodium_memcmp`): MACs and keys are compared with it.
    static func == (a: Self, b: Self) -> Bool {
        a.withBytes { x in b.withBytes { y in sodium_memcmp(x.baseAddress, y.baseAddress, Self.count) == 0 } }
    }

    /// True when every byte is zero (`sodium_is_zero`).
    var isZero: Bool { withBytes { sodium_is_zero($0.baseAddress!.assumingMemoryBound(to: UInt8.self), Self.count) == 1 } }

    /// The bytes as an array (tests, diagnostics of non-secret values).
    var array: [UInt8] { withBytes { Array($0) } }
}

/// 12 bytes: a TAI64N timestamp.
struct Bytes12: FixedBytes {
    static let count = 12
    var storage: (UInt64, UInt32) = (0, 0)
}

/// 16 bytes: a MAC, a cookie, an AEAD tag.
struct Bytes16: FixedBytes {
    static let count = 16
    var storage: (UInt64, UInt64) = (0, 0)
}

/// 24 bytes: an XChaCha20 nonce.
struct Bytes24: FixedBytes {
    static let count = 24
    var storage: (UInt64, UInt64, UInt64) = (0, 0, 0)
}

/// 28 bytes: an encrypted timestamp (12 + 16).
struct Bytes28: FixedBytes {
    static let count = 28
    var storage: (UInt64, UInt64, UInt64, UInt32) = (0, 0, 0, 0)
}

/// 32 bytes: a public key, a hash, an encrypted cookie (16 + 16).
struct Bytes32: FixedBytes, Hashable {
    static let count = 32
    var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    func hash(into hasher: inout Hasher) { hasher.combine(storage.0); hasher.combine(storage.1) }
}

/// 48 bytes: an encrypted static key (32 + 16).
struct Bytes48: FixedBytes {
    static let count = 48
    var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
}

extension Bytes32 {
    /// The bytes of a public key.
    init(_ key: PublicKey) {
        self.init()
        key.withUnsafeBytes { raw in withMutableBytes { $0.copyMemory(from: raw) } }
    }
}

/// Secret bytes in locked memory: one slot of the `SecretPool` (memory
/// from `sodium_malloc`: guard pages around it, `mlock`ed where the limit
/// allows), zeroed when taken and wiped when the last reference goes. Keys
/// of the device, the handshakes and the sessions live here.
final class SecretBuffer: @unchecked Sendable {
    /// Start of the memory.
    let base: UnsafeMutableRawPointer
    /// Size in bytes.
    let count: Int

    /// `count` zero bytes (at most `SecretPool.slotSize`).
    init(count: Int) {
        precondition(count <= SecretPool.slotSize)
        base = SecretPool.shared.take()
        self.count = count
    }

    deinit { SecretPool.shared.give(base) }

    /// The `length` bytes at `offset`.
    subscript(offset: Int, length: Int) -> UnsafeMutableRawBufferPointer {
        precondition(offset >= 0 && offset + length <= count)
        return UnsafeMutableRawBufferPointer(start: base + offset, count: length)
    }

    /// Zeroes everything (`sodium_memzero`).
    func zero() { sodium_memzero(base, count) }
}

/// Fixed-size slots of secret memory carved out of large `sodium_malloc`
/// chunks. One `sodium_malloc` per key would cost four pages and three
/// memory mappings each (guard pages), which 10,000 peers with their
/// sessions would push past the kernel's mapping limit; a chunk of 64 KiB
/// holds 341 slots behind one pair of guard pages. Slots are wiped when
/// given back; chunks live as long as the process.
final class SecretPool: @unchecked Sendable {
    /// The one pool of the process.
    static let shared = SecretPool()
    /// Bytes per slot: the largest secret (a handshake's 160 bytes), rounded up.
    static let slotSize = 192
    /// Bytes per chunk.
    static let chunkSize = 64 * 1024

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var free: [UnsafeMutableRawPointer] = []

    private init() {
        _ = Crypto.ready
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    /// A zeroed slot.
    func take() -> UnsafeMutableRawPointer {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if free.isEmpty {
            guard let chunk = sodium_malloc(Self.chunkSize) else { fatalError("sodium_malloc failed: out of memory") }
            sodium_memzero(chunk, Self.chunkSize)
            for i in stride(from: Self.chunkSize / Self.slotSize - 1, through: 0, by: -1) {
                free.append(chunk + i * Self.slotSize)
            }
        }
        return free.removeLast()
    }

    /// Wipes a slot and takes it back.
    func give(_ slot: UnsafeMutableRawPointer) {
        sodium_memzero(slot, Self.slotSize)
        pthread_mutex_lock(mutex)
        free.append(slot)
        pthread_mutex_unlock(mutex)
    }
}

/// Calls `body` with `count` bytes of scratch memory on the stack, zeroed
/// before and wiped after: intermediate keys never outlive the call.
@inline(__always)
func withScratch<R>(_ count: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
    try withUnsafeTemporaryAllocation(byteCount: count, alignment: 16) { buf in
        sodium_memzero(buf.baseAddress, count)
        defer { sodium_memzero(buf.baseAddress, count) }
        return try body(buf)
    }
}
