import CWGShim
import KeyStore
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// What `wgns up` was asked to do; nil fields fall back to the configs'
/// `[Namespace]` sections, then to defaults.
public struct UpOptions: Sendable {
    /// Config files, one WireGuard interface each (wg0, wg1, ...).
    public var configFiles: [String] = []
    /// `--carrier`.
    public var carrier: CarrierKind?
    /// `--backend`.
    public var backend: BackendKind?
    /// `--map-uid`, `--map-gid`.
    public var mapUID: UInt32?
    public var mapGID: UInt32?
    /// `--host-loopback`.
    public var hostLoopback: Bool?
    /// `-v`.
    public var verbose = false
    /// The job; empty runs the user's shell.
    public var command: [String] = []
    /// `--name`: a long-lived tunnel others can `exec` into, `down` and `list`.
    public var name: String?
    /// `wgns hub`: forwarding on inside, no job, up until signalled.
    public var hub = false
    /// A member of a per-job VPN (`wgns up DIR`): on the builtin backend it
    /// needs no carrier, whatever its AllowedIPs.
    public var vpnMember = false
    /// `--isolate` / `--no-isolate`: the job sees only `lo` and the
    /// WireGuard interfaces (default: only for a full tunnel).
    public var isolate: Bool?
    /// `--net-admin`: the job runs as root of the tunnel's own user namespace
    /// and can change and leave its tunnel.
    public var netAdmin: Bool?
    /// `--no-mask` makes it false: the job may read the configs, key files
    /// and VPN folder the tunnel was built from (hidden by default); nil:
    /// the configs' `Mask =` decides.
    public var mask: Bool?
    /// Lines added to the job's /etc/hosts (a VPN's members), environment
    /// entries for the job, and an endpoint for the peers that have none
    /// (the hub's published one): `wgns up DIR`.
    public var hosts: String?
    public var environment: [String] = []
    public var peerEndpoint: Endpoint?
    /// A member of a mesh VPN (`wgns up DIR` of a `--topology mesh` VPN):
    /// on the builtin backend its data plane goes direct to the others.
    public var mesh: VPN.Mesh?
    /// `wgns up DIR`: follow the hub that publishes in DIR across restarts.
    public var follower: HubFollower?
    /// How to start the holder: a program and arguments that end up calling
    /// `Holder.run()` (e.g. the wgns binary with a hidden subcommand).
    public var holderCommand: [String] = []

    /// Empty options.
    public init() {}
}

