import KeyStore
import WGNetlink

/// Everything the device knows about one peer (`struct wg_peer`): its
/// key, handshake, sessions, cookie state, timers, endpoint, counters, and
/// the packets waiting for a session.
final class PeerState {
    /// The peer's public key as configured.
    let publicKey: PublicKey
    /// The same key's bytes.
    let key: Bytes32
    /// The peer's number in the AllowedIPs table (never 0).
    let slot: UInt32
    /// The Noise handshake with this peer.
    let handshake: Handshake
    /// Current, previous and next sessions.
    var keypairs = Keypairs()
    /// mac1/mac2 for messages we send to this peer.
    var cookie: CookieGenerator
    /// Timers and their flags.
    var timers = PeerTimers()
    /// The preshared key, if any (also in the handshake's locked memory).
    var presharedKey: PresharedKey?
    /// Where to send; learnt from every authenticated packet.
    var endpoint: SocketAddress?
    /// Persistent keepalive in seconds; 0 = off.
    var persistentKeepaliveInterval: UInt16 = 0
    /// Wall time of the last completed handshake; (0, 0) for never.
    var lastHandshake: (seconds: Int64, nanoseconds: Int64) = (0, 0)
    /// When we last sent an initiation (monotonic ns), for the 5-s rate limit.
    var lastSentHandshake: UInt64? = nil
    /// Bytes received from this peer (authenticated messages).
    var receiveBytes: UInt64 = 0
    /// Bytes sent to this peer.
    var transmitBytes: UInt64 = 0
    /// Packets waiting for a session, oldest first, at most `Timing.maxStagedPackets`.
    var staged: [[UInt8]] = []

    /// A peer with no session yet.
    init(publicKey: PublicKey, slot: UInt32) {
        self.publicKey = publicKey
        key = Bytes32(publicKey)
        self.slot = slot
        handshake = Handshake(remoteStatic: key)
        cookie = CookieGenerator(peerKey: key)
    }

    /// Forgets the handshake in progress and frees its index.
    func clearHandshake(indices: inout IndexTable) {
        if handshake.hasLocalIndex { indices.removeHandshake(handshake.localIndex, of: self) }
        handshake.zero()
    }
}

/// Packets dropped by the device, by reason (for tests and `wgns -v`).
public struct DropCounters: Sendable, Hashable {
    /// Datagrams of no known type, a wrong size, or non-zero reserved bytes.
    public var malformed: UInt64 = 0
    /// Handshake messages whose mac1 is wrong (checked before anything else).
    public var invalidMAC1: UInt64 = 0
    /// Handshake messages under load without a valid mac2: answered with a cookie reply.
    public var cookieReplied: UInt64 = 0
    /// Handshake messages under load with a valid mac2 but over the per-source rate.
    public var rateLimited: UInt64 = 0
    /// Handshake messages that did not decrypt or did not fit the handshake's state.
    public var handshakeFailed: UInt64 = 0
    /// Initiations naming a static key that is no peer of ours, and responses to no initiation of ours.
    public var unknownPeer: UInt64 = 0
    /// Initiations whose timestamp is not newer than the last one accepted (replays).
    public var replayedInitiation: UInt64 = 0
    /// Initiations from one peer faster than 50 a second.
    public var initiationFlood: UInt64 = 0
    /// Cookie replies that do not decrypt or answer nothing we sent.
    public var invalidCookie: UInt64 = 0
    /// Transport messages to an index we do not have.
    public var unknownIndex: UInt64 = 0
    /// Transport messages under a session too old or no longer valid.
    public var expiredSession: UInt64 = 0
    /// Transport messages whose tag does not verify.
    public var decryptFailed: UInt64 = 0
    /// Transport messages replayed or too old for the window.
    public var replayed: UInt64 = 0
    /// Decrypted packets that are not a well-formed IPv4/IPv6 packet.
    public var invalidInnerPacket: UInt64 = 0
    /// Decrypted packets whose source address is not allowed for the peer.
    public var disallowedSource: UInt64 = 0
    /// Datagrams that came while the device has no private key.
    public var noPrivateKey: UInt64 = 0
    /// Outgoing packets to an address no peer is allowed.
    public var noRoute: UInt64 = 0
    /// Outgoing packets to a peer without an endpoint.
    public var noEndpoint: UInt64 = 0
    /// Outgoing packets that are not IPv4/IPv6 or too big.
    public var invalidOutgoing: UInt64 = 0
    /// Packets dropped from a full staging queue (oldest first).
    public var stagedOverflow: UInt64 = 0

    /// No drops.
    public init() {}

    /// Every drop of an incoming datagram.
    public var incomingTotal: UInt64 {
        malformed + invalidMAC1 + cookieReplied + rateLimited + handshakeFailed + unknownPeer + replayedInitiation
            + initiationFlood + invalidCookie + unknownIndex + expiredSession + decryptFailed + replayed
            + invalidInnerPacket + disallowedSource + noPrivateKey
    }
}
