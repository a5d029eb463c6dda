import WGNetlink

/// Cryptokey routing (`allowedips.c`, `allowedips.go`): a binary trie per
/// address family from prefix to peer, longest prefix wins. Sending looks
/// up the destination; receiving checks that the packet's source maps back
/// to the peer it came from. A prefix belongs to one peer only: inserting
/// it for another peer moves it, as `wg set ... allowed-ips` does.
///
/// Values are small integer peer slots (0 = none), so a lookup reads only
/// plain integers and allocates nothing. Nodes live in one array per family
/// (freed nodes are reused); each value's prefixes are also kept in a set,
/// so removing a peer touches only its own prefixes, and emptied branches
/// are pruned.
struct AllowedIPs {
    private struct Node {
        var child: (Int32, Int32) = (-1, -1)
        var value: UInt32 = 0
    }

    /// A prefix as the trie keys it: the masked address in 128 bits (IPv4 in the top 32), its length, its family.
    struct Entry: Hashable, Comparable {
        var hi: UInt64
        var lo: UInt64
        var length: UInt8
        var v6: Bool

        static func < (a: Entry, b: Entry) -> Bool {
            (a.v6 ? 1 : 0, a.hi, a.lo, a.length) < (b.v6 ? 1 : 0, b.hi, b.lo, b.length)
        }

        /// Back to an `IPPrefix`.
        var prefix: IPPrefix {
            if v6 {
                var raw = (hi.bigEndian, lo.bigEndian)
                let bytes = withUnsafeBytes(of: &raw) { IPv6Bytes($0) }
                return IPPrefix(address: .v6(bytes), prefixLength: length)!
            }
            let a = UInt32(truncatingIfNeeded: hi >> 32)
            return IPPrefix(address: .v4(UInt8(a >> 24), UInt8(truncatingIfNeeded: a >> 16),
                                         UInt8(truncatingIfNeeded: a >> 8), UInt8(truncatingIfNeeded: a)),
                            prefixLength: length)!
        }
    }

    private struct Trie {
        var nodes: [Node] = [Node()]
        var freeNodes: [Int32] = []
        let bits: Int

        init(bits: Int) { self.bits = bits }

        /// Bit `i` (0 = most significant) of the 128-bit key.
        @inline(__always) static func bit(_ key: (UInt64, UInt64), _ i: Int) -> Int {
            i < 64 ? Int((key.0 >> UInt64(63 - i)) & 1) : Int((key.1 >> UInt64(127 - i)) & 1)
        }

        @inline(__always) func child(_ n: Int, _ b: Int) -> Int32 { b == 0 ? nodes[n].child.0 : nodes[n].child.1 }

        @inline(__always) mutating func setChild(_ n: Int, _ b: Int, _ c: Int32) {
            if b == 0 { nodes[n].child.0 = c } else { nodes[n].child.1 = c }
        }

        /// Sets the value of the prefix; returns the value it replaced.
        mutating func insert(_ key: (UInt64, UInt64), length: Int, value: UInt32) -> UInt32 {
            var n = 0
            for i in 0..<length {
                let b = Self.bit(key, i)
                var next = child(n, b)
                if next < 0 {
                    if let reused = freeNodes.popLast() {
                        next = reused
                        nodes[Int(reused)] = Node()
                    } else {
                        nodes.append(Node())
                        next = Int32(nodes.count - 1)
                    }
                    setChild(n, b, next)
                }
                n = Int(next)
            }
            let old = nodes[n].value
            nodes[n].value = value
            return old
        }

        /// Clears the prefix and prunes the branch it leaves empty.
        mutating func remove(_ key: (UInt64, UInt64), length: Int) {
            var path = [0]
            path.reserveCapacity(length + 1)
            var n = 0
            for i in 0..<length {
                let next = child(n, Self.bit(key, i))
                if next < 0 { return }
                n = Int(next)
                path.append(n)
            }
            nodes[n].value = 0
            var depth = length
            while depth > 0 {
                let node = path[depth]
                guard nodes[node].value == 0, nodes[node].child.0 < 0, nodes[node].child.1 < 0 else { break }
                setChild(path[depth - 1], Self.bit(key, depth - 1), -1)
                freeNodes.append(Int32(node))
                depth -= 1
            }
        }

