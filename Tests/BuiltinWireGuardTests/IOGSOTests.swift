import Testing
@testable import BuiltinWireGuard

/// GSO splitting of super-packets built here, checked with the reference
/// checksum of IOTestPackets.swift; and bad input, which must be refused
/// with a `PacketError`, never a crash.
@Suite struct IOGSOTests {
    func split(_ read: [UInt8], _ batch: PacketBatch) throws(PacketError) -> Int {
        var r: Result<Int, PacketError> = .success(0)
        read.withUnsafeBytes { raw in r = Result { () throws(PacketError) in try GSO.split(raw, into: batch) } }
        return try r.get()
    }

    func packets(_ batch: PacketBatch) -> [[UInt8]] {
        (0..<batch.count).map { Array(UnsafeRawBufferPointer(batch.packet($0))) }
    }

    @Test(arguments: [(false, 1448, 5000), (true, 1428, 9000), (false, 1000, 1000), (true, 536, 65535 - 40 - 32 - 40)])
    func tcpSuperPacket(v6: Bool, mss: Int, total: Int) throws {
        var rng = TestRandom(seed: UInt64(mss * 7 + total))
        let payload = rng.bytes(total)
        // A sequence number that wraps inside the packet; FIN, PSH and CWR set.
        let seq: UInt32 = 0xffff_f000
        let super_ = makePacket(v6: v6, tcp: true, payload: payload, seq: seq, flags: 0x80 | 0x10 | 0x08 | 0x01, optionWords: 3)
        let ihl = v6 ? 40 : 20
        let hdr = vnetHeader(flags: 1, gsoType: v6 ? 4 : 1, hdrLen: UInt16(ihl + 32), gsoSize: UInt16(mss),
                             csumStart: UInt16(ihl), csumOffset: 16)
        let batch = PacketBatch(capacity: 128, slotSize: 2048, headroom: 16)
        let n = try split(hdr + super_, batch)
        #expect(n == (total + mss - 1) / mss)
        var joined: [UInt8] = []
        var nextSeq = seq
        for (i, p) in packets(batch).enumerated() {
            let parsed = try ParsedPacket.check(p).get()
            #expect(p.count <= ihl + 32 + mss)
            #expect(parsed.seq == nextSeq)
            nextSeq &+= UInt32(parsed.payload.count)
            if !v6 { #expect(parsed.id == 0x1234 &+ UInt16(i)) }
            let last = i == n - 1
            #expect(parsed.flags & 0x09 == (last ? 0x09 : 0), "FIN/PSH on the last segment only")
            #expect(parsed.flags & 0x80 == (i == 0 ? 0x80 : 0), "CWR on the first segment only")
            #expect(parsed.flags & 0x10 == 0x10)
            // The options are carried into every segment.
            #expect(Array(p[(ihl + 20)..<(ihl + 32)]) == Array(super_[(ihl + 20)..<(ihl + 32)]))
            joined += parsed.payload
        }
        #expect(joined == payload)
    }

    @Test(arguments: [false, true])
    func udpSuperPacket(v6: Bool) throws {
        var rng = TestRandom(seed: v6 ? 6 : 4)
        let payload = rng.bytes(3 * 1200 + 77)
        let ihl = v6 ? 40 : 20
        let super_ = makePacket(v6: v6, tcp: false, payload: payload)
        let hdr = vnetHeader(flags: 1, gsoType: 5, hdrLen: UInt16(ihl + 8), gsoSize: 1200, csumStart: UInt16(ihl), csumOffset: 6)
        let batch = PacketBatch(capacity: 8, slotSize: 1500)
        #expect(try split(hdr + super_, batch) == 4)
        let all = packets(batch)
        for (i, p) in all.enumerated() {
            let parsed = try ParsedPacket.check(p).get()
            #expect(parsed.payload.count == (i < 3 ? 1200 : 77))
            #expect(Array(parsed.payload) == Array(payload[(i * 1200)..<min(payload.count, (i + 1) * 1200)]))
        }
    }

    /// GSO_NONE with NEEDS_CSUM: the field holds the pseudo-header sum, the
    /// rest is to be completed; and GSO_NONE without it: copied as it is.
    @Test(arguments: [(false, true), (true, true), (false, false), (true, false)])
    func partialChecksum(v6: Bool, tcp: Bool) throws {
        var rng = TestRandom(seed: 99)
        var p = makePacket(v6: v6, tcp: tcp, payload: rng.bytes(333))
        referenceFinish(&p)  // IPv4 header checksum
        let ihl = v6 ? 40 : 20
        let at = ihl + (tcp ? 16 : 6)
        var pseudo = referencePseudo(p)
        while pseudo > 0xffff { pseudo = (pseudo & 0xffff) + (pseudo >> 16) }
        put16(&p, at, UInt16(pseudo))
        let hdr = vnetHeader(flags: 1, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: UInt16(ihl), csumOffset: tcp ? 16 : 6)
        let batch = PacketBatch(capacity: 2, slotSize: 1500, headroom: 32)
        #expect(try split(hdr + p, batch) == 1)
        let out = packets(batch)[0]
        _ = try ParsedPacket.check(out).get()
        #expect(out[..<at] == p[..<at] && out[(at + 2)...] == p[(at + 2)...])

        var complete = makePacket(v6: v6, tcp: tcp, payload: [1, 2, 3])
        referenceFinish(&complete)
        #expect(try split(VirtioNetHeader.size == 10 ? [UInt8](repeating: 0, count: 10) + complete : [], batch) == 1)
        #expect(packets(batch)[1] == complete)
    }

    @Test func headerRoundTrip() throws {
        let h = VirtioNetHeader(flags: 1, gsoType: 5, headerLength: 48, gsoSize: 1232, csumStart: 40, csumOffset: 6)
        var bytes = [UInt8](repeating: 0xaa, count: 12)
        #expect(bytes.withUnsafeMutableBytes { h.write(to: $0) })
        #expect(Array(bytes[..<10]) == vnetHeader(flags: 1, gsoType: 5, hdrLen: 48, gsoSize: 1232, csumStart: 40, csumOffset: 6))
        #expect(bytes[10] == 0xaa)
        #expect(try bytes.withUnsafeBytes { try VirtioNetHeader(parsing: $0) } == h)
        var short = [UInt8](repeating: 0, count: 9)
        #expect(!short.withUnsafeMutableBytes { h.write(to: $0) })
        #expect(throws: PacketError.truncatedVirtioHeader) { try short.withUnsafeBytes { try VirtioNetHeader(parsing: $0) } }
    }

    @Test func refusesBadInput() throws {
        let batch = PacketBatch(capacity: 64, slotSize: 2048)
        let tcp4 = makePacket(v6: false, tcp: true, payload: [UInt8](repeating: 7, count: 4000))
        func gso(_ type: UInt8 = 1, size: UInt16 = 1000, start: UInt16 = 20, offset: UInt16 = 16) -> [UInt8] {
            vnetHeader(flags: 1, gsoType: type, hdrLen: 40, gsoSize: size, csumStart: start, csumOffset: offset)
        }
        #expect(throws: PacketError.truncatedVirtioHeader) { try split([1, 2, 3], batch) }
        #expect(throws: PacketError.unsupportedGSOType(3)) { try split(gso(3) + tcp4, batch) }
        #expect(throws: PacketError.unsupportedGSOType(0x81)) { try split(gso(0x81) + tcp4, batch) }
        #expect(throws: PacketError.badSegmentSize) { try split(gso(size: 0) + tcp4, batch) }
        #expect(throws: PacketError.badChecksumOffsets) { try split(gso(start: 24) + tcp4, batch) }
        #expect(throws: PacketError.badChecksumOffsets) { try split(gso(offset: 6) + tcp4, batch) }
        #expect(throws: PacketError.badIPHeader) { try split(gso(4) + tcp4, batch) }  // TCPV6 on IPv4
        #expect(throws: PacketError.badIPHeader) { try split(gso(5) + tcp4, batch) }  // UDP_L4 on TCP
        var v5 = tcp4; v5[0] = 0x55
        #expect(throws: PacketError.badIPHeader) { try split(gso() + v5, batch) }
        var shortTCP = tcp4; shortTCP[32] = 0x10  // data offset 4 bytes
        #expect(throws: PacketError.badTransportHeader) { try split(gso() + shortTCP, batch) }
        #expect(throws: PacketError.badTransportHeader) { try split(gso() + Array(tcp4[..<30]), batch) }
        var fragment = tcp4; fragment[6] = 0x20  // MF
        #expect(throws: PacketError.badIPHeader) { try split(gso() + fragment, batch) }
        // NEEDS_CSUM with the field past the end.
        #expect(throws: PacketError.badChecksumOffsets) {
            try split(vnetHeader(flags: 1, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 20, csumOffset: 999) + makePacket(v6: false, tcp: true, payload: [1, 2, 3]), batch)
        }
        #expect(throws: PacketError.badIPHeader) { try split([UInt8](repeating: 0, count: 10), batch) }
        #expect(batch.count == 0)
        // Too few slots, or too small ones: nothing appended.
        let small = PacketBatch(capacity: 3, slotSize: 2048)
        #expect(throws: PacketError.outputTooSmall) { try split(gso() + tcp4, small) }
        let narrow = PacketBatch(capacity: 8, slotSize: 600)
        #expect(throws: PacketError.outputTooSmall) { try split(gso() + tcp4, narrow) }
        #expect(small.count == 0 && narrow.count == 0)
        #expect(try split(gso() + tcp4, batch) == 4)
    }

