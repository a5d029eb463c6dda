import KeyStore

/// The Noise_IKpsk2 handshake as WireGuard instantiates it (whitepaper
/// §5.4.2–5.4.4, the kernel's `noise.c`): the construction and identifier
/// strings, the two message exchanges, and the derivation of a session's
/// keys. Every step works on the peer's `Handshake`, whose secrets live in
/// locked memory.
enum Noise {
    /// The protocol name that seeds the chaining key.
    static let construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
    /// Mixed into the initial hash.
    static let identifier = BuiltinWireGuard.identifier
    /// Label of the mac1 key: HASH("mac1----" || public key).
    static let labelMAC1 = "mac1----"
    /// Label of the cookie key: HASH("cookie--" || public key).
    static let labelCookie = "cookie--"

    /// C0 = HASH(construction), H0 = HASH(C0 || identifier).
    static let initial: (chainKey: Bytes32, hash: Bytes32) = {
        var c = Bytes32(), h = Bytes32()
        Array(construction.utf8).withUnsafeBytes { raw in c.withMutableBytes { Crypto.hash($0, raw) } }
        Array(identifier.utf8).withUnsafeBytes { id in
            c.withBytes { cb in h.withMutableBytes { Crypto.hash($0, cb, id) } }
        }
        return (c, h)
    }()

    /// HASH(label || key): the mac1 and cookie keys.
    static func labelledKey(_ label: String, _ key: Bytes32) -> Bytes32 {
        var out = Bytes32()
        Array(label.utf8).withUnsafeBytes { l in key.withBytes { k in out.withMutableBytes { Crypto.hash($0, l, k) } } }
        return out
    }

    /// A TAI64N timestamp of wall time `now`: 2^62 + 10 + seconds, then the
    /// nanoseconds with their low 24 bits cleared (the reference's whitening,
    /// so the timestamp does not reveal the sub-16-ms clock), both big-endian.
    static func timestamp(_ now: (seconds: Int64, nanoseconds: Int64)) -> Bytes12 {
        var t = Bytes12()
        let seconds = UInt64(0x4000_0000_0000_000a) &+ UInt64(bitPattern: now.seconds)
        let nanos = UInt32(truncatingIfNeeded: now.nanoseconds) & ~UInt32(0xff_ffff)
        t.withMutableBytes { raw in
            raw.storeBytes(of: seconds.bigEndian, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: nanos.bigEndian, toByteOffset: 8, as: UInt32.self)
        }
        return t
    }

    /// True when timestamp `a` is later than `b` (big-endian byte order compares as time).
    static func isLater(_ a: Bytes12, than b: Bytes12) -> Bool {
        a.withBytes { x in b.withBytes { y in
            for i in 0..<12 where x[i] != y[i] { return x[i] > y[i] }
            return false
        } }
    }
}

/// This device's static identity: its private key (locked memory), the
/// public key, and the keys derived from the public key that check mac1 of
/// messages sent to us and encrypt our cookie replies.
final class StaticIdentity {
    /// The private key.
    let privateKey = SecretBuffer(count: 32)
    /// The public key.
    let publicKey: Bytes32
    /// HASH("mac1----" || our public key): checks mac1 of messages to us.
    let mac1Key: Bytes32
    /// HASH("cookie--" || our public key): encrypts our cookie replies.
    let cookieKey: Bytes32
    /// The key as KeyStore holds it, for `snapshot`.
    let key: PrivateKey

    /// Copies `key` into locked memory and derives the rest.
    init(_ key: PrivateKey) {
        self.key = key
        let secret = privateKey
        key.withUnsafeBytes { secret[0, 32].copyMemory(from: $0) }
        publicKey = Crypto.publicKey(of: UnsafeRawBufferPointer(secret[0, 32]))
        mac1Key = Noise.labelledKey(Noise.labelMAC1, publicKey)
        cookieKey = Noise.labelledKey(Noise.labelCookie, publicKey)
    }
}

/// One peer's handshake state (`struct noise_handshake`): where it is in
/// the exchange, the running chaining key and hash, our ephemeral, theirs,
/// the indices, the precomputed static-static DH and the preshared key.
/// Secrets live in one locked buffer, zeroed when the handshake ends.
final class Handshake {
    /// Where the exchange is.
    enum State { case zeroed, createdInitiation, consumedInitiation, createdResponse, consumedResponse }