extension UpPlan {
    /// Validates everything and builds the plan; creates nothing.
    public static func prepare(_ options: UpOptions) throws(TunnelError) -> UpPlan {
        // The keys are read below: no process of this user may ptrace us or
        // read our memory (the carriers never need our /proc entries).
        _ = CWGShim_set_undumpable()
        // A supervisor's stderr may be a pipe whose reader goes away (`wgns
        // up -v ... 2>&1 | head`): its writes then fail with EPIPE, and the
        // tunnel and the job carry on.
        signal(SIGPIPE, SIG_IGN)
        var log = StepLog(enabled: options.verbose, start: monotonicNanos())
        var plan = UpPlan()
        plan.startTime = log.start
        plan.verbose = options.verbose
        if options.configFiles.isEmpty { throw TunnelError(.config, "give at least one config file") }
        var configs: [TunnelConfig] = []
        var maskable: [String] = []
        for file in options.configFiles {
            var c: TunnelConfig
            do { c = try TunnelConfig(contentsOf: file); try c.validateForUp(file: file) } catch { throw TunnelError(.config, wrapping: error) }
            try Ownership.checkHooks(c, file: file)
            if let w = c.exposureWarning(file: file) { writeStderr("wgns: \(w)\n") }
            guard let key = c.interface.privateKey else {
                throw TunnelError(.config, "\(file): [Interface] has no PrivateKey or PrivateKeyFile")
            }
            maskable += Self.masked(file: file, c)
            // Key files are read here, once, and travel inline in the plan.
            do {
                c.interface.privateKey = .inline(try key.load())
                for k in c.peers.indices {
                    if let psk = c.peers[k].presharedKey { c.peers[k].presharedKey = .inline(try psk.load()) }
                }
            } catch { throw TunnelError(.config, "\(file)", wrapping: error) }
            if let e = options.peerEndpoint { for k in c.peers.indices where c.peers[k].endpoint == nil { c.peers[k].endpoint = e } }
            configs.append(c)
        }
        func setting<T>(_ flag: T?, _ get: (NamespaceSettings) -> T?) -> T? {
            if let flag { return flag }
            for c in configs { if let v = get(c.namespace) { return v } }
            return nil
        }
        let forwardTCP = configs.flatMap(\.namespace.forwardTCP)
        let forwardUDP = configs.flatMap(\.namespace.forwardUDP)
        plan.forwardTCP = forwardTCP
        plan.forwardUDP = forwardUDP
        plan.hostLoopback = setting(options.hostLoopback, \.hostLoopback) ?? false
        plan.netAdmin = setting(options.netAdmin, \.netAdmin) ?? false
        if setting(options.mask, \.mask) ?? true {
            for p in maskable where !plan.masked.contains(p) { plan.masked.append(p) }
        }
        // The tunnel's user namespace maps one id, its root: a job with
        // network administration runs there, so as uid 0.
        let defaultUID = plan.netAdmin ? 0 : getuid(), defaultGID = plan.netAdmin ? 0 : getgid()
        plan.mapUID = setting(options.mapUID, \.mapUID) ?? defaultUID
        plan.mapGID = setting(options.mapGID, \.mapGID) ?? defaultGID
        if plan.netAdmin && (plan.mapUID != 0 || plan.mapGID != 0) {
            throw TunnelError(options.netAdmin != nil || options.mapUID != nil || options.mapGID != nil ? .usage : .config, "NetAdmin (--net-admin) runs the job as root of the tunnel's user namespace: MapUID and MapGID must be 0 or unset (got \(plan.mapUID):\(plan.mapGID))")
        }

        // Backend: auto is the kernel's WireGuard where the kernel has it
        // (loaded, or a module that creating the link loads), else the
        // built-in one; wireguard-go only when asked for.
        let backendFlag = options.backend != nil
        plan.backend = setting(options.backend, \.backend) ?? .auto
        plan.wireguardGo = findExecutable("wireguard-go")
        if let r = Doctor.tunRefusal() { throw TunnelError(.setup, "\(r)") }
        let kernelLoaded = Doctor.kernelWireGuard().available
        switch plan.backend {
        case .wireguardGo where plan.wireguardGo == nil:
            throw TunnelError(.noWireGuard, "wireguard-go is not installed (apt-get install wireguard-go)")
        case .auto where !kernelLoaded:
            plan.backend = .builtin
        default: break
        }

        // Carrier: the built-in backend's UDP socket is on the host, so it
        // needs none, except for a split tunnel's other traffic (and pasta's
        // forwarded ports).
        let isolate = setting(options.isolate, \.isolate) ?? configs.contains { Containment.isFullTunnel($0.peers.flatMap(\.allowedIPs)) }
        let needsCarrier = !isolate && !options.hub && !options.vpnMember
        if plan.backend == .builtin && options.hub {
            // A builtin hub's port is bound on the host by its data plane:
            // the Carrier = pasta and ForwardUDP that `vpn new` writes for the
            // other backends have nothing to do (Hub.check).
            plan.carrier = .noCarrier
        } else if let c = setting(options.carrier, \.carrier) {
            if c == .noCarrier && plan.backend != .builtin {
                let flag = options.carrier != nil || backendFlag
                let source = options.carrier != nil ? "--carrier none"
                    : "\(options.configFiles[configs.firstIndex { $0.namespace.carrier != nil } ?? 0]): Carrier = none"
                throw TunnelError(flag ? .usage : .config, "\(source) needs the builtin backend (--backend builtin); the \(plan.backend.rawValue) backend's UDP leaves through a carrier")
            }
            if let program = c.program, findExecutable(program) == nil {
                throw TunnelError(.noCarrier, "carrier \(program) is not installed (apt-get install \(c == .pasta ? "passt" : "slirp4netns"))")
            }
            plan.carrier = c
        } else if !forwardTCP.isEmpty || !forwardUDP.isEmpty, findExecutable("pasta") != nil {
            plan.carrier = .pasta
        } else if plan.backend == .builtin && !needsCarrier {
            plan.carrier = .noCarrier
        } else if findExecutable("slirp4netns") != nil {
            plan.carrier = .slirp4netns
        } else if findExecutable("pasta") != nil {
            plan.carrier = .pasta
        } else {
            throw TunnelError(.noCarrier, "no carrier: neither slirp4netns nor pasta is installed (apt-get install slirp4netns)"
                              + (plan.backend == .builtin ? "; a full tunnel (--isolate) on the builtin backend needs none" : ""))
        }
        if plan.carrier != .pasta && !(plan.backend == .builtin && options.hub) && (!forwardTCP.isEmpty || !forwardUDP.isEmpty) {
            throw TunnelError(options.carrier != nil ? .usage : .config, "ForwardTCP/ForwardUDP need the pasta carrier (--carrier pasta)")
        }
        // With no carrier nothing maps 10.0.2.2 inside.
        if plan.carrier == .noCarrier { plan.hostLoopback = false }
        log.step("configs valid, carrier \(plan.carrier.rawValue), backend \(plan.backend.rawValue)")

        // Endpoints and MTUs, on the host.
        let routes = try? RouteNetlink()
        defer { routes?.close() }
        for (n, var c) in configs.enumerated() {
            var resolved: [SocketAddress] = []
            for k in c.peers.indices {
                guard let e = c.peers[k].endpoint else { continue }
                let a = try Resolver.resolve(e, prefer: .ipv4, context: options.configFiles[n])
                resolved.append(a)
                c.peers[k].endpoint = Endpoint(host: a.address.description, port: a.port)
            }
            // 10.0.2.2 is the carrier's way to the host's loopback.
            // The built-in backend's socket is on the host: there that alias
            // is the host's loopback itself, whatever the carrier.
            let loopbackAlias = plan.hostLoopback || plan.backend == .builtin
            let lookup = resolved.map { $0.address == IPAddress("10.0.2.2") && loopbackAlias ? SocketAddress(address: IPAddress("127.0.0.1")!, port: $0.port) : $0 }
            let mtu = c.interface.mtu ?? (options.hub && lookup.isEmpty ? hubMTU(routes: routes) : Resolver.mtu(toward: lookup, routes: routes))
            plan.interfaces.append(.init(name: "wg\(n)", config: c, mtu: mtu, source: options.configFiles[n]))
        }
        log.step("endpoints resolved, MTU \(plan.interfaces.map { "\($0.name) \($0.mtu)" }.joined(separator: ", "))")
        plan.pastaInterface = pastaInterface(toward: plan.interfaces.flatMap { $0.config.peers.compactMap { $0.endpoint?.address } },
                                                  routes: routes)

        if let name = options.name {
            try NamedTunnel.validate(name)
            plan.name = name
        }
        // A full tunnel is a kill switch unless asked otherwise.
        plan.isolate = setting(options.isolate, \.isolate) ?? plan.fullTunnel
        // An isolated job, or a full tunnel's, reaches no unix socket of the
        // host: /run is private (Namespace.overlayRuntimeDirectory); these
        // are the ones elsewhere (tmux, screen, X11, editors' servers run
        // commands for whoever connects).
        if plan.isolate || plan.fullTunnel {
            plan.maskHostSockets = true
            plan.masked += tmuxSocket()
        }
        log.step(containment(plan))
        (plan.hosts, plan.environment) = (options.hosts, options.environment)
        if var m = options.mesh {
            m.verbose = options.verbose
            plan.mesh = m
        }
        plan.follower = options.follower
        if options.hub {
            try Hub.check(configs, files: options.configFiles, plan: &plan)
        } else if options.command.isEmpty && options.name != nil {
            plan.command = []  // no job: the tunnel stays up until `wgns down` or a signal
        } else if options.command.isEmpty {
            plan.command = [getenv("SHELL").map { String(cString: $0) } ?? "/bin/sh"]
        } else {
            plan.command = options.command
        }
        return plan
    }

