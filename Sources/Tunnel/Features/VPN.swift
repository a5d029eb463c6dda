import KeyStore
import POSIX
import SystemPackage
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// A per-job private VPN: one hub and N peers, with fresh keys and one
/// address each. In subnet 10.97.0.0/24 the hub is 10.97.0.1 and peer K is
/// 10.97.0.(K+1); the same rule holds in every subnet, IPv4 or IPv6.
public struct VPN: Sendable {
    /// The hub's config (`hub.conf`).
    public var hub: TunnelConfig
    /// Peer K's config is `peers[K-1]` (`peer-K.conf`).
    public var peers: [TunnelConfig]
    /// The host name the hub publishes when it picks its port
    /// (`--endpoint HOST` without a port), written to `hub.advertise`.
    public var advertise: String?
    /// Every peer's public key, in order (`DIR/members`).
    public var memberKeys: [PublicKey] = []
    /// Star (every byte through the hub) or mesh (members go direct once
    /// a direct handshake works; the hub relays until then).
    public var topology: Topology = .star
    /// The UDP ports members of a mesh pick theirs from (`vpn new --ports`).
    public var memberPorts: ClosedRange<UInt16>?

    /// How members reach each other.
    public enum Topology: String, Sendable, Hashable, CaseIterable {
        /// Through the hub only (DeepSquare's shape).
        case star
        /// Directly where a direct path works, through the hub where not
        /// (the builtin backend; other backends stay relayed).
        case mesh
    }

    /// Keepalive every peer sends: they sit behind slirp4netns/pasta NAT and
    /// only they can open the path.
    public static let keepalive: UInt16 = 25

    /// Generates a VPN: fresh keys (and preshared keys when `presharedKeys`),
    /// the hub listening on `endpoint.port`, every peer pointing at `endpoint`.
    ///
    /// Without an endpoint the hub has no ListenPort and the peers no
    /// Endpoint: `wgns hub DIR` picks a free port on its host and publishes
    /// `HOST:PORT` in `DIR/hub.endpoint`, where `wgns up DIR` finds it.
    ///
    /// An endpoint on the host's loopback (127.0.0.0/8, ::1, localhost) is
    /// written as 10.0.2.2, the address at which a namespace reaches the
    /// host's loopback, with `HostLoopback = true` in the peers' `[Namespace]`,
    /// and the hub gets the MTU the peers pick for that path (the carrier's
    /// 65520 minus 80): a hub has no endpoint to measure the path by, and a
    /// 1420 hub in front of 65440 peers caps a loopback VPN at a tenth of its speed.
    public static func generate(peerCount: Int, subnets: [IPPrefix], endpoint: Endpoint?,
                                presharedKeys: Bool) throws(TunnelError) -> VPN {
        guard peerCount >= 1 else { throw TunnelError(.config, "--peers must be at least 1") }
        guard !subnets.isEmpty else { throw TunnelError(.config, "give at least one --subnet") }
        guard subnets.filter({ !$0.address.isV6 }).count <= 1, subnets.filter({ $0.address.isV6 }).count <= 1 else {
            throw TunnelError(.config, "give at most one IPv4 and one IPv6 --subnet")
        }
        for s in subnets {
            // Hub + peers, plus the network address (and broadcast for IPv4).
            let hostBits = Int(s.address.maxPrefixLength) - Int(s.prefixLength)
            let usable = hostBits >= 62 ? Int.max : (1 << hostBits) - (s.address.isV6 ? 1 : 2)
            guard usable >= peerCount + 1 else {
                throw TunnelError(.config, "--subnet \(s) has room for \(max(0, usable - 1)) peers, not \(peerCount)")
            }
        }
        if let endpoint, endpoint.port == 0 { throw TunnelError(.config, "--endpoint needs a port other than 0") }

        var peerEndpoint = endpoint
        var namespace = NamespaceSettings()
        if let endpoint, isLoopback(endpoint.host) {
            peerEndpoint?.host = "10.0.2.2"
            namespace.hostLoopback = true
        }

        let hubKey = PrivateKey.generate()
        let hubPublic = hubKey.publicKey
        var hub = TunnelConfig()
        hub.interface.privateKey = .inline(hubKey)
        if namespace.hostLoopback == true { hub.interface.mtu = Resolver.carrierMTU - 80 }
        hub.interface.addresses = subnets.map { address(in: $0, host: 1) }
        // The hub's namespace gets its ListenPort forwarded from the host by
        // pasta; without one, the hub picks the host's port when it starts.
        hub.namespace.carrier = .pasta
        if let endpoint {
            hub.interface.listenPort = endpoint.port
            hub.namespace.forwardUDP = [PortForward(hostPort: endpoint.port, namespacePort: endpoint.port)]
        }

        var peers: [TunnelConfig] = []
        var memberKeys: [PublicKey] = []
        peers.reserveCapacity(peerCount)
        for k in 1...peerCount {
            let key = PrivateKey.generate()
            memberKeys.append(key.publicKey)
            let psk = presharedKeys ? PresharedKey.generate() : nil
            var peer = TunnelConfig()
            peer.interface.privateKey = .inline(key)
            peer.interface.addresses = subnets.map { address(in: $0, host: UInt64(k + 1)) }
            var toHub = PeerSettings(publicKey: hubPublic)
            toHub.presharedKey = psk.map { .inline($0) }
            toHub.allowedIPs = subnets.map(\.network)
            toHub.endpoint = peerEndpoint
            toHub.persistentKeepalive = keepalive
            peer.peers = [toHub]
            peer.namespace = namespace
            peers.append(peer)

            var onHub = PeerSettings(publicKey: key.publicKey)
            onHub.presharedKey = psk.map { .inline($0) }
            onHub.allowedIPs = subnets.map { IPPrefix(address: address(in: $0, host: UInt64(k + 1)).address,
                                                      prefixLength: $0.address.maxPrefixLength)! }
            hub.peers.append(onHub)
        }
        return VPN(hub: hub, peers: peers, advertise: nil, memberKeys: memberKeys)
    }

