import Testing
import KeyStore
import WGNetlink
@testable import BuiltinWireGuard

/// Two devices through an in-memory wire on a manual clock.
@Suite struct DeviceTests {
    @Test func handshakeAndDataBothWays() throws {
        let p = try Pair()
        p.sendAtoB(Array("hello".utf8))
        p.deliver()
        // Initiation, response, then the staged packet under the new session.
        #expect(p.log.map { messageType($0.bytes) }.prefix(3) == [1, 2, 4])
        #expect(p.log[0].bytes.count == 148 && p.log[1].bytes.count == 92)
        #expect(p.sinkB.tun == [ipv4(from: (10, 0, 0, 1), to: (10, 0, 0, 2), payload: Array("hello".utf8))])
        p.sendBtoA(Array("world".utf8))
        p.deliver()
        #expect(p.sinkA.tun == [ipv4(from: (10, 0, 0, 2), to: (10, 0, 0, 1), payload: Array("world".utf8))])
        // IPv6 too.
        let v6 = ipv6(from: IPAddress("fd00::1")!, to: IPAddress("fd00::2")!, payload: [9, 9])
        v6.withUnsafeBytes { p.a.handleOutgoing($0, sink: p.sinkA) }
        p.deliver()
        #expect(p.sinkB.tun.last == v6)
        let showA = p.a.snapshot(name: "wg0"), showB = p.b.snapshot(name: "wg1")
        #expect(showA.listenPort == 51820 && showA.publicKey == p.keyA.publicKey)
        #expect(showA.peers.count == 1 && showA.peers[0].lastHandshake.seconds > 0)
        #expect(showB.peers[0].lastHandshake.seconds > 0)
        #expect(showB.peers[0].endpoint == p.addrA)  // learnt from the initiation
        #expect(showA.peers[0].transmitBytes > 0 && showA.peers[0].receiveBytes > 0)
        #expect(showA.peers[0].allowedIPs == [prefix("10.0.0.2/32"), prefix("fd00::2/128")])
        #expect(p.a.drops.incomingTotal == 0 && p.b.drops.incomingTotal == 0)
    }

    @Test func presharedKeyBothSidesWorks() throws {
        let psk = PresharedKey.generate()
        let p = try Pair(psk: psk)
        #expect(p.establish())
        #expect(p.a.snapshot(name: "x").peers[0].presharedKey == psk)
    }

    @Test func wrongPresharedKeyFailsClosed() throws {
        let p = try Pair(psk: PresharedKey.generate(), pskB: PresharedKey.generate())
        p.sendAtoB([1])
        p.deliver()
        // B answers (it cannot know), but A's check of the response fails: no session, nothing delivered.
        #expect(p.sinkB.tun.isEmpty && p.sinkA.tun.isEmpty)
        #expect(p.a.drops.handshakeFailed == 1)
        #expect(p.log.allSatisfy { messageType($0.bytes) != 4 })
        #expect(p.a.snapshot(name: "x").peers[0].lastHandshake.seconds == 0)
    }

    @Test func pskOnOneSideOnlyFailsClosed() throws {
        let p = try Pair(psk: nil, pskB: PresharedKey.generate())
        p.sendAtoB([1])
        p.deliver()
        #expect(p.sinkB.tun.isEmpty && p.a.drops.handshakeFailed == 1)
    }

    @Test func wrongStaticKeyFailsClosed() throws {
        // B expects some other key for the peer at 10.0.0.1: A's initiation names no peer of B.
        let p = try Pair()
        try p.b.configure(DeviceConfig(replacePeers: true, peers: [
            PeerConfig(publicKey: PrivateKey.generate().publicKey, allowedIPs: [prefix("10.0.0.1/32")])]))
        p.sendAtoB([1])
        p.deliver()
        #expect(p.b.drops.unknownPeer == 1)
        #expect(p.sinkB.tun.isEmpty && p.log.count == 1)
        // A's initiation sent to a device with another private key fails mac1.
        let c = WireGuardDevice(clock: p.clock)
        try c.configure(DeviceConfig(privateKey: PrivateKey.generate(), peers: [PeerConfig(publicKey: p.keyA.publicKey)]))
        p.log[0].bytes.withUnsafeBytes { c.handleIncoming($0, from: p.addrA, sink: RecordingSink()) }
        #expect(c.drops.invalidMAC1 == 1)
    }

