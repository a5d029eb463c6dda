import Tunnel
#if canImport(Glibc)
import Glibc
#endif

struct HubCommand: Invocation {
    static let command = Command(
        name: "hub",
        abstract: "Run the hub of a per-job VPN (`wgns vpn new`) in a rootless namespace of its own.",
        discussion: """
        wgns hub [options] DIR|CONFIG [-- COMMAND [ARGS...]]

        pasta forwards the hub's UDP port from the host into the namespace, and \
        nothing else; forwarding is on inside, so peers reach each other through the hub. \
        Without ListenPort in the config (`wgns vpn new` without --endpoint), the hub picks \
        a UDP port that is free on this host (another one if pasta cannot bind it), and \
        once up writes HOST:PORT to DIR/hub.endpoint (mode 0600), where `wgns up DIR` \
        finds it; the file goes when the hub stops, and one left by a killed hub is \
        recognised as stale. HOST is this node's name, or --advertise. The hub's \
        namespace gets an /etc/hosts naming every member (hub, peer-1 ... peer-N, and \
        hub.vpn, peer-1.vpn ...). Prints one line once up.

        Without COMMAND, runs until SIGINT, SIGTERM or SIGHUP (or `wgns down NAME` with \
        --name). With COMMAND (a batch script's `wgns hub DIR -- srun wgns up DIR -- TASK`), \
        COMMAND runs on the host once the hub is up, with WGNS_ENDPOINT (HOST:PORT), \
        WGNS_HUB (the hub's VPN address) and WGNS_PEERS in its environment; the hub \
        stops when COMMAND ends and wgns exits with COMMAND's status. Signals go to \
        COMMAND. Either way everything it started is gone when it returns. \
        `wgns show NAME` and `wgns status NAME` read a named hub's WireGuard state.
        """,
        options: SessionOptions.options + [advertise, ports],
        // Any number, checked in `validate`: so that options may follow
        // CONFIG and only `--` starts the command.
        arguments: [Argument("CONFIG", .any, "The VPN's directory (from `wgns vpn new`), or a hub's config (DIR/hub.conf).")],
        passthrough: "COMMAND [ARGS...]",
        run: start)

    static let advertise = Option.option("advertise", "HOST", "The host name (or address) peers reach this node by, published in DIR/hub.endpoint (default: this node's name).")
    static let ports = Option.option("ports", "LO-HI", "Pick the host's UDP port from this range only (say, the ports a site's firewall opens between nodes).")

    var session: SessionOptions
    var advertise: String?
    var ports: ClosedRange<UInt16>?
    var configs: [String]
    var command: [String] = []

    init(_ a: Parsed) throws {
        session = try SessionOptions(a)
        advertise = a.value(Self.advertise)
        ports = try portRange(a.value(Self.ports))
        configs = a.positionals
        command = a.passthrough
    }

    func validate() throws {
        guard configs.count == 1 else {
            throw CLIError.usage(configs.isEmpty ? "hub: give the VPN's directory or the hub's config"
                                 : "hub: one CONFIG only (got \(configs.count)); put a command after --")
        }
    }

    func run() throws {
        var options = UpOptions()
        let config = configs[0]
        var file = config
        var serve = Hub.ServeOptions()
        if VPN.isDirectory(file) {
            serve.directory = file
            file = VPN.hubPath(file)
            guard access(file, F_OK) == 0 else {
                throw CLIError("\(config) is not a VPN directory (no \(file); make one with `wgns vpn new \(config) --peers N`)")
            }
        }
        options.configFiles = [file]
        session.apply(to: &options)
        options.hub = true
        serve.advertise = advertise
        serve.portRange = ports
        serve.command = command
        serve.holderCommand = ["/proc/self/exe", HolderCommand.command.name]
        let status = try Hub.serve(options, serve)
        // Ended by a signal: that is how a hub without a command is meant to stop.
        if command.isEmpty && (status == 128 + SIGINT || status == 128 + SIGTERM || status == 128 + SIGHUP) { Glibc.exit(0) }
        Glibc.exit(status)
    }
}

/// `--ports LO-HI` (or one PORT): a range of UDP ports, 1 to 65535.
func portRange(_ text: String?) throws -> ClosedRange<UInt16>? {
    guard let text else { return nil }
    let parts = text.split(separator: "-", omittingEmptySubsequences: false)
    guard parts.count <= 2, let lo = UInt16(parts[0]), let hi = UInt16(parts.last!), lo >= 1, lo <= hi else {
        throw CLIError.usage("--ports '\(text)': expected LO-HI, two UDP ports from 1 to 65535 with LO <= HI")
    }
    return lo...hi
}
