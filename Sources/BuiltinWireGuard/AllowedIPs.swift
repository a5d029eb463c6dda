import WGNetlink

/// Cryptokey routing (`allowedips.c`, `allowedips.go`): a binary trie per
/// address family from prefix to peer, longest prefix wins. Sending looks
/// up the destination; receiving checks that the packet's source maps back
/// to the peer it came from. A prefix belongs to one peer only: inserting
/// it for another peer moves it, as `wg set ... allowed-ips` does.
///
/// Values are small integer peer slots (0 = none), so a lookup reads only
/// plain integers and allocates nothing. Nodes live in one array per family.
struct AllowedIPs {
    private struct Node {
        var child: (Int32, Int32) = (-1, -1)
        var value: UInt32 = 0
    }

    private struct Trie {
        var nodes: [Node] = [Node()]
        let bits: Int

        init(bits: Int) { self.bits = bits }

        /// Bit `i` (0 = most significant) of the 128-bit key.
        @inline(__always) static func bit(_ key: (UInt64, UInt64), _ i: Int) -> Int {
            i < 64 ? Int((key.0 >> UInt64(63 - i)) & 1) : Int((key.1 >> UInt64(127 - i)) & 1)
        }

        /// Sets the value of the prefix; returns the value it replaced.
        mutating func insert(_ key: (UInt64, UInt64), length: Int, value: UInt32) -> UInt32 {
            var n = 0
            for i in 0..<length {
                let b = Self.bit(key, i)
                var next = b == 0 ? nodes[n].child.0 : nodes[n].child.1
                if next < 0 {
                    nodes.append(Node())
                    next = Int32(nodes.count - 1)
                    if b == 0 { nodes[n].child.0 = next } else { nodes[n].child.1 = next }
                }
                n = Int(next)
            }
            let old = nodes[n].value
            nodes[n].value = value
            return old
        }

        /// The value of the longest prefix that holds `key`, 0 for none.
        func lookup(_ key: (UInt64, UInt64)) -> UInt32 {
            var n = 0
            var best = nodes[0].value
            for i in 0..<bits {
                let b = Self.bit(key, i)
                let next = b == 0 ? nodes[n].child.0 : nodes[n].child.1
                if next < 0 { break }
                n = Int(next)
                if nodes[n].value != 0 { best = nodes[n].value }
            }
            return best
        }

        /// Every (key, length) whose value passes `match`, in trie order (0 before 1, shorter first).
        func enumerate(_ match: (UInt32) -> Bool, _ body: ((UInt64, UInt64), Int, UInt32) -> Void) {
            var stack: [(node: Int, key: (UInt64, UInt64), depth: Int)] = [(0, (0, 0), 0)]
            while let (n, key, depth) = stack.popLast() {
                if nodes[n].value != 0 && match(nodes[n].value) { body(key, depth, nodes[n].value) }
                for b in [1, 0] {
                    let c = b == 0 ? nodes[n].child.0 : nodes[n].child.1
                    guard c >= 0 else { continue }
                    var k = key
                    if b == 1 {
                        if depth < 64 { k.0 |= 1 << UInt64(63 - depth) } else { k.1 |= 1 << UInt64(127 - depth) }
                    }
                    stack.append((Int(c), k, depth + 1))
                }
            }
        }

        /// Clears every prefix whose value passes `match`, then rebuilds the
        /// node array without the branches left empty.
        mutating func removeAll(where match: (UInt32) -> Bool) {
            var kept: [((UInt64, UInt64), Int, UInt32)] = []
            enumerate({ !match($0) }) { kept.append(($0, $1, $2)) }
            guard kept.count != countValues() else { return }
            nodes = [Node()]
            for (k, l, v) in kept { _ = insert(k, length: l, value: v) }
        }

        func countValues() -> Int { nodes.reduce(0) { $0 + ($1.value != 0 ? 1 : 0) } }
    }

    private var v4 = Trie(bits: 32)
    private var v6 = Trie(bits: 128)

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
        if net.address.isV6 {
            return v6.insert(Self.key(net.address), length: Int(net.prefixLength), value: value)
        }
        return v4.insert(Self.key(net.address), length: Int(net.prefixLength), value: value)
    }

    /// The value whose longest prefix holds the address in `raw` (4 or 16 bytes), 0 for none.
    @inline(__always) func lookup(raw: UnsafeRawBufferPointer, v6: Bool) -> UInt32 {
        v6 ? self.v6.lookup(Self.key(raw: raw, v6: true)) : v4.lookup(Self.key(raw: raw, v6: false))
    }

    /// The value whose longest prefix holds `address`, 0 for none.
    func lookup(_ address: IPAddress) -> UInt32 {
        address.isV6 ? v6.lookup(Self.key(address)) : v4.lookup(Self.key(address))
    }

    /// Removes every prefix of `value`.
    mutating func removeAll(value: UInt32) {
        v4.removeAll { $0 == value }
        v6.removeAll { $0 == value }
    }

    /// The prefixes of `value`: IPv4 first, then IPv6, each in trie order.
    func prefixes(of value: UInt32) -> [IPPrefix] {
        var out: [IPPrefix] = []
        v4.enumerate({ $0 == value }) { k, l, _ in
            let a = UInt32(truncatingIfNeeded: k.0 >> 32)
            out.append(IPPrefix(address: .v4(UInt8(a >> 24), UInt8(truncatingIfNeeded: a >> 16),
                                             UInt8(truncatingIfNeeded: a >> 8), UInt8(truncatingIfNeeded: a)),
                                prefixLength: UInt8(l))!)
        }
        v6.enumerate({ $0 == value }) { k, l, _ in
            var raw = (k.0.bigEndian, k.1.bigEndian)
            let bytes = withUnsafeBytes(of: &raw) { IPv6Bytes($0) }
            out.append(IPPrefix(address: .v6(bytes), prefixLength: UInt8(l))!)
        }
        return out
    }
}