    @Test func transportReplayRejectedAndReorderWithinWindowAccepted() throws {
        let p = try Pair()
        #expect(p.establish())
        // Capture ten data messages from A without delivering them.
        for i in 0..<10 { p.sendAtoB([UInt8(i)]) }
        let captured = p.sinkA.take().map(\.bytes)
        #expect(captured.count == 10)
        let before = p.sinkB.tun.count
        // Deliver in reverse order: all accepted (well inside the window).
        for d in captured.reversed() { d.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) } }
        #expect(p.sinkB.tun.count == before + 10)
        // Each again: all refused as replays.
        for d in captured { d.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) } }
        #expect(p.sinkB.tun.count == before + 10)
        #expect(p.b.drops.replayed == 10)
    }

    @Test func replayedInitiationRefused() throws {
        let p = try Pair()
        p.sendAtoB([1])
        p.deliver()
        let initiation = p.log.first { messageType($0.bytes) == 1 }!.bytes
        p.advance(1)
        let sent = p.sinkB.sent.count
        initiation.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) }
        #expect(p.b.drops.replayedInitiation == 1)
        #expect(p.sinkB.sent.count == sent)  // no response to a replay
        // The session is untouched.
        p.sendAtoB([2])
        p.deliver()
        #expect(p.sinkB.tun.count == 2)
    }

    @Test func rekeyAfter120SecondsLosesNothing() throws {
        let p = try Pair()
        #expect(p.establish())
        var sent = 0
        // Traffic both ways every 0.5 s for 400 s: past REKEY_AFTER_TIME twice and REJECT_AFTER_TIME.
        var initiations = 0
        for _ in 0..<800 {
            p.clock.advance(seconds: 0.5)
            p.a.tick(sink: p.sinkA); p.b.tick(sink: p.sinkB)
            p.sendAtoB([UInt8(sent & 0xff)])
            p.sendBtoA([UInt8(sent & 0xff)])
            sent += 1
            initiations += p.sinkA.sent.filter { messageType($0.bytes) == 1 }.count
            initiations += p.sinkB.sent.filter { messageType($0.bytes) == 1 }.count
            p.deliver()
        }
        #expect(p.sinkB.tun.count == sent + 1)
        #expect(p.sinkA.tun.count == sent + 1)
        // A (the initiator) rekeys at 120 s, then again 120 s later: at least 3 handshakes in 400 s.
        #expect(initiations >= 3)
        #expect(p.a.drops.incomingTotal == 0 && p.b.drops.incomingTotal == 0)
    }

    @Test func handshakeRetriesEveryFiveSecondsAndGivesUpAfterNinety() throws {
        let p = try Pair()
        p.sendAtoB([1])  // B never answers: nothing is delivered.
        var times: [Double] = []
        var t = 0.0
        if p.sinkA.take().contains(where: { messageType($0.bytes) == 1 }) { times.append(0) }
        while t < 200 {
            p.advance(0.05); t += 0.05
            if p.sinkA.take().contains(where: { messageType($0.bytes) == 1 }) { times.append(t) }
        }
        // The first, then 19 retries, each 5 s + up to 333 ms after the one before.
        #expect(times.count == 2 + Timing.maxTimerHandshakes)  // the kernel's "after 20 attempts, giving up"
        for (x, y) in zip(times, times.dropFirst()) {
            #expect(y - x >= 4.99 && y - x <= 5.40)
        }
        #expect(times.last! >= 95 && times.last! < 102)
        // Then silence, and the staged packet is gone.
        #expect(p.a.nextDeadline > p.clock.monotonicNanoseconds() + 100 * Timing.second)
    }

    @Test func keepaliveAfterTenSecondsOfReceiveOnly() throws {
        let p = try Pair()
        #expect(p.establish())
        p.run(for: 11)  // quiet: nothing pending after the exchange above
        p.log.removeAll()
        p.sendAtoB([7])
        p.deliver()
        #expect(p.log.count == 1)
        p.advance(9.9)
        #expect(p.sinkB.sent.isEmpty)
        p.advance(0.2)
        // B received data and sent nothing for 10 s: an empty transport message (32 bytes).
        #expect(p.sinkB.sent.count == 1 && p.sinkB.sent[0].bytes.count == 32 && messageType(p.sinkB.sent[0].bytes) == 4)
        let tunBefore = p.sinkA.tun.count
        p.deliver()
        #expect(p.sinkA.tun.count == tunBefore)  // a keepalive reaches no TUN
        #expect(p.a.drops.incomingTotal == 0)
    }

    @Test func persistentKeepalive() throws {
        let p = try Pair(keepaliveA: 25)
        // Turning it on sends a keepalive at the next tick: with no session, that starts the handshake.
        p.advance(0.01)
        p.deliver()
        #expect(p.log.map { messageType($0.bytes) }.prefix(3) == [1, 2, 4])
        p.log.removeAll()
        p.run(for: 24.5)
        #expect(p.log.filter { $0.fromA && $0.bytes.count == 32 }.isEmpty)
        p.run(for: 1)
        #expect(p.log.filter { $0.fromA && $0.bytes.count == 32 }.count == 1)
        p.run(for: 25)
        #expect(p.log.filter { $0.fromA && $0.bytes.count == 32 }.count == 2)
        #expect(p.a.snapshot(name: "x").peers[0].persistentKeepaliveInterval == 25)
        // Off again: no more.
        try p.a.configure(DeviceConfig(peers: [PeerConfig(publicKey: p.keyB.publicKey, persistentKeepaliveInterval: 0)]))
        p.log.removeAll()
        p.run(for: 60)
        #expect(p.log.filter { $0.fromA && $0.bytes.count == 32 }.isEmpty)
    }

    @Test func persistentKeepaliveWithASinkGoesAtOnce() throws {
        let p = try Pair()
        #expect(p.establish())
        p.run(for: 11)
        _ = p.sinkA.take()
        try p.a.configure(DeviceConfig(peers: [PeerConfig(publicKey: p.keyB.publicKey, persistentKeepaliveInterval: 5)]),
                          sink: p.sinkA)
        #expect(p.sinkA.sent.count == 1 && p.sinkA.sent[0].bytes.count == 32)
        // Changing the interval of one already on sends nothing more at once.
        try p.a.configure(DeviceConfig(peers: [PeerConfig(publicKey: p.keyB.publicKey, persistentKeepaliveInterval: 7)]),
                          sink: p.sinkA)
        #expect(p.sinkA.sent.count == 1)
    }

    @Test func roamingLearnsTheNewEndpoint() throws {
        let p = try Pair()
        #expect(p.establish())
        #expect(p.b.snapshot(name: "x").peers[0].endpoint == p.addrA)
        // A moves: its datagrams now come from another address.
        p.addrA = SocketAddress(address: IPAddress("198.51.100.7")!, port: 40000)
        p.sendAtoB([1])
        p.deliver()
        #expect(p.b.snapshot(name: "x").peers[0].endpoint == p.addrA)
        p.sendBtoA([2])
        #expect(p.sinkB.sent.last?.to == p.addrA)
        p.deliver()
        #expect(p.sinkA.tun.count == 2)
        // An unauthenticated datagram from elsewhere teaches nothing.
        var forged = p.log.last { $0.fromA && messageType($0.bytes) == 4 }!.bytes
        forged[forged.count - 1] ^= 1
        forged.withUnsafeBytes {
            p.b.handleIncoming($0, from: SocketAddress(address: IPAddress("203.0.113.9")!, port: 1), sink: p.sinkB)
        }
        #expect(p.b.snapshot(name: "x").peers[0].endpoint == p.addrA)
        #expect(p.b.drops.decryptFailed == 1)
    }

    @Test func cookieReplyUnderLoadThenHandshakeWithMAC2() throws {
        let p = try Pair()
        p.b.underLoad = true
        p.sendAtoB([1])
        p.deliver()
        // B answered the initiation with a cookie reply only.
        #expect(p.log.map { messageType($0.bytes) } == [1, 3])
        #expect(p.b.drops.cookieReplied == 1 && p.sinkB.tun.isEmpty)
        // A's retry (5 s later) carries mac2 made with the cookie, and B accepts it.
        p.run(for: 6)
        #expect(p.sinkB.tun.count == 1)
        let retry = p.log.filter { $0.fromA && messageType($0.bytes) == 1 }.last!.bytes
        #expect(retry[132..<148].contains { $0 != 0 })
        #expect(p.b.drops.cookieReplied == 1)
        // A wrong mac2 under load gets a cookie reply again, not a response.
        var bad = retry
        bad[140] ^= 1
        p.advance(1)
        let before = p.sinkB.sent.count
        bad.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) }
        #expect(p.sinkB.sent.count == before + 1 && messageType(p.sinkB.sent.last!.bytes) == 3)
        #expect(p.b.drops.cookieReplied == 2)
    }

    @Test func underLoadIsDetectedFromTheHandshakeRate() throws {
        let p = try Pair()
        p.sendAtoB([1])
        let initiation = p.sinkA.take()[0].bytes
        #expect(!p.b.underLoad)
        // 200 copies in under a second (all but the first refused as replays) put B under load.
        for _ in 0..<200 { initiation.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) } }
        #expect(p.b.underLoad)
        #expect(p.b.drops.cookieReplied > 0)
        p.clock.advance(seconds: 1.5)
        #expect(!p.b.underLoad)
    }

    @Test func allowedIPsRouteOutAndCheckSourcesIn() throws {
        let p = try Pair()
        // A third peer C on A, owning 10.0.0.0/24 (less specific than B's 10.0.0.2/32).
        let keyC = PrivateKey.generate()
        let addrC = SocketAddress(address: IPAddress("192.0.2.3")!, port: 1)
        try p.a.configure(DeviceConfig(peers: [PeerConfig(publicKey: keyC.publicKey, endpoint: addrC,
                                                         allowedIPs: [prefix("10.0.0.0/24")])]))
        ipv4(from: (10, 0, 0, 1), to: (10, 0, 0, 9), payload: [1]).withUnsafeBytes { p.a.handleOutgoing($0, sink: p.sinkA) }
        #expect(p.sinkA.sent.last?.to == addrC, "\(p.a.drops)")  // the handshake with C
        _ = p.sinkA.take()
        p.sendAtoB([2])
        #expect(p.sinkA.sent.last?.to == p.addrB)
        p.deliver()
        #expect(p.sinkB.tun.count == 1)
        // To nowhere: dropped and counted.
        ipv4(from: (10, 0, 0, 1), to: (10, 9, 9, 9), payload: []).withUnsafeBytes { p.a.handleOutgoing($0, sink: p.sinkA) }
        #expect(p.a.drops.noRoute == 1)
        // B sends A a packet whose inner source is not B's: A drops it.
        ipv4(from: (10, 0, 0, 2), to: (10, 0, 0, 1), payload: [3]).withUnsafeBytes { p.b.handleOutgoing($0, sink: p.sinkB) }
        ipv4(from: (10, 0, 0, 9), to: (10, 0, 0, 1), payload: [4]).withUnsafeBytes { p.b.handleOutgoing($0, sink: p.sinkB) }
        // B has no route to 10.0.0.1 for a source... it routes by destination, so both go to A.
        p.deliver()
        #expect(p.sinkA.tun.count == 1 && p.sinkA.tun[0].last == 3)
        #expect(p.a.drops.disallowedSource == 1)
        // Moving B's /32 to C: A now sends 10.0.0.2 to C.
        try p.a.configure(DeviceConfig(peers: [PeerConfig(publicKey: keyC.publicKey, allowedIPs: [prefix("10.0.0.2/32")])]))
        #expect(p.a.snapshot(name: "x").peers[0].allowedIPs == [prefix("fd00::2/128")])
        // (C's last initiation went out just now; the next may go after REKEY_TIMEOUT.)
        p.clock.advance(seconds: 6)
        _ = p.sinkA.take()
        p.sendAtoB([5])
        #expect(p.sinkA.sent.map(\.to) == [addrC])
    }

    @Test func paddingToSixteen() throws {
        let p = try Pair()
        #expect(p.establish())
        for n in [0, 1, 15, 16, 17, 100, 1000] {
            p.sendAtoB([UInt8](repeating: 0xab, count: n))
            let d = p.sinkA.take()
            let inner = 20 + n
            #expect(d.count == 1 && d[0].bytes.count == 16 + ((inner + 15) / 16) * 16 + 16)
            d[0].bytes.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) }
            // The padding is trimmed away on receipt.
            #expect(p.sinkB.tun.last?.count == inner)
        }
        // With an MTU, padding never crosses it.
        p.a.mtu = 1420
        p.sendAtoB([UInt8](repeating: 0, count: 1400 - 20 + 2))  // 1402 bytes, would pad to 1408
        #expect(p.sinkA.sent.last!.bytes.count == 16 + 1408 + 16)
        p.sendAtoB([UInt8](repeating: 0, count: 1419 - 20))  // 1419 bytes, pads only to 1420
        #expect(p.sinkA.sent.last!.bytes.count == 16 + 1420 + 16)
    }

    @Test func stagingQueueKeepsTheNewest128() throws {
        let p = try Pair()
        for i in 0..<200 { p.sendAtoB([UInt8(i)]) }
        #expect(p.a.drops.stagedOverflow == 72)
        p.deliver()
        #expect(p.sinkB.tun.count == 128)
        #expect(p.sinkB.tun.first?.last == 72 && p.sinkB.tun.last?.last == 199)
    }

    @Test func configureSemantics() throws {
        let p = try Pair()
        let keyC = PrivateKey.generate()
        // updateOnly never creates.
        try p.a.configure(DeviceConfig(peers: [PeerConfig(publicKey: keyC.publicKey, updateOnly: true)]))
        #expect(p.a.snapshot(name: "x").peers.count == 1)
        try p.a.configure(DeviceConfig(peers: [PeerConfig(publicKey: keyC.publicKey, allowedIPs: [prefix("10.1.0.0/16")])]))
        #expect(p.a.snapshot(name: "x").peers.count == 2)
        // replaceAllowedIPs.
        try p.a.configure(DeviceConfig(peers: [PeerConfig(publicKey: keyC.publicKey, replaceAllowedIPs: true,
                                                          allowedIPs: [prefix("10.2.0.0/16")])]))
        #expect(p.a.snapshot(name: "x").peers[1].allowedIPs == [prefix("10.2.0.0/16")])
        // A zero preshared key removes it.
        try p.a.configure(DeviceConfig(peers: [PeerConfig(publicKey: keyC.publicKey, presharedKey: .generate())]))
        #expect(p.a.snapshot(name: "x").peers[1].presharedKey != nil)
        try p.a.configure(DeviceConfig(peers: [PeerConfig(publicKey: keyC.publicKey, presharedKey: .zero)]))
        #expect(p.a.snapshot(name: "x").peers[1].presharedKey == nil)
        // remove.
        try p.a.configure(DeviceConfig(peers: [PeerConfig(publicKey: keyC.publicKey, remove: true)]))
        #expect(p.a.snapshot(name: "x").peers.map(\.publicKey) == [p.keyB.publicKey])
        // replacePeers.
        try p.a.configure(DeviceConfig(replacePeers: true, peers: [PeerConfig(publicKey: keyC.publicKey)]))
        #expect(p.a.snapshot(name: "x").peers.map(\.publicKey) == [keyC.publicKey])
        // Our own key as a peer is ignored, as the kernel does.
        try p.a.configure(DeviceConfig(peers: [PeerConfig(publicKey: p.keyA.publicKey)]))
        #expect(p.a.snapshot(name: "x").peers.count == 1)
        #expect(p.a.snapshot(name: "x").privateKey == p.keyA)
    }

    @Test func thousandsOfPeers() throws {
        let p = try Pair()
        let n = 5000
        let keys = (0..<n).map { _ in PrivateKey.generate().publicKey }
        let peers = keys.enumerated().map { i, k in
            PeerConfig(publicKey: k, allowedIPs: [IPPrefix(address: .v4(10, 100, UInt8(i >> 8), UInt8(i & 0xff)), prefixLength: 32)!])
        }
        try p.a.configure(DeviceConfig(peers: peers))
        #expect(p.a.snapshot(name: "x").peers.count == n + 1)
        #expect(p.a.snapshot(name: "x").peers[n].allowedIPs == [prefix("10.100.19.135/32")])
        // Replacing them all keeps only the new list; B's session is gone with B's old entry, its prefix too.
        try p.a.configure(DeviceConfig(replacePeers: true, peers: Array(peers.prefix(10))))
        let show = p.a.snapshot(name: "x")
        #expect(show.peers.count == 10 && show.peers.map(\.publicKey) == Array(keys.prefix(10)))
        p.sendAtoB([1])
        #expect(p.a.drops.noRoute == 1)
    }

    @Test func zeroKeysAfterThreeTimesRejectAfterTime() throws {
        let p = try Pair()
        #expect(p.establish())
        p.run(for: 3 * 180 + 2, step: 1)
        // The session is gone on both sides: a new packet needs a new handshake.
        p.log.removeAll()
        p.sendAtoB([1])
        #expect(messageType(p.sinkA.sent.first?.bytes ?? []) == 1)
        p.deliver()
        #expect(p.sinkB.tun.count == 2)
    }

    @Test func sessionStopsAfterRejectAfterTimeWithoutRekey() throws {
        // Drop every handshake message after the first session: traffic must stop at 180 s, never go on under old keys.
        let p = try Pair()
        #expect(p.establish())
        var lastAccepted = 0.0
        var t = 0.0
        while t < 200 {
            p.clock.advance(seconds: 1); t += 1
            p.a.tick(sink: p.sinkA); p.b.tick(sink: p.sinkB)
            let before = p.sinkB.tun.count
            p.sendAtoB([1])
            p.deliver { _, bytes in messageType(bytes) == 4 }
            if p.sinkB.tun.count > before { lastAccepted = t }
        }
        #expect(lastAccepted >= 170 && lastAccepted < 181)
    }
}

