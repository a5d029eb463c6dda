/// The built-in WireGuard data plane: the protocol (Noise_IKpsk2 handshake,
/// cookies, replay window, timers, cryptokey routing) between a TUN
/// descriptor opened in the tunnel's network namespace and a UDP socket of
/// the host. Primitives come from libsodium (X25519, ChaCha20-Poly1305,
/// XChaCha20-Poly1305) and libb2 (BLAKE2s); nothing here is hand-rolled
/// cryptography.
public enum BuiltinWireGuard {
    /// The protocol's identifier string, as the whitepaper names it.
    public static let identifier = "WireGuard v1 zx2c4 Jason@zx2c4.com"
}