    /// Layout of `secrets`: chaining key, hash, our ephemeral private key,
    /// DH(our static, their static), preshared key.
    private static let chainKeyOffset = 0, hashOffset = 32, ephemeralOffset = 64, staticStaticOffset = 96, pskOffset = 128
    let secrets = SecretBuffer(count: 160)

    var state = State.zeroed
    /// The peer's static public key.
    let remoteStatic: Bytes32
    /// The peer's ephemeral public key of the exchange in progress.
    var remoteEphemeral = Bytes32()
    /// Our index for the exchange (0 when none registered).
    var localIndex: UInt32 = 0
    /// Whether `localIndex` is registered in the index table for this handshake.
    var hasLocalIndex = false
    /// The peer's index.
    var remoteIndex: UInt32 = 0
    /// The greatest initiation timestamp accepted from this peer.
    var latestTimestamp = Bytes12()
    /// When we last accepted an initiation (monotonic ns), for the 50/s flood limit.
    var lastInitiationConsumption: UInt64? = nil
    /// False when DH(our static, their static) is all zeros or we have no key: no handshake possible.
    var staticStaticValid = false
    /// Whether a preshared key is set.
    var hasPresharedKey = false

    var chainKey: UnsafeMutableRawBufferPointer { secrets[Self.chainKeyOffset, 32] }
    var hash: UnsafeMutableRawBufferPointer { secrets[Self.hashOffset, 32] }
    var ephemeralPrivate: UnsafeMutableRawBufferPointer { secrets[Self.ephemeralOffset, 32] }
    var staticStatic: UnsafeMutableRawBufferPointer { secrets[Self.staticStaticOffset, 32] }
    var presharedKey: UnsafeMutableRawBufferPointer { secrets[Self.pskOffset, 32] }

    /// A handshake with the peer whose static public key is `remoteStatic`.
    init(remoteStatic: Bytes32) { self.remoteStatic = remoteStatic }

    /// Recomputes DH(our static, their static) for a new identity (or none).
    func precompute(_ identity: StaticIdentity?) {
        guard let identity else {
            wipe(staticStatic.baseAddress, count: 32)
            staticStaticValid = false
            return
        }
        staticStaticValid = remoteStatic.withBytes { pub in
            Crypto.dh(staticStatic, privateKey: UnsafeRawBufferPointer(identity.privateKey[0, 32]), publicKey: pub)
        }
    }

    /// Sets or (nil) clears the preshared key.
    func setPresharedKey(_ key: PresharedKey?) {
        if let key, !key.isZero {
            key.withUnsafeBytes { presharedKey.copyMemory(from: $0) }
            hasPresharedKey = true
        } else {
            wipe(presharedKey.baseAddress, count: 32)
            hasPresharedKey = false
        }
    }

    /// Forgets the exchange in progress (`handshake_zero`): ephemerals,
    /// chaining key, hash, indices, state. Keeps the static-static DH, the
    /// preshared key and the replay-protecting timestamp.
    func zero() {
        wipe(chainKey.baseAddress, count: 32)
        wipe(hash.baseAddress, count: 32)
        wipe(ephemeralPrivate.baseAddress, count: 32)
        remoteEphemeral = Bytes32()
        remoteIndex = 0
        localIndex = 0
        hasLocalIndex = false
        state = .zeroed
    }
}

/// Why a handshake message was refused, for the drop counters.
enum HandshakeFailure: Error {
    /// A decryption or DH failed, or the state did not allow the message.
    case failed
    /// The static key decrypted but names no peer of ours.
    case unknownPeer
    /// An initiation whose timestamp is not newer than the last accepted.
    case replayedTimestamp
    /// More than 50 initiations a second from one peer.
    case flood
}

extension Noise {
    /// Mixes `data` into the hash: H = HASH(H || data).
    static func mixHash(_ h: UnsafeMutableRawBufferPointer, _ data: UnsafeRawBufferPointer) {
        Crypto.hash(h, UnsafeRawBufferPointer(h), data)
    }

    /// C = KDF1(C, data).
    static func mixKey(_ c: UnsafeMutableRawBufferPointer, _ data: UnsafeRawBufferPointer) {
        Crypto.kdf(key: UnsafeRawBufferPointer(c), input: data, c)
    }

