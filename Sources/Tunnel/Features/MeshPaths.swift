import BuiltinWireGuard
import KeyStore
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// The path manager of a mesh member on the builtin backend: it runs in the
/// member's data plane (the engine's timer thread, `Engine.run`'s
/// housekeeping, never per packet) and moves each other member's host
/// prefixes between the hub's peer entry (relayed) and that member's own
/// entry (direct).
///
/// - Every other member starts relayed: its /32 falls under the hub's
///   subnet route, and its own entry has no endpoint and no AllowedIPs.
/// - The folder is looked at (one stat) every 250 ms after a change,
///   doubling while nothing changes, up to 1 s while some member is not
///   direct and 30 s once all are; `DIR/peer-J.endpoint` files are read only
///   when the folder's mtime moved. A newly published member gets its endpoint
///   and, from the member that published later (a tie: the higher number),
///   a 25 s keepalive, which starts a handshake at once; the earlier one
///   learns its endpoint from the authenticated initiation (and initiates
///   too after 2 s without one). Both initiating at once would each answer
///   the other's initiation and drop the answer to its own.
/// - A completed handshake with J moves J's prefixes to J's entry
///   (`replaceAllowedIPs`; the more specific /32 wins over the hub's
///   subnet). Data sent to J and nothing heard back for `silence`, or no
///   handshake for 3 minutes, moves them back (the
///   entry's AllowedIPs emptied: the hub's subnet covers J again); a newer
///   handshake later moves them forward again.
/// - Each change is a line on stderr with `-v`, and the view is written to
///   `DIR/paths/peer-K` (on change, and every 10 s while counters move) for
///   `wgns vpn status`.
final class MeshPaths {
    struct Member {
        let peer: Int
        let key: PublicKey
        let prefixes: [IPPrefix]
        /// The published endpoint last applied (nil: none seen).
        var published: MemberEndpoint?
        var direct = false
        var reason = "not published yet, relayed through the hub"
        /// Bytes last seen each way, and since when (monotonic ns) it has
        /// sent without hearing back (nil: everything sent was answered).
        var receiveBytes: UInt64 = 0
        var transmitBytes: UInt64 = 0
        var unanswered: UInt64?
        /// Wall seconds of the last move back to the relay: only a newer
        /// handshake moves it forward again.
        var relayedAt: Int64 = 0
        /// Since when this member waits for the other's initiation (it
        /// published earlier); after `initiateAfter` it initiates too.
        var waitingSince: UInt64?
    }

    let mesh: VPN.Mesh
    var members: [Member]
    var nextScan: UInt64 = 0
    var scanInterval: UInt64 = MeshPaths.quickScan
    var folderTime = timespec()
    var nextSnapshot: UInt64 = 0
    var nextWrite: UInt64 = 0
    var changed = true
    /// The reason last printed per member (`-v` prints changes only).
    var printed: [Int: String] = [:]

    static let second: UInt64 = 1_000_000_000
    /// The keepalive of a direct entry (as the VPN's toward the hub).
    static let keepalive: UInt16 = VPN.keepalive
    /// Data (or an initiation) sent to a direct member and nothing heard
    /// back for this long: back to the relay. A peer that got data answers
    /// within KEEPALIVE_TIMEOUT (10 s) even with nothing to say; REKEY_TIMEOUT
    /// (5 s) and slack on top. Keepalives are not counted: persistent
    /// keepalives restart on traffic either way, so in a quiet pair one
    /// side may send every one of them and never hear one back.
    static let silence: UInt64 = 20 * second
    /// The pause between two looks at the folder (one stat) right after
    /// something changed; it doubles while nothing does.
    static let quickScan: UInt64 = 250_000_000
    /// How long the member that published earlier waits for the later
    /// one's initiation before it initiates too.
    static let initiateAfter: UInt64 = 2 * second
    /// The longest pause between two reads of the folder.
    static let maxScanInterval: UInt64 = 30 * second

    init(_ mesh: VPN.Mesh) {
        self.mesh = mesh
        members = mesh.keys.enumerated().compactMap { i, key in
            i + 1 == mesh.peer ? nil : Member(peer: i + 1, key: key, prefixes: mesh.prefixes(of: i + 1))
        }
    }

