import Tunnel
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

struct Up: Invocation {
    static let command = Command(
        name: "up",
        abstract: "Run a command in its own rootless namespace whose way out is WireGuard.",
        discussion: """
        wgns up [options] CONFIG [CONFIG...] -- COMMAND [ARGS...]
        wgns up [options] DIR [--peer K] -- COMMAND [ARGS...]

        Each CONFIG becomes one interface (wg0, wg1, ...). Nothing is created when a \
        config is wrong. The command's exit status is wgns's; SIGINT, SIGTERM and SIGHUP \
        are passed on. When the command ends, or wgns is killed, everything started for \
        it ends. If the carrier dies during the job, the job gets SIGTERM and wgns exits \
        non-zero. Without COMMAND, runs $SHELL.

        With --name NAME, the tunnel can be entered with `wgns exec NAME -- COMMAND`, \
        listed with `wgns list` and stopped with `wgns down NAME`; without a COMMAND \
        it then stays up (in the foreground) until `wgns down NAME` or a signal.

        A directory made by `wgns vpn new` stands for one of its peers: --peer K \
        picks DIR/peer-K.conf; inside a Slurm step without --peer, K is the task's \
        rank plus one (SLURM_PROCID 0 is peer-1), so `srun wgns up DIR -- CMD` gives \
        every task its own address. The job's /etc/hosts (read-only) then names every \
        member (hub, peer-1 ... peer-N, also as hub.vpn, peer-1.vpn ...), and its \
        environment holds WGNS_ADDRESS (its own VPN address), WGNS_HUB (the hub's), \
        WGNS_PEER (K), WGNS_PEERS (N) and WGNS_NAME (peer-K). A VPN made without \
        --endpoint takes the hub's HOST:PORT from DIR/hub.endpoint, waiting up to \
        --wait seconds for a live hub to publish it.
        """,
        options: SessionOptions.options + [carrier, mapUID, mapGID, hostLoopback, noHostLoopback, peer, wait, topology, ports,
                                           isolate, noIsolate, netAdmin, noMask],
        arguments: [Argument("CONFIG", .any, "wg-quick configs (one interface each; a bare NAME is NAME.conf in $WGNS_CONFIG_DIR, $XDG_CONFIG_HOME/wgns or ~/.config/wireguard), or a VPN directory from `wgns vpn new`.")],
        passthrough: "COMMAND [ARGS...]",
        run: start)

    static let carrier = Option.option("carrier", "slirp4netns|pasta|none", "The carrier (default: the config's; with the builtin backend none, except for a split tunnel; else whichever is installed). none: no carrier (the builtin backend only).")
    static let mapUID = Option.option("map-uid", "UID", "The job's uid inside (default: your own; 0 gives it root inside).")
    static let mapGID = Option.option("map-gid", "GID", "The job's gid inside (default: your own).")
    static let hostLoopback = Option.flag("host-loopback", "Let the namespace reach the host's loopback at 10.0.2.2.")
    static let noHostLoopback = Option.flag("no-host-loopback", "Do not let the namespace reach the host's loopback (overrides HostLoopback = true).")
    static let peer = Option.option("peer", "K", "With a VPN directory (`wgns vpn new`) as CONFIG: be peer K (DIR/peer-K.conf). Inside a Slurm step the default is SLURM_PROCID + 1 (task 0 is peer-1).")
    static let wait = Option.option("wait", "SECONDS", "With a VPN directory whose hub publishes its endpoint: how long to wait for DIR/hub.endpoint (default: 60).")
    static let topology = Option.option("topology", "star|mesh", "With a VPN directory: override the VPN's topology (DIR/members). mesh: on the builtin backend, members talk directly once a direct handshake works and through the hub until then; other backends stay relayed. star: everything through the hub.")
    static let ports = Option.option("ports", "LO-HI", "With a mesh VPN directory: bind this member's UDP port inside this range (overrides DIR/members).")
    static let isolate = Option.flag("isolate", "The job's namespace holds only lo and the WireGuard interfaces: it can reach nothing but the tunnel (the default for a full tunnel, AllowedIPs covering 0.0.0.0/0 or ::/0).")
    static let noIsolate = Option.flag("no-isolate", "Let the job also reach the network through the carrier, even with a full tunnel (overrides Isolate = true).")
    static let netAdmin = Option.flag("net-admin", "Run the job as root of the tunnel's own user namespace, with network administration there: the job CAN change and leave its tunnel (`wg`, `ip`). Off by default: the job cannot even read its tunnel's keys.")

