import Tunnel
#if canImport(Glibc)
import Glibc
#endif

struct HubCommand {
    static let command = Command(
        name: "hub",
        abstract: "Run the hub of a per-job VPN (`wgns vpn new`) in a rootless namespace of its own.",
        discussion: """
        pasta forwards the hub's UDP ListenPort from the host into the namespace, and \
        nothing else; forwarding is on inside, so peers reach each other through the hub. \
        Prints one line once up, and runs until SIGINT, SIGTERM or SIGHUP (or \
        `wgns down NAME` with --name); then everything it started is gone. \
        `wgns show NAME` and `wgns status NAME` read a named hub's WireGuard state.
        """,
        options: [
            .option("name", "NAME", "Name the hub, for `wgns show`, `wgns status`, `wgns down` and `wgns list`."),
            .option("backend", "auto|kernel|userspace", "The WireGuard backend."),
            .flag("verbose", short: "v", "Show each step with its duration."),
        ],
        arguments: [Argument("CONFIG", "The hub's config (DIR/hub.conf from `wgns vpn new`), or the VPN's directory.")]
    ) { a in
        try HubCommand(name: a.value("name"), backend: a.choice("backend"), verbose: a.flag("verbose"),
                       config: a.positionals[0]).run()
    }

    var name: String?
    var backend: BackendKind?
    var verbose = false
    var config: String

    func run() throws {
        var options = UpOptions()
        var file = config
        var st = stat()
        if stat(file, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR { file = VPN.hubPath(file) }
        options.configFiles = [file]
        options.backend = backend
        options.verbose = verbose
        options.name = name
        options.hub = true
        let status = try runSession(options)
        // Ended by a signal: that is how a hub is meant to stop.
        Glibc.exit(status == 128 + SIGINT || status == 128 + SIGTERM || status == 128 + SIGHUP ? 0 : status)
    }
}
