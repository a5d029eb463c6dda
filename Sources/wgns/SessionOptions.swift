import Tunnel

/// The options `wgns up` and `wgns hub` share, declared, parsed and checked
/// once (an option group, as swift-argument-parser's `@OptionGroup`).
struct SessionOptions {
    static let name = Option.option(
        "name", "NAME", "Name the tunnel, for `wgns exec`, `wgns show`, `wgns status`, `wgns down` and `wgns list`.")
    static let backend = Option.option("backend", "auto|kernel|builtin|wireguard-go", "The WireGuard backend: auto (the kernel's where it has WireGuard, else builtin), kernel, builtin (wgns's own, its UDP socket on the host, no carrier needed), wireguard-go (`userspace` is an alias).")
    static let verbose = Option.flag("verbose", short: "v", "Show each step with its duration.")
    /// The group as a command's table lists it.
    static let options = [name, backend, verbose]

    var name: String?
    var backend: BackendKind?
    var verbose = false

    /// The group's values; a bad backend or tunnel name is a usage error.
    init(_ a: Parsed) throws {
        name = try a.value(Self.name).map { try tunnelName($0, flag: Self.name) }
        backend = try a.choice(Self.backend)
        verbose = a.flag(Self.verbose)
    }

    /// Puts the group's values into `options`.
    func apply(to options: inout UpOptions) {
        options.name = name
        options.backend = backend
        options.verbose = verbose
    }
}

/// `text` if it can name a tunnel, else a usage error naming `flag` (or,
/// for a positional NAME, the name alone).
func tunnelName(_ text: String, flag: Option? = nil) throws -> String {
    do {
        try NamedTunnel.validate(text)
    } catch {
        throw CLIError.usage((flag.map { "--\($0.long): " } ?? "") + error.message)
    }
    return text
}
