/// The four WireGuard messages as the whitepaper lays them out (§5.4):
/// little-endian integers, a one-byte type followed by three reserved zero
/// bytes (read as one little-endian 32-bit word, so a non-zero reserved byte
/// makes an unknown type), sizes checked before any field is read.
enum MessageType: UInt32 {
    /// Handshake initiation, 148 bytes.
    case initiation = 1
    /// Handshake response, 92 bytes.
    case response = 2
    /// Cookie reply, 64 bytes.
    case cookieReply = 3
    /// Transport data, 16-byte header + ciphertext (at least the 16-byte tag).
    case transport = 4

    /// The type of a datagram, or nil when it is shorter than 4 bytes or
    /// its first word is not one of the four (reserved bytes non-zero included).
    init?(datagram raw: UnsafeRawBufferPointer) {
        guard raw.count >= 4 else { return nil }
        self.init(rawValue: UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self)))
    }
}

@inline(__always) func readLE32(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}
@inline(__always) func readLE64(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
    UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
}
@inline(__always) func writeLE32(_ out: UnsafeMutableRawBufferPointer, _ offset: Int, _ v: UInt32) {
    out.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt32.self)
}
@inline(__always) func writeLE64(_ out: UnsafeMutableRawBufferPointer, _ offset: Int, _ v: UInt64) {
    out.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt64.self)
}

/// Handshake initiation (type 1): sender index, unencrypted ephemeral,
/// encrypted static (32 + 16), encrypted timestamp (12 + 16), mac1, mac2.
struct InitiationMessage {
    /// Wire size.
    static let size = 148
    /// Where mac1 starts: mac1 covers everything before it.
    static let mac1Offset = 116
    /// Where mac2 starts: mac2 covers everything before it.
    static let mac2Offset = 132

    var sender: UInt32 = 0
    var ephemeral = Bytes32()
    var encryptedStatic = Bytes48()
    var encryptedTimestamp = Bytes28()
    var mac1 = Bytes16()
    var mac2 = Bytes16()

    init() {}

    /// Decodes exactly 148 bytes of type 1; nil for anything else.
    init?(_ raw: UnsafeRawBufferPointer) {
        guard raw.count == Self.size, MessageType(datagram: raw) == .initiation else { return nil }
        sender = readLE32(raw, 4)
        ephemeral = Bytes32(raw, at: 8)
        encryptedStatic = Bytes48(raw, at: 40)
        encryptedTimestamp = Bytes28(raw, at: 88)
        mac1 = Bytes16(raw, at: 116)
        mac2 = Bytes16(raw, at: 132)
    }

    /// Writes the 148 bytes into `out` (at least that long).
    func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        writeLE32(out, 0, MessageType.initiation.rawValue)
        writeLE32(out, 4, sender)
        ephemeral.write(to: out, at: 8)
        encryptedStatic.write(to: out, at: 40)
        encryptedTimestamp.write(to: out, at: 88)
        mac1.write(to: out, at: 116)
        mac2.write(to: out, at: 132)
    }
}

/// Handshake response (type 2): sender index, receiver index, unencrypted
/// ephemeral, encrypted nothing (the 16-byte tag), mac1, mac2.
struct ResponseMessage {
    /// Wire size.
    static let size = 92
    /// Where mac1 starts.
    static let mac1Offset = 60
    /// Where mac2 starts.
    static let mac2Offset = 76

    var sender: UInt32 = 0
    var receiver: UInt32 = 0
    var ephemeral = Bytes32()
    var encryptedNothing = Bytes16()
    var mac1 = Bytes16()
    var mac2 = Bytes16()

    init() {}

    /// Decodes exactly 92 bytes of type 2; nil for anything else.
    init?(_ raw: UnsafeRawBufferPointer) {
        guard raw.count == Self.size, MessageType(datagram: raw) == .response else { return nil }
        sender = readLE32(raw, 4)
        receiver = readLE32(raw, 8)
        ephemeral = Bytes32(raw, at: 12)
        encryptedNothing = Bytes16(raw, at: 44)
        mac1 = Bytes16(raw, at: 60)
        mac2 = Bytes16(raw, at: 76)
    }

    /// Writes the 92 bytes into `out`.
    func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        writeLE32(out, 0, MessageType.response.rawValue)
        writeLE32(out, 4, sender)
        writeLE32(out, 8, receiver)
        ephemeral.write(to: out, at: 12)
        encryptedNothing.write(to: out, at: 44)
        mac1.write(to: out, at: 60)
        mac2.write(to: out, at: 76)
    }
}

/// Cookie reply (type 3): receiver index, 24-byte nonce, encrypted cookie (16 + 16).
struct CookieReplyMessage {
    /// Wire size.
    static let size = 64

    var receiver: UInt32 = 0
    var nonce = Bytes24()
    var encryptedCookie = Bytes32()

    init() {}

    /// Decodes exactly 64 bytes of type 3; nil for anything else.
    init?(_ raw: UnsafeRawBufferPointer) {
        guard raw.count == Self.size, MessageType(datagram: raw) == .cookieReply else { return nil }
        receiver = readLE32(raw, 4)
        nonce = Bytes24(raw, at: 8)
        encryptedCookie = Bytes32(raw, at: 32)
    }

    /// Writes the 64 bytes into `out`.
    func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        writeLE32(out, 0, MessageType.cookieReply.rawValue)
        writeLE32(out, 4, receiver)
        nonce.write(to: out, at: 8)
        encryptedCookie.write(to: out, at: 32)
    }
}

/// The header of a transport data message (type 4): receiver index and
/// 64-bit counter; the encrypted packet and its tag follow.
struct TransportHeader {
    /// Header size.
    static let size = 16
    /// The smallest transport message: a header and a tag (a keepalive).
    static let minimumSize = 32

    var receiver: UInt32
    var counter: UInt64

    /// Wraps the fields.
    init(receiver: UInt32, counter: UInt64) {
        self.receiver = receiver
        self.counter = counter
    }

    /// Decodes the header of a type-4 datagram of at least 32 bytes; nil for anything else.
    init?(_ raw: UnsafeRawBufferPointer) {
        guard raw.count >= Self.minimumSize, MessageType(datagram: raw) == .transport else { return nil }
        receiver = readLE32(raw, 4)
        counter = readLE64(raw, 8)
    }

    /// Writes the 16 header bytes at the start of `out`.
    func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        writeLE32(out, 0, MessageType.transport.rawValue)
        writeLE32(out, 4, receiver)
        writeLE64(out, 8, counter)
    }
}