    /// One housekeeping turn (`Engine.run` calls it about every 100 ms).
    func tick(_ engine: Engine) {
        let now = monotonic()
        if now >= nextScan {
            scan(engine, now: now)
            nextScan = now + scanInterval
        }
        // While some member with an endpoint waits for its handshake, look
        // every turn; otherwise once a second.
        // The other side never initiated (it cannot reach us, or started
        // before our file was there): initiate too.
        var nudges: [PeerConfig] = []
        for i in members.indices {
            guard let since = members[i].waitingSince, now - since > Self.initiateAfter else { continue }
            members[i].waitingSince = nil
            if !members[i].direct { nudges.append(PeerConfig(publicKey: members[i].key, persistentKeepaliveInterval: Self.keepalive)) }
        }
        if !nudges.isEmpty {
            var c = DeviceConfig()
            c.peers = nudges
            try? engine.configure(c)
        }
        let waiting = members.contains { !$0.direct && $0.published != nil }
        guard waiting || now >= nextSnapshot else { return }
        nextSnapshot = now + Self.second
        let device = engine.snapshot()
        var byKey: [PublicKey: Peer] = [:]
        for p in device.peers { byKey[p.publicKey] = p }
        let wall = Int64(time(nil))
        var moves: [PeerConfig] = []
        var moved = false
        for i in members.indices {
            guard let p = byKey[members[i].key] else { continue }
            if p.receiveBytes != members[i].receiveBytes {
                members[i].receiveBytes = p.receiveBytes
                members[i].unanswered = nil
            }
            if p.transmitBytes != members[i].transmitBytes {
                let sent = p.transmitBytes &- members[i].transmitBytes
                members[i].transmitBytes = p.transmitBytes
                // A keepalive (exactly 32 bytes) asks for no answer; data
                // and handshake initiations do.
                if sent != 32 && members[i].unanswered == nil { members[i].unanswered = now }
            }
            let handshake = p.lastHandshake.seconds
            if !members[i].direct {
                guard handshake > 0, handshake >= members[i].relayedAt, wall - handshake < 180, let e = p.endpoint else {
                    if let e = p.endpoint, members[i].published != nil || members[i].reason.hasPrefix("not") {
                        let r = "no direct handshake yet (trying \(e)), relayed through the hub"
                        if members[i].reason != r && !members[i].reason.hasPrefix("silent") { members[i].reason = r; changed = true }
                    }
                    continue
                }
                members[i].direct = true
                members[i].unanswered = nil
                members[i].reason = "direct: handshake with \(e)"
                moves.append(PeerConfig(publicKey: members[i].key, persistentKeepaliveInterval: Self.keepalive,
                                        replaceAllowedIPs: true, allowedIPs: members[i].prefixes))
                moved = true
            } else if let why = silent(members[i], handshake: handshake, now: now, wall: wall) {
                members[i].direct = false
                members[i].unanswered = nil
                members[i].relayedAt = wall + 1
                members[i].reason = "silent: \(why) on \(p.endpoint.map { "\($0)" } ?? "-"), relayed through the hub"
                moves.append(PeerConfig(publicKey: members[i].key, replaceAllowedIPs: true, allowedIPs: []))
                moved = true
            }
        }
        if !moves.isEmpty {
            var c = DeviceConfig()
            c.peers = moves
            try? engine.configure(c)
        }
        if moved {
            changed = true
            // Every pair direct: the folder has nothing more to say soon.
            if members.allSatisfy(\.direct) { scanInterval = min(scanInterval * 2, Self.maxScanInterval) }
        }
        if changed || now >= nextWrite { write(device: device, now: now) }
    }

    /// Why a direct path is dead, or nil while it is not: data or a
    /// handshake initiation sent and nothing received for `silence`, or no
    /// handshake for REJECT_AFTER_TIME (a live path rekeys every 2 min,
    /// keepalives included).
    func silent(_ m: Member, handshake: Int64, now: UInt64, wall: Int64) -> String? {
        if let since = m.unanswered, now - since > Self.silence {
            return "nothing back for \((now - since) / Self.second) s after data or a handshake"
        }
        if handshake > 0 && wall - handshake > 180 { return "no handshake for \(wall - handshake) s" }
        return nil
    }

