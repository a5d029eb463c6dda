import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

extension VPN {
    /// True when `path` is a directory.
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
    }

    /// How many peers the VPN in `dir` has (peer-1.conf, peer-2.conf, ... without a gap).
    public static func peerCount(_ dir: String) -> Int {
        var n = 0
        while access(peerPath(dir, n + 1), F_OK) == 0 { n += 1 }
        return n
    }

    /// The config of one peer of the VPN in `dir` (`wgns up DIR --peer K`):
    /// peer `peer` when given; otherwise, inside a Slurm step, the task's rank
    /// plus one (`SLURM_PROCID` 0 is peer-1), so that `srun wgns up DIR -- CMD`
    /// gives every task its own identity.
    public static func peerConfigPath(in dir: String, peer: Int?, slurmProcID: String?) throws(TunnelError) -> String {
        let count = peerCount(dir)
        guard count > 0 else {
            throw TunnelError(.config, "\(dir) holds no VPN (no \(peerPath(dir, 1)); make one with `wgns vpn new \(dir) --peers N ...`)")
        }
        let k: Int
        if let peer {
            k = peer
        } else if let rank = slurmProcID {
            guard let r = Int(rank), r >= 0 else {
                throw TunnelError(.config, "SLURM_PROCID '\(rank)' is not a task rank; give --peer K")
            }
            k = r + 1
            guard k <= count else {
                throw TunnelError(.config, "SLURM_PROCID \(r) needs peer-\(k).conf but \(dir) has peers 1 to \(count) (make the VPN with --peers \(k) or more)")
            }
        } else {
            throw TunnelError(.config, "\(dir) is a VPN of \(count) peers: give --peer K (1 to \(count)), or run inside a Slurm step (SLURM_PROCID)")
        }
        guard k >= 1 && k <= count else {
            throw TunnelError(.config, "--peer \(k) is out of range: \(dir) has peers 1 to \(count)")
        }
        return peerPath(dir, k)
    }

    /// What `wgns up DIR` adds to one peer of the VPN in `dir`: its config,
    /// the members' names for the job's /etc/hosts, the job's environment,
    /// and whether the hub's endpoint must come from `DIR/hub.endpoint`.
    public struct Member: Sendable {
        /// `DIR/peer-K.conf`.
        public var configPath: String
        /// K, and the VPN's number of peers N.
        public var peer: Int
        public var peerCount: Int
        /// /etc/hosts lines naming the hub and every peer.
        public var hosts: String
        /// `WGNS_ADDRESS` (this peer's VPN address), `WGNS_HUB` (the hub's),
        /// `WGNS_PEER` (K), `WGNS_PEERS` (N), `WGNS_NAME` (peer-K).
        public var environment: [String]
        /// The config has no Endpoint for the hub.
        public var needsEndpoint: Bool
        /// The VPN's subnets.
        public var subnets: [IPPrefix] = []
    }

    /// The member `wgns up DIR [--peer K]` stands for (see `peerConfigPath`).
    public static func member(in dir: String, peer: Int?, slurmProcID: String?) throws(TunnelError) -> Member {
        let path = try peerConfigPath(in: dir, peer: peer, slurmProcID: slurmProcID)
        try Ownership.checkVPN(dir, file: path)
        let count = peerCount(dir)
        let k = Int(path.dropFirst(dir.count + "/peer-".count).dropLast(".conf".count)) ?? 0
        let c: TunnelConfig
        do { c = try TunnelConfig(contentsOf: path) } catch { throw TunnelError(.config, wrapping: error) }
        let subnets = c.interface.addresses.map(\.network)
        guard let own = c.interface.addresses.first, let first = subnets.first else {
            throw TunnelError(.config, "\(path): [Interface] has no Address; make the VPN with `wgns vpn new`")
        }
        return Member(configPath: path, peer: k, peerCount: count,
                      hosts: hostsEntries(subnets: subnets, peerCount: count),
                      environment: ["WGNS_ADDRESS=\(own.address)", "WGNS_HUB=\(address(in: first, host: 1).address)",
                                    "WGNS_PEER=\(k)", "WGNS_PEERS=\(count)", "WGNS_NAME=peer-\(k)"],
                      needsEndpoint: c.peers.contains { $0.endpoint == nil }, subnets: subnets)
    }

    /// The endpoint a peer on this node uses for the hub's published
    /// `endpoint`: the resolved address, or 10.0.2.2 (with host loopback)
    /// when the hub is on this very node, where its forwarded port is on
    /// every local address including loopback.
    public static func peerEndpoint(toward endpoint: Endpoint, in dir: String) throws(TunnelError) -> (endpoint: Endpoint, hostLoopback: Bool) {
        let a = try Resolver.resolve(endpoint, prefer: .ipv4, context: VPN.endpointPath(dir))
        if isLoopback(a.address.description) || isLocalAddress(a.address) {
            return (Endpoint(host: "10.0.2.2", port: a.port), true)
        }
        return (Endpoint(host: a.address.description, port: a.port), false)
    }

    /// True when `address` is one of this host's interface addresses.
    static func isLocalAddress(_ address: IPAddress) -> Bool {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return false }
        defer { freeifaddrs(list) }
        var p = list
        while let i = p {
            defer { p = i.pointee.ifa_next }
            guard let sa = i.pointee.ifa_addr else { continue }
            var a: IPAddress?
            if Int32(sa.pointee.sa_family) == AF_INET {
                a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var x = sin.pointee.sin_addr
                    return withUnsafeBytes(of: &x) { IPAddress(bytes: $0) }
                }
            } else if Int32(sa.pointee.sa_family) == AF_INET6 {
                a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                    var x = sin.pointee.sin6_addr
                    return withUnsafeBytes(of: &x) { IPAddress(bytes: $0) }
                }
            }
            if a == address { return true }
        }
        return false
    }
}
