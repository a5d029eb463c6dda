import ArgumentParser
import Tunnel

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate config files; one line per error, exit 1 if any is invalid.")

    @Argument(help: "Config files (wg-quick format, with an optional [Namespace] section).")
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one config file") }
    }

    func run() throws {
        var bad = false
        for file in files {
            do {
                let config = try TunnelConfig(contentsOf: file)
                try config.validateKeyFiles(file: file)
            } catch {
                printError("\(error)")
                bad = true
            }
        }
        if bad { throw ExitCode(1) }
    }
}

struct Strip: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print only what `wg setconf` reads, as `wg-quick strip`.")

    @Argument(help: "A config file.")
    var file: String

    func run() throws {
        do {
            let config = try TunnelConfig(contentsOf: file)
            try writeSecret(String(try config.rendered(.stripped).dropLast()))
        } catch let e as CLIError {
            throw e
        } catch {
            throw CLIError("\(file): \(error)")
        }
    }
}