    static let noMask = Option.flag("no-mask", "Let the job read the configs, their PrivateKeyFile/PresharedKeyFile and the VPN folder the tunnel was built from (by default they look empty to it).")

    var session: SessionOptions
    var noMask = false
    var carrier: CarrierKind?
    var mapUID: UInt32?
    var mapGID: UInt32?
    /// `--host-loopback` / `--no-host-loopback`; nil: the config decides.
    var hostLoopback: Bool?
    var peer: Int?
    var wait: Double?
    var topology: VPN.Topology?
    var ports: ClosedRange<UInt16>?
    /// `--isolate` / `--no-isolate`; nil: the config decides.
    var isolate: Bool?
    var netAdmin = false
    /// CONFIG arguments, then (after `validate`) the files they name.
    var configs: [String] = []
    var command: [String] = []

    init(_ a: Parsed) throws {
        session = try SessionOptions(a)
        carrier = try a.choice(Self.carrier)
        mapUID = try a.number(Self.mapUID)
        mapGID = try a.number(Self.mapGID)
        hostLoopback = try either(a, Self.hostLoopback, Self.noHostLoopback)
        peer = try a.number(Self.peer)
        wait = try waitSeconds(a.value(Self.wait))
        topology = try a.choice(Self.topology)
        ports = try portRange(a.value(Self.ports))
        isolate = try either(a, Self.isolate, Self.noIsolate)
        netAdmin = a.flag(Self.netAdmin)
        noMask = a.flag(Self.noMask)
        configs = a.positionals
        command = a.passthrough
    }

    /// Every mistake of the command line, before a hub is waited for or
    /// anything is started: the CONFIGs are looked up (a bare NAME is a file
    /// in the config folders), and what needs a VPN directory gets one.
    mutating func validate() throws {
        if configs.isEmpty { throw CLIError.usage("give at least one config file") }
        if netAdmin {
            for (flag, id) in [(Self.mapUID, mapUID), (Self.mapGID, mapGID)] where id != nil && id != 0 {
                throw CLIError.usage("--net-admin runs the job as root of the tunnel's user namespace: MapUID and MapGID must be 0 or unset (got --\(flag.long) \(id!))")
            }
        }
        configs = try configs.map { c throws(TunnelError) in try ConfigLookup.path(for: c) }
        let dirs = configs.filter { VPN.isDirectory($0) }
        for (flag, given) in [(Self.peer, peer != nil), (Self.wait, wait != nil), (Self.topology, topology != nil), (Self.ports, ports != nil)] where given && dirs.isEmpty {
            throw CLIError.usage("--\(flag.long) needs a VPN directory (`wgns vpn new DIR ...`) as CONFIG")
        }
        for dir in dirs {
            let count = VPN.peerCount(dir)
            if let peer, count > 0, !(1...count).contains(peer) {
                throw CLIError.usage("--peer \(peer) is out of range: \(dir) has peers 1 to \(count)")
            }
        }
    }

    func run() throws {
        var configs = configs
        var options = UpOptions()
        // A directory is a generated VPN: one of its peers.
        let rank = getenv("SLURM_PROCID").map { String(cString: $0) }
        for (n, c) in configs.enumerated() where VPN.isDirectory(c) {
            let m = try VPN.member(in: c, peer: peer, slurmProcID: rank)
            configs[n] = m.configPath
            if m.needsEndpoint {
                let hub = try HubEndpoint.wait(c, seconds: wait ?? 60)
                let (e, loopback) = try VPN.peerEndpoint(toward: hub.endpoint, in: c)
                options.peerEndpoint = e
                if loopback { options.hostLoopback = true }
                options.follower = HubFollower(directory: c, current: hub)
            } else {
                var current: HubEndpoint?
                if case .live(let hub) = HubEndpoint.read(c) { current = hub }
                options.follower = HubFollower(directory: c, current: current)
            }
            options.vpnMember = true
            if options.mesh == nil, var mesh = try VPN.Mesh.load(c, peer: m.peer, subnets: m.subnets, topology: topology) {
                mesh.interfaceName = "wg\(n)"
                if let ports { mesh.portRange = ports }
                options.mesh = mesh
            }
            if options.hosts == nil { (options.hosts, options.environment) = (m.hosts, m.environment) }
        }
        options.configFiles = configs
        session.apply(to: &options)
        options.isolate = isolate
        options.netAdmin = netAdmin ? true : nil
        options.mask = noMask ? false : nil
        options.carrier = carrier
        options.mapUID = mapUID
        options.mapGID = mapGID
        options.hostLoopback = hostLoopback ?? options.hostLoopback
        options.command = command
        Glibc.exit(try runSession(options))
    }
}

