import Tunnel
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

struct Up {
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
        options: [
            .option("name", "NAME", "Name the tunnel, for `wgns exec`, `wgns down` and `wgns list`."),
            .option("carrier", "slirp4netns|pasta", "The carrier (default: the config's, else whichever is installed)."),
            .option("backend", "auto|kernel|userspace", "The WireGuard backend."),
            .option("map-uid", "UID", "The job's uid inside (default: your own; 0 gives it root inside)."),
            .option("map-gid", "GID", "The job's gid inside (default: your own)."),
            .flag("host-loopback", "Let the namespace reach the host's loopback at 10.0.2.2."),
            .flag("no-host-loopback", "Do not let the namespace reach the host's loopback (overrides HostLoopback = true)."),
            .option("peer", "K", "With a VPN directory (`wgns vpn new`) as CONFIG: be peer K (DIR/peer-K.conf). Inside a Slurm step the default is SLURM_PROCID + 1 (task 0 is peer-1)."),
            .option("wait", "SECONDS", "With a VPN directory whose hub publishes its endpoint: how long to wait for DIR/hub.endpoint (default: 60)."),
            .flag("isolate", "The job's namespace holds only lo and the WireGuard interfaces: it can reach nothing but the tunnel (the default for a full tunnel, AllowedIPs covering 0.0.0.0/0 or ::/0)."),
            .flag("no-isolate", "Let the job also reach the network through the carrier, even with a full tunnel (overrides Isolate = true)."),
            .flag("net-admin", "Run the job as root of the tunnel's own user namespace, with network administration there: the job CAN change and leave its tunnel (`wg`, `ip`). Off by default: the job cannot even read its tunnel's keys."),
            .flag("verbose", short: "v", "Show each step with its duration."),
        ],
        arguments: [Argument("CONFIG", .any, "wg-quick configs (one interface each; a bare NAME is NAME.conf in $WGNS_CONFIG_DIR, $XDG_CONFIG_HOME/wgns or ~/.config/wireguard), or a VPN directory from `wgns vpn new`.")],
        passthrough: "COMMAND [ARGS...]"
    ) { a in
        try Up(name: a.value("name"), carrier: a.choice("carrier"), backend: a.choice("backend"),
               mapUID: a.number("map-uid"), mapGID: a.number("map-gid"), hostLoopback: a.flag("host-loopback"),
               noHostLoopback: a.flag("no-host-loopback"), peer: a.number("peer"), wait: try waitSeconds(a.value("wait")),
               isolate: a.flag("isolate"), noIsolate: a.flag("no-isolate"), netAdmin: a.flag("net-admin"),
               verbose: a.flag("verbose"),
               configs: a.positionals, command: a.passthrough).run()
    }

    var name: String?
    var carrier: CarrierKind?
    var backend: BackendKind?
    var mapUID: UInt32?
    var mapGID: UInt32?
    var hostLoopback = false
    var noHostLoopback = false
    var peer: Int?
    var wait: Double?
    var isolate = false
    var noIsolate = false
    var netAdmin = false
    var verbose = false
    var configs: [String] = []
    var command: [String] = []

    func run() throws {
        var configs = configs
        var options = UpOptions()
        // A directory is a generated VPN: one of its peers.
        do {
            configs = try configs.map { c throws(TunnelError) in try ConfigLookup.path(for: c) }
            let dirs = configs.filter { VPN.isDirectory($0) }
            if dirs.isEmpty && (peer != nil || wait != nil) {
                throw CLIError(peer != nil ? "--peer needs a VPN directory (`wgns vpn new DIR ...`) as CONFIG" : "--wait needs a VPN directory (`wgns vpn new DIR ...`) as CONFIG")
            }
            let rank = getenv("SLURM_PROCID").map { String(cString: $0) }
            for (n, c) in configs.enumerated() where VPN.isDirectory(c) {
                let m = try VPN.member(in: c, peer: peer, slurmProcID: rank)
                configs[n] = m.configPath
                if m.needsEndpoint {
                    let hub = try HubEndpoint.wait(c, seconds: wait ?? 60)
                    let (e, loopback) = try VPN.peerEndpoint(toward: hub.endpoint, in: c)
                    options.peerEndpoint = e
                    if loopback { options.hostLoopback = true }
                }
                if options.hosts == nil { (options.hosts, options.environment) = (m.hosts, m.environment) }
            }
        } catch let e as TunnelError { throw CLIError(e) }
        options.configFiles = configs
        options.isolate = try Self.either(isolate, "isolate", noIsolate, "no-isolate")
        options.netAdmin = netAdmin ? true : nil
        options.carrier = carrier
        options.backend = backend
        options.mapUID = mapUID
        options.mapGID = mapGID
        options.hostLoopback = try Self.either(hostLoopback, "host-loopback", noHostLoopback, "no-host-loopback") ?? options.hostLoopback
        options.verbose = verbose
        options.name = name
        options.command = command
        Glibc.exit(try runSession(options))
    }
}

