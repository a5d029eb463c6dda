import CWGShim
import SystemPackage
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// What the supervisor of one hub knows beyond its plan: the host port it
/// picked and still reserves, where it publishes its endpoint, and the lock
/// that says it is alive. Shared by the hub's attempts (a new port each).
public final class HubState: @unchecked Sendable {
    /// The "up" line without the port.
    let readyMessage: String
    /// The hub's number of peers.
    let peerCount: Int
    /// True when the host port is picked here (no ListenPort in the config).
    let picksPort: Bool
    /// True when the builtin data plane binds the port on the host itself
    /// (no pasta to forward it).
    let onHost: Bool
    /// The host port of this attempt (picked, or the ListenPort).
    var port: UInt16 = 0
    /// `--ports LO-HI`: the range to pick from (nil: any the kernel gives).
    var portRange: ClosedRange<UInt16>?
    /// Sockets that hold the host port (IPv4, IPv6): before pasta starts,
    /// marked SO_REUSEADDR so that pasta's bind joins them; once pasta is
    /// confirmed, unmarked and kept for the hub's lifetime, so that no later
    /// bind of the port succeeds, whatever its options (`confirm`).
    var reserved4: Int32 = -1
    var reserved6: Int32 = -1
    /// The IPv4 sockets on the picked port just before pasta started.
    var before: Set<UInt64> = []
    /// Where `DIR/hub.endpoint` goes; nil publishes nothing.
    var directory: String?
    /// The host name published with the port.
    var advertise = ""
    /// The descriptor holding the endpoint file's lock while the hub is up.
    var lockFD: Int32 = -1
    /// Written `HOST:PORT\n` once the endpoint is published (`wgns hub -- COMMAND`).
    var readyFD: Int32 = -1

    init(readyMessage: String, peerCount: Int, picksPort: Bool, onHost: Bool = false) {
        self.readyMessage = readyMessage
        self.peerCount = peerCount
        self.picksPort = picksPort
        self.onHost = onHost
    }

    /// The published endpoint.
    var endpoint: Endpoint { Endpoint(host: advertise, port: port) }

    /// Closes the reservation sockets.
    func release() {
        if reserved4 >= 0 { close(reserved4); reserved4 = -1 }
        if reserved6 >= 0 { close(reserved6); reserved6 = -1 }
    }

    /// Removes the endpoint file this hub wrote, if any.
    func unpublish() {
        guard lockFD >= 0, let dir = directory else { return }
        HubEndpoint.unpublish(in: dir, fd: lockFD)
        lockFD = -1
    }

    deinit {
        release()
        unpublish()
    }
}

extension Hub {
    /// How many host ports a hub tries before it gives up.
    static let portAttempts = 8

    /// Before each attempt: a host UDP port that no socket holds now (the
    /// kernel's pick for port 0, free on IPv6 too), which the hub's
    /// WireGuard listens on inside as well. pasta forwards the same number:
    /// this pasta loses replies on a forward that maps one port to another
    /// (measured: 4 of 10 first handshakes unanswered with `-u P:51820`,
    /// none with `-u P`).
    static func pickPort(_ plan: inout UpPlan) throws(TunnelError) {
        guard let h = plan.hub, h.picksPort else { return }
        var picked: (UInt16, Int32, Int32)?
        if let r = h.portRange {
            // From a random place in the range, so that hubs started together
            // do not all try the same port first.
            let n = Int(r.upperBound) - Int(r.lowerBound) + 1
            let start = Int.random(in: 0..<n)
            for i in 0..<n {
                let p = UInt16(Int(r.lowerBound) + (start + i) % n)
                if let b = try? bindUDP(port: p) { picked = b; break }
            }
            guard picked != nil else {
                throw TunnelError(.config, "--ports \(r.lowerBound)-\(r.upperBound): every UDP port in the range is taken on this host", errno: .addressInUse)
            }
        } else {
            picked = try bindUDP(port: 0)
        }
        let (port, s4, s6) = picked!
        close(s4)
        if s6 >= 0 { close(s6) }
        h.port = port
        plan.interfaces[0].config.interface.listenPort = port
        plan.forwardUDP = h.onHost ? [] : [PortForward(hostPort: port, namespacePort: port)]
        plan.readyMessage = "\(h.readyMessage), UDP port \(port) (picked) \(h.onHost ? "on the host" : "forwarded from the host"), \(h.peerCount) peers"
    }

    /// When the namespaces exist, before pasta starts (in the supervisor
    /// only, so that no other process inherits them): binds the hub's port
    /// (picked, or its ListenPort), IPv4 and IPv6, and only then marks the
    /// sockets SO_REUSEADDR, so that pasta's reuse bind joins them. A picked
    /// port taken since it was picked is an EADDRINUSE carrier error:
    /// `serve` then tries another. Nil when there is nothing to do or it worked.
    static func reserve(_ plan: inout UpPlan) -> TunnelError? {
        guard let h = plan.hub, h.port != 0 else { return nil }
        h.release()
        // A ListenPort may still be held for a moment by the carrier of a
        // hub just killed on it (pasta dies by PDEATHSIG, after its parent):
        // retried for up to 2 s.
        let end = monotonicNanos() + (h.picksPort ? 0 : 2_000_000_000)
        while true {
            do {
                (_, h.reserved4, h.reserved6) = try bindUDP(port: h.port)
                break
            } catch where error.errno == .addressInUse && monotonicNanos() < end {
                usleep(20_000)
            } catch {
                return TunnelError(.carrier, h.picksPort ? "the picked UDP port \(h.port) was taken before pasta could bind it"
                                                         : "UDP port \(h.port) (ListenPort) is taken on this host", errno: .addressInUse)
            }
        }
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        setsockopt(h.reserved4, SOL_SOCKET, SO_REUSEADDR, &one, size)
        if h.reserved6 >= 0 { setsockopt(h.reserved6, SOL_SOCKET, SO_REUSEADDR, &one, size) }
        h.before = udpSocketInodes(port: h.port, file: "/proc/net/udp")
        return nil
    }

