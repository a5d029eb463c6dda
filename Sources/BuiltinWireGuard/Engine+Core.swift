import WGNetlink

extension Engine {
    /// The protocol core for `config` (`wg setconf` semantics: private key,
    /// listen port, peers).
    public static func makeCore(_ config: DeviceConfig) throws -> any EngineCore {
        // Until h/proto's WireGuardDevice is merged, there is no core to make.
        throw IOError(.socket, "this build has no WireGuard protocol core (BuiltinWireGuard.WireGuardDevice)")
    }
}
