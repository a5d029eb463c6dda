import Tunnel
#if canImport(Glibc)
import Glibc
#endif

/// The version `wgns version` prints.
let wgnsVersion = "0.1.0"

#if !WGNS_BUILD_INFO
/// The git commit of this build. scripts/build-static.sh writes the real one
/// to Generated/BuildInfo.swift (not in git) and sets WGNS_BUILD_INFO; any
/// other build does not know it and says so.
let wgnsCommit = "unknown"
#endif

@main
enum WGNS {
    static let command = Command(
        name: "wgns",
        abstract: "Rootless WireGuard tunnels: run a job in its own private network namespace.",
        discussion: """
        wgns gives a job its own user and network namespace whose way out is a \
        WireGuard interface, with slirp4netns or pasta carrying the encrypted UDP. \
        No root needed. Keys are wg-compatible: `wgns genkey | wgns pubkey`.
        """,
        options: [version],
        subcommands: [
            GenKey.command, PubKey.command, GenPSK.command,
            Check.command, Strip.command,
            Up.command, HolderCommand.command, Down.command, Exec.command, List.command, Status.command,
            VPNCommand.command, HubCommand.command,
            DoctorCommand.command, ProbeUserNamespace.command,
            Version.command,
            Show.command, ShowConf.command, SetConf.command, AddConf.command, SyncConf.command,
            ManCommand.command, CompletionsCommand.command,
        ])

    static let version = Option.flag("version", "Print the version and the git commit it was built from, as `wgns version`.")

    /// Finds the command the arguments name and runs it; errors become one
    /// line on stderr and exit status 1 (64 for a mistake on the command line).
    static func main() {
        // Keys are read by many commands (up, hub, setconf, pubkey, check,
        // ...): nobody of this user may read our memory from here on.
        becomeUndumpable()
        do {
            try run(CommandLine.arguments.dropFirst())
        } catch let error as CLIError {
            fail(error.message, status: error.status)
        } catch let error as TunnelError where error.code == .usage {
            fail("\(error)", status: 64)
        } catch {
            fail("\(error)")
        }
    }

    static func run(_ args: ArraySlice<String>) throws {
        var command = WGNS.command, path = "wgns", args = args
        while !command.subcommands.isEmpty {
            guard let word = args.first else {
                // A group without its command: say what there is, as an error.
                var out = Output()
                out.add(command.help(path: path))
                try? out.flush(to: STDERR_FILENO)
                exit(64)
            }
            args = args.dropFirst()
            if word == "-h" || word == "--help" {
                return try Output.write(command.help(path: path))
            }
            if word == "--" + version.long && path == "wgns" { return try Version.print() }
            if word == "help" && path == "wgns" {
                guard let named = command.find(args) else {
                    throw CLIError.usage("no command '\(args.joined(separator: " "))' (see 'wgns --help')")
                }
                return try Output.write(named.help(path: (["wgns"] + args).joined(separator: " ")))
            }
            guard let next = command.subcommands.first(where: { $0.name == word }) else {
                throw CLIError.usage((word.hasPrefix("-") ? "unknown option \(word)" : "unknown command '\(word)'")
                                     + " (see '\(path) --help')")
            }
            command = next
            path += " " + word
        }
        let parsed = try command.parse(args, path: path)
        if parsed.wantsHelp { return try Output.write(command.help(path: path)) }
        try command.run?(parsed)
    }
}

/// An error the command line reports as one line, `wgns: MESSAGE`.
struct CLIError: Error {
    var message: String
    /// The exit status: 1, or 64 (EX_USAGE) for a mistake on the command line.
    var status: Int32 = 1
    init(_ message: String) { self.message = message }
    init(_ error: any Error) { self.message = "\(error)" }
}

/// Prints `wgns: MESSAGE` on stderr and exits with `status`.
func fail(_ message: String, status: Int32 = 1) -> Never {
    printError(message)
    Glibc.exit(status)
}

/// Prints `wgns: MESSAGE` on stderr.
func printError(_ message: String) {
    let line = Array("wgns: \(message)\n".utf8)
    line.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

enum Version {
    static let command = Command(name: "version", abstract: "Print the version and the git commit it was built from (also `wgns --version`).") { _ in
        try print()
    }

    /// `wgns 0.1.0 (commit 0123456789ab)`; "unknown" for a build that was not
    /// given its commit.
    static func print() throws {
        try Output.write("wgns \(wgnsVersion) (commit \(wgnsCommit))\n")
    }
}
