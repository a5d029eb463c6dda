import WGNetlink

/// The responder's side of the DoS defence (`cookie.c`, `cookie.go`):
/// mac1 of every handshake message to us is checked before anything else
/// is done; under load, a message must also carry mac2 made with a cookie
/// that binds the sender's IP address and port to a secret we rotate every
/// 120 s, or it is answered with a cookie reply instead.
struct CookieChecker {
    /// The rotating secret (locked memory).
    private let secret = SecretBuffer(count: 32)
    /// When the secret was made (monotonic ns); nil before the first use.
    private var secretBirth: UInt64? = nil
    /// HASH("mac1----" || our public key).
    var mac1Key = Bytes32()
    /// HASH("cookie--" || our public key).
    var cookieKey = Bytes32()

    /// Takes the keys of a new identity.
    mutating func setIdentity(_ identity: StaticIdentity?) {
        mac1Key = identity?.mac1Key ?? Bytes32()
        cookieKey = identity?.cookieKey ?? Bytes32()
    }

    /// True when mac1 of `message` (its bytes before `mac1Offset`) is right.
    func checkMAC1(_ message: UnsafeRawBufferPointer, mac1Offset: Int) -> Bool {
        let computed = mac1Key.withBytes { Crypto.mac(key: $0, UnsafeRawBufferPointer(rebasing: message[..<mac1Offset])) }
        return computed == Bytes16(message, at: mac1Offset)
    }

    /// The cookie of `source` under the current secret, made anew when older
    /// than 120 s: MAC(secret, IP bytes || port big-endian).
    mutating func cookie(for source: SocketAddress, now: UInt64) -> Bytes16 {
        if secretBirth.map({ now - $0 >= Timing.cookieSecretMaxAge }) ?? true {
            Crypto.random(secret[0, 32])
            secretBirth = now
        }
        var h = Crypto.Blake2s(outputLength: 16, key: UnsafeRawBufferPointer(secret[0, 32]))
        switch source.address {
        case let .v4(a, b, c, d):
            var ip = (a, b, c, d)
            withUnsafeBytes(of: &ip) { h.update($0) }
        case let .v6(bytes):
            bytes.withUnsafeBytes { h.update($0) }
        }
        var port = source.port.bigEndian
        withUnsafeBytes(of: &port) { h.update($0) }
        var out = Bytes16()
        out.withMutableBytes { h.finish(into: $0) }
        return out
    }

    /// True when mac2 of `message` (bytes before `mac2Offset`) was made with `source`'s cookie.
    mutating func checkMAC2(_ message: UnsafeRawBufferPointer, mac2Offset: Int, source: SocketAddress, now: UInt64) -> Bool {
        let c = cookie(for: source, now: now)
        let computed = c.withBytes { Crypto.mac(key: $0, UnsafeRawBufferPointer(rebasing: message[..<mac2Offset])) }
        return computed == Bytes16(message, at: mac2Offset)
    }

    /// The cookie reply to `message` (whose mac1 is the additional data)
    /// from `source`, addressed to the message's sender index.
    mutating func makeReply(to message: UnsafeRawBufferPointer, mac1Offset: Int, receiver: UInt32,
                            source: SocketAddress, now: UInt64) -> CookieReplyMessage {
        var reply = CookieReplyMessage()
        reply.receiver = receiver
        reply.nonce.withMutableBytes { Crypto.random($0) }
        let c = cookie(for: source, now: now)
        let mac1 = UnsafeRawBufferPointer(rebasing: message[mac1Offset..<(mac1Offset + 16)])
        cookieKey.withBytes { key in
            reply.nonce.withBytes { nonce in
                c.withBytes { plain in
                    reply.encryptedCookie.withMutableBytes { out in
                        Crypto.xseal(key: key, nonce: nonce, plaintext: plain, ad: mac1, out: out)
                    }
                }
            }
        }
        return reply
    }
}