extension Up {
    /// A yes/no flag pair: true, false, or nil when neither was given (the
    /// config decides); both at once is a usage error.
    static func either(_ yes: Bool, _ yesName: String, _ no: Bool, _ noName: String) throws -> Bool? {
        if yes && no {
            var e = CLIError("--\(yesName) and --\(noName) contradict each other: give one")
            e.status = 64
            throw e
        }
        return yes ? true : no ? false : nil
    }
}

/// `--wait SECONDS`: a number of seconds, 0 or more.
func waitSeconds(_ text: String?) throws -> Double? {
    guard let text else { return nil }
    guard let s = Double(text), s >= 0, s.isFinite else {
        var e = CLIError("--wait '\(text)': expected a number of seconds (0 or more)")
        e.status = 64
        throw e
    }
    return s
}

/// Validates `options`, brings the namespace up with this binary's hidden
/// `_holder` as the holder when one must be exec'd, and returns the job's
/// status. Shared by `wgns up` and `wgns hub`.
func runSession(_ options: UpOptions) throws -> Int32 {
    do {
        let plan = try UpPlan.prepare(options)
        return try Supervisor.run(plan, holderCommand: ["/proc/self/exe", HolderCommand.command.name])
    } catch {
        throw CLIError(error)
    }
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
    ) { a in
        do { try NamedTunnel.down(a.positionals[0]) } catch { throw CLIError(error) }
    }
}

enum Exec {
    static let command = Command(
        name: "exec", abstract: "Run a command inside a named tunnel, as its job would run.",
        discussion: "Without COMMAND, runs $SHELL. The `--` may be left out: everything after NAME is the command.",
        arguments: [Argument("NAME", "The tunnel's name.")],
        passthrough: "COMMAND [ARGS...]"
    ) { a in try run(name: a.positionals[0], command: a.passthrough) }

    static func run(name: String, command: [String]) throws {
        var cmd = command
        if cmd.isEmpty { cmd = [getenv("SHELL").map { String(cString: $0) } ?? "/bin/sh"] }
        do {
            // Synchronous on purpose: entering a user namespace needs a single thread.
            let status = try NamedTunnel.exec(name, cmd)
            Glibc.exit(status)
        } catch {
            if error.code == .command { fail(error.description, status: 127) }
            throw CLIError(error)
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
    ) { a in try run(name: a.positionals[0]) }

    static func run(name: String) throws {
        let devices: [Device]
        // Synchronous on purpose: entering a user namespace needs a single thread.
        do { devices = try NamedTunnel.devices(name) } catch { throw CLIError(error) }
        // The same text as `wgns show`, from the same code.
        var out = Output(capacity: 4096 + devices.reduce(0) { $0 + $1.peers.count * 256 })
        Show(interface: name).appendDevices(devices, json: false, &out)
        do { try out.flush() } catch { throw CLIError(error) }
    }
}
