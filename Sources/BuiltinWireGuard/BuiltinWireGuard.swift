/// The built-in WireGuard data plane: the protocol (Noise_IKpsk2 handshake,
/// cookies, replay window, timers, cryptokey routing) between a TUN
/// descriptor opened in the tunnel's network namespace and a UDP socket of
/// the host. Primitives come from libsodium (X25519, ChaCha20-Poly1305,
/// XChaCha20-Poly1305) and libb2 (BLAKE2s); nothing here is hand-rolled
/// cryptography.
///
/// The protocol core has no I/O: `WireGuardDevice` takes TUN packets
/// (`handleOutgoing`), UDP datagrams (`handleIncoming`) and time (`tick`,
/// `nextDeadline`) and answers through a `PacketSink`. One file per concern,
/// as the kernel's `drivers/net/wireguard` and wireguard-go's `device/` are
/// laid out:
///
/// | file | concern |
/// |---|---|
/// | `Crypto.swift` | BLAKE2s, HMAC, KDF1-3, X25519, the two AEADs |
/// | `Bytes.swift` | fixed-size values; secrets in locked memory (`SecretBuffer`, `SecretPool`) |
/// | `Messages.swift` | the four wire messages, one encoder and one decoder each |
/// | `Noise.swift` | the handshake: identity, initiation, response, session keys |
/// | `Cookie.swift` | mac1/mac2, cookie replies, the per-source rate limit |
/// | `Keypair.swift` | sessions (current/previous/next), transport encryption |
/// | `ReplayWindow.swift` | the 8192-bit receive window |
/// | `AllowedIPs.swift` | the longest-prefix-match trie |
/// | `IndexTable.swift` | receiver indices |
/// | `Timers.swift` | the constants and the five per-peer timers |
/// | `Peer.swift` | per-peer state, drop counters |
/// | `Send.swift`, `Receive.swift` | the two directions |
/// | `Device.swift`, `Device+Config.swift` | the API, `wg set` and `wg show` semantics |
public enum BuiltinWireGuard {
    /// The protocol's identifier string, as the whitepaper names it.
    public static let identifier = "WireGuard v1 zx2c4 Jason@zx2c4.com"
}
