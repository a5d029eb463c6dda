// The command line: a table of commands, each with its options, its
// positional arguments and a run closure, and one small parser for all of
// them. Help, the man page and the completions (Manual.swift) are all read
// from the table. Hand-written instead of swift-argument-parser because that one builds
// its command tree through reflection and protocol-conformance lookups at
// every start (3 ms natively, over 100 ms under QEMU TCG) and pulls
// FoundationEssentials into the binary.

/// One `--long` option of a command: a flag, or an option that takes a value.
/// Each is declared once, as a `static let` of its command (or of an option
/// group such as `SessionOptions`), and that one value is both the table's
/// entry and the key `Parsed` looks it up by: a misspelt option is a compile
/// error, never a silent nil.
struct Option: Sendable {
    /// The long name, without `--`.
    var long: String
    /// The short name (`v` for `-v`), if it has one.
    var short: String?
    /// The value's name in help (`NAME`); nil for a flag.
    var value: String?
    var help: String
    /// Must be given (an error names it if not).
    var required = false

    /// A flag: `--long` (or `-s`), no value.
    static func flag(_ long: String, short: String? = nil, _ help: String) -> Option {
        Option(long: long, short: short, value: nil, help: help)
    }

    /// An option with a value: `--long VALUE` or `--long=VALUE`.
    static func option(_ long: String, _ value: String, _ help: String, required: Bool = false) -> Option {
        Option(long: long, short: nil, value: value, help: help, required: required)
    }
}

/// A positional argument of a command.
struct Argument: Sendable {
    enum Count: Sendable { case one, optional, oneOrMore, any }
    /// Its name in help and errors (`NAME`, `CONFIG`).
    var name: String
    var count: Count
    var help: String

    init(_ name: String, _ count: Count, _ help: String) {
        self.name = name
        self.count = count
        self.help = help
    }

    /// A required argument given once.
    init(_ name: String, _ help: String) { self.init(name, .one, help) }
}

/// A command: what it takes, its help, and what it does.
struct Command: Sendable {
    var name: String
    var abstract: String
    var discussion = ""
    /// Left out of help (internal commands); still runs.
    var hidden = false
    var options: [Option] = []
    var arguments: [Argument] = []
    /// What follows `--` (in help), for a command that passes it on
    /// unparsed; once its arguments are all given, the first further
    /// positional starts it too. Nil: `--` only ends the options.
    var passthrough: String?
    var subcommands: [Command] = []
    var run: (@Sendable (Parsed) throws -> Void)?
}

/// What the command line gave a command.
struct Parsed: Sendable {
    /// Options and flags in the order given, by long name (a flag's value is "").
    var options: [(name: String, value: String)] = []
    /// Positional arguments, in order (counts already checked).
    var positionals: [String] = []
    /// Everything after `--` (or after the last argument), never parsed.
    var passthrough: [String] = []
    var wantsHelp = false
    /// `wgns up`, for error messages.
    var commandPath = "wgns"
    /// The command's options, to catch a lookup of one it does not have.
    var declared: [Option] = []

    /// Whether flag (or option) `o` was given.
    func flag(_ o: Option) -> Bool { !given(o).isEmpty }

    /// The last value given for option `o`.
    func value(_ o: Option) -> String? { given(o).last }

    /// Every value given for a repeatable option, in order.
    func values(_ o: Option) -> [String] { given(o) }

    /// The values given for `o`; asking for an option of another command
    /// is a programming error, caught in debug builds (the tests').
    private func given(_ o: Option) -> [String] {
        assert(declared.contains { $0.long == o.long }, "\(commandPath) has no option --\(o.long)")
        return options.filter { $0.name == o.long }.map(\.value)
    }

    /// The option's value as a whole number, or a usage error naming it.
    func number<T: FixedWidthInteger>(_ o: Option, as: T.Type = T.self) throws -> T? {
        guard let text = value(o) else { return nil }
        guard let n = T(text) else {
            let range = T.isSigned ? "" : " from 0 to \(T.max)"
            throw CLIError.usage("invalid value '\(text)' for --\(o.long): expected a whole number" + range)
        }
        return n
    }

