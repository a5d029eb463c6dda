import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// The version `wgns version` prints.
let wgnsVersion = "0.1.0"

@main
struct WGNS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wgns",
        abstract: "Rootless WireGuard tunnels: run a job in its own private network namespace.",
        discussion: """
        wgns gives a job its own user and network namespace whose way out is a \
        WireGuard interface, with slirp4netns or pasta carrying the encrypted UDP. \
        No root needed. Keys are wg-compatible: `wgns genkey | wgns pubkey`.
        """,
        subcommands: [
            GenKey.self, PubKey.self, GenPSK.self,
            Check.self, Strip.self,
            Up.self, HolderCommand.self, Down.self, Exec.self, List.self, Status.self,
            VPNCommand.self, HubCommand.self,
            DoctorCommand.self, ProbeUserNamespace.self,
            Version.self,
            Show.self, ShowConf.self, SetConf.self, AddConf.self, SyncConf.self,
            RouteNetlinkSteps.self,
        ]
    )

    /// Runs the command; errors become one line on stderr and exit status 1.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as CLIError {
            fail(error.message)
        } catch let error as ExitCode {
            Glibc.exit(error.rawValue)
        } catch {
            exit(withError: error)
        }
    }
}

/// An error the command line reports as one line, `wgns: MESSAGE`.
struct CLIError: Error {
    var message: String
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

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")
    func run() { print("wgns \(wgnsVersion)") }
}
