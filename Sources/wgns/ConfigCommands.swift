import Tunnel
#if canImport(Glibc)
import Glibc
#endif

struct Check {
    static let command = Command(
        name: "check", abstract: "Validate config files; one line per error, exit 1 if any is invalid; on stdout, a line per wg-quick setting (Table, hooks) and what wgns up does with it.",
        options: [resolve],
        arguments: [Argument("CONFIG", .oneOrMore, "Config files (wg-quick format, with an optional [Namespace] section).")]
    ) { a in try Check(files: a.positionals, resolve: a.flag(resolve)).run() }

    static let resolve = Option.flag("resolve", "Also resolve each endpoint host name as `wgns up` does (IPv4 first, temporary failures retried as wg does) and print `CONFIG: endpoint NAME:PORT is ADDRESS:PORT`.")

    var files: [String]
    var resolve = false

    func run() throws {
        var bad = false
        for file in files {
            do {
                let config = try TunnelConfig(contentsOf: file)
                if let w = config.exposureWarning(file: file) { printError(w) }
                try config.validateKeyFiles(file: file)
                try config.validateForUp(file: file)
                var out = config.wgQuickSettingsReport(file: file).map { $0 + "\n" }.joined()
                if resolve {
                    for e in config.peers.compactMap(\.endpoint) where e.address == nil {
                        out += "\(file): endpoint \(e) is \(try Resolver.resolve(e, prefer: .ipv4, context: file))\n"
                    }
                }
                if !out.isEmpty { try Output.write(out) }
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
        let config = try TunnelConfig(contentsOf: file)
        let text: String
        // A key file's error names the key file; say which config wanted it.
        do { text = try config.rendered(.stripped) } catch { throw CLIError("\(file): \(error)") }
        // As `wg-quick strip` (bash's `echo "$WG_CONFIG"`): the text, then an empty line.
        try writeSecret(text)
    }
}