    /// What the job must not read of config `file`: the file, its key
    /// files, and every config of the VPN folder it belongs to (one that
    /// holds `hub.conf`, as `wgns vpn new` makes: hub.conf, peer-K.conf,
    /// each with its keys), each by its real path. The folder itself stays
    /// (a batch job keeps its own files there: examples/slurm-vpn.sbatch).
    /// Symbolic links to them lead to the mask; a hard link elsewhere would not.
    static func masked(file: String, _ c: TunnelConfig) -> [String] {
        var paths = [file]
        if case .file(let p)? = c.interface.privateKey { paths.append(p) }
        for peer in c.peers { if case .file(let p)? = peer.presharedKey { paths.append(p) } }
        let dir = file.contains("/") ? String(file[..<file.lastIndex(of: "/")!]) : "."
        let folder = dir.isEmpty ? "/" : dir
        if access(VPN.hubPath(folder), F_OK) == 0, let d = opendir(folder) {
            defer { closedir(d) }
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name.hasSuffix(".conf") { paths.append(folder == "/" ? "/\(name)" : "\(folder)/\(name)") }
            }
        }
        var out: [String] = []
        for p in paths {
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            guard realpath(p, &buf) != nil else { continue }
            let real = buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            if real != "/" && !out.contains(real) { out.append(real) }
        }
        return out
    }

    /// The socket at $TMUX's path (the tmux server the user runs wgns
    /// from), by real path, if there is one. The sandbox finds the others
    /// (`JobSandbox.maskHostSockets`).
    static func tmuxSocket() -> [String] {
        guard let tmux = getenv("TMUX").map({ String(cString: $0) }),
              let path = tmux.split(separator: ",").first, path.hasPrefix("/") else { return [] }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard realpath(String(path), &buf) != nil else { return [] }
        return [buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }]
    }

    /// The containment in effect, in one line (`wgns up -v`).
    static func containment(_ plan: UpPlan) -> String {
        var parts: [String] = []
        if plan.carrier == .noCarrier {
            parts.append("no carrier (the job's namespace holds only lo and the tunnel; its UDP is on the host)")
        } else if plan.isolate {
            parts.append("isolated (the job sees only lo and the tunnel\(plan.fullTunnel ? ", full tunnel" : ""))")
        } else {
            parts.append("not isolated (split tunnel: the job also reaches the network through the carrier)")
        }
        parts.append("host loopback \(plan.hostLoopback ? "on (10.0.2.2 is the host's 127.0.0.1)" : "off")")
        parts.append("job uid \(plan.mapUID) gid \(plan.mapGID)")
        parts.append(plan.netAdmin ? "network admin: YES (the job can change and leave its tunnel)"
                                   : "network admin: none (own user namespace)")
        return "containment: " + parts.joined(separator: ", ")
    }

    /// pasta copies its template interface from the host's default route and
    /// fails without one ("External interface not usable"), as on a node
    /// whose only network is a cluster fabric. Then this names the interface
    /// of the route toward the first endpoint, or (a hub has none) the first
    /// non-loopback interface that is up; nil when there is a default route.
    static func pastaInterface(toward endpoints: [IPAddress], routes: RouteNetlink?) -> String? {
        guard let routes else { return nil }
        // A lookup only (RTM_GETROUTE), nothing is sent: 192.0.2.1 is TEST-NET-1.
        if (try? routes.routeGet(IPAddress("192.0.2.1")!)) != nil { return nil }
        for e in endpoints where !e.isV6 {
            if let r = try? routes.routeGet(e) { return r.device }
        }
        return (try? routes.links())?.first { $0.isUp && $0.name != "lo" }?.name
    }

    /// A hub has no endpoint to measure a path by: its peers come in through
    /// the host's interface, so it takes that one's MTU minus 80 (the
    /// interface of the default route, else the first non-loopback one that
    /// is up; 1420 if none). With 1420 on a 9000 fabric the hub would drop
    /// the peers' full-size packets to each other.
    static func hubMTU(routes: RouteNetlink?) -> UInt32 {
        guard let routes else { return 1420 }
        let m: UInt32
        if let r = try? routes.routeGet(IPAddress("192.0.2.1")!) {
            m = r.mtu
        } else if let l = (try? routes.links())?.first(where: { $0.isUp && $0.name != "lo" }) {
            m = l.mtu
        } else {
            return 1420
        }
        return max(min(m, Resolver.carrierMTU), 1280 + Resolver.overhead) - Resolver.overhead
    }
}
