import CLibMnl
import KeyStore
#if canImport(Glibc)
import Glibc
#endif

/// The kernel backend: WireGuard's generic netlink family
/// (`WG_CMD_SET_DEVICE`, `WG_CMD_GET_DEVICE`), in the network namespace of
/// the thread that created it.
public final class KernelWireGuard: WireGuardControl {
    private let socket: NetlinkSocket
    /// The `wireguard` family's id, resolved once.
    public let familyID: UInt16
    private let buffer = MessageBuffer(capacity: KernelWireGuard.messageCapacity)
    private var routes: RouteNetlink?

    /// Bytes per `WG_CMD_SET_DEVICE` message. Bigger than wg's page-sized
    /// messages (fewer round trips), and small enough that the peers nest's
    /// 16-bit length can never overflow.
    static let messageCapacity = 32768

    /// Opens a generic netlink socket and resolves the `wireguard` family
    /// (`CTRL_CMD_GETFAMILY`). A kernel without WireGuard gives
    /// `.noWireGuardModule`.
    public init() throws(NetlinkError) {
        socket = try NetlinkSocket(protocol: NETLINK_GENERIC)
        familyID = try Self.resolveFamily(WG_GENL_NAME, socket: socket, buffer: buffer)
    }

    /// Closes the socket now (also done when the object goes away).
    public func close() {
        socket.close()
        routes?.close()
    }

    /// Resolves a generic netlink family's id by name.
    static func resolveFamily(_ name: String, socket: NetlinkSocket, buffer: MessageBuffer) throws(NetlinkError) -> UInt16 {
        buffer.start(type: UInt16(GENL_ID_CTRL), flags: NLM_F_REQUEST | NLM_F_ACK)
        let g = buffer.extraHeader(genlmsghdr.self)
        g.pointee.cmd = UInt8(CTRL_CMD_GETFAMILY)
        g.pointee.version = 1
        buffer.put(CTRL_ATTR_FAMILY_NAME, string: name)
        var id: UInt16 = 0
        try socket.request(buffer, operation: "find the \(name) generic netlink family", context: .family(name)) { msg in
            for a in Attributes(message: msg, headerSize: MemoryLayout<genlmsghdr>.size)
            where Int(a.type) == CTRL_ATTR_FAMILY_ID {
                id = a.u16
            }
        }
        guard id != 0 else {
            throw NetlinkError(.protocolError, "cannot find the \(name) generic netlink family: the reply has no id")
        }
        return id
    }

    /// Applies `config` to `device` (`WG_CMD_SET_DEVICE`), in as many
    /// messages as it takes, each acknowledged before the next is sent.
    public func configure(_ device: String, _ config: DeviceConfig) throws(NetlinkError) {
        try checkName(device)
        var encoder = SetDeviceEncoder(config: config, device: device, family: familyID)
        while encoder.next(into: buffer) {
            try socket.request(buffer, operation: "configure WireGuard device \(device)", device: device, context: .wireGuard)
        }
    }

    /// Reads `name`'s state (`WG_CMD_GET_DEVICE` dump), merging peers that
    /// continue across messages; starts over if the dump was interrupted.
    public func device(_ name: String) throws(NetlinkError) -> Device {
        try checkName(name)
        while true {
            buffer.start(type: familyID, flags: NLM_F_REQUEST | NLM_F_DUMP)
            let g = buffer.extraHeader(genlmsghdr.self)
            g.pointee.cmd = UInt8(WG_CMD_GET_DEVICE.rawValue)
            g.pointee.version = UInt8(WG_GENL_VERSION)
            buffer.put(WGDEVICE_A_IFNAME.rawValue, string: name)
            var decoder = GetDeviceDecoder(name: name)
            let outcome = try socket.request(buffer, operation: "read WireGuard device \(name)", device: name,
                                             context: .wireGuard) { msg in decoder.add(msg) }
            if outcome == .done { return decoder.device }
        }
    }

