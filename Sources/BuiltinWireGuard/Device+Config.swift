import KeyStore
import WGNetlink

extension WireGuardDevice {
    /// Applies `config` with `wg set` semantics: nil fields are left alone;
    /// `replacePeers` removes every peer first; per peer, `remove`,
    /// `updateOnly` (never create), a zero preshared key removes it,
    /// `replaceAllowedIPs` drops the old prefixes, and a prefix another peer
    /// held moves to this one. Turning a persistent keepalive on sends a
    /// keepalive at the next `tick` (starting a handshake when there is no
    /// session), as `wg` does at once.
    public func configure(_ config: DeviceConfig) throws(BuiltinError) {
        try configure(config, sink: nil)
    }

    /// `configure(_:)`, sending the keepalive of a newly enabled persistent
    /// keepalive through `sink` right away instead of at the next `tick`.
    public func configure(_ config: DeviceConfig, sink: PacketSink?) throws(BuiltinError) {
        try locked { () throws(BuiltinError) in
            let now = clock.monotonicNanoseconds()
            var newPeers = Set<Bytes32>()
            for pc in config.peers where !pc.remove && !pc.updateOnly { newPeers.insert(Bytes32(pc.publicKey)) }
            let existing = config.replacePeers ? 0 : peers.count
            let added = newPeers.filter { config.replacePeers || peers[$0] == nil }.count
            guard existing + added <= Self.maxPeers else {
                throw BuiltinError(.invalidConfiguration, "too many peers: at most \(Self.maxPeers) per device")
            }
            if let key = config.privateKey { setPrivateKey(key) }
            if let p = config.listenPort { configuredListenPort = p }
            if let m = config.firewallMark { firewallMark = m }
            if config.replacePeers { removeAllPeers() }
            var keepaliveNow: [PeerState] = []
            for pc in config.peers {
                let key = Bytes32(pc.publicKey)
                if pc.remove {
                    if let p = peers[key] { removePeer(p) }
                    continue
                }
                let peer: PeerState
                if let p = peers[key] {
                    peer = p
                } else {
                    if pc.updateOnly { continue }
                    // The kernel ignores a peer whose key is our own.
                    if let id = identity, id.publicKey == key { continue }
                    peer = PeerState(publicKey: pc.publicKey, slot: nextSlot)
                    nextSlot += 1
                    peer.handshake.precompute(identity)
                    peers[key] = peer
                    peersBySlot[peer.slot] = peer
                    peerOrder.append(peer)
                }
                if let psk = pc.presharedKey {
                    peer.presharedKey = psk.isZero ? nil : psk
                    peer.handshake.setPresharedKey(peer.presharedKey)
                }
                if let ep = pc.endpoint { peer.endpoint = ep }
                if pc.replaceAllowedIPs { allowedIPs.removeAll(value: peer.slot) }
                for prefix in pc.allowedIPs { allowedIPs.insert(prefix, value: peer.slot) }
                if let interval = pc.persistentKeepaliveInterval {
                    let was = peer.persistentKeepaliveInterval
                    peer.persistentKeepaliveInterval = interval
                    if interval == 0 {
                        peer.timers.persistentKeepalive = 0
                    } else if was == 0 {
                        keepaliveNow.append(peer)
                    }
                }
            }
            for peer in keepaliveNow {
                if let sink {
                    sendKeepalive(peer, now: now, sink: sink)
                } else {
                    peer.timers.persistentKeepalive = now
                }
            }
        }
    }

    /// A new private key (the zero key removes it): a peer with the matching
    /// public key is removed, every peer's static-static DH is recomputed
    /// and its sessions stop sending (as the kernel does).
    func setPrivateKey(_ key: PrivateKey) {
        if let id = identity, id.key == key { return }
        let newIdentity: StaticIdentity? = key.isZero ? nil : StaticIdentity(key)
        if let newIdentity, let clash = peers[newIdentity.publicKey] { removePeer(clash) }
        identity = newIdentity
        checker.setIdentity(newIdentity)
        for peer in peerOrder {
            peer.handshake.precompute(newIdentity)
            peer.clearHandshake(indices: &indices)
            peer.keypairs.expireCurrent()
        }
    }

    /// Removes every peer at once: the tables they filled start empty again.
    func removeAllPeers() {
        for peer in peerOrder {
            peer.keypairs.clear(indices: &indices)
            peer.clearHandshake(indices: &indices)
            peer.staged.removeAll()
        }
        peers = [:]
        peersBySlot = [:]
        peerOrder = []
        allowedIPs = AllowedIPs()
        indices = IndexTable()
    }

    /// Removes a peer with its sessions, indices, prefixes and queued packets.
    func removePeer(_ peer: PeerState) {
        peer.keypairs.clear(indices: &indices)
        peer.clearHandshake(indices: &indices)
        allowedIPs.removeAll(value: peer.slot)
        peers[peer.key] = nil
        peersBySlot[peer.slot] = nil
        peerOrder.removeAll { $0 === peer }
        peer.staged.removeAll()
    }
}