    /// `DIR/hub.conf`.
    public static func hubPath(_ dir: String) -> String { "\(dir)/hub.conf" }
    /// `DIR/peer-K.conf`.
    public static func peerPath(_ dir: String, _ k: Int) -> String { "\(dir)/peer-\(k).conf" }
    /// `DIR/hub.endpoint`: `HOST:PORT` of the running hub, written by `wgns hub DIR`.
    public static func endpointPath(_ dir: String) -> String { "\(dir)/hub.endpoint" }
    /// `DIR/members`: the topology and every peer's public key (no secret).
    public static func membersPath(_ dir: String) -> String { "\(dir)/members" }
    /// `DIR/peer-K.endpoint`: where peer K's data plane listens, written by its `wgns up`.
    public static func memberEndpointPath(_ dir: String, _ k: Int) -> String { "\(dir)/peer-\(k).endpoint" }
    /// `DIR/hub.advertise`: the host name `wgns vpn new --endpoint HOST` (no
    /// port) chose for the hub to publish.
    public static func advertisePath(_ dir: String) -> String { "\(dir)/hub.advertise" }

    /// The domain of the members' short names in the job's /etc/hosts
    /// (`hub.vpn`, `peer-1.vpn`, ...).
    public static let domain = "vpn"

    /// The member names of a VPN over `subnets` with `peerCount` peers, as
    /// /etc/hosts lines: `hub`, then `peer-1` ... `peer-N`, each also as
    /// `NAME.vpn`, with one line per address family.
    public static func hostsEntries(subnets: [IPPrefix], peerCount: Int) -> String {
        var text = "# the per-job VPN's members (wgns)\n"
        text.reserveCapacity(64 * (peerCount + 1) * subnets.count)
        func add(_ host: UInt64, _ name: String) {
            for s in subnets { text += "\(address(in: s.network, host: host).address) \(name).\(domain) \(name)\n" }
        }
        add(1, "hub")
        if peerCount > 0 { for k in 1...peerCount { add(UInt64(k + 1), "peer-\(k)") } }
        return text
    }

    /// The job's /etc/hosts: the VPN's `members` first (so that they win
    /// over any same name of the host's), then the host's own /etc/hosts
    /// (localhost, this node's name, ...).
    public static func hostsFile(adding members: String) -> String {
        let own = (try? readSmallFile("/etc/hosts")) ?? "127.0.0.1 localhost\n::1 localhost\n"
        return members + "\n# this host's /etc/hosts\n" + own + (own.hasSuffix("\n") || own.isEmpty ? "" : "\n")
    }