    /// Writes an initiation for `peer` (macs left zero), registers a fresh
    /// local index; nil when no handshake is possible (no key, bad static-static).
    static func createInitiation(peer: PeerState, identity: StaticIdentity, wallTime: (seconds: Int64, nanoseconds: Int64),
                                 indices: inout IndexTable) -> InitiationMessage? {
        let hs = peer.handshake
        guard hs.staticStaticValid else { return nil }
        var msg = InitiationMessage()
        initial.chainKey.withBytes { hs.chainKey.copyMemory(from: $0) }
        initial.hash.withBytes { h0 in hs.remoteStatic.withBytes { rs in Crypto.hash(hs.hash, h0, rs) } }
        Crypto.generatePrivateKey(hs.ephemeralPrivate)
        msg.ephemeral = Crypto.publicKey(of: UnsafeRawBufferPointer(hs.ephemeralPrivate))
        let ok = withScratch(64) { s -> Bool in
            let dh = UnsafeMutableRawBufferPointer(rebasing: s[0..<32])
            let key = UnsafeMutableRawBufferPointer(rebasing: s[32..<64])
            msg.ephemeral.withBytes { e in mixKey(hs.chainKey, e); mixHash(hs.hash, e) }
            guard hs.remoteStatic.withBytes({ Crypto.dh(dh, privateKey: UnsafeRawBufferPointer(hs.ephemeralPrivate), publicKey: $0) })
            else { return false }
            Crypto.kdf(key: UnsafeRawBufferPointer(hs.chainKey), input: UnsafeRawBufferPointer(dh), hs.chainKey, key)
            identity.publicKey.withBytes { pub in
                msg.encryptedStatic.withMutableBytes { out in
                    Crypto.seal(key: UnsafeRawBufferPointer(key), counter: 0, plaintext: pub, ad: UnsafeRawBufferPointer(hs.hash),
                                out: out.baseAddress!, tag: out.baseAddress! + 32)
                }
            }
            msg.encryptedStatic.withBytes { mixHash(hs.hash, $0) }
            Crypto.kdf(key: UnsafeRawBufferPointer(hs.chainKey), input: UnsafeRawBufferPointer(hs.staticStatic), hs.chainKey, key)
            let ts = timestamp(wallTime)
            ts.withBytes { t in
                msg.encryptedTimestamp.withMutableBytes { out in
                    Crypto.seal(key: UnsafeRawBufferPointer(key), counter: 0, plaintext: t, ad: UnsafeRawBufferPointer(hs.hash),
                                out: out.baseAddress!, tag: out.baseAddress! + 12)
                }
            }
            msg.encryptedTimestamp.withBytes { mixHash(hs.hash, $0) }
            return true
        }
        guard ok else { hs.zero(); return nil }
        if hs.hasLocalIndex { indices.removeHandshake(hs.localIndex, of: peer) }
        hs.localIndex = indices.insert(.handshake(peer))
        hs.hasLocalIndex = true
        msg.sender = hs.localIndex
        hs.state = .createdInitiation
        return msg
    }

