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
