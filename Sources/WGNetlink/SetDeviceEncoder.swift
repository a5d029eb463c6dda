import CLibMnl
import KeyStore
#if canImport(Glibc)
import Glibc
#endif


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
