// The man page and the shell completions, generated from the command table
// (WGNS.command) so that they never drift from it: `wgns _man` and
// `wgns _completions bash|zsh|fish` (hidden; scripts/dist.sh puts their
// output in the release).

/// `wgns _man`: the wgns(1) page in roff (man macros).
enum ManCommand {
    static let command: Command = Command(
        name: "_man", abstract: "Print the wgns(1) man page (roff), generated from the command table.",
        hidden: true
    ) { _ in try Output.write(Manual.page(WGNS.command)) }
}

/// `wgns _completions SHELL`: a completion script for bash, zsh or fish.
enum CompletionsCommand {
    enum Shell: String, CaseIterable { case bash, zsh, fish }

    static let command: Command = Command(
        name: "_completions", abstract: "Print a shell completion script, generated from the command table.",
        hidden: true,
        arguments: [Argument("SHELL", "bash, zsh or fish.")]
    ) { a in
        guard let shell = Shell(rawValue: a.positionals[0]) else {
            throw CLIError.usage("unknown shell '\(a.positionals[0])': expected one of bash, zsh, fish")
        }
        let tree = Manual.commands(WGNS.command)
        switch shell {
        case .bash: try Output.write(Manual.bash(tree))
        case .zsh: try Output.write(Manual.zsh(tree))
        case .fish: try Output.write(Manual.fish(tree))
        }
    }
}

/// The generators. Every visible command, every option and every argument
/// of the table appears in each output; hidden commands appear in none.
enum Manual {
    /// One visible command with its full path (`wgns vpn new`), and what
    /// completes its words.
    struct Entry {
        var path: [String]
        var command: Command
        /// Its visible subcommands (plus `help` at the top).
        var children: [(name: String, abstract: String)]
        /// Options as the completions offer them, `--help` included.
        var options: [Option]
        var pathText: String { path.joined(separator: " ") }
    }

    static let helpOption = Option.flag("help", short: "h", "Show help for the command.")

    /// `wgns help COMMAND...`, which the parser handles itself.
    static let helpCommand = Command(name: "help", abstract: "Show help for a command: `wgns help vpn new`.",
                                     arguments: [Argument("COMMAND", .any, "A command, with its subcommand if it has one.")])

    /// The table flattened, depth first, hidden commands left out.
    static func commands(_ root: Command) -> [Entry] {
        var out: [Entry] = []
        func walk(_ c: Command, _ path: [String]) {
            let subcommands = c.subcommands.filter { !$0.hidden } + (path == [root.name] ? [helpCommand] : [])
            let children = subcommands.map { ($0.name, $0.abstract) }
            let options = c.options + (path == [root.name, "help"] ? [] : [helpOption])
            out.append(Entry(path: path, command: c, children: children, options: options))
            for s in subcommands { walk(s, path + [s.name]) }
        }
        walk(root, [root.name])
        return out
    }

    /// The choices of a value written `a|b|c`; nil for any other value name.
    static func choices(_ value: String?) -> [String]? {
        guard let value, value.contains("|"), !value.contains(" ") else { return nil }
        return value.split(separator: "|").map(String.init)
    }

    /// What a value or argument named `name` completes to.
    enum Kind { case files, directories, choices([String]), nothing }

    static func kind(ofValue name: String) -> Kind {
        if let c = choices(name) { return .choices(c) }
        switch name {
        case "CONFIG", "FILE": return .files
        case "DIR": return .directories
        default: return .nothing
        }
    }

    /// What the positional arguments of `e` complete to.
    static func argumentKind(_ e: Entry) -> Kind {
        if e.path == ["wgns", "help"] { return .nothing }
        let kinds = e.command.arguments.map { kind(ofValue: $0.name) }
        if kinds.contains(where: { if case .files = $0 { return true }; return false }) { return .files }
        if kinds.contains(where: { if case .directories = $0 { return true }; return false }) { return .directories }
        return .nothing
    }

    // MARK: man page

    /// roff text: backslashes, dashes and a leading dot or quote escaped;
    /// `code` in bold.
    static func roff(_ text: String) -> String {
        var out = "", bold = false
        for ch in text {
            switch ch {
            case "\\": out += "\\e"
            case "-": out += "\\-"
            case "`": out += bold ? "\\fR" : "\\fB"; bold.toggle()
            default: out.append(ch)
            }
        }
        if bold { out += "\\fR" }
        if out.hasPrefix(".") || out.hasPrefix("'") { out = "\\&" + out }
        return out
    }