/// A yes/no flag pair: true, false, or nil when neither was given (the
/// config decides); both at once is a usage error.
func either(_ a: Parsed, _ yes: Option, _ no: Option) throws -> Bool? {
    switch (a.flag(yes), a.flag(no)) {
    case (true, true): throw CLIError.usage("--\(yes.long) and --\(no.long) contradict each other: give one")
    case (true, false): return true
    case (false, true): return false
    case (false, false): return nil
    }
}

/// `--wait SECONDS`: a number of seconds, 0 or more.
func waitSeconds(_ text: String?) throws -> Double? {
    guard let text else { return nil }
    guard let s = Double(text), s >= 0, s.isFinite else {
        throw CLIError.usage("--wait '\(text)': expected a number of seconds (0 or more)")
    }
    return s
}

/// Validates `options`, brings the namespace up with this binary's hidden
/// `_holder` as the holder when one must be exec'd, and returns the job's
/// status.
func runSession(_ options: UpOptions) throws -> Int32 {
    let plan = try UpPlan.prepare(options)
    return try Supervisor.run(plan, holderCommand: ["/proc/self/exe", HolderCommand.command.name])
}

/// Internal: the namespace holder that `wgns up` starts (see Tunnel.Holder).
enum HolderCommand {
    static let command = Command(name: "_holder", abstract: "The namespace holder `wgns up` starts.", hidden: true) { _ in
        // Synchronous and first: unshare(CLONE_NEWUSER) needs a single thread.
        Holder.run()
    }
}

enum Down {
    static let command = Command(
        name: "down", abstract: "Stop a named tunnel (`wgns up --name NAME`); returns once it is gone.",
        arguments: [Argument("NAME", "The tunnel's name.")]
    ) { a in try NamedTunnel.down(tunnelName(a.positionals[0])) }
}

enum Exec {
    static let command = Command(
        name: "exec", abstract: "Run a command inside a named tunnel, as its job would run.",
        discussion: "Without COMMAND, runs $SHELL. The `--` may be left out: everything after NAME is the command.",
        arguments: [Argument("NAME", "The tunnel's name.")],
        passthrough: "COMMAND [ARGS...]"
    ) { a in try run(name: tunnelName(a.positionals[0]), command: a.passthrough) }

    static func run(name: String, command: [String]) throws {
        var cmd = command
        if cmd.isEmpty { cmd = [getenv("SHELL").map { String(cString: $0) } ?? "/bin/sh"] }
        do {
            // Synchronous on purpose: entering a user namespace needs a single thread.
            let status = try NamedTunnel.exec(name, cmd)
            Glibc.exit(status)
        } catch {
            if error.code == .command { fail(error.description, status: 127) }
            throw error
        }
    }
}

enum List {
    static let command = Command(name: "list", abstract: "List your named tunnels that are up.") { _ in
        var out = Output()
        for name in NamedTunnel.list() { out.add(name + "\n") }
        try out.flush()
    }
}

enum Status {
    static let command = Command(
        name: "status", abstract: "Show the WireGuard state of a named tunnel, read from inside it (as `wg show`).",
        arguments: [Argument("NAME", "The tunnel's name.")]
    ) { a in try run(name: tunnelName(a.positionals[0])) }

    static func run(name: String) throws {
        // Synchronous on purpose: entering a user namespace needs a single thread.
        let devices = try NamedTunnel.devices(name)
        // The same text as `wgns show`, from the same code.
        var out = Output(capacity: 4096 + devices.reduce(0) { $0 + $1.peers.count * 256 })
        Show(interface: name).appendDevices(devices, json: false, &out)
        try out.flush()
    }
}
