import POSIX
#if canImport(Glibc)
import Glibc
#endif

extension VPN {
    /// One member's line of `wgns vpn status DIR`.
    public struct MemberStatus: Sendable, Hashable {
        /// Peer K.
        public var peer: Int
        /// `live`, `stale` (its writer is gone: killed), `absent` or `malformed`.
        public var published: String
        /// The node, `HOST:PORT` and fabric address it published (nil when none).
        public var node: String?
        public var endpoint: String?
        public var address: String?
        /// This member's own view (`DIR/paths/peer-K`): how many of the
        /// others it reaches directly, out of how many; nil without a view.
        public var directCount: Int?
        public var otherCount: Int?
        /// How members running on this node reach it: one entry per such member.
        public var seenFromHere: [Path] = []
    }

    /// A path from a member on this node to another member, from its
    /// data plane's `DIR/paths/peer-L` (rewritten on every change and every
    /// 10 s while counters move).
    public struct Path: Sendable, Hashable {
        /// The member that sees it (peer L, on this node).
        public var from: Int
        /// `direct` or `relayed`.
        public var state: String
        /// Where it sends to (`-`: nowhere yet), the last handshake (Unix
        /// seconds, 0 for never), bytes received and sent on the direct entry.
        public var endpoint: String
        public var lastHandshake: Int64
        public var receiveBytes: UInt64
        public var transmitBytes: UInt64
        /// Why (`wgns up -v` prints the same).
        public var reason: String
    }

    /// The status of every member of the VPN in `dir`, as this node sees it.
    public static func status(_ dir: String) -> [MemberStatus] {
        let count = peerCount(dir)
        guard count > 0 else { return [] }
        let here = HubEndpoint.nodeName()
        var rows: [MemberStatus] = []
        var views: [Int: [Int: Path]] = [:]  // member L -> (member J -> path)
        var local: Set<Int> = []
        for k in 1...count {
            var row = MemberStatus(peer: k, published: "absent")
            let state = MemberEndpoint.read(dir, peer: k)
            switch state {
            case .absent: break
            case .malformed: row.published = "malformed"
            case .stale(let r), .live(let r):
                if case .stale = state { row.published = "stale" } else { row.published = "live" }
                row.node = r.node
                row.endpoint = "\(r.endpoint)"
                row.address = r.address.map { "\($0)" }
                if row.published == "live" && r.node == here { local.insert(k) }
            }
            if row.published == "live", let text = try? readSmallFile(pathsPath(dir, k)) {
                var view: [Int: Path] = [:]
                for line in text.split(separator: "\n") where line.hasPrefix("peer-") {
                    let f = line.split(separator: " ", maxSplits: 6)
                    guard f.count == 7, let j = Int(f[0].dropFirst(5)) else { continue }
                    view[j] = Path(from: k, state: String(f[1]), endpoint: String(f[2]), lastHandshake: Int64(f[3]) ?? 0,
                                   receiveBytes: UInt64(f[4]) ?? 0, transmitBytes: UInt64(f[5]) ?? 0, reason: String(f[6]))
                }
                views[k] = view
                row.directCount = view.values.filter { $0.state == "direct" }.count
                row.otherCount = view.count
            }
            rows.append(row)
        }
        for i in rows.indices {
            for l in local.sorted() where l != rows[i].peer {
                if let p = views[l]?[rows[i].peer] { rows[i].seenFromHere.append(p) }
            }
        }
        return rows
    }
}