    /// The names of every link of kind `wireguard` in this namespace.
    public func deviceNames() throws(NetlinkError) -> [String] {
        if routes == nil { routes = try RouteNetlink() }
        return try routes!.links().filter { $0.kind == "wireguard" }.map(\.name)
    }

    private func checkName(_ name: String) throws(NetlinkError) {
        guard !name.isEmpty, name.utf8.count < Int(IFNAMSIZ) else {
            throw NetlinkError(.invalidArgument, errno: EINVAL, "invalid interface name \"\(name)\"")
        }
    }
}

/// Splits a `DeviceConfig` into `WG_CMD_SET_DEVICE` messages the way the
/// kernel accepts them: the device's own attributes only in the first; peers
/// that do not fit continue in the next message; a peer whose allowed IPs do
/// not fit is repeated (public key, and its update-only flag) in the next
/// message with the rest of its allowed IPs and without replace-allowed-IPs.
struct SetDeviceEncoder {
    let config: DeviceConfig
    let device: String
    let family: UInt16
    private var peerIndex = 0
    private var allowedIndex = 0
    private var first = true

    init(config: DeviceConfig, device: String, family: UInt16) {
        self.config = config
        self.device = device
        self.family = family
    }

    /// Builds the next message into `buffer`; false when there is none left.
    mutating func next(into buffer: MessageBuffer) -> Bool {
        let peers = config.peers
        if !first && peerIndex >= peers.count { return false }
        buffer.start(type: family, flags: NLM_F_REQUEST | NLM_F_ACK)
        let g = buffer.extraHeader(genlmsghdr.self)
        g.pointee.cmd = UInt8(WG_CMD_SET_DEVICE.rawValue)
        g.pointee.version = UInt8(WG_GENL_VERSION)
        buffer.put(WGDEVICE_A_IFNAME.rawValue, string: device)
        if first {
            first = false
            if let k = config.privateKey { k.withUnsafeBytes { _ = buffer.put(WGDEVICE_A_PRIVATE_KEY.rawValue, $0) } }
            if let p = config.listenPort { buffer.put(WGDEVICE_A_LISTEN_PORT.rawValue, u16: p) }
            if let m = config.firewallMark { buffer.put(WGDEVICE_A_FWMARK.rawValue, u32: m) }
            if config.replacePeers { buffer.put(WGDEVICE_A_FLAGS.rawValue, u32: WGDEVICE_F_REPLACE_PEERS.rawValue) }
        }
        guard peerIndex < peers.count else { return true }
        guard let peersNest = buffer.nestStart(WGDEVICE_A_PEERS.rawValue) else { return true }
        var peersInMessage = 0
        peerLoop: while peerIndex < peers.count {
            let peer = peers[peerIndex]
            let continuing = allowedIndex > 0
            guard let peerNest = buffer.nestStart(0) else { break }
            var flags: UInt32 = 0
            if peer.remove { flags |= WGPEER_F_REMOVE_ME.rawValue }
            if peer.updateOnly { flags |= WGPEER_F_UPDATE_ONLY.rawValue }
            var fits = peer.publicKey.withUnsafeBytes { buffer.put(WGPEER_A_PUBLIC_KEY.rawValue, $0) }
            if fits && !continuing && !peer.remove {
                if peer.replaceAllowedIPs { flags |= WGPEER_F_REPLACE_ALLOWEDIPS.rawValue }
                if let k = peer.presharedKey {
                    fits = fits && k.withUnsafeBytes { buffer.put(WGPEER_A_PRESHARED_KEY.rawValue, $0) }
                }
                if let e = peer.endpoint { fits = fits && putEndpoint(e, buffer) }
                if let k = peer.persistentKeepaliveInterval {
                    fits = fits && buffer.put(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL.rawValue, u16: k)
                }
            }
            if fits && flags != 0 { fits = buffer.put(WGPEER_A_FLAGS.rawValue, u32: flags) }
            guard fits else { buffer.nestCancel(peerNest); break }
            if !peer.remove && allowedIndex < peer.allowedIPs.count {
                guard let ipsNest = buffer.nestStart(WGPEER_A_ALLOWEDIPS.rawValue) else { buffer.nestCancel(peerNest); break }
                var added = 0
                while allowedIndex < peer.allowedIPs.count {
                    guard putAllowedIP(peer.allowedIPs[allowedIndex], buffer) else { break }
                    allowedIndex += 1
                    added += 1
                }
                if added == 0 {
                    // Not even one fits: the peer starts over in the next message.
                    buffer.nestCancel(peerNest)
                    break peerLoop
                }
                buffer.nestEnd(ipsNest)
                if allowedIndex < peer.allowedIPs.count {
                    // The rest of this peer's allowed IPs go in the next message.
                    buffer.nestEnd(peerNest)
                    peersInMessage += 1
                    break peerLoop
                }
            }
            buffer.nestEnd(peerNest)
            peersInMessage += 1
            peerIndex += 1
            allowedIndex = 0
        }
        if peersInMessage == 0 {
            // Nothing fitted at all (cannot happen with 32 KiB messages): drop the
            // empty nest and move past the peer rather than loop forever.
            buffer.nestCancel(peersNest)
            peerIndex += 1
            allowedIndex = 0
        } else {
            buffer.nestEnd(peersNest)
        }
        return true
    }