    /// Checks an initiation addressed to `identity` and, when it decrypts,
    /// names a known peer and carries a newer timestamp, records it in that
    /// peer's handshake. `lookup` finds a peer by static public key.
    static func consumeInitiation(_ msg: InitiationMessage, identity: StaticIdentity, now: UInt64,
                                  lookup: (Bytes32) -> PeerState?) -> Result<PeerState, HandshakeFailure> {
        withScratch(32 * 5 + 12) { s in
            let c = UnsafeMutableRawBufferPointer(rebasing: s[0..<32])
            let h = UnsafeMutableRawBufferPointer(rebasing: s[32..<64])
            let dh = UnsafeMutableRawBufferPointer(rebasing: s[64..<96])
            let key = UnsafeMutableRawBufferPointer(rebasing: s[96..<128])
            let stat = UnsafeMutableRawBufferPointer(rebasing: s[128..<160])
            let ts = UnsafeMutableRawBufferPointer(rebasing: s[160..<172])
            initial.chainKey.withBytes { c.copyMemory(from: $0) }
            initial.hash.withBytes { h0 in identity.publicKey.withBytes { Crypto.hash(h, h0, $0) } }
            msg.ephemeral.withBytes { e in mixKey(c, e); mixHash(h, e) }
            guard msg.ephemeral.withBytes({ Crypto.dh(dh, privateKey: UnsafeRawBufferPointer(identity.privateKey[0, 32]), publicKey: $0) })
            else { return .failure(.failed) }
            Crypto.kdf(key: UnsafeRawBufferPointer(c), input: UnsafeRawBufferPointer(dh), c, key)
            let staticOK = msg.encryptedStatic.withBytes { ct in
                Crypto.open(key: UnsafeRawBufferPointer(key), counter: 0, ciphertext: UnsafeRawBufferPointer(rebasing: ct[0..<32]),
                            tag: ct.baseAddress! + 32, ad: UnsafeRawBufferPointer(h), out: stat.baseAddress!)
            }
            guard staticOK else { return .failure(.failed) }
            msg.encryptedStatic.withBytes { mixHash(h, $0) }
            guard let peer = lookup(Bytes32(UnsafeRawBufferPointer(stat))) else { return .failure(.unknownPeer) }
            let hs = peer.handshake
            guard hs.staticStaticValid else { return .failure(.failed) }
            Crypto.kdf(key: UnsafeRawBufferPointer(c), input: UnsafeRawBufferPointer(hs.staticStatic), c, key)
            let tsOK = msg.encryptedTimestamp.withBytes { ct in
                Crypto.open(key: UnsafeRawBufferPointer(key), counter: 0, ciphertext: UnsafeRawBufferPointer(rebasing: ct[0..<12]),
                            tag: ct.baseAddress! + 12, ad: UnsafeRawBufferPointer(h), out: ts.baseAddress!)
            }
            guard tsOK else { return .failure(.failed) }
            msg.encryptedTimestamp.withBytes { mixHash(h, $0) }
            let stamp = Bytes12(UnsafeRawBufferPointer(ts))
            guard isLater(stamp, than: hs.latestTimestamp) else { return .failure(.replayedTimestamp) }
            if let last = hs.lastInitiationConsumption, now < last + Timing.second / Timing.initiationsPerSecond {
                return .failure(.flood)
            }
            hs.latestTimestamp = stamp
            hs.lastInitiationConsumption = now
            hs.remoteEphemeral = msg.ephemeral
            hs.remoteIndex = msg.sender
            hs.chainKey.copyMemory(from: UnsafeRawBufferPointer(c))
            hs.hash.copyMemory(from: UnsafeRawBufferPointer(h))
            hs.state = .consumedInitiation
            return .success(peer)
        }
    }

    /// Writes the response to a consumed initiation (macs left zero) and
    /// registers a fresh local index; nil when the state does not allow it.
    static func createResponse(peer: PeerState, indices: inout IndexTable) -> ResponseMessage? {
        let hs = peer.handshake
        guard hs.state == .consumedInitiation else { return nil }
        var msg = ResponseMessage()
        Crypto.generatePrivateKey(hs.ephemeralPrivate)
        msg.ephemeral = Crypto.publicKey(of: UnsafeRawBufferPointer(hs.ephemeralPrivate))
        let ok = withScratch(96) { s -> Bool in
            let dh = UnsafeMutableRawBufferPointer(rebasing: s[0..<32])
            let tau = UnsafeMutableRawBufferPointer(rebasing: s[32..<64])
            let key = UnsafeMutableRawBufferPointer(rebasing: s[64..<96])
            msg.ephemeral.withBytes { e in mixKey(hs.chainKey, e); mixHash(hs.hash, e) }
            let eph = UnsafeRawBufferPointer(hs.ephemeralPrivate)
            guard hs.remoteEphemeral.withBytes({ Crypto.dh(dh, privateKey: eph, publicKey: $0) }) else { return false }
            mixKey(hs.chainKey, UnsafeRawBufferPointer(dh))
            guard hs.remoteStatic.withBytes({ Crypto.dh(dh, privateKey: eph, publicKey: $0) }) else { return false }
            mixKey(hs.chainKey, UnsafeRawBufferPointer(dh))
            Crypto.kdf(key: UnsafeRawBufferPointer(hs.chainKey), input: UnsafeRawBufferPointer(hs.presharedKey), hs.chainKey, tau, key)
            mixHash(hs.hash, UnsafeRawBufferPointer(tau))
            msg.encryptedNothing.withMutableBytes { out in
                Crypto.seal(key: UnsafeRawBufferPointer(key), counter: 0, plaintext: UnsafeRawBufferPointer(start: nil, count: 0),
                            ad: UnsafeRawBufferPointer(hs.hash), out: out.baseAddress!, tag: out.baseAddress!)
            }
            msg.encryptedNothing.withBytes { mixHash(hs.hash, $0) }
            return true
        }
        guard ok else { hs.zero(); return nil }
        if hs.hasLocalIndex { indices.removeHandshake(hs.localIndex, of: peer) }
        hs.localIndex = indices.insert(.handshake(peer))
        hs.hasLocalIndex = true
        msg.sender = hs.localIndex
        msg.receiver = hs.remoteIndex
        hs.state = .createdResponse
        return msg
    }

