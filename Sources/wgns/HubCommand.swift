import Tunnel
#if canImport(Glibc)
import Glibc
#endif

struct HubCommand {
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
        options: [
            .option("name", "NAME", "Name the hub, for `wgns show`, `wgns status`, `wgns down` and `wgns list`."),
            .option("advertise", "HOST", "The host name (or address) peers reach this node by, published in DIR/hub.endpoint (default: this node's name)."),
            .option("ports", "LO-HI", "Pick the host's UDP port from this range only (say, the ports a site's firewall opens between nodes)."),
            .option("backend", "auto|kernel|userspace", "The WireGuard backend."),
            .flag("verbose", short: "v", "Show each step with its duration."),
        ],
        // Any number, checked below: so that options may follow CONFIG and
        // only `--` starts the command.
        arguments: [Argument("CONFIG", .any, "The VPN's directory (from `wgns vpn new`), or a hub's config (DIR/hub.conf).")],
        passthrough: "COMMAND [ARGS...]"
    ) { a in
        guard a.positionals.count == 1 else {
            var e = CLIError(a.positionals.isEmpty ? "hub: give the VPN's directory or the hub's config" : "hub: one CONFIG only (got \(a.positionals.count)); put a command after --")
            e.status = 64
            throw e
        }
        try HubCommand(name: a.value("name"), advertise: a.value("advertise"), ports: try portRange(a.value("ports")), backend: a.choice("backend"),
                       verbose: a.flag("verbose"), config: a.positionals[0], command: a.passthrough).run()
    }

    var name: String?
    var advertise: String?
    var ports: ClosedRange<UInt16>?
    var backend: BackendKind?
    var verbose = false
    var config: String
    var command: [String] = []

    func run() throws {
        var options = UpOptions()
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
        options.backend = backend
        options.verbose = verbose
        options.name = name
        options.hub = true
        serve.advertise = advertise
        serve.portRange = ports
        serve.command = command
        serve.holderCommand = ["/proc/self/exe", HolderCommand.command.name]
        let status: Int32
        do { status = try Hub.serve(options, serve) } catch { throw CLIError(error) }
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
        var e = CLIError("--ports '\(text)': expected LO-HI, two UDP ports from 1 to 65535 with LO <= HI")
        e.status = 64
        throw e
    }
    return lo...hi
}
