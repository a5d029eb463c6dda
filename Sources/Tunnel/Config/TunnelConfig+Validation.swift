import KeyStore

extension TunnelConfig {
    /// Checks that every key file the config names exists, is mode 0600 (or
    /// stricter) and holds a valid key. `file` names the config in errors.
    public func validateKeyFiles(file: String) throws(ConfigError) {
        do {
            if case .file? = interface.privateKey { _ = try interface.privateKey!.load() }
            for p in peers { if case .file? = p.presharedKey { _ = try p.presharedKey!.load() } }
        } catch {
            throw ConfigError(file: file, line: 0, error.description)
        }
    }
}

extension TunnelConfig {
    /// Checks what only `wgns up` needs of wg-quick's own settings: that
    /// `Table` names a table `ip` knows, and that `SaveConfig` is not true
    /// (wgns refuses it: see README, "wg-quick's settings").
    public func validateForUp(file: String) throws(ConfigError) {
        _ = try RouteTable(interface, file: file)
        if interface.saveConfig == true {
            throw ConfigError(file: file, line: 0, "SaveConfig = true is refused: wgns does not write a tunnel's state back into its config (it would put resolved addresses and inline keys where host names and key files were); set it to false or remove it")
        }
    }
}

extension TunnelConfig {
    /// One line per wg-quick setting that `wgns up` acts on beyond what
    /// `wg` reads (`Table`, each hook, `SaveConfig`), saying it is accepted
    /// and what is done with it, as `FILE:LINE: ...`.
    public func wgQuickSettingsReport(file: String) -> [String] {
        var out: [String] = []
        if let t = interface.table {
            let what: String
            switch (try? RouteTable(interface, file: file)) ?? .auto {
            case .off: what = "no routes and no rules"
            case .auto: what = "routes as wg-quick's default (a default route through the fwmark table)"
            case .number(let n): what = "routes into table \(n), no rules"
            }
            out.append("\(file):\(t.line): Table = \(t.text) accepted: \(what)")
        }
        for h in Hook.all(in: interface) {
            out.append("\(file):\(h.command.line): \(h.phase.rawValue) accepted: runs with bash inside the tunnel's namespace, %i is the interface")
        }
        if interface.saveConfig == false { out.append("\(file): SaveConfig = false accepted") }
        return out
    }
}