/// Session limits and key confirmation, reached by setting counters directly.
@Suite struct SessionLimitTests {
    func current(_ d: WireGuardDevice) -> Keypair? { d.locked { d.peerOrder.first?.keypairs.current } }

    @Test func responderSessionIsConfirmedOnlyByFirstData() throws {
        let p = try Pair()
        p.sendAtoB([1])
        // Carry the initiation and the response, but hold A's first transport message.
        let initiation = p.sinkA.take()
        initiation[0].bytes.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) }
        let response = p.sinkB.take()
        #expect(response.count == 1 && messageType(response[0].bytes) == 2)
        response[0].bytes.withUnsafeBytes { p.a.handleIncoming($0, from: p.addrB, sink: p.sinkA) }
        let held = p.sinkA.take()
        #expect(held.count == 1 && messageType(held[0].bytes) == 4)
        // B holds the session as `next`: it cannot send under it yet.
        #expect(current(p.b) == nil)
        #expect(p.b.locked { p.b.peerOrder[0].keypairs.next } != nil)
        // A's first data confirms it: B's `next` becomes current and B can send.
        held[0].bytes.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) }
        #expect(current(p.b) != nil && p.sinkB.tun.count == 1)
        p.sendBtoA([2])
        #expect(messageType(p.sinkB.sent.last?.bytes ?? []) == 4)
        p.deliver()
        #expect(p.sinkA.tun.count == 1)
    }

    @Test func rekeyAfterMessages() throws {
        let p = try Pair()
        #expect(p.establish())
        p.log.removeAll()
        // B, the responder, passes REKEY_AFTER_MESSAGES: it starts a handshake although its session is young.
        current(p.b)!.sendCounter = Timing.rekeyAfterMessages
        p.clock.advance(seconds: 6)  // past the REKEY_TIMEOUT that B's response started
        p.sendBtoA([1])
        #expect(p.sinkB.sent.map { messageType($0.bytes) } == [4, 1])
        p.deliver()
        #expect(p.sinkA.tun.count == 2)
    }

    @Test func rejectAfterMessagesStopsSending() throws {
        let p = try Pair()
        #expect(p.establish())
        let old = current(p.a)!
        old.sendCounter = Timing.rejectAfterMessages - 1
        p.clock.advance(seconds: 6)
        _ = p.sinkA.take()
        p.sendAtoB([1])  // the last counter this session may use
        p.sendAtoB([2])  // none left: staged, and a new handshake
        let sent = p.sinkA.take()
        #expect(sent.map { messageType($0.bytes) } == [4, 1])
        // The receiver takes the last counter, then nothing more under that session.
        sent[0].bytes.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) }
        #expect(p.sinkB.tun.last?.last == 1)
        sent[0].bytes.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) }
        #expect(p.b.drops.expiredSession == 1)
        // The handshake completes and the staged packet goes under the new session.
        sent[1].bytes.withUnsafeBytes { p.b.handleIncoming($0, from: p.addrA, sink: p.sinkB) }
        p.deliver()
        #expect(current(p.a) !== old)
        #expect(p.sinkB.tun.last?.last == 2)
    }

    @Test func newPrivateKeyEndsSessions() throws {
        let p = try Pair()
        #expect(p.establish())
        try p.a.configure(DeviceConfig(privateKey: PrivateKey.generate()))
        p.clock.advance(seconds: 6)
        _ = p.sinkA.take()
        p.sendAtoB([1])
        // The old session no longer sends: a new handshake starts (which B refuses: it knows A by its old key).
        #expect(p.sinkA.sent.map { messageType($0.bytes) } == [1])
        p.deliver()
        #expect(p.b.drops.unknownPeer == 1 && p.sinkB.tun.count == 1, "\(p.b.drops)")
    }

    @Test func initiatorRekeysOnReceiveBeforeRejectAfterTime() throws {
        let p = try Pair()
        #expect(p.establish())
        // Only B sends data; every initiation (A's rekeys, and B's when it stops hearing from A) is lost,
        // so the first session just ages.
        var flagged: Double? = nil
        var t = 0.0
        while t < 175 {
            p.clock.advance(seconds: 1); t += 1
            p.a.tick(sink: p.sinkA); p.b.tick(sink: p.sinkB)
            p.sendBtoA([1])
            p.deliver { _, bytes in messageType(bytes) != 1 }
            if flagged == nil, p.a.locked({ p.a.peerOrder[0].timers.sentLastMinuteHandshake }) { flagged = t }
        }
        // REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT = 165 s after the session began.
        #expect(flagged != nil && flagged! >= 165 && flagged! <= 166)
    }
}