    /// `WGPEER_A_ENDPOINT`: a `sockaddr_in` or `sockaddr_in6`.
    private func putEndpoint(_ e: SocketAddress, _ buffer: MessageBuffer) -> Bool {
        switch e.address {
        case let .v4(a, b, c, d):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = e.port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: [a, b, c, d]) }
            return buffer.put(WGPEER_A_ENDPOINT.rawValue, value: sin)
        case let .v6(bytes):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = e.port.bigEndian
            sin6.sin6_scope_id = e.scopeID
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { dst in bytes.withUnsafeBytes { dst.copyMemory(from: $0) } }
            return buffer.put(WGPEER_A_ENDPOINT.rawValue, value: sin6)
        }
    }

    /// One allowed IP nest: family, address, prefix length.
    private func putAllowedIP(_ p: IPPrefix, _ buffer: MessageBuffer) -> Bool {
        guard let nest = buffer.nestStart(0) else { return false }
        var ok = buffer.put(WGALLOWEDIP_A_FAMILY.rawValue, u16: UInt16(p.address.family))
        switch p.address {
        case let .v4(a, b, c, d): ok = ok && buffer.put(WGALLOWEDIP_A_IPADDR.rawValue, value: (a, b, c, d))
        case let .v6(bytes): ok = ok && bytes.withUnsafeBytes { buffer.put(WGALLOWEDIP_A_IPADDR.rawValue, $0) }
        }
        ok = ok && buffer.put(WGALLOWEDIP_A_CIDR_MASK.rawValue, u8: p.prefixLength)
        if ok { buffer.nestEnd(nest) } else { buffer.nestCancel(nest) }
        return ok
    }
}

/// Builds a `Device` from the messages of a `WG_CMD_GET_DEVICE` dump.
struct GetDeviceDecoder {
    private(set) var device: Device

    init(name: String) { device = Device(name: name) }

    /// Adds one message of the dump.
    mutating func add(_ msg: UnsafePointer<nlmsghdr>) {
        var firstPeerInMessage = true
        for a in Attributes(message: msg, headerSize: MemoryLayout<genlmsghdr>.size) {
            switch UInt32(a.type) {
            case WGDEVICE_A_IFINDEX.rawValue: device.ifindex = a.u32
            case WGDEVICE_A_IFNAME.rawValue: device.name = a.string
            case WGDEVICE_A_PRIVATE_KEY.rawValue:
                if let k = try? PrivateKey(rawBytes: a.payload), !k.isZero { device.privateKey = k }
            case WGDEVICE_A_PUBLIC_KEY.rawValue:
                if let k = try? PublicKey(rawBytes: a.payload), !k.isZero { device.publicKey = k }
            case WGDEVICE_A_LISTEN_PORT.rawValue: device.listenPort = a.u16
            case WGDEVICE_A_FWMARK.rawValue: device.firewallMark = a.u32
            case WGDEVICE_A_PEERS.rawValue:
                for p in a.nested {
                    guard let peer = Self.parsePeer(p) else { continue }
                    // A peer whose allowed IPs did not fit continues, same key, at
                    // the start of the next message.
                    if firstPeerInMessage, let last = device.peers.last, last.publicKey == peer.publicKey {
                        device.peers[device.peers.count - 1].allowedIPs.append(contentsOf: peer.allowedIPs)
                    } else {
                        device.peers.append(peer)
                    }
                    firstPeerInMessage = false
                }
            default: break
            }
        }
    }

