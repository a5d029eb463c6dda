import Testing
import WGNetlink
@testable import BuiltinWireGuard

/// The parts under the device: the replay window (the kernel's own
/// counter self-test sequence), the AllowedIPs trie, the message codecs.
@Suite struct ProtocolTests {
    @Test func replayWindowFollowsTheKernelSelfTest() {
        let window = ReplayWindow.windowSize
        let lim = window + 1
        let reject = Timing.rejectAfterMessages
        var w = ReplayWindow()
        var step = 0
        func t(_ n: UInt64, _ expected: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
            step += 1
            #expect(w.validate(n) == expected, "step \(step): counter \(n)", sourceLocation: sourceLocation)
        }
        #expect(window == 8192 - 64)
        t(0, true); t(1, true); t(1, false); t(9, true); t(8, true); t(7, true); t(7, false)
        t(lim, true); t(lim - 1, true); t(lim - 1, false); t(lim - 2, true); t(2, true); t(2, false)
        t(lim + 16, true); t(3, false); t(lim + 16, false); t(lim * 4, true); t(lim * 4 - (lim - 1), true)
        t(10, false); t(lim * 4 - lim, false); t(lim * 4 - (lim + 1), false); t(lim * 4 - (lim - 2), true)
        t(lim * 4 + 1 - lim, false); t(0, false)
        t(reject, false); t(reject - 1, true); t(reject, false); t(reject - 1, false); t(reject - 2, true)
        t(reject + 1, false); t(reject + 2, false); t(reject - 2, false); t(reject - 3, true); t(0, false)

        w = ReplayWindow()
        for i in 1...window { t(i, true) }
        t(0, true); t(0, false)

        w = ReplayWindow()
        for i in 2...(window + 1) { t(i, true) }
        t(1, true); t(0, false)

        w = ReplayWindow()
        for i in (0...window).reversed() { t(i, true) }

        w = ReplayWindow()
        for i in (1...(window + 1)).reversed() { t(i, true) }
        t(0, false)

        w = ReplayWindow()
        for i in (1...window).reversed() { t(i, true) }
        t(window + 1, true); t(0, false)

        w = ReplayWindow()
        for i in (1...window).reversed() { t(i, true) }
        t(0, true); t(window + 1, true)
    }

