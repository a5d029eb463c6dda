import KeyStore
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

extension VPN {
    /// What a member of a mesh VPN needs beyond its config: who the other
    /// members are (public keys from `DIR/members`, addresses by the VPN's
    /// rule) and where they publish their endpoints. No secret.
    public struct Mesh: Sendable, Hashable {
        /// The VPN directory.
        public var directory: String
        /// This member: peer K.
        public var peer: Int
        /// Peer J's public key is `keys[J-1]`.
        public var keys: [PublicKey]
        /// The VPN's subnets (peer J's addresses are host J+1 in each).
        public var subnets: [IPPrefix]
        /// `ports LO-HI` in DIR/members or `up --ports`: this member's data
        /// plane binds a UDP port from this range (a site's firewall opens
        /// it between nodes); nil: any port the kernel picks.
        public var portRange: ClosedRange<UInt16>?
        /// The interface that is this member (`wg0` unless other configs come first).
        public var interfaceName = "wg0"
        /// `-v`: one line per change of a member's path on stderr.
        public var verbose = false

        /// Peer J's host prefixes (/32, /128), which move between the hub's
        /// peer entry and J's direct one.
        public func prefixes(of j: Int) -> [IPPrefix] {
            subnets.map { IPPrefix(address: VPN.address(in: $0, host: UInt64(j + 1)).address, prefixLength: $0.address.maxPrefixLength)! }
        }

        /// The mesh of member `peer` of the VPN in `dir` when the VPN is a
        /// mesh (`DIR/members` says `topology mesh`, or `topology` overrides
        /// it); nil for a star.
        public static func load(_ dir: String, peer: Int, subnets: [IPPrefix], topology: Topology?) throws(TunnelError) -> Mesh? {
            guard let text = try? readSmallFile(VPN.membersPath(dir)) else {
                if topology == .mesh {
                    throw TunnelError(.config, "\(VPN.membersPath(dir)) is missing: --topology mesh needs the members' public keys (make the VPN anew with `wgns vpn new`)")
                }
                return nil
            }
            var written = Topology.star
            var keys: [PublicKey] = []
            var range: ClosedRange<UInt16>?
            for (n, line) in text.split(separator: "\n").enumerated() {
                let f = line.split(separator: " ")
                guard f.count == 2 else { continue }
                if f[0] == "topology" {
                    guard let t = Topology(rawValue: String(f[1])) else {
                        throw TunnelError(.config, "\(VPN.membersPath(dir)):\(n + 1): unknown topology '\(f[1])' (star or mesh)")
                    }
                    written = t
                } else if f[0] == "ports" {
                    let b = f[1].split(separator: "-")
                    guard b.count == 2, let lo = UInt16(b[0]), let hi = UInt16(b[1]), lo >= 1, lo <= hi else {
                        throw TunnelError(.config, "\(VPN.membersPath(dir)):\(n + 1): 'ports \(f[1])' is not LO-HI")
                    }
                    range = lo...hi
                } else if f[0] == "peer-\(keys.count + 1)" {
                    do { keys.append(try PublicKey(base64: String(f[1]))) } catch {
                        throw TunnelError(.config, "\(VPN.membersPath(dir)):\(n + 1): not a public key", wrapping: error)
                    }
                }
            }
            guard (topology ?? written) == .mesh else { return nil }
            guard keys.count >= peer else {
                throw TunnelError(.config, "\(VPN.membersPath(dir)) names \(keys.count) peers, not peer-\(peer); make the VPN anew with `wgns vpn new`")
            }
            return Mesh(directory: dir, peer: peer, keys: keys, subnets: subnets, portRange: range)
        }

        /// The other members as peer entries of the data plane at start:
        /// key only, no endpoint and no AllowedIPs (every member is reached
        /// through the hub until a direct handshake works), so that an
        /// initiation from any of them is answered at once.
        public var initialPeers: [PeerConfig] {
            keys.enumerated().compactMap { i, key in i + 1 == peer ? nil : PeerConfig(publicKey: key) }
        }
    }
}
