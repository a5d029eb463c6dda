import KeyStore
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

extension TunnelConfig {
    /// How a config file is applied to a device, as wg's subcommands do.
    public enum ApplyMode: Sendable {
        /// `setconf` (and `syncconf`, before syncing): the file is the whole
        /// state; missing private key, listen port or fwmark are cleared, and
        /// peers not in the file are removed.
        case replace
        /// `addconf`: only what the file says changes; other peers stay.
        case add
    }

    /// The WireGuard part of this config as a `DeviceConfig` (wg-quick keys
    /// such as Address, DNS, MTU and the `[Namespace]` section are ignored).
    /// Key files are read; endpoint host names are turned into addresses by
    /// `resolve` (by default `Resolver.resolve`: the first address, as wg
    /// takes it, temporary failures retried as wg does; errors name `file`). Every peer's allowed IPs
    /// replace the device's, as with wg.
    public func deviceConfig(_ mode: ApplyMode, file: String = "config",
                             resolve: ((Endpoint) throws -> SocketAddress)? = nil) throws -> DeviceConfig {
        var config = DeviceConfig()
        switch mode {
        case .replace:
            // No PrivateKey in the file: the zero key, which removes the device's key.
            config.privateKey = try interface.privateKey?.load() ?? [UInt8](repeating: 0, count: 32).withUnsafeBytes { try PrivateKey(rawBytes: $0) }
            config.listenPort = interface.listenPort ?? 0
            config.firewallMark = interface.firewallMark ?? 0
            config.replacePeers = true
        case .add:
            config.privateKey = try interface.privateKey?.load()
            config.listenPort = interface.listenPort
            config.firewallMark = interface.firewallMark
        }
        config.peers.reserveCapacity(peers.count)
        for p in peers {
            var peer = PeerConfig(publicKey: p.publicKey, replaceAllowedIPs: true, allowedIPs: p.allowedIPs)
            peer.presharedKey = try p.presharedKey?.load()
            peer.persistentKeepaliveInterval = p.persistentKeepalive
            if let e = p.endpoint {
                if let a = e.address {
                    peer.endpoint = SocketAddress(address: a, port: e.port)
                } else {
                    peer.endpoint = try resolve.map { try $0(e) } ?? Resolver.resolve(e, prefer: .first, context: file)
                }
            }
            config.peers.append(peer)
        }
        return config
    }
}
