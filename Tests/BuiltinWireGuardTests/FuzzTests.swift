#if canImport(Glibc)
import Glibc
#endif
import Testing
import WGNetlink
@testable import BuiltinWireGuard

/// SplitMix64: a small deterministic generator, so a failing run can be repeated.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// Malformed, truncated, replayed, reordered and bit-flipped datagrams fed
/// to two devices with a live session. `WGNS_FUZZ_PACKETS` sets how many
/// (default 200,000; `make fuzz` runs 1,000,000 in release).
@Suite struct FuzzTests {
    static var packetCount: Int {
        if let v = getenv("WGNS_FUZZ_PACKETS"), let n = Int(String(cString: v)), n > 0 { return n }
        return 200_000
    }

    @Test func badInputIsDroppedCountedAndHarmless() throws {
        let total = Self.packetCount
        let p = try Pair()
        #expect(p.establish())
        var rng = SplitMix64(state: 0x7767_6e73_2d66_757a)
        // Genuine traffic of several sizes both ways, and keepalives, for the corpus.
        for i in 0..<40 {
            let payload = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if i % 2 == 0 { p.sendAtoB(payload) } else { p.sendBtoA(payload) }
        }
        p.deliver()
        p.run(for: 11, step: 1)  // keepalives
        let corpus = p.log
        #expect(corpus.contains { messageType($0.bytes) == 1 } && corpus.contains { messageType($0.bytes) == 2 })
        var expectedA = p.sinkA.tun.count, expectedB = p.sinkB.tun.count
        let dropsA = p.a.drops.incomingTotal, dropsB = p.b.drops.incomingTotal
        let attacker = SocketAddress(address: IPAddress("203.0.113.66")!, port: 6666)
        let junkSink = RecordingSink()
        var fed = 0
        var held: [[UInt8]] = []

        for i in 0..<total {
            if i % 10_000 == 0 {
                // Genuine packets held back, to be delivered later in reverse order among the junk.
                for d in held.reversed() { d.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) } }
                expectedB += held.count
                for k in 0..<3 { p.sendAtoB([UInt8(k)]) }
                held = p.sinkA.take().map(\.bytes)
                junkSink.sent.removeAll(keepingCapacity: true)
            }
            let g = corpus[Int.random(in: 0..<corpus.count, using: &rng)]
            var d = g.bytes
            switch Int.random(in: 0..<7, using: &rng) {
            case 0:
                break  // an exact replay
            case 1:
                d = Array(d.prefix(Int.random(in: 0..<d.count, using: &rng)))
            case 2, 3:
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let bit = Int.random(in: 0..<(d.count * 8), using: &rng)
                    d[bit / 8] ^= 1 << UInt8(bit % 8)
                }
            case 4:
                d += (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 5:
                // A plausible header (type 0-5, zero reserved) over random bytes of a message's size.
                let sizes = [0, 1, 4, 31, 32, 33, 64, 92, 148, 200]
                d = (0..<sizes[Int.random(in: 0..<sizes.count, using: &rng)]).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if d.count >= 4 { d[0] = UInt8.random(in: 0...5, using: &rng); d[1] = 0; d[2] = 0; d[3] = 0 }
            default:
                // A genuine message with another index or counter.
                if d.count >= 16 {
                    let at = Int.random(in: 4..<16, using: &rng)
                    d[at] = d[at] &+ UInt8.random(in: 1...255, using: &rng)
                }
            }
            let target = g.fromA ? p.b : p.a
            d.withUnsafeBytes { target.handleIncoming($0, from: attacker, sink: junkSink) }
            fed += 1
        }
        for d in held.reversed() { d.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) } }
        expectedB += held.count

        // Nothing but the genuine held-back packets got through; every bad one was counted once.
        print("fuzz: \(fed) fed; A \(p.a.drops); B \(p.b.drops)")
        #expect(junkSink.tun.isEmpty)
        #expect(p.sinkA.tun.count == expectedA)
        #expect(p.sinkB.tun.count == expectedB)
        #expect((p.a.drops.incomingTotal - dropsA) + (p.b.drops.incomingTotal - dropsB) == UInt64(fed))
        // The attacker's address was never learnt as an endpoint.
        #expect(p.a.snapshot(name: "a").peers[0].endpoint == p.addrB)
        #expect(p.b.snapshot(name: "b").peers[0].endpoint == p.addrA)
        // The session still works both ways.
        p.sendAtoB([42])
        p.sendBtoA([43])
        p.deliver()
        expectedA += 1; expectedB += 1
        #expect(p.sinkB.tun.count == expectedB && p.sinkB.tun.last?.last == 42)
        #expect(p.sinkA.tun.count == expectedA && p.sinkA.tun.last?.last == 43)
    }

    @Test func badOutgoingPacketsAreDroppedOrSent() throws {
        let total = max(1000, Self.packetCount / 10)
        let p = try Pair()
        #expect(p.establish())
        var rng = SplitMix64(state: 0x6f75_7467_6f69_6e67)
        _ = p.sinkA.take()
        var sent = 0
        for _ in 0..<total {
            var d = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if !d.isEmpty && Bool.random(using: &rng) {
                d[0] = Bool.random(using: &rng) ? 0x45 : 0x60  // a plausible version nibble
                if d.count >= 20 && d[0] == 0x45 && Bool.random(using: &rng) { d[16] = 10; d[17] = 0; d[18] = 0; d[19] = 2 }
            }
            d.withUnsafeBytes { p.a.handleOutgoing($0, sink: p.sinkA) }
            sent += p.sinkA.take().count
        }
        let drops = p.a.drops
        // Each packet either went out (to B, the one peer with a route) or was dropped and counted once.
        #expect(UInt64(sent) + drops.invalidOutgoing + drops.noRoute == UInt64(total))
        #expect(sent > 0 && drops.invalidOutgoing > 0 && drops.noRoute > 0)
    }
}