    /// Reads the members' endpoint files when the folder changed, and
    /// gives a newly published (or moved) member its endpoint and keepalive.
    func scan(_ engine: Engine, now: UInt64) {
        var st = stat()
        if stat(mesh.directory, &st) == 0 {
            if st.st_mtim.tv_sec == folderTime.tv_sec && st.st_mtim.tv_nsec == folderTime.tv_nsec {
                // Unchanged: slower, up to a second while some member is
                // not direct, up to 30 s once all are.
                scanInterval = min(scanInterval * 2, members.allSatisfy(\.direct) ? Self.maxScanInterval : Self.second)
                return
            }
            folderTime = st.st_mtim
        }
        var updates: [PeerConfig] = []
        // Who initiates: the member that published later (a tie: the higher
        // number). Both at once would each answer the other's initiation
        // and lose its own, and only the retries' jitter would untie them.
        let own = publishedTime(mesh.peer) ?? .max
        for i in members.indices {
            guard case .live(let record) = MemberEndpoint.read(mesh.directory, peer: members[i].peer),
                  record != members[i].published, let address = record.socketAddress() else { continue }
            members[i].published = record
            let theirs = publishedTime(members[i].peer) ?? 0
            let initiate = own > theirs || (own == theirs && mesh.peer > members[i].peer)
            updates.append(PeerConfig(publicKey: members[i].key, endpoint: address,
                                      persistentKeepaliveInterval: initiate ? Self.keepalive : nil))
            members[i].waitingSince = initiate ? nil : now
            if !members[i].direct { members[i].reason = "published at \(address), \(initiate ? "trying it" : "waiting for its handshake"); relayed through the hub" }
            changed = true
        }
        if !updates.isEmpty {
            var c = DeviceConfig()
            c.peers = updates
            try? engine.configure(c)
            scanInterval = Self.quickScan
        }
    }

    /// When member `k`'s endpoint file was written (ns since the epoch, as
    /// the folder's file system says), nil without one.
    func publishedTime(_ k: Int) -> UInt64? {
        var st = stat()
        guard stat(VPN.memberEndpointPath(mesh.directory, k), &st) == 0 else { return nil }
        return UInt64(st.st_mtim.tv_sec) * 1_000_000_000 + UInt64(st.st_mtim.tv_nsec)
    }

    /// `DIR/paths/peer-K`, and the changes on stderr with `-v`.
    func write(device: Device, now: UInt64) {
        nextWrite = now + 10 * Self.second
        var byKey: [PublicKey: Peer] = [:]
        for p in device.peers { byKey[p.publicKey] = p }
        var text = "# peer-\(mesh.peer)'s paths: member state endpoint last-handshake rx tx reason\n"
        var lines = ""
        for m in members {
            let p = byKey[m.key]
            let state = m.direct ? "direct" : "relayed"
            text += "peer-\(m.peer) \(state) \(p?.endpoint.map { "\($0)" } ?? "-") \(p?.lastHandshake.seconds ?? 0) \(p?.receiveBytes ?? 0) \(p?.transmitBytes ?? 0) \(m.reason)\n"
            if printed[m.peer] != m.reason {
                printed[m.peer] = m.reason
                lines += "wgns: mesh: peer-\(m.peer): \(m.reason)\n"
            }
        }
        if mesh.verbose && !lines.isEmpty { writeStderr(lines) }
        changed = false
        // In a folder of their own: their writes must not move DIR's mtime,
        // which tells the members when to read the endpoint files again.
        mkdir("\(mesh.directory)/paths", 0o700)
        try? VPN.writePrivateFile(Array(text.utf8), to: VPN.pathsPath(mesh.directory, mesh.peer))
    }

    func monotonic() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

extension VPN {
    /// `DIR/paths/peer-K`: member K's view of its paths to the others
    /// (written by its data plane, read by `wgns vpn status`).
    public static func pathsPath(_ dir: String, _ k: Int) -> String { "\(dir)/paths/peer-\(k)" }
}
