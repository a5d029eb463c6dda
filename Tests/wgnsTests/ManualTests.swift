import Foundation
import Testing
import TestSupport

/// The man page (`wgns _man`) and the completions (`wgns _completions
/// bash|zsh|fish`) against the command table as `--help` shows it: every
/// command and every option is in each, hidden commands in none, and the
/// shells and groff accept them.
@Suite struct ManualTests {
    /// A command as its help shows it: its path, its subcommands, its long options.
    struct Listed {
        var path: String
        var subcommands: [String]
        var options: [String]
    }

    /// Rows of the `title:` table of a help text (lines indented by exactly
    /// two spaces), their first column.
    static func rows(_ help: String, _ title: String) -> [String] {
        var inside = false, out: [String] = []
        for line in help.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasSuffix(":") && !line.hasPrefix(" ") { inside = line == "\(title):"; continue }
            guard inside, line.hasPrefix("  "), !line.hasPrefix("   "),
                  let first = line.dropFirst(2).split(separator: "  ").first else { continue }
            out.append(String(first))
        }
        return out
    }

    /// Every command reachable from `wgns --help`, with `wgns CMD --help`'s options.
    static func listed() throws -> [Listed] {
        var out: [Listed] = []
        func walk(_ path: [String]) throws {
            let help = try run(wgnsBinary, Array(path.dropFirst()) + ["--help"])
            #expect(help.status == 0, "\(path): \(help.stderr)")
            let subs = rows(help.stdout, "Commands").filter { $0 != "help" }
            let options = rows(help.stdout, "Options").flatMap { row in
                row.split(separator: " ").map { $0.trimmingCharacters(in: [","]) }.filter { $0.hasPrefix("--") }
            }
            out.append(Listed(path: path.joined(separator: " "), subcommands: subs, options: options))
            for s in subs { try walk(path + [s]) }
        }
        try walk(["wgns"])
        return out
    }

    static func generated(_ args: [String]) throws -> String {
        let r = try run(wgnsBinary, args)
        #expect(r.status == 0 && r.stderr.isEmpty, "\(args): \(r.stderr)")
        return r.stdout
    }

    static let hidden = ["_holder", "_probe-userns", "_man", "_completions"]

    /// The help is what is compared against: make sure it was read.
    @Test func helpListsTheTable() throws {
        let all = try Self.listed()
        let paths = all.map(\.path)
        for p in ["wgns", "wgns up", "wgns vpn", "wgns vpn new", "wgns show", "wgns version", "wgns check"] {
            #expect(paths.contains(p), "\(paths)")
        }
        #expect(all.first { $0.path == "wgns up" }?.options.contains("--carrier") == true)
        #expect(all.first { $0.path == "wgns" }?.options.contains("--version") == true)
        #expect(all.count > 20)
    }

    @Test func manPageHasEveryCommandAndOption() throws {
        let page = try Self.generated(["_man"])
        // Each command's section: from its .SS line to the next.
        var sections: [String: String] = [:]
        var current = "wgns"
        for line in page.split(separator: "\n") {
            if line.hasPrefix(".SS \"") {
                // The usage line: the command's words, then OPTIONS, ARGS, [, or \-\-.
                let words = line.dropFirst(5).filter { $0 != "\"" }.split(separator: " ")
                current = words.prefix { $0.first?.isLowercase == true && !$0.contains("\\") }.joined(separator: " ")
            }
            sections[current, default: ""] += line + "\n"
        }
        for c in try Self.listed() {
            let text = sections[c.path] ?? ""
            #expect(!text.isEmpty, "no section for \(c.path)")
            for o in c.options where o != "--help" {
                #expect(text.contains(o.replacingOccurrences(of: "-", with: "\\-")), "\(c.path): \(o) missing")
            }
        }
        for h in Self.hidden { #expect(!page.contains(h.replacingOccurrences(of: "-", with: "\\-")), "\(h)") }
    }

    @Test func manPageRendersWithoutWarnings() throws {
        let dir = NSTemporaryDirectory() + "wgns-man-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.generated(["_man"]).write(toFile: dir + "/wgns.1", atomically: false, encoding: .utf8)
        let groff = try #require(which("groff"), "groff missing (scripts/deps.sh installs groff-base)")
        let r = try run(groff, ["-man", "-Tutf8", "-ww", "-z", dir + "/wgns.1"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        let text = try run(groff, ["-man", "-Tutf8", "-P-c", "-P-b", "-P-u", dir + "/wgns.1"])
        // A usage line as --help gives it, rendered back to plain text.
        let help = try run(wgnsBinary, ["vpn", "new", "--help"]).stdout
        let usage = help.split(separator: "\n").first.map { $0.dropFirst("Usage: ".count) } ?? ""
        #expect(usage.hasPrefix("wgns vpn new ") && text.stdout.contains(usage), "\(usage)")
    }

    /// The line of a bash or zsh script that opens `path`'s case branch, and what follows it up to `;;`.
    static func branch(_ script: String, _ path: String) -> String {
        guard let r = script.range(of: "\n        '\(path)')") else { return "" }
        let rest = script[r.upperBound...]
        return String(rest[..<(rest.range(of: ";;")?.lowerBound ?? rest.endIndex)])
    }

    @Test func bashCompletionHasEveryCommandAndOptionAndWorks() throws {
        let script = try Self.generated(["_completions", "bash"])
        for c in try Self.listed() {
            let b = Self.branch(script, c.path)
            #expect(!b.isEmpty, "no branch for \(c.path)")
            let words = b.split(whereSeparator: { $0 == " " || $0 == "'" || $0 == "=" })
            for o in c.options { #expect(words.contains(Substring(o)), "\(c.path): \(o) missing") }
            for s in c.subcommands { #expect(words.contains(Substring(s)), "\(c.path): \(s) missing") }
        }
        for h in Self.hidden { #expect(!script.contains(h), "\(h)") }
        let file = NSTemporaryDirectory() + "wgns-\(UUID().uuidString).bash"
        try script.write(toFile: file, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try run("/bin/bash", ["-n", file]).status == 0)
        // What bash offers after each line (the last word is the one completed).
        let probe = #"""
            source "$1"
            t() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _wgns; echo "${COMPREPLY[*]}"; }
            t wgns up --car
            t wgns up --carrier ""
            t wgns vpn ""
            t wgns vpn new --p
            t wgns help v
            t wgns hub --backend k
            t wgns _
            """#
        let r = try run("/bin/bash", ["-c", probe, "probe", file])
        #expect(r.stdout == "--carrier\nslirp4netns pasta none\nnew status\n--peers --psk --ports\nvpn version\nkernel\n\n", "\(r.stdout) \(r.stderr)")
    }

    @Test func zshCompletionHasEveryCommandAndOption() throws {
        let script = try Self.generated(["_completions", "zsh"])
        #expect(script.hasPrefix("#compdef wgns\n"))
        for c in try Self.listed() {
            let b = Self.branch(script, c.path)
            #expect(!b.isEmpty, "no branch for \(c.path)")
            for o in c.options { #expect(b.contains("'\(o):"), "\(c.path): \(o) missing") }
            for s in c.subcommands { #expect(b.contains("'\(s):"), "\(c.path): \(s) missing") }
        }
        for h in Self.hidden { #expect(!script.contains(h), "\(h)") }
        let zsh = try #require(which("zsh"), "zsh missing (scripts/deps.sh installs it)")
        let file = NSTemporaryDirectory() + "_wgns-\(UUID().uuidString)"
        try script.write(toFile: file, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let r = try run(zsh, ["-n", file])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func fishCompletionHasEveryCommandAndOptionAndWorks() throws {
        let script = try Self.generated(["_completions", "fish"])
        let lines = script.split(separator: "\n")
        for c in try Self.listed() {
            let cond = "-n '__wgns_is '\\''\(c.path)'\\'''"
            let mine = lines.filter { $0.contains(cond) }
            for o in c.options {
                #expect(mine.contains { $0.contains("-l '\(o.dropFirst(2))'") }, "\(c.path): \(o) missing")
            }
            for s in c.subcommands { #expect(mine.contains { $0.contains("-a '\(s)'") }, "\(c.path): \(s) missing") }
        }
        for h in Self.hidden { #expect(!script.contains(h), "\(h)") }
        let fish = try #require(which("fish"), "fish missing (scripts/deps.sh installs it)")
        let file = NSTemporaryDirectory() + "wgns-\(UUID().uuidString).fish"
        try script.write(toFile: file, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try run(fish, ["-n", file]).status == 0)
        let r = try run(fish, ["--no-config", "-c", "source $argv[1]; complete -C 'wgns up --carrier '; complete -C 'wgns vpn '", file])
        let offered = r.stdout.split(separator: "\n").map { $0.prefix { $0 != "\t" } }
        #expect(offered == ["none", "pasta", "slirp4netns", "new", "status"], "\(r.stdout) \(r.stderr)")
    }

    /// One option row of a command's help: `-v, --verbose`, `--carrier slirp4netns|pasta`.
    struct Row {
        var long: String
        var short: String?
        var value: String?
    }

    /// Every option of every command, as the table gives it to `--help`.
    static func optionRows() throws -> [(path: String, rows: [Row])] {
        try listed().map { c in
            let help = try run(wgnsBinary, c.path.split(separator: " ").dropFirst().map(String.init) + ["--help"]).stdout
            let rows = rows(help, "Options").map { row -> Row in
                let words = row.split(separator: " ").map { $0.trimmingCharacters(in: [","]) }
                let i = words.firstIndex { $0.hasPrefix("--") }!
                return Row(long: String(words[i].dropFirst(2)), short: words[..<i].first.map { String($0.dropFirst()) },
                           value: i + 1 < words.count ? words[i + 1] : nil)
            }
            return (c.path, rows.filter { $0.long != "help" })
        }
    }

    /// Each option of the table, with its short name and its value, in the
    /// man page and in each shell's script: a value of fixed choices offers
    /// them, any other value is asked for, a flag asks for none.
    @Test func everyOptionOfTheTableIsInTheManPageAndEachCompletion() throws {
        let page = try Self.generated(["_man"])
        let bash = try Self.generated(["_completions", "bash"])
        let zsh = try Self.generated(["_completions", "zsh"])
        let fish = try Self.generated(["_completions", "fish"]).split(separator: "\n")
        let all = try Self.optionRows()
        #expect(all.first { $0.path == "wgns up" }?.rows.contains { $0.long == "verbose" && $0.short == "v" } == true)
        #expect(all.first { $0.path == "wgns hub" }?.rows.contains { $0.long == "backend" && $0.value == "auto|kernel|builtin|wireguard-go" } == true)
        func roff(_ s: String) -> String { s.replacingOccurrences(of: "-", with: "\\-") }
        for (path, rows) in all {
            let cond = "-n '__wgns_is '\\''\(path)'\\'''"
            for o in rows {
                var man = (o.short.map { "\\fB\\-\(roff($0))\\fR, " } ?? "") + "\\fB\\-\\-\(roff(o.long))\\fR"
                if let v = o.value { man += " \\fI\(roff(v))\\fR" }
                #expect(page.contains(".TP\n" + man + "\n"), "\(path): \(man)")
                let line = fish.first { $0.contains(cond) && $0.contains("-l '\(o.long)'") } ?? ""
                #expect(!line.isEmpty, "fish \(path): --\(o.long)")
                if let s = o.short {
                    #expect(Self.branch(bash, path).contains(" --\(o.long) -\(s) "), "bash \(path): -\(s)")
                    #expect(Self.branch(zsh, path).contains("'-\(s):"), "zsh \(path): -\(s)")
                    #expect(line.contains("-s '\(s)'"), "fish \(path): -\(s)")
                }
                let head = "\n        '\(path) --\(o.long)') "
                guard let v = o.value else {
                    #expect(!bash.contains(head) && !zsh.contains(head), "\(path): flag --\(o.long) asks for a value")
                    #expect(!line.contains(" -x") && !line.contains(" -r"), "fish \(path): flag --\(o.long) asks for a value")
                    continue
                }
                #expect(bash.contains(head) && zsh.contains(head), "\(path): no value case for --\(o.long)")
                #expect(line.contains(" -x") || line.contains(" -r"), "fish \(path): --\(o.long) asks for no value")
                guard v.contains("|"), let b = bash.range(of: head), let z = zsh.range(of: head) else { continue }
                let choices = v.split(separator: "|")
                let bashCase = bash[b.upperBound...].prefix { $0 != "\n" }
                let zshCase = zsh[z.upperBound...].prefix { $0 != "\n" }
                #expect(bashCase.contains("'\(choices.joined(separator: " "))'"), "bash \(path) --\(o.long): \(bashCase)")
                #expect(zshCase.contains(choices.map { "'\($0)'" }.joined(separator: " ")), "zsh \(path) --\(o.long): \(zshCase)")
                #expect(line.contains("-a '\(choices.joined(separator: " "))'"), "fish \(path) --\(o.long): \(line)")
            }
        }
    }

    /// `wgns --version` is `wgns version`: the version and the commit, or
    /// "unknown" for a build that was not told it.
    @Test func versionNamesTheCommit() throws {
        let a = try run(wgnsBinary, ["version"]), b = try run(wgnsBinary, ["--version"])
        #expect(a.status == 0 && b.status == 0 && a.stdout == b.stdout, "\(a.stdout) \(b.stdout)")
        let version = a.stdout.split(separator: " ").dropFirst().first ?? ""
        #expect(a.stdout.hasPrefix("wgns \(version) (commit ") && a.stdout.hasSuffix(")\n"), "\(a.stdout)")
        #expect(version.split(separator: ".").count == 3 && version.allSatisfy { $0 == "." || $0.isNumber }, "\(a.stdout)")
        let commit = a.stdout.dropFirst("wgns \(version) (commit ".count).dropLast(2)
        let hash = commit.hasSuffix("-dirty") ? commit.dropLast(6) : commit
        #expect(commit == "unknown" || (hash.count == 12 && hash.allSatisfy(\.isHexDigit)), "\(a.stdout)")
    }
}
