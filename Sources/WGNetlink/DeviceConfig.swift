import KeyStore

/// Desired state of a WireGuard device, for `WG_CMD_SET_DEVICE` or the UAPI
/// `set=1` command. `nil` means "leave as it is", as in wgctrl-go's `Config`.
public struct DeviceConfig: Sendable, Hashable {
    /// New private key; nil leaves it. (A zero key removes it.)
    public var privateKey: PrivateKey?
    /// New listen port; nil leaves it; 0 picks a random one.
    public var listenPort: UInt16?
    /// New firewall mark; nil leaves it; 0 removes it.
    public var firewallMark: UInt32?
    /// Remove every peer not listed in `peers` first.
    public var replacePeers: Bool
    /// Peers to add, change or remove.
    public var peers: [PeerConfig]

    /// A config that changes nothing unless fields are set.
    public init(privateKey: PrivateKey? = nil, listenPort: UInt16? = nil, firewallMark: UInt32? = nil,
                replacePeers: Bool = false, peers: [PeerConfig] = []) {
        self.privateKey = privateKey
        self.listenPort = listenPort
        self.firewallMark = firewallMark
        self.replacePeers = replacePeers
        self.peers = peers
    }
}

/// Desired state of one peer within a `DeviceConfig`.
public struct PeerConfig: Sendable, Hashable {
    /// Which peer this is.
    public var publicKey: PublicKey
    /// Remove this peer (everything else is ignored).
    public var remove: Bool
    /// Change this peer only if it exists; never create it.
    public var updateOnly: Bool
    /// New preshared key; nil leaves it; `.zero` removes it.
    public var presharedKey: PresharedKey?
    /// New endpoint; nil leaves it.
    public var endpoint: SocketAddress?
    /// New keepalive interval in seconds; nil leaves it; 0 turns it off.
    public var persistentKeepaliveInterval: UInt16?
    /// Replace the peer's allowed IPs with `allowedIPs` instead of adding to them.
    public var replaceAllowedIPs: Bool
    /// Allowed IPs to add (or, with `replaceAllowedIPs`, the whole new list).
    public var allowedIPs: [IPPrefix]

    /// A peer entry that changes nothing unless fields are set.
    public init(publicKey: PublicKey, remove: Bool = false, updateOnly: Bool = false,
                presharedKey: PresharedKey? = nil, endpoint: SocketAddress? = nil,
                persistentKeepaliveInterval: UInt16? = nil, replaceAllowedIPs: Bool = false,
                allowedIPs: [IPPrefix] = []) {
        self.publicKey = publicKey
        self.remove = remove
        self.updateOnly = updateOnly
        self.presharedKey = presharedKey
        self.endpoint = endpoint
        self.persistentKeepaliveInterval = persistentKeepaliveInterval
        self.replaceAllowedIPs = replaceAllowedIPs
        self.allowedIPs = allowedIPs
    }
}

/// Observed state of a WireGuard device, as read back by `WG_CMD_GET_DEVICE`
/// or the UAPI `get=1` command.
public struct Device: Sendable, Hashable {
    /// Interface name.
    public var name: String
    /// Interface index (0 for the userspace backend when unknown).
    public var ifindex: UInt32
    /// The private key, if one is set.
    public var privateKey: PrivateKey?
    /// The public key derived from it, if a private key is set.
    public var publicKey: PublicKey?
    /// The UDP port the device listens on.
    public var listenPort: UInt16
    /// The firewall mark; 0 when none.
    public var firewallMark: UInt32
    /// Peers, in the order the device reports them.
    public var peers: [Peer]

    /// Wraps observed values.
    public init(name: String, ifindex: UInt32 = 0, privateKey: PrivateKey? = nil, publicKey: PublicKey? = nil,
                listenPort: UInt16 = 0, firewallMark: UInt32 = 0, peers: [Peer] = []) {
        self.name = name
        self.ifindex = ifindex
        self.privateKey = privateKey
        self.publicKey = publicKey
        self.listenPort = listenPort
        self.firewallMark = firewallMark
        self.peers = peers
    }
}

/// Observed state of one peer.
public struct Peer: Sendable, Hashable {
    /// The peer's public key.
    public var publicKey: PublicKey
    /// The preshared key, if one is set (nil for the zero key).
    public var presharedKey: PresharedKey?
    /// The last endpoint the peer was seen at or configured with.
    public var endpoint: SocketAddress?
    /// Keepalive interval in seconds; 0 when off.
    public var persistentKeepaliveInterval: UInt16
    /// Time of the last handshake, seconds and nanoseconds since the epoch; (0, 0) for never.
    public var lastHandshake: (seconds: Int64, nanoseconds: Int64)
    /// Bytes received from this peer.
    public var receiveBytes: UInt64
    /// Bytes sent to this peer.
    public var transmitBytes: UInt64
    /// Allowed IPs, in the order the device reports them.
    public var allowedIPs: [IPPrefix]
    /// Protocol version (1 today).
    public var protocolVersion: UInt32

    /// Wraps observed values.
    public init(publicKey: PublicKey, presharedKey: PresharedKey? = nil, endpoint: SocketAddress? = nil,
                persistentKeepaliveInterval: UInt16 = 0, lastHandshake: (seconds: Int64, nanoseconds: Int64) = (0, 0),
                receiveBytes: UInt64 = 0, transmitBytes: UInt64 = 0, allowedIPs: [IPPrefix] = [],
                protocolVersion: UInt32 = 1) {
        self.publicKey = publicKey
        self.presharedKey = presharedKey
        self.endpoint = endpoint
        self.persistentKeepaliveInterval = persistentKeepaliveInterval
        self.lastHandshake = lastHandshake
        self.receiveBytes = receiveBytes
        self.transmitBytes = transmitBytes
        self.allowedIPs = allowedIPs
        self.protocolVersion = protocolVersion
    }

    public static func == (a: Peer, b: Peer) -> Bool {
        a.publicKey == b.publicKey && a.presharedKey == b.presharedKey && a.endpoint == b.endpoint
            && a.persistentKeepaliveInterval == b.persistentKeepaliveInterval
            && a.lastHandshake.seconds == b.lastHandshake.seconds && a.lastHandshake.nanoseconds == b.lastHandshake.nanoseconds
            && a.receiveBytes == b.receiveBytes && a.transmitBytes == b.transmitBytes
            && a.allowedIPs == b.allowedIPs && a.protocolVersion == b.protocolVersion
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(publicKey)
        hasher.combine(endpoint)
        hasher.combine(allowedIPs)
    }
}
