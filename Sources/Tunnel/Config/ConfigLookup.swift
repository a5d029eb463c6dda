#if canImport(Glibc)
import Glibc
#endif

/// Configs by name: `wgns up NAME`, as `wg-quick up NAME` finds
/// /etc/wireguard/NAME.conf, but in places a user without root owns.
public enum ConfigLookup {
    /// True for a bare name: no `/` and no `.conf` ending.
    public static func isName(_ argument: String) -> Bool {
        !argument.isEmpty && argument != "." && argument != ".." && !argument.contains("/") && !argument.hasSuffix(".conf")
    }

    /// The folders a name is looked up in, in order: `$WGNS_CONFIG_DIR`,
    /// `$XDG_CONFIG_HOME/wgns` (default `$HOME/.config/wgns`), then
    /// `$HOME/.config/wireguard`. HOME comes from the environment only
    /// (no password-database lookup: on clusters that is LDAP).
    public static func folders(environment get: (String) -> String? = { getenv($0).map { String(cString: $0) } }) -> [String] {
        func nonEmpty(_ k: String) -> String? { get(k).flatMap { $0.isEmpty ? nil : $0 } }
        var out: [String] = []
        if let d = nonEmpty("WGNS_CONFIG_DIR") { out.append(d) }
        let home = nonEmpty("HOME")
        if let x = nonEmpty("XDG_CONFIG_HOME"), x.hasPrefix("/") {
            out.append(x + "/wgns")
        } else if let home {
            out.append(home + "/.config/wgns")
        }
        if let home { out.append(home + "/.config/wireguard") }
        return out
    }

    /// The path `wgns up` uses for `argument`: a path as given; a bare name
    /// that is not a file or folder here becomes the first `FOLDER/NAME.conf`
    /// that exists. The error names every place looked in.
    public static func path(for argument: String) throws(TunnelError) -> String {
        guard isName(argument), access(argument, F_OK) != 0 else { return argument }
        let places = folders()
        for f in places {
            let p = "\(f)/\(argument).conf"
            if access(p, F_OK) == 0 { return p }
        }
        let looked = (["./\(argument)"] + places.map { "\($0)/\(argument).conf" }).joined(separator: ", ")
        throw TunnelError(.config, "no config named \(argument): looked for \(looked) (set WGNS_CONFIG_DIR, or give a path)")
    }
}