    /// The option's value as one of `T`'s cases, or a usage error listing them.
    func choice<T: RawRepresentable & CaseIterable>(_ o: Option, as: T.Type = T.self) throws -> T? where T.RawValue == String {
        guard let text = value(o) else { return nil }
        guard let v = T(rawValue: text) else {
            throw CLIError.usage("invalid value '\(text)' for --\(o.long): expected one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return v
    }
}

/// A command's arguments as typed values, in the order swift-argument-parser
/// gives a `ParsableCommand`: made from what was parsed (a bad value is a
/// usage error), checked as a whole by `validate` (a bad combination is a
/// usage error, found before anything is started or created), then run.
protocol Invocation {
    init(_ parsed: Parsed) throws
    mutating func validate() throws
    func run() throws
}

extension Invocation {
    mutating func validate() throws {}

    /// Makes, validates and runs the command: what its table entry runs.
    static func start(_ parsed: Parsed) throws {
        var command = try Self(parsed)
        try command.validate()
        try command.run()
    }
}

extension CLIError {
    /// A mistake on the command line: exit status 64 (EX_USAGE).
    static func usage(_ message: String) -> CLIError {
        var e = CLIError(message)
        e.status = 64
        return e
    }
}

extension Command {
    /// Parses `args` (what follows the command's name) against this
    /// command's options and arguments.
    func parse(_ args: ArraySlice<String>, path: String) throws -> Parsed {
        var p = Parsed(commandPath: path, declared: options)
        let see = " (see '\(path) --help')"
        let takesAll = arguments.contains { $0.count == .oneOrMore || $0.count == .any }
        var k = args.startIndex
        while k < args.endIndex {
            let arg = args[k]
            k += 1
            if arg == "--" {
                if passthrough != nil { p.passthrough = Array(args[k...]) } else { p.positionals += args[k...] }
                break
            }
            if passthrough != nil && !takesAll && p.positionals.count == arguments.count {
                p.passthrough = Array(args[(k - 1)...])
                break
            }
            if arg == "-h" || arg == "--help" {
                p.wantsHelp = true
                return p
            }
            guard arg.hasPrefix("-") && arg != "-" else {
                p.positionals.append(arg)
                continue
            }
            var name = arg, attached: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq])
                attached = String(arg[arg.index(after: eq)...])
            }
            guard let option = options.first(where: { "--" + $0.long == name || $0.short.map { "-" + $0 } == name }) else {
                throw CLIError.usage("unknown option \(name)" + see)
            }
            guard option.value != nil else {
                if attached != nil { throw CLIError.usage("\(name) takes no value" + see) }
                p.options.append((option.long, ""))
                continue
            }
            if let attached {
                p.options.append((option.long, attached))
            } else if k < args.endIndex && !(args[k].hasPrefix("-") && args[k] != "-") {
                p.options.append((option.long, args[k]))
                k += 1
            } else {
                throw CLIError.usage("\(name) needs a value (\(name) \(option.value!))" + see)
            }
        }
        for option in options where option.required && !p.flag(option) {
            throw CLIError.usage("missing --\(option.long) \(option.value ?? "")" + see)
        }
        var given = p.positionals.count
        for a in arguments {
            switch a.count {
            case .one, .oneOrMore:
                if given == 0 { throw CLIError.usage("missing \(a.name)" + see) }
                given = a.count == .one ? given - 1 : 0
            case .optional: given = max(0, given - 1)
            case .any: given = 0
            }
        }
        if given > 0 {
            throw CLIError.usage("unexpected argument '\(p.positionals[p.positionals.count - given])'" + see)
        }
        return p
    }

    /// The command `words` names below this one (`["vpn", "new"]`), if any.
    func find(_ words: ArraySlice<String>) -> Command? {
        guard let first = words.first else { return self }
        return subcommands.first { $0.name == first }?.find(words.dropFirst())
    }

    /// The usage line: `wgns vpn new DIR --peers N --endpoint HOST:PORT [OPTIONS]`.
    func usage(path: String) -> String {
        if !subcommands.isEmpty { return "\(path) COMMAND [ARGS...]" }
        var line = path
        if options.contains(where: { !$0.required }) { line += " [OPTIONS]" }
        for o in options where o.required { line += " --\(o.long) \(o.value ?? "")" }
        for a in arguments {
            switch a.count {
            case .one: line += " \(a.name)"
            case .optional: line += " [\(a.name)]"
            case .oneOrMore: line += " \(a.name)..."
            case .any: line += " [\(a.name)...]"
            }
        }
        if let passthrough { line += " [-- \(passthrough)]" }
        return line
    }

    /// The text `--help` prints.
    func help(path: String) -> String {
        var out = "Usage: \(usage(path: path))\n\n"
        out += wrapped(abstract, indent: 0)
        if !discussion.isEmpty { out += "\n" + wrapped(discussion, indent: 0) }
        func table(_ title: String, _ rows: [(String, String)]) {
            out += "\n\(title):\n"
            for (left, right) in rows {
                let head = "  " + left
                if head.count + 2 > column {
                    out += head + "\n" + wrapped(right, indent: column)
                } else {
                    let text = wrapped(right, indent: column)
                    out += head + String(text.dropFirst(head.count))
                }
            }
        }
        if !subcommands.isEmpty {
            var rows = subcommands.filter { !$0.hidden }.map { ($0.name, $0.abstract) }
            if path == "wgns" { rows.append(("help", "Show help for a command: `wgns help vpn new`.")) }
            table("Commands", rows)
            if !options.isEmpty {
                table("Options", options.map { ("--" + $0.long, $0.help) } + [("-h, --help", "Show this help.")])
            }
            out += "\nSee '\(path) COMMAND --help' for a command's arguments and options.\n"
            return out
        }
        if !arguments.isEmpty || passthrough != nil {
            var rows = arguments.map { a -> (String, String) in
                (a.count == .oneOrMore || a.count == .any ? a.name + "..." : a.name, a.help)
            }
            if let passthrough { rows.append(("-- " + passthrough, "Passed on as given, never parsed.")) }
            table("Arguments", rows)
        }
        var rows = options.map { o -> (String, String) in
            ((o.short.map { "-\($0), " } ?? "") + "--" + o.long + (o.value.map { " " + $0 } ?? ""), o.help)
        }
        rows.append(("-h, --help", "Show this help."))
        table("Options", rows)
        return out
    }
}

/// Where help text's second column starts.
private let column = 26

/// `text`'s lines, each wrapped at 80 columns; continuation lines (and the
/// first, which the caller may overwrite) are indented by `indent` spaces.
private func wrapped(_ text: String, indent: Int) -> String {
    let pad = String(repeating: " ", count: indent)
    var out = ""
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        var current = pad
        for word in line.split(separator: " ") {
            if current.count > indent && current.count + 1 + word.count > 80 {
                out += current + "\n"
                current = pad
            }
            current += (current.count > indent ? " " : "") + word
        }
        out += current + "\n"
    }
    return out
}
