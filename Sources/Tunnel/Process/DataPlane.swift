import BuiltinWireGuard
import CWGShim
import KeyStore
import POSIX
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// The builtin backend's data plane for one interface: a child of the
/// supervisor, in the host's namespaces, between the TUN descriptor the
/// holder made inside and a UDP socket of the host (ARCHITECTURE.md,
/// "The builtin backend"). Undumpable from birth, dies with the
/// supervisor (PR_SET_PDEATHSIG), and answers the supervisor's snapshot
/// requests (`wgns show NAME`) on a socket pair.
struct DataPlane {
    /// The interface it serves (`wg0`).
    let name: String
    let process: ChildProcess
    /// The supervisor's end of the socket pair; -1 once stopped.
    var control: Int32
    /// The host UDP port it listens on.
    let port: UInt16

    /// Binds the UDP socket on the host (the config's ListenPort, or one the
    /// kernel picks; dual-stack, with UDP_GRO where the kernel has it) and forks the data plane for `interface` with `tun`
    /// (opened with `offloads`, a `TUNOffloads` raw value). Closes `tun` in
    /// this process either way. Every descriptor of ours but its own three
    /// is closed in the child.
    /// With `mesh` (a mesh VPN member's first interface), the other members
    /// are peers from the start and `MeshPaths` runs in the data plane.
    static func start(_ interface: UpPlan.Interface, tun: Int32, offloads: UInt32, mesh: VPN.Mesh? = nil) throws(TunnelError) -> DataPlane {
        defer { close(tun) }
        let name = interface.name
        let port = interface.config.interface.listenPort ?? 0
        let socket: UDPSocket
        if let r = mesh?.portRange, port == 0 {
            socket = try bindInRange(r, name: name)
        } else {
            do {
                do { socket = try UDPSocket.bind(port: port, family: .dualStack) } catch where error.errno == .addressFamilyNotSupported {
                    socket = try UDPSocket.bind(port: port, family: .ipv4)  // a host without IPv6
                }
            } catch {
                throw TunnelError(.setup, "\(name): \(error.message)", errno: error.errno)
            }
        }
        let udp = socket.descriptor.raw
        var pair: [Int32] = [-1, -1]
        try sys("socketpair for the data plane") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &pair) }
        let pid = CWGShim_fork_with_pdeathsig(SIGKILL)
        if pid < 0 {
            close(pair[0]); close(pair[1])
            throw TunnelError(.setup, "cannot fork the data plane for \(name)", errno: currentErrno)
        }
        if pid == 0 {
            // Before anything reads a key: no ptrace, no /proc/PID/mem.
            _ = CWGShim_set_undumpable()
            // The supervisor ends it (SIGKILL, or its own death); a
            // terminal's or a batch system's signals are for the job.
            for s in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU, SIGUSR1] { signal(s, SIG_IGN) }
            closeAllBut([0, 1, 2, tun, udp, pair[1]])
            runChild(interface, tun: tun, offloads: offloads, socket: socket, control: pair[1], mesh: mesh)
        }
        close(pair[1])
        return DataPlane(name: name, process: ChildProcess(pid: pid), control: pair[0], port: socket.port)
    }

    /// A socket on a free port of `range`, tried from a random place in it
    /// (members started together do not all try the same port first).
    static func bindInRange(_ range: ClosedRange<UInt16>, name: String) throws(TunnelError) -> UDPSocket {
        let n = Int(range.upperBound) - Int(range.lowerBound) + 1
        let start = Int.random(in: 0..<n)
        for i in 0..<n {
            let p = UInt16(Int(range.lowerBound) + (start + i) % n)
            if let s = try? UDPSocket.bind(port: p, family: .dualStack) { return s }
            if let s = try? UDPSocket.bind(port: p, family: .ipv4) { return s }
        }
        throw TunnelError(.setup, "\(name): every UDP port in \(range.lowerBound)-\(range.upperBound) (--ports) is taken on this host", errno: .addressInUse)
    }

    /// The child: the device config from the plan (already in this memory),
    /// the protocol core, then the engine until the supervisor goes.
    static func runChild(_ interface: UpPlan.Interface, tun: Int32, offloads: UInt32, socket: UDPSocket, control: Int32,
                         mesh: VPN.Mesh?) -> Never {
        do {
            var config = try deviceConfig(interface, port: socket.port)
            if let mesh { config.peers += mesh.initialPeers }
            let paths = mesh.map(MeshPaths.init)
            try Engine.run(config, mtu: Int(interface.mtu), name: interface.name, tun: tun,
                           offloads: TUNOffloads(rawValue: offloads), socket: socket, control: control,
                           housekeeping: paths.map { p in { p.tick($0) } })
        } catch {
            writeStderr("wgns: data plane for \(interface.name): \(error)\n")
            _exit(1)
        }
    }

    /// The interface's config as the core takes it (`wg setconf`
    /// semantics): the private key, the bound port, the peers. An endpoint
    /// at the carriers' host-loopback alias 10.0.2.2 is the host's
    /// 127.0.0.1, which this socket reaches directly.
    static func deviceConfig(_ interface: UpPlan.Interface, port: UInt16) throws(TunnelError) -> DeviceConfig {
        let c = interface.config
        var dc = DeviceConfig(replacePeers: true)
        dc.listenPort = port
        do {
            dc.privateKey = try c.interface.privateKey?.load()
            dc.peers = try c.peers.map { p throws(KeyStoreError) in
                PeerConfig(publicKey: p.publicKey, presharedKey: try p.presharedKey?.load(),
                           endpoint: p.endpoint.flatMap { e in e.address.map { SocketAddress(address: hostSide($0), port: e.port) } },
                           persistentKeepaliveInterval: p.persistentKeepalive,
                           replaceAllowedIPs: true, allowedIPs: p.allowedIPs)
            }
        } catch { throw TunnelError(.config, "\(interface.name)", wrapping: error) }
        return dc
    }

    /// 10.0.2.2 (the carriers' name for the host's loopback) as the host
    /// sees it: 127.0.0.1; any other address as it is.
    static func hostSide(_ a: IPAddress) -> IPAddress {
        a == IPAddress("10.0.2.2") ? IPAddress("127.0.0.1")! : a
    }

    /// Closes every open descriptor of this process but `keep`.
    static func closeAllBut(_ keep: Set<Int32>) {
        guard let d = opendir("/proc/self/fd") else { return }
        var open: [Int32] = []
        while let e = readdir(d) {
            let n = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let fd = Int32(n), !keep.contains(fd) { open.append(fd) }
        }
        let own = dirfd(d)
        closedir(d)
        for fd in open where fd != own { close(fd) }
    }

    /// The device as the data plane has it now, as `wg show` would print it
    /// (nil if it does not answer within 2 s). The reply holds keys and is
    /// wiped.
    func device() -> Device? {
        guard control >= 0 else { return nil }
        var request = Engine.snapshotRequest
        guard write(control, &request, 1) == 1 else { return nil }
        var reply: [UInt8] = []
        defer { KeyStore.wipe(&reply) }
        var chunk = [UInt8](repeating: 0, count: 65536)
        defer { KeyStore.wipe(&chunk) }
        while !(reply.count >= 2 && reply[reply.count - 1] == 10 && reply[reply.count - 2] == 10) {
            var p = pollfd(fd: control, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&p, 1, 2000) > 0 else { return nil }
            let n = read(control, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            reply += chunk[..<n]
        }
        return try? Device(uapiText: reply, name: name)
    }

    /// Points peer `key` at `endpoint` afresh (`Engine.repointRequest`).
    func repoint(_ key: PublicKey, to endpoint: SocketAddress) {
        guard control >= 0 else { return }
        let m = Engine.repointMessage(key, to: hostSide(endpoint))
        _ = m.withUnsafeBytes { write(control, $0.baseAddress, $0.count) }
    }

    /// An endpoint as the host's socket reaches it (10.0.2.2 is 127.0.0.1).
    func hostSide(_ e: SocketAddress) -> SocketAddress { SocketAddress(address: Self.hostSide(e.address), port: e.port) }

    /// Kills the data plane and waits for it.
    mutating func stop() -> Termination {
        if control >= 0 { close(control); control = -1 }
        process.kill(SIGKILL)
        return process.wait()
    }
}
