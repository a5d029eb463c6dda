/// What a receiver index stands for: a handshake in progress (its peer), or
/// an established session.
enum IndexEntry {
    /// A handshake of this peer (initiation sent, or response sent).
    case handshake(PeerState)
    /// A session's keypair.
    case keypair(Keypair)
}

/// The device's receiver indices (`peerlookup.c`, `indextable.go`): random
/// 32-bit numbers, unique among the live ones, so that the index in a
/// message finds its handshake or keypair without saying who the peer is.
struct IndexTable {
    private var entries: [UInt32: IndexEntry] = [:]

    /// How many indices are live.
    var count: Int { entries.count }

    /// A new random index, not in use, bound to `entry`.
    mutating func insert(_ entry: IndexEntry) -> UInt32 {
        while true {
            var rng = SodiumRandom()
            let index = UInt32.random(in: .min ... .max, using: &rng)
            if entries[index] == nil {
                entries[index] = entry
                return index
            }
        }
    }

    /// Binds an existing index to another entry (a handshake becoming a keypair).
    mutating func replace(_ index: UInt32, with entry: IndexEntry) {
        entries[index] = entry
    }

    /// The entry of `index`.
    func lookup(_ index: UInt32) -> IndexEntry? { entries[index] }

    /// Frees `index` if it still names the handshake of `peer`.
    mutating func removeHandshake(_ index: UInt32, of peer: PeerState) {
        if case .handshake(let p)? = entries[index], p === peer { entries[index] = nil }
    }

    /// Frees `index` if it still names `keypair`.
    mutating func removeKeypair(_ index: UInt32, _ keypair: Keypair) {
        if case .keypair(let k)? = entries[index], k === keypair { entries[index] = nil }
    }
}

/// `RandomNumberGenerator` over libsodium's `randombytes_buf`.
struct SodiumRandom: RandomNumberGenerator {
    /// 64 random bits.
    mutating func next() -> UInt64 {
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { Crypto.random($0) }
        return v
    }
}