        /// The value of the longest prefix that holds `key`, 0 for none.
        func lookup(_ key: (UInt64, UInt64)) -> UInt32 {
            var n = 0
            var best = nodes[0].value
            for i in 0..<bits {
                let next = child(n, Self.bit(key, i))
                if next < 0 { break }
                n = Int(next)
                if nodes[n].value != 0 { best = nodes[n].value }
            }
            return best
        }
    }

    private var v4 = Trie(bits: 32)
    private var v6 = Trie(bits: 128)
    private var byValue: [UInt32: Set<Entry>] = [:]

    /// An empty table.
    init() {}

    /// The 128-bit key of an address (IPv4 in the top 32 bits).
    static func key(_ address: IPAddress) -> (UInt64, UInt64) {
        switch address {
        case let .v4(a, b, c, d):
            return (UInt64(a) << 56 | UInt64(b) << 48 | UInt64(c) << 40 | UInt64(d) << 32, 0)
        case let .v6(bytes):
            return bytes.withUnsafeBytes { raw in
                (UInt64(bigEndian: raw.loadUnaligned(as: UInt64.self)),
                 UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
        }
    }

    /// The key of the 4 (IPv4) or 16 (IPv6) address bytes at `raw`.
    @inline(__always) static func key(raw: UnsafeRawBufferPointer, v6: Bool) -> (UInt64, UInt64) {
        if v6 {
            return (UInt64(bigEndian: raw.loadUnaligned(as: UInt64.self)),
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
        return (UInt64(UInt32(bigEndian: raw.loadUnaligned(as: UInt32.self))) << 32, 0)
    }

    /// Maps `prefix` (host bits ignored) to `value`, taking it from whichever
    /// value had it. Returns the previous value (0 for none).
    @discardableResult
    mutating func insert(_ prefix: IPPrefix, value: UInt32) -> UInt32 {
        precondition(value != 0)
        let net = prefix.network
        let k = Self.key(net.address)
        let entry = Entry(hi: k.0, lo: k.1, length: net.prefixLength, v6: net.address.isV6)
        let old = entry.v6 ? v6.insert(k, length: Int(entry.length), value: value)
                           : v4.insert(k, length: Int(entry.length), value: value)
        if old != value {
            if old != 0 { byValue[old]?.remove(entry) }
            byValue[value, default: []].insert(entry)
        }
        return old
    }

    /// The value whose longest prefix holds the address in `raw` (4 or 16 bytes), 0 for none.
    @inline(__always) func lookup(raw: UnsafeRawBufferPointer, v6: Bool) -> UInt32 {
        v6 ? self.v6.lookup(Self.key(raw: raw, v6: true)) : v4.lookup(Self.key(raw: raw, v6: false))
    }

    /// The value whose longest prefix holds `address`, 0 for none.
    func lookup(_ address: IPAddress) -> UInt32 {
        address.isV6 ? v6.lookup(Self.key(address)) : v4.lookup(Self.key(address))
    }

    /// Nodes allocated in one family's trie, free ones included (tests of pruning).
    func nodeCount(v6: Bool) -> Int { v6 ? self.v6.nodes.count : v4.nodes.count }

    /// Removes every prefix of `value`.
    mutating func removeAll(value: UInt32) {
        guard let entries = byValue.removeValue(forKey: value) else { return }
        for e in entries {
            if e.v6 { v6.remove((e.hi, e.lo), length: Int(e.length)) } else { v4.remove((e.hi, e.lo), length: Int(e.length)) }
        }
    }

    /// The prefixes of `value`: IPv4 first, then IPv6, each by address then length (the trie's pre-order).
    func prefixes(of value: UInt32) -> [IPPrefix] {
        (byValue[value] ?? []).sorted().map(\.prefix)
    }
}
