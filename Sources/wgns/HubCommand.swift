import ArgumentParser
import Tunnel
#if canImport(Glibc)
import Glibc
#endif

struct HubCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hub",
        abstract: "Run the hub of a per-job VPN (`wgns vpn new`) in a rootless namespace of its own.",
        discussion: """
        pasta forwards the hub's UDP ListenPort from the host into the namespace, and \
        nothing else; forwarding is on inside, so peers reach each other through the hub. \
        Prints one line once up, and runs until SIGINT, SIGTERM or SIGHUP (or \
        `wgns down NAME` with --name); then everything it started is gone. \
        `wgns show NAME` and `wgns status NAME` read a named hub's WireGuard state.
        """)

    @Option(help: "Name the hub, for `wgns show`, `wgns status`, `wgns down` and `wgns list`.")
    var name: String?

    @Option(help: "The WireGuard backend: auto, kernel or userspace.")
    var backend: BackendKind?

    @Flag(name: .shortAndLong, help: "Show each step with its duration.")
    var verbose = false

    @Argument(help: "The hub's config (DIR/hub.conf from `wgns vpn new`), or the VPN's directory.")
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