/// The initiator's side (`struct cookie` in the kernel's peer): the keys
/// derived from the peer's public key, the last mac1 we sent (a cookie
/// reply must quote it), and the cookie the peer gave us, used for mac2
/// for 120 − 5 s.
struct CookieGenerator {
    /// HASH("mac1----" || peer's public key).
    let mac1Key: Bytes32
    /// HASH("cookie--" || peer's public key).
    let cookieKey: Bytes32
    private var cookie = Bytes16()
    private var cookieBirth: UInt64? = nil
    private var lastMAC1 = Bytes16()
    private var haveSentMAC1 = false

    /// The generator for the peer whose public key is `peerKey`.
    init(peerKey: Bytes32) {
        mac1Key = Noise.labelledKey(Noise.labelMAC1, peerKey)
        cookieKey = Noise.labelledKey(Noise.labelCookie, peerKey)
    }

    /// True while a received cookie is fresh enough to use.
    func hasCookie(now: UInt64) -> Bool {
        guard let b = cookieBirth else { return false }
        return now - b < Timing.cookieSecretMaxAge - Timing.cookieSecretLatency
    }

    /// Writes mac1 and (with a fresh cookie) mac2 into an encoded handshake message.
    mutating func addMACs(_ message: UnsafeMutableRawBufferPointer, mac1Offset: Int, mac2Offset: Int, now: UInt64) {
        let m = UnsafeRawBufferPointer(message)
        let mac1 = mac1Key.withBytes { Crypto.mac(key: $0, UnsafeRawBufferPointer(rebasing: m[..<mac1Offset])) }
        mac1.write(to: message, at: mac1Offset)
        lastMAC1 = mac1
        haveSentMAC1 = true
        var mac2 = Bytes16()
        if hasCookie(now: now) {
            mac2 = cookie.withBytes { Crypto.mac(key: $0, UnsafeRawBufferPointer(rebasing: m[..<mac2Offset])) }
        }
        mac2.write(to: message, at: mac2Offset)
    }

    /// Takes the cookie out of a reply to our last handshake message; false
    /// when it does not decrypt (or we sent nothing it could answer).
    mutating func consume(_ reply: CookieReplyMessage, now: UInt64) -> Bool {
        guard haveSentMAC1 else { return false }
        var plain = Bytes16()
        let ok = cookieKey.withBytes { key in
            reply.nonce.withBytes { nonce in
                reply.encryptedCookie.withBytes { ct in
                    lastMAC1.withBytes { ad in
                        plain.withMutableBytes { Crypto.xopen(key: key, nonce: nonce, ciphertext: ct, ad: ad, out: $0) }
                    }
                }
            }
        }
        guard ok else { return false }
        cookie = plain
        cookieBirth = now
        haveSentMAC1 = false
        return true
    }
}

/// Per-source rate limit of handshakes under load (`ratelimiter.c`): a
/// token bucket per IPv4 address or IPv6 /64, 20 packets a second with a
/// burst of 5; entries idle for a second are forgotten.
struct Ratelimiter {
    static let packetsPerSecond: UInt64 = 20
    static let burst: UInt64 = 5
    static let packetCost = Timing.second / packetsPerSecond
    static let tokenMax = packetCost * burst
    static let maxEntries = 1 << 16

    private struct Key: Hashable { var hi: UInt64; var lo: UInt64; var v6: Bool }
    private var buckets: [Key: (tokens: UInt64, last: UInt64)] = [:]
    private var lastCollection: UInt64 = 0

    /// True when a handshake from `source` at `now` is within its budget.
    mutating func allow(_ source: IPAddress, now: UInt64) -> Bool {
        if now - lastCollection >= Timing.second {
            buckets = buckets.filter { now - $0.value.last < Timing.second }
            lastCollection = now
        }
        let k = AllowedIPs.key(source)
        let key = Key(hi: k.0, lo: source.isV6 ? 0 : k.1, v6: source.isV6)
        if var b = buckets[key] {
            b.tokens = min(Self.tokenMax, b.tokens + (now - b.last))
            b.last = now
            guard b.tokens >= Self.packetCost else { buckets[key] = b; return false }
            b.tokens -= Self.packetCost
            buckets[key] = b
            return true
        }
        guard buckets.count < Self.maxEntries else { return false }
        buckets[key] = (Self.tokenMax - Self.packetCost, now)
        return true
    }
}