    /// Once pasta is ready: checks that pasta itself holds the picked port
    /// on the host (this pasta, like upstream passt, binds with
    /// SO_REUSEADDR and, when a bind fails, only logs it and runs on), and
    /// nobody else: exactly one IPv4 socket more than the reservation,
    /// which alone held the port when pasta started (pasta binds one per
    /// address family). Anything else is an EADDRINUSE carrier error, which
    /// `serve` answers with another port.
    ///
    /// Then the reservation stays, without SO_REUSEADDR: the kernel refuses
    /// a UDP bind that overlaps a bound socket unless both have
    /// SO_REUSEADDR, or both SO_REUSEPORT and the same uid, so no other uid
    /// can bind the port on any address (0.0.0.0, 127.0.0.1, ::) for as long
    /// as the hub lives, and steal the peers' datagrams. pasta keeps
    /// receiving them: the kernel delivers to the socket bound last.
    static func confirm(_ plan: UpPlan) -> TunnelError? {
        guard let h = plan.hub, h.reserved4 >= 0 else { return nil }
        var kept = false
        defer { if !kept { h.release() } }
        var st = stat()
        guard fstat(h.reserved4, &st) == 0 else { return nil }
        let mine = UInt64(st.st_ino)
        let others = udpSocketInodes(port: h.port, file: "/proc/net/udp").subtracting([mine])
        if others.isEmpty {
            return TunnelError(.carrier, "pasta did not bind the \(h.picksPort ? "picked " : "")UDP port \(h.port) on the host", errno: .addressInUse)
        }
        if h.before != [mine] || others.count > 1 {
            return TunnelError(.carrier, "another socket took the \(h.picksPort ? "picked " : "")UDP port \(h.port) on the host while pasta started", errno: .addressInUse)
        }
        var zero: Int32 = 0
        let size = socklen_t(MemoryLayout<Int32>.size)
        setsockopt(h.reserved4, SOL_SOCKET, SO_REUSEADDR, &zero, size)
        if h.reserved6 >= 0 { setsockopt(h.reserved6, SOL_SOCKET, SO_REUSEADDR, &zero, size) }
        kept = true
        return nil
    }

    /// Once the hub is up: publishes `HOST:PORT` in `DIR/hub.endpoint` and
    /// tells `wgns hub -- COMMAND` that it may start the command.
    static func published(_ plan: UpPlan) -> TunnelError? {
        guard let h = plan.hub else { return nil }
        if let dir = h.directory {
            do { h.lockFD = try HubEndpoint.ofThisProcess(h.endpoint).publish(in: dir) } catch { return error }
        }
        if h.readyFD >= 0 {
            let line = Array("\(h.endpoint)\n".utf8)
            _ = line.withUnsafeBytes { write(h.readyFD, $0.baseAddress, $0.count) }
        }
        return nil
    }

    /// Binds UDP sockets to `port` (0: the kernel picks one that no socket
    /// holds) on IPv4 and, where there is IPv6, the same port on IPv6 only;
    /// returns the port and both sockets (-1 for none). With port 0 a port
    /// whose IPv6 side is taken is skipped.
    static func bindUDP(port wanted: UInt16) throws(TunnelError) -> (UInt16, Int32, Int32) {
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        for _ in 0..<32 {
            let s4 = try sys("socket(AF_INET, SOCK_DGRAM)") { socket(AF_INET, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0) }
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = wanted.bigEndian
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &sin) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s4, $0, len) == 0 && getsockname(s4, $0, &len) == 0 }
            }
            guard bound else {
                let e = errno
                close(s4)
                throw TunnelError(.setup, "cannot bind a UDP socket on the host to port \(wanted)", errno: Errno(rawValue: e))
            }
            let port = UInt16(bigEndian: sin.sin_port)
            var s6 = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
            if s6 >= 0 {
                setsockopt(s6, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, size)
                var sin6 = sockaddr_in6()
                sin6.sin6_family = sa_family_t(AF_INET6)
                sin6.sin6_port = port.bigEndian
                let ok = withUnsafePointer(to: &sin6) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s6, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0 }
                }
                if !ok {
                    let e = errno
                    close(s6)
                    s6 = -1
                    if e == EADDRINUSE {
                        close(s4)
                        if wanted != 0 { throw TunnelError(.setup, "UDP port \(wanted) is taken on IPv6", errno: Errno(rawValue: e)) }
                        continue
                    }
                }
            }
            return (port, s4, s6)
        }
        throw TunnelError(.setup, "found no UDP port free on both IPv4 and IPv6 in 32 tries")
    }

    /// The inodes of the sockets bound to local `port` in a /proc/net/udp
    /// style table of this network namespace.
    static func udpSocketInodes(port: UInt16, file: String) -> Set<UInt64> {
        guard let text = try? readSmallFile(file) else { return [] }
        let suffix = ":" + String(port, radix: 16, uppercase: true).leftPadded(to: 4)
        var found = Set<UInt64>()
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count > 9, f[1].hasSuffix(suffix), let inode = UInt64(f[9]) else { continue }
            found.insert(inode)
        }
        return found
    }
}

extension String {
    /// The string with leading zeros up to `width` characters.
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
