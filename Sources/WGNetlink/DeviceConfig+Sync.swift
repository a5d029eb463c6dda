import KeyStore

extension DeviceConfig {
    /// Turns a full configuration (as `setconf` applies it) into one that
    /// reaches the same state from `current` without disturbing peers that
    /// stay, as `wg syncconf` does: no replace-peers, an explicit removal for
    /// every peer not listed, and for listed peers, a preshared key or
    /// keepalive that the device has but the config lacks is cleared.
    public func synchronized(from current: Device) -> DeviceConfig {
        guard !peers.isEmpty, !current.peers.isEmpty else { return self }
        var result = self
        result.replacePeers = false
        var wanted: [PublicKey: Int] = [:]
        wanted.reserveCapacity(peers.count)
        for (i, p) in peers.enumerated() { wanted[p.publicKey] = i }
        var removals: [PeerConfig] = []
        for peer in current.peers {
            guard let i = wanted[peer.publicKey] else {
                removals.append(PeerConfig(publicKey: peer.publicKey, remove: true))
                continue
            }
            if peer.presharedKey != nil && result.peers[i].presharedKey == nil {
                result.peers[i].presharedKey = .zero
            }
            if peer.persistentKeepaliveInterval != 0 && result.peers[i].persistentKeepaliveInterval == nil {
                result.peers[i].persistentKeepaliveInterval = 0
            }
        }
        result.peers = removals + result.peers
        return result
    }
}
