import ArgumentParser
import Tunnel
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

extension CarrierKind: ExpressibleByArgument {}
extension BackendKind: ExpressibleByArgument {}

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
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
        every task its own address.
        """)

    @Option(help: "Name the tunnel, for `wgns exec`, `wgns down` and `wgns list`.")
    var name: String?

    @Option(help: "The carrier: slirp4netns or pasta (default: the config's, else whichever is installed).")
    var carrier: CarrierKind?

    @Option(help: "The WireGuard backend: auto, kernel or userspace.")
    var backend: BackendKind?

    @Option(name: .customLong("map-uid"), help: "The job's uid inside (default: your own; 0 gives it root inside).")
    var mapUID: UInt32?

    @Option(name: .customLong("map-gid"), help: "The job's gid inside (default: your own).")
    var mapGID: UInt32?

    @Flag(name: .customLong("host-loopback"), help: "Let the namespace reach the host's loopback at 10.0.2.2.")
    var hostLoopback = false

    @Option(help: "With a VPN directory (`wgns vpn new`) as CONFIG: be peer K (DIR/peer-K.conf). Inside a Slurm step the default is SLURM_PROCID + 1 (task 0 is peer-1).")
    var peer: Int?

    @Flag(help: "The job's namespace holds only lo and the WireGuard interfaces: it can reach nothing but the tunnel.")
    var isolate = false

    @Flag(name: .shortAndLong, help: "Show each step with its duration.")
    var verbose = false

    @Argument(parsing: .captureForPassthrough, help: "CONFIG... -- COMMAND [ARGS...]")
    var rest: [String] = []

    func run() throws {
        var configs: [String] = []
        var command: [String] = []
        if let dash = rest.firstIndex(of: "--") {
            configs = Array(rest[..<dash])
            command = Array(rest[(dash + 1)...])
        } else {
            configs = rest
        }
        if configs.contains("-h") || configs.contains("--help") { throw CleanExit.helpRequest(self) }
        // `wgns up DIR --peer K [--isolate] -- CMD`: these two may follow the configs.
        var peer = self.peer, isolate = self.isolate
        var k = 0
        while k < configs.count {
            if configs[k] == "--isolate" { isolate = true; configs.remove(at: k); continue }
            if configs[k] == "--peer" || configs[k].hasPrefix("--peer=") {
                let value = configs[k] == "--peer" ? (k + 1 < configs.count ? configs[k + 1] : "") : String(configs[k].dropFirst(7))
                guard let n = Int(value) else { throw CLIError("--peer needs a number, not '\(value)'") }
                peer = n
                configs.removeSubrange(k..<min(configs.count, k + (configs[k] == "--peer" ? 2 : 1)))
                continue
            }
            k += 1
        }
        if let bad = configs.first(where: { $0.hasPrefix("-") && $0 != "-" }) {
            throw CLIError("unknown option \(bad) (options go before the configs; the command goes after --)")
        }
        // A directory is a generated VPN: one of its peers.
        do {
            let dirs = configs.filter { VPN.isDirectory($0) }
            if dirs.isEmpty && peer != nil { throw CLIError("--peer needs a VPN directory (`wgns vpn new DIR ...`) as CONFIG") }
            let rank = getenv("SLURM_PROCID").map { String(cString: $0) }
            configs = try configs.map { VPN.isDirectory($0) ? try VPN.peerConfigPath(in: $0, peer: peer, slurmProcID: rank) : $0 }
        } catch let e as TunnelError { throw CLIError(e) }
        var options = UpOptions()
        options.configFiles = configs
        options.isolate = isolate ? true : nil
        options.carrier = carrier
        options.backend = backend
        options.mapUID = mapUID
        options.mapGID = mapGID
        options.hostLoopback = hostLoopback ? true : nil
        options.verbose = verbose
        options.name = name
        options.command = command
        Glibc.exit(try runSession(options))
    }
}

/// Validates `options`, brings the namespace up with this binary's hidden
/// `_holder` as the holder when one must be exec'd, and returns the job's
/// status. Shared by `wgns up` and `wgns hub`.
func runSession(_ options: UpOptions) throws -> Int32 {
    do {
        let plan = try Session.prepare(options)
        return try Session.run(plan, holderCommand: ["/proc/self/exe", HolderCommand.configuration.commandName!])
    } catch {
        throw CLIError(error)
    }
}

/// Internal: the namespace holder that `wgns up` starts (see Tunnel.Holder).
struct HolderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_holder", shouldDisplay: false)

    func run() {
        // Synchronous and first: unshare(CLONE_NEWUSER) needs a single thread.
        Holder.run()
    }
}

struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a named tunnel (`wgns up --name NAME`); returns once it is gone.")

    @Argument(help: "The tunnel's name.")
    var name: String

    func run() throws {
        do { try NamedTunnel.down(name) } catch { throw CLIError(error) }
    }
}

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command inside a named tunnel, as its job would run.",
        discussion: "wgns exec NAME -- COMMAND [ARGS...]")

    @Argument(help: "The tunnel's name.")
    var name: String

    @Argument(parsing: .captureForPassthrough, help: "-- COMMAND [ARGS...]")
    var command: [String] = []

    func run() throws {
        var cmd = command
        if cmd.first == "--" { cmd.removeFirst() }
        if cmd.isEmpty { cmd = [String(cString: getenv("SHELL") ?? strdup("/bin/sh"))] }
        do {
            // Synchronous on purpose: entering a user namespace needs a single thread.
            let status = try NamedTunnel.exec(name, cmd)
            Glibc.exit(status)
        } catch let e as TunnelError where e.code == .command {
            fail(e.description, status: 127)
        } catch {
            throw CLIError(error)
        }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List your named tunnels that are up.")

    func run() {
        for name in NamedTunnel.list() { print(name) }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the WireGuard state of a named tunnel, read from inside it (as `wg show`).")

    @Argument(help: "The tunnel's name.")
    var name: String

    func run() throws {
        let devices: [Device]
        // Synchronous on purpose: entering a user namespace needs a single thread.
        do { devices = try NamedTunnel.devices(name) } catch { throw CLIError(error) }
        // The same text as `wgns show`, from the same code.
        var out = Output(capacity: 4096 + devices.reduce(0) { $0 + $1.peers.count * 256 })
        Show().appendDevices(devices, json: false, &out)
        do { try out.flush() } catch { throw CLIError(error) }
    }
}