    @Test func allowedIPsLongestPrefixMatch() {
        var t = AllowedIPs()
        t.insert(prefix("0.0.0.0/0"), value: 1)
        t.insert(prefix("10.0.0.0/8"), value: 2)
        t.insert(prefix("10.1.0.0/16"), value: 3)
        t.insert(prefix("10.1.2.3/32"), value: 4)
        t.insert(prefix("10.1.2.99/24"), value: 5)  // host bits ignored: 10.1.2.0/24
        t.insert(prefix("::/0"), value: 6)
        t.insert(prefix("fd00::/8"), value: 7)
        t.insert(prefix("fd00:1::/32"), value: 8)
        t.insert(prefix("fd00:1::1/128"), value: 9)
        let cases: [(String, UInt32)] = [
            ("192.168.1.1", 1), ("10.9.9.9", 2), ("10.1.9.9", 3), ("10.1.2.3", 4), ("10.1.2.4", 5),
            ("2001:db8::1", 6), ("fd12::1", 7), ("fd00:1::2", 8), ("fd00:1::1", 9), ("fe80::1", 6),
        ]
        for (a, v) in cases { #expect(t.lookup(IPAddress(a)!) == v, "\(a)") }
        #expect(t.prefixes(of: 5) == [prefix("10.1.2.0/24")])
        // Moving a prefix: re-inserting it for another value takes it over.
        #expect(t.insert(prefix("10.1.0.0/16"), value: 4) == 3)
        #expect(t.lookup(IPAddress("10.1.9.9")!) == 4)
        #expect(t.prefixes(of: 3).isEmpty)
        #expect(t.prefixes(of: 4) == [prefix("10.1.0.0/16"), prefix("10.1.2.3/32")])
        // Removing by value falls back to the shorter prefixes.
        t.removeAll(value: 4)
        #expect(t.lookup(IPAddress("10.1.2.3")!) == 5)
        #expect(t.lookup(IPAddress("10.1.9.9")!) == 2)
        t.removeAll(value: 1)
        #expect(t.lookup(IPAddress("192.168.1.1")!) == 0)
        #expect(t.prefixes(of: 9) == [prefix("fd00:1::1/128")])
        // Raw-byte lookups as the packet path does them agree.
        let raw: [UInt8] = [10, 1, 2, 200]
        #expect(raw.withUnsafeBytes { t.lookup(raw: $0, v6: false) } == 5)
    }

    @Test func allowedIPsAgainstALinearScan() {
        // A second, obvious implementation as the judge: random prefixes, random lookups.
        var rng = SystemRandomNumberGenerator()
        var t = AllowedIPs()
        var table: [(UInt32, Int, UInt32)] = []  // (network, length, value)
        for _ in 0..<300 {
            let len = Int.random(in: 0...32, using: &rng)
            let addr = UInt32.random(in: .min ... .max, using: &rng) & (len == 0 ? 0 : ~0 << (32 - len))
            let v = UInt32.random(in: 1...20, using: &rng)
            table.removeAll { $0.0 == addr && $0.1 == len }
            table.append((addr, len, v))
            t.insert(IPPrefix(address: .v4(UInt8(addr >> 24), UInt8(truncatingIfNeeded: addr >> 16),
                                           UInt8(truncatingIfNeeded: addr >> 8), UInt8(truncatingIfNeeded: addr)),
                              prefixLength: UInt8(len))!, value: v)
        }
        // Remove a few values entirely: the scan and the trie must still agree.
        for v in [UInt32(3), 7, 11] {
            table.removeAll { $0.2 == v }
            t.removeAll(value: v)
        }
        for _ in 0..<2000 {
            let a = UInt32.random(in: .min ... .max, using: &rng)
            let best = table.filter { e in e.1 == 0 || (a >> (32 - e.1)) == (e.0 >> (32 - e.1)) }.max { $0.1 < $1.1 }
            let got = t.lookup(.v4(UInt8(a >> 24), UInt8(truncatingIfNeeded: a >> 16), UInt8(truncatingIfNeeded: a >> 8),
                                   UInt8(truncatingIfNeeded: a)))
            #expect(got == (best?.2 ?? 0))
        }
    }

    @Test func allowedIPsPrunesAndReusesNodes() {
        var t = AllowedIPs()
        for round in 0..<50 {
            for i in 0..<100 {
                t.insert(IPPrefix(address: .v6(IPAddress("fd00::\(String(i, radix: 16))")!.v6Bytes), prefixLength: 128)!,
                         value: UInt32(round % 2 + 1))
            }
            t.removeAll(value: UInt32(round % 2 + 1))
            #expect(t.lookup(IPAddress("fd00::5")!) == 0)
        }
        // 50 rounds of 100 /128s: without pruning and reuse the node array would hold 50 times one round's nodes.
        #expect(t.nodeCount(v6: true) < 2 * (128 + 100 * 8))
    }

    @Test func messagesCheckSizeTypeAndReservedBytes() {
        var m = InitiationMessage()
        m.sender = 0x0403_0201
        m.ephemeral = (0..<32).map { UInt8($0) }.withUnsafeBytes { Bytes32($0) }
        var buf = [UInt8](repeating: 0xee, count: 148)
        buf.withUnsafeMutableBytes { m.encode(into: $0) }
        #expect(buf[0..<8] == [1, 0, 0, 0, 1, 2, 3, 4])
        #expect(Array(buf[8..<40]) == (0..<32).map { UInt8($0) })
        let back = buf.withUnsafeBytes { InitiationMessage($0) }
        #expect(back?.sender == m.sender && back?.ephemeral == m.ephemeral)
        #expect(buf.dropLast().withUnsafeBytes { InitiationMessage($0) } == nil)
        #expect((buf + [0]).withUnsafeBytes { InitiationMessage($0) } == nil)
        var reserved = buf
        reserved[2] = 1
        #expect(reserved.withUnsafeBytes { InitiationMessage($0) } == nil)
        #expect(buf.withUnsafeBytes { ResponseMessage($0) } == nil)

        var r = ResponseMessage()
        r.sender = 7; r.receiver = 9
        var rb = [UInt8](repeating: 0, count: 92)
        rb.withUnsafeMutableBytes { r.encode(into: $0) }
        #expect(rb.withUnsafeBytes { ResponseMessage($0) }.map { ($0.sender, $0.receiver) } ?? (0, 0) == (7, 9))
        var c = CookieReplyMessage()
        c.receiver = 5
        var cb = [UInt8](repeating: 0, count: 64)
        cb.withUnsafeMutableBytes { c.encode(into: $0) }
        #expect(cb.withUnsafeBytes { CookieReplyMessage($0) }?.receiver == 5)
        #expect(cb.dropLast().withUnsafeBytes { CookieReplyMessage($0) } == nil)
        var tb = [UInt8](repeating: 0, count: 32)
        tb.withUnsafeMutableBytes { TransportHeader(receiver: 1, counter: 0x0102_0304_0506_0708).encode(into: $0) }
        #expect(tb[8..<16] == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(tb.withUnsafeBytes { TransportHeader($0) }?.counter == 0x0102_0304_0506_0708)
        #expect(tb.dropLast().withUnsafeBytes { TransportHeader($0) } == nil)
    }

    @Test func ratelimiterAllowsABurstOfFiveThenTwentyASecond() {
        var r = Ratelimiter()
        let a = IPAddress("192.0.2.7")!, b = IPAddress("192.0.2.8")!
        var now: UInt64 = 5 * Timing.second
        func allow(_ x: IPAddress) -> Bool { r.allow(x, now: now) }
        #expect((0..<5).allSatisfy { _ in allow(a) })
        #expect(!allow(a))
        #expect(allow(b))  // another source has its own bucket
        now += 50 * Timing.millisecond  // one packet's worth of tokens
        #expect(allow(a))
        #expect(!allow(a))
        // IPv6 sources share a bucket per /64.
        let c = IPAddress("2001:db8::1")!, d = IPAddress("2001:db8::ffff")!
        #expect((0..<5).allSatisfy { _ in allow(c) })
        #expect(!allow(d))
    }

    @Test func cookieIsUsedForMAC2For115Seconds() {
        // The responder's checker and the initiator's generator, keyed by the responder's public key.
        let responder = StaticIdentity(.generate())
        var checker = CookieChecker()
        checker.setIdentity(responder)
        var generator = CookieGenerator(peerKey: responder.publicKey)
        let source = SocketAddress(address: IPAddress("198.51.100.1")!, port: 4444)
        var now: UInt64 = Timing.second
        var msg = [UInt8](repeating: 0, count: InitiationMessage.size)
        func mac2OK(_ from: SocketAddress) -> Bool { msg.withUnsafeBytes { checker.checkMAC2($0, mac2Offset: 132, source: from, now: now) } }
        func consume(_ r: CookieReplyMessage) -> Bool { generator.consume(r, now: now) }
        msg[0] = 1
        msg.withUnsafeMutableBytes { generator.addMACs($0, mac1Offset: 116, mac2Offset: 132, now: now) }
        #expect(msg.withUnsafeBytes { checker.checkMAC1($0, mac1Offset: 116) })
        #expect(msg[132...].allSatisfy { $0 == 0 })
        #expect(!mac2OK(source))
        let reply = msg.withUnsafeBytes { checker.makeReply(to: $0, mac1Offset: 116, receiver: 1, source: source, now: now) }
        #expect(consume(reply))
        #expect(!consume(reply))  // one reply per mac1 sent
        msg.withUnsafeMutableBytes { generator.addMACs($0, mac1Offset: 116, mac2Offset: 132, now: now) }
        #expect(mac2OK(source))
        // From another port the cookie is another one.
        let other = SocketAddress(address: source.address, port: 4445)
        #expect(!mac2OK(other))
        // 114 s later it is still used; at 115 s it no longer is.
        now += 114 * Timing.second
        msg.withUnsafeMutableBytes { generator.addMACs($0, mac1Offset: 116, mac2Offset: 132, now: now) }
        #expect(msg[132...].contains { $0 != 0 })
        now += Timing.second
        msg.withUnsafeMutableBytes { generator.addMACs($0, mac1Offset: 116, mac2Offset: 132, now: now) }
        #expect(msg[132...].allSatisfy { $0 == 0 })
        // A reply that quotes another mac1 does not decrypt.
        var forged = reply
        forged.encryptedCookie.withMutableBytes { $0[3] ^= 1 }
        msg.withUnsafeMutableBytes { generator.addMACs($0, mac1Offset: 116, mac2Offset: 132, now: now) }
        #expect(!consume(forged))
    }

    @Test func indicesAreUnique() {
        var t = IndexTable()
        let peer = PeerState(publicKey: .zero, slot: 1)
        var seen = Set<UInt32>()
        for _ in 0..<5000 { seen.insert(t.insert(.handshake(peer))) }
        #expect(seen.count == 5000 && t.count == 5000)
    }
}

extension IPAddress {
    var v6Bytes: IPv6Bytes {
        if case .v6(let b) = self { return b }
        fatalError("not IPv6")
    }
}