    /// Paragraphs: an empty line starts a new one (.PP), a line break
    /// inside one stays a line break (.br).
    static func paragraphs(_ text: String) -> String {
        var out = ""
        var first = true, inParagraph = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty { inParagraph = false; continue }
            if !inParagraph && !first { out += ".PP\n" } else if inParagraph { out += ".br\n" }
            out += roff(String(line)) + "\n"
            first = false
            inParagraph = true
        }
        return out
    }

    static func page(_ root: Command) -> String {
        let entries = commands(root)
        var out = """
        .TH WGNS 1 "" "wgns \(wgnsVersion)" "User Commands"
        .SH NAME
        wgns \\- \(roff(root.abstract))
        .SH SYNOPSIS
        .B wgns
        .I COMMAND
        .RI [ ARGS ...]
        .br
        .B wgns help
        .I COMMAND
        .br
        .B wgns \\-\\-version
        .SH DESCRIPTION

        """
        out += paragraphs(root.discussion)
        out += ".PP\nEvery command takes \\fB\\-h\\fR, \\fB\\-\\-help\\fR. A mistake on the command line is one line on standard error and exit status 64; other errors are one line and exit status 1.\n"
        if !root.options.isEmpty {
            out += ".SH OPTIONS\n"
            for o in root.options { out += option(o) }
        }
        out += ".SH COMMANDS\n"
        for e in entries.dropFirst() {
            out += ".SS \"\(roff(e.command.usage(path: e.pathText)))\"\n"
            out += paragraphs(e.command.abstract)
            if !e.command.discussion.isEmpty { out += ".PP\n" + paragraphs(e.command.discussion) }
            if !e.children.isEmpty {
                out += ".PP\nCommands:\n"
                for c in e.children { out += ".TP\n.B \(roff(c.name))\n\(paragraphs(c.abstract))" }
            }
            for a in e.command.arguments {
                let name = a.count == .oneOrMore || a.count == .any ? a.name + "..." : a.name
                out += ".TP\n.I \(roff(name))\n\(paragraphs(a.help))"
            }
            if let p = e.command.passthrough {
                out += ".TP\n\\fB\\-\\-\\fR \\fI\(roff(p))\\fR\nPassed on as given, never parsed.\n"
            }
            if e.children.isEmpty { for o in e.command.options { out += option(o) } }
        }
        out += """
        .SH ENVIRONMENT
        .TP
        .B WG_ENDPOINT_RESOLUTION_RETRIES
        How often a temporary failure to resolve an endpoint's host name is retried (default 15; \\fBinfinity\\fR: for ever), as \\fBwg\\fR(8) reads it.
        .TP
        .B SHELL
        The command \\fBwgns up\\fR runs when none is given (default \\fB/bin/sh\\fR).
        .SH FILES
        The binary needs \\fB/proc\\fR mounted, and nothing else.
        .SH SEE ALSO
        .BR wg (8),
        .BR wg\\-quick (8),
        .BR slirp4netns (1),
        .BR pasta (1)

        """
        return out
    }

    static func option(_ o: Option) -> String {
        var head = o.short.map { "\\fB\\-\(roff($0))\\fR, " } ?? ""
        head += "\\fB\\-\\-\(roff(o.long))\\fR"
        if let v = o.value { head += " \\fI\(roff(v))\\fR" }
        return ".TP\n\(head)\n\(paragraphs(o.help + (o.required ? " Required." : "")))"
    }

    // MARK: completions

    /// A word in single quotes for sh, bash, zsh and fish alike.
    static func quoted(_ s: String) -> String {
        "'" + s.replacingAll("'", with: "'\\''") + "'"
    }

    /// The first sentence of a help text, without its full stop and
    /// backticks, for a one-line description.
    static func short(_ s: String) -> String {
        var plain = Substring(s.filter { $0 != "`" })
        if let r = plain.firstRange(of: ". ") { plain = plain[..<r.lowerBound] }
        return String(plain.hasSuffix(".") ? plain.dropLast() : plain)
    }

    /// What a bash or a zsh script says in its own words; `caseScript`
    /// walks the table once for both.
    struct Dialect {
        /// The script up to the loop over the words (its function and locals).
        var head: String
        /// The loop's first index, its end (the word being completed) and
        /// the word at `i`.
        var first: Int, current: String, word: String
        /// Lines that complete what follows `--`: a command line of its own.
        var rest: [String]
        /// The variable holding the command the words so far name.
        var variable: String
        /// What completes an option's value: one of a list, a file, a
        /// directory, or nothing (given the value's name).
        var choices: ([String]) -> String, files: String, directories: String, nothing: (String) -> String
        /// Lines between the case on the previous word and the case on the command.
        var locals = ""
        /// What follows `'PATH')` in the case on the command, up to its `;;`:
        /// the command's options and the words (subcommands) it takes.
        var branch: (_ entry: Entry, _ words: [(name: String, abstract: String)]) -> String
        /// The rest of the script.
        var tail: String
    }

    /// A bash or zsh script: a loop that finds the command the words so far
    /// name, a case on the previous word (an option's value), and a case on
    /// the command (its options, subcommands and arguments).
    static func caseScript(_ tree: [Entry], _ d: Dialect) -> String {
        let v = d.variable
        var out = d.head
        out += "    for ((i = \(d.first); i < \(d.current); i++)); do\n        w=${\(d.word)}\n"
        out += "        if [[ $w == -- ]]; then\n            # The rest is a command line of its own.\n"
        out += d.rest.map { "            \($0)\n" }.joined() + "            return\n        fi\n"
        out += "        case \"$\(v) $w\" in\n"
        let parents = tree.flatMap { e in e.children.map { "\(e.pathText) \($0.name)" } }
        out += "            " + parents.map { "\"\($0)\"" }.joined(separator: "|") + ") \(v)=\"$\(v) $w\" ;;\n"
        out += "        esac\n    done\n    case \"$\(v) $prev\" in\n"
        for e in tree {
            for o in e.options {
                guard let name = o.value else { continue }
                let value = switch kind(ofValue: name) {
                case .choices(let c): d.choices(c)
                case .files: d.files
                case .directories: d.directories
                case .nothing: d.nothing(name)
                }
                out += "        \(quoted(e.pathText + " --" + o.long))) \(value); return ;;\n"
            }
        }
        out += "    esac\n" + d.locals + "    case $\(v) in\n"
        // `wgns help` takes the top-level commands as its words.
        let commands = tree[0].children.filter { $0.name != "help" }
        for e in tree {
            out += "        \(quoted(e.pathText)))" + d.branch(e, e.path == ["wgns", "help"] ? commands : e.children) + ";;\n"
        }
        return out + "    esac\n" + d.tail
    }

    static func bash(_ tree: [Entry]) -> String {
        caseScript(tree, Dialect(
            head: """
            # bash completion for wgns, generated by wgns from its command table.
            _wgns() {
                local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} path=wgns i w
                COMPREPLY=()

            """,
            first: 1, current: "COMP_CWORD", word: "COMP_WORDS[i]",
            rest: ["COMPREPLY=($(compgen -c -- \"$cur\"))"],
            variable: "path",
            choices: { "COMPREPLY=($(compgen -W \(quoted($0.joined(separator: " "))) -- \"$cur\"))" },
            files: "COMPREPLY=($(compgen -f -- \"$cur\"))",
            directories: "COMPREPLY=($(compgen -d -- \"$cur\"))",
            nothing: { _ in ":" },
            locals: "    local opts= words= files=\n",
            branch: { e, words in
                var out = " opts=\(quoted(e.options.map { "--" + $0.long + ($0.short.map { " -" + $0 } ?? "") }.joined(separator: " ")))"
                if !words.isEmpty { out += " words=\(quoted(words.map(\.name).joined(separator: " ")))" }
                switch argumentKind(e) {
                case .files: out += " files=f"
                case .directories: out += " files=d"
                default: break
                }
                return out + " "
            },
            tail: """
                if [[ $cur == -* ]]; then
                    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
                elif [[ -n $words ]]; then
                    COMPREPLY=($(compgen -W "$words" -- "$cur"))
                elif [[ -n $files ]]; then
                    COMPREPLY=($(compgen -$files -- "$cur"))
                fi
            }
            complete -o filenames -F _wgns wgns

            """))
    }

    static func zsh(_ tree: [Entry]) -> String {
        func described(_ name: String, _ text: String) -> String {
            quoted(name.replacingAll(":", with: "\\:") + ":" + short(text))
        }
        var arguments = ""
        for e in tree where e.children.isEmpty {
            switch argumentKind(e) {
            case .files: arguments += "            \(quoted(e.pathText))) _files ;;\n"
            case .directories: arguments += "            \(quoted(e.pathText))) _files -/ ;;\n"
            default: break
            }
        }
        return caseScript(tree, Dialect(
            head: """
            #compdef wgns
            # zsh completion for wgns, generated by wgns from its command table.
            _wgns() {
                local cmdpath=wgns cur=${words[CURRENT]} prev=${words[CURRENT-1]} i w
                local -a opts subs

            """,
            first: 2, current: "CURRENT", word: "words[i]",
            rest: ["shift $i words", "(( CURRENT -= i ))", "_normal"],
            variable: "cmdpath",
            choices: { "compadd -- \($0.map(quoted).joined(separator: " "))" },
            files: "_files",
            directories: "_files -/",
            nothing: { "_message \(quoted($0))" },
            branch: { e, words in
                var opts = e.options.map { described("--" + $0.long, $0.help) }
                opts += e.options.compactMap { o in o.short.map { described("-" + $0, o.help) } }
                return "\n            opts=(\(opts.joined(separator: " ")))\n"
                    + "            subs=(\(words.map { described($0.name, $0.abstract) }.joined(separator: " ")))\n            "
            },
            tail: """
                if [[ $cur == -* ]]; then
                    _describe -t options option opts
                elif (( ${#subs} )); then
                    _describe -t commands command subs
                else
                    case $cmdpath in

            """ + arguments + """
                    esac
                fi
            }
            _wgns "$@"

            """))
    }

    static func fish(_ tree: [Entry]) -> String {
        var out = """
        # fish completion for wgns, generated by wgns from its command table.
        # __wgns_path: the command the words so far name (`wgns vpn new`).
        function __wgns_path
            set -l path wgns
            for w in (commandline -opc)[2..-1]
                if test "$w" = --
                    # The rest is a command line of its own.
                    echo wgns --
                    return
                end
                switch "$path $w"
                    case \(tree.flatMap { e in e.children.map { quoted("\(e.pathText) \($0.name)") } }.joined(separator: " "))
                        set path $path $w
                end
            end
            echo $path
        end
        function __wgns_is
            test (__wgns_path) = "$argv[1]"
        end
        complete -c wgns -f

        """
        for e in tree {
            let cond = quoted("__wgns_is " + quoted(e.pathText))
            for c in e.children {
                out += "complete -c wgns -n \(cond) -a \(quoted(c.name)) -d \(quoted(short(c.abstract)))\n"
            }
            if e.path == ["wgns", "help"] {
                for c in tree[0].children where c.name != "help" {
                    out += "complete -c wgns -n \(cond) -a \(quoted(c.name)) -d \(quoted(short(c.abstract)))\n"
                }
            }
            for o in e.options {
                var line = "complete -c wgns -n \(cond) -l \(quoted(o.long))"
                if let s = o.short { line += " -s \(quoted(s))" }
                if let v = o.value {
                    switch kind(ofValue: v) {
                    case .choices(let c): line += " -x -a \(quoted(c.joined(separator: " ")))"
                    case .files: line += " -r -F"
                    case .directories: line += " -x -a '(__fish_complete_directories)'"
                    case .nothing: line += " -x"
                    }
                }
                out += line + " -d \(quoted(short(o.help)))\n"
            }
            switch argumentKind(e) {
            case .files: out += "complete -c wgns -n \(cond) -F\n"
            case .directories: out += "complete -c wgns -n \(cond) -a '(__fish_complete_directories)'\n"
            default: break
            }
        }
        out += "complete -c wgns -n '__wgns_is \"wgns --\"' -F\n"
        return out
    }
}

extension String {
    /// Every `target` replaced by `replacement` (no Foundation here).
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for ch in self { if ch == target { out += replacement } else { out.append(ch) } }
        return out
    }
}