    /// Random headers over random and mangled packets: every outcome is a
    /// `PacketError` or packets that fit their slots.
    @Test func garbageNeverCrashes() {
        var rng = TestRandom(seed: 0xbad)
        let batch = PacketBatch(capacity: 80, slotSize: 1600)
        let types: [UInt8] = [0, 1, 3, 4, 5, 0x80, 0x85, 0xff]
        for round in 0..<20000 {
            batch.removeAll()
            var packet: [UInt8]
            if round % 2 == 0 {
                packet = rng.bytes(rng.below(200))
            } else {
                packet = makePacket(v6: rng.below(2) == 0, tcp: rng.below(2) == 0, payload: rng.bytes(rng.below(5000)),
                                    optionWords: rng.below(11))
                for _ in 0..<rng.below(4) where !packet.isEmpty { packet[rng.below(packet.count)] = UInt8(truncatingIfNeeded: rng.next()) }
                packet = Array(packet[..<rng.below(packet.count + 1)])
            }
            let hdr = vnetHeader(flags: UInt8(rng.below(4)), gsoType: types[rng.below(types.count)],
                                 hdrLen: UInt16(truncatingIfNeeded: rng.next()), gsoSize: UInt16(truncatingIfNeeded: rng.below(3) == 0 ? rng.below(70000) : rng.below(1400)),
                                 csumStart: UInt16(truncatingIfNeeded: rng.below(3) == 0 ? rng.below(70000) : [20, 40][rng.below(2)]),
                                 csumOffset: UInt16(truncatingIfNeeded: rng.below(3) == 0 ? rng.below(70000) : [6, 16][rng.below(2)]))
            let read = Array((hdr + packet)[..<(rng.below(8) == 0 ? min(rng.below(12), hdr.count + packet.count) : hdr.count + packet.count)])
            do {
                let n = try split(read, batch)
                #expect(n == batch.count && n >= 1)
                for i in 0..<n { #expect(batch.packet(i).count <= batch.maxPacketSize) }
            } catch {
                #expect(batch.count == 0)
            }
        }
    }
}