    static func parsePeer(_ nest: Attribute) -> Peer? {
        // The public key comes first; finding it first avoids building a
        // placeholder key for every peer.
        guard let keyAttr = nest.nested.first(where: { UInt32($0.type) == WGPEER_A_PUBLIC_KEY.rawValue }),
              let key = try? PublicKey(rawBytes: keyAttr.payload) else { return nil }
        var peer = Peer(publicKey: key)
        for a in nest.nested {
            switch UInt32(a.type) {
            case WGPEER_A_PRESHARED_KEY.rawValue:
                // The kernel always sends one; all zeros means none.
                if a.payload.contains(where: { $0 != 0 }), let k = try? PresharedKey(rawBytes: a.payload) { peer.presharedKey = k }
            case WGPEER_A_ENDPOINT.rawValue: peer.endpoint = parseEndpoint(a.payload)
            case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL.rawValue: peer.persistentKeepaliveInterval = a.u16
            case WGPEER_A_LAST_HANDSHAKE_TIME.rawValue:
                if a.payload.count >= 16 {
                    peer.lastHandshake = (a.payload.loadUnaligned(as: Int64.self),
                                          a.payload.loadUnaligned(fromByteOffset: 8, as: Int64.self))
                }
            case WGPEER_A_RX_BYTES.rawValue: peer.receiveBytes = a.u64
            case WGPEER_A_TX_BYTES.rawValue: peer.transmitBytes = a.u64
            case WGPEER_A_PROTOCOL_VERSION.rawValue: peer.protocolVersion = a.u32
            case WGPEER_A_ALLOWEDIPS.rawValue:
                for ip in a.nested {
                    var family: UInt16 = 0
                    var address: IPAddress?
                    var cidr: UInt8 = 0
                    for f in ip.nested {
                        switch UInt32(f.type) {
                        case WGALLOWEDIP_A_FAMILY.rawValue: family = f.u16
                        case WGALLOWEDIP_A_IPADDR.rawValue: address = IPAddress(bytes: f.payload)
                        case WGALLOWEDIP_A_CIDR_MASK.rawValue: cidr = f.u8
                        default: break
                        }
                    }
                    if let address, Int32(family) == address.family, let p = IPPrefix(address: address, prefixLength: cidr) {
                        peer.allowedIPs.append(p)
                    }
                }
            default: break
            }
        }
        return peer
    }

    /// A `sockaddr_in` / `sockaddr_in6` as the kernel sends it.
    static func parseEndpoint(_ raw: UnsafeRawBufferPointer) -> SocketAddress? {
        guard raw.count >= 2 else { return nil }
        let family = Int32(raw.loadUnaligned(as: sa_family_t.self))
        if family == AF_INET, raw.count >= MemoryLayout<sockaddr_in>.size {
            let sin = raw.loadUnaligned(as: sockaddr_in.self)
            return withUnsafeBytes(of: sin.sin_addr) { SocketAddress(address: IPAddress(bytes: $0)!, port: UInt16(bigEndian: sin.sin_port)) }
        }
        if family == AF_INET6, raw.count >= MemoryLayout<sockaddr_in6>.size {
            let sin6 = raw.loadUnaligned(as: sockaddr_in6.self)
            return withUnsafeBytes(of: sin6.sin6_addr) {
                SocketAddress(address: IPAddress(bytes: $0)!, port: UInt16(bigEndian: sin6.sin6_port), scopeID: sin6.sin6_scope_id)
            }
        }
        return nil
    }
}