    /// Checks a response against the initiation we sent (found by its
    /// receiver index) and records it; returns the peer.
    static func consumeResponse(_ msg: ResponseMessage, identity: StaticIdentity,
                                indices: IndexTable) -> Result<PeerState, HandshakeFailure> {
        guard case .handshake(let peer)? = indices.lookup(msg.receiver) else { return .failure(.unknownPeer) }
        let hs = peer.handshake
        guard hs.state == .createdInitiation else { return .failure(.failed) }
        return withScratch(32 * 5) { s in
            let c = UnsafeMutableRawBufferPointer(rebasing: s[0..<32])
            let h = UnsafeMutableRawBufferPointer(rebasing: s[32..<64])
            let dh = UnsafeMutableRawBufferPointer(rebasing: s[64..<96])
            let tau = UnsafeMutableRawBufferPointer(rebasing: s[96..<128])
            let key = UnsafeMutableRawBufferPointer(rebasing: s[128..<160])
            c.copyMemory(from: UnsafeRawBufferPointer(hs.chainKey))
            h.copyMemory(from: UnsafeRawBufferPointer(hs.hash))
            msg.ephemeral.withBytes { e in mixKey(c, e); mixHash(h, e) }
            guard msg.ephemeral.withBytes({ Crypto.dh(dh, privateKey: UnsafeRawBufferPointer(hs.ephemeralPrivate), publicKey: $0) })
            else { return .failure(.failed) }
            mixKey(c, UnsafeRawBufferPointer(dh))
            guard msg.ephemeral.withBytes({ Crypto.dh(dh, privateKey: UnsafeRawBufferPointer(identity.privateKey[0, 32]), publicKey: $0) })
            else { return .failure(.failed) }
            mixKey(c, UnsafeRawBufferPointer(dh))
            Crypto.kdf(key: UnsafeRawBufferPointer(c), input: UnsafeRawBufferPointer(hs.presharedKey), c, tau, key)
            mixHash(h, UnsafeRawBufferPointer(tau))
            let ok = msg.encryptedNothing.withBytes { ct in
                Crypto.open(key: UnsafeRawBufferPointer(key), counter: 0, ciphertext: UnsafeRawBufferPointer(start: nil, count: 0),
                            tag: ct.baseAddress!, ad: UnsafeRawBufferPointer(h), out: dh.baseAddress!)
            }
            guard ok else { return .failure(.failed) }
            msg.encryptedNothing.withBytes { mixHash(h, $0) }
            hs.remoteEphemeral = msg.ephemeral
            hs.remoteIndex = msg.sender
            hs.chainKey.copyMemory(from: UnsafeRawBufferPointer(c))
            hs.hash.copyMemory(from: UnsafeRawBufferPointer(h))
            hs.state = .consumedResponse
            return .success(peer)
        }
    }

    /// Derives the session from a completed exchange (T_send, T_recv =
    /// KDF2(C, ε), swapped for the responder), moves the local index from
    /// the handshake to the keypair and zeroes the handshake.
    static func beginSession(peer: PeerState, now: UInt64, indices: inout IndexTable) -> Keypair? {
        let hs = peer.handshake
        let initiator: Bool
        switch hs.state {
        case .consumedResponse: initiator = true
        case .createdResponse: initiator = false
        default: return nil
        }
        let keypair = Keypair(peer: peer, birth: now, isInitiator: initiator,
                              localIndex: hs.localIndex, remoteIndex: hs.remoteIndex)
        let first = keypair.keys[initiator ? 0 : 32, 32]
        let second = keypair.keys[initiator ? 32 : 0, 32]
        Crypto.kdf(key: UnsafeRawBufferPointer(hs.chainKey), input: UnsafeRawBufferPointer(start: nil, count: 0), first, second)
        indices.replace(hs.localIndex, with: .keypair(keypair))
        hs.zero()
        return keypair
    }
}
