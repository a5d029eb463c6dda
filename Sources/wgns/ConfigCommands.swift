import Tunnel
#if canImport(Glibc)
import Glibc
#endif

struct Check {
    static let command = Command(
        name: "check", abstract: "Validate config files; one line per error, exit 1 if any is invalid.",
        arguments: [Argument("CONFIG", .oneOrMore, "Config files (wg-quick format, with an optional [Namespace] section).")]
    ) { a in try Check(files: a.positionals).run() }

    var files: [String]

    func run() throws {
        var bad = false
        for file in files {
            do {
                let config = try TunnelConfig(contentsOf: file)
                if let w = config.exposureWarning(file: file) { printError(w) }
                try config.validateKeyFiles(file: file)
            } catch {
                printError("\(error)")
                bad = true
            }
        }
        if bad { exit(1) }
    }
}

struct Strip {
    static let command = Command(
        name: "strip", abstract: "Print only what `wg setconf` reads, as `wg-quick strip`.",
        arguments: [Argument("CONFIG", "A config file.")]
    ) { a in try Strip(file: a.positionals[0]).run() }

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