    /// Writes `hub.conf` and `peer-1.conf` ... into `dir` (created mode 0700;
    /// files mode 0600, each written atomically). Refuses to replace an
    /// existing VPN unless `overwrite`.
    public func write(to dir: String, overwrite: Bool) throws(TunnelError) {
        if mkdir(dir, 0o700) != 0 {
            guard errno == EEXIST else { throw TunnelError(.config, "cannot create \(dir)", errno: currentErrno) }
            var st = stat()
            guard stat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { throw TunnelError(.config, "\(dir) exists and is not a directory") }
            if !overwrite && access(VPN.hubPath(dir), F_OK) == 0 {
                throw TunnelError(.config, "\(dir) already holds a VPN (\(VPN.hubPath(dir))); use --force to replace it")
            }
            if st.st_mode & 0o077 != 0 && chmod(dir, 0o700) != 0 {
                throw TunnelError(.config, "cannot make \(dir) private (chmod 700)", errno: currentErrno)
            }
        }
        do {
            // Each file atomically (temporary file, rename) and the folder
            // flushed once at the end, not each file: an fsync per file made
            // 1000 peers take seconds, and a VPN lost to a crash is made anew.
            try VPN.writePrivateFile(Array(try hub.rendered().utf8), to: VPN.hubPath(dir))
            for (i, p) in peers.enumerated() {
                try VPN.writePrivateFile(Array(try p.rendered().utf8), to: VPN.peerPath(dir, i + 1))
            }
            // What the hub of an earlier VPN here chose or published.
            unlink(VPN.advertisePath(dir))
            unlink(VPN.endpointPath(dir))
            if let a = advertise { try KeyFile.writeSecretFile(Array("\(a)\n".utf8), to: VPN.advertisePath(dir)) }
            // A star needs no more than its configs (as before meshes).
            unlink(VPN.membersPath(dir))
            if topology == .mesh {
                var members = "topology \(topology.rawValue)\n"
                if let r = memberPorts { members += "ports \(r.lowerBound)-\(r.upperBound)\n" }
                for (i, key) in memberKeys.enumerated() { members += "peer-\(i + 1) \(key.base64)\n" }
                try VPN.writePrivateFile(Array(members.utf8), to: VPN.membersPath(dir))
            }
            // What members of an earlier VPN here published.
            for k in 1...peers.count { unlink(VPN.memberEndpointPath(dir, k)) }
            // Peers left over from a bigger VPN that this one replaces.
            var k = peers.count + 1
            while unlink(VPN.peerPath(dir, k)) == 0 { unlink(VPN.memberEndpointPath(dir, k)); k += 1 }
            try KeyFile.syncDirectory(dir)
        } catch {
            throw TunnelError(.system, "cannot write the VPN into \(dir)", wrapping: error)
        }
    }

    /// Writes `bytes` to `path` through a temporary file of mode 0600 in the
    /// same folder and a rename, without flushing it (the caller syncs once).
    static func writePrivateFile(_ bytes: [UInt8], to path: String) throws(TunnelError) {
        let tmp = path + ".tmp"
        unlink(tmp)
        let d: Descriptor
        do { d = try Descriptor.open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600) } catch {
            throw TunnelError(.system, "cannot create \(tmp)", errno: error)
        }
        do { try d.writeAll(bytes) } catch {
            unlink(tmp)
            throw TunnelError(.system, "cannot write \(tmp)", errno: error)
        }
        d.close()
        guard rename(tmp, path) == 0 else {
            let e = currentErrno
            unlink(tmp)
            throw TunnelError(.system, "cannot rename \(tmp) to \(path)", errno: e)
        }
    }

    /// Address number `host` inside `subnet`, with the subnet's prefix length.
    static func address(in subnet: IPPrefix, host: UInt64) -> IPPrefix {
        var bytes = subnet.network.address.bytes
        var carry = host
        var i = bytes.count - 1
        while carry > 0 && i >= 0 {
            let sum = UInt64(bytes[i]) + (carry & 0xff)
            bytes[i] = UInt8(truncatingIfNeeded: sum)
            carry = (carry >> 8) + (sum >> 8)
            i -= 1
        }
        return IPPrefix(address: IPAddress(bytes: bytes)!, prefixLength: subnet.prefixLength)!
    }

    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" { return true }
        switch IPAddress(host) {
        case .v4(127, _, _, _)?: return true
        case .v6(let b)?: return b.withUnsafeBytes { Array($0) } == [UInt8](repeating: 0, count: 15) + [1]
        default: return false
        }
    }
}
