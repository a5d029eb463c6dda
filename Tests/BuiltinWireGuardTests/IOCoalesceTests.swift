import POSIX
import Testing
@testable import BuiltinWireGuard
#if canImport(Glibc)
import Glibc
#endif

/// TCP coalescing of TUNWriteBatch, read back through a SOCK_SEQPACKET
/// socket pair (one writev = one message) and split again with GSO.split:
/// what comes out must be exactly the packets that went in.
@Suite struct IOCoalesceTests {
    /// Writes `packets` through a batch into a socket pair and returns the
    /// messages (vnet header + packet or super-packet) and the result.
    func roundTrip(_ packets: [[UInt8]], vnetHeader: Bool = true, coalesce: Bool = true, udp: Bool = false) throws -> ([[UInt8]], TUNWriteResult) {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &fds) == 0)
        let writer = Descriptor(owning: fds[0]), reader = Descriptor(owning: fds[1])
        var size: Int32 = 4 << 20
        setsockopt(writer.raw, SOL_SOCKET, SO_SNDBUF, &size, 4)
        setsockopt(reader.raw, SOL_SOCKET, SO_RCVBUF, &size, 4)
        let storage = PacketBatch(capacity: packets.count, slotSize: 2048)
        for p in packets { #expect(p.withUnsafeBytes { storage.append($0) }) }
        let batch = TUNWriteBatch(capacity: packets.count, coalesce: coalesce, coalesceUDP: udp)
        for i in 0..<packets.count { #expect(batch.append(storage.packet(i))) }
        let result = batch.write(to: writer, vnetHeader: vnetHeader)
        #expect(batch.count == 0)
        var messages: [[UInt8]] = []
        for _ in 0..<result.writes {
            var buffer = [UInt8](repeating: 0, count: 70000)
            let n = buffer.withUnsafeMutableBytes { recv(reader.raw, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            #expect(n > 0)
            if n > 0 { messages.append(Array(buffer[..<n])) }
        }
        return (messages, result)
    }

    /// Splits every message back into packets.
    func unwrap(_ messages: [[UInt8]]) throws -> [[UInt8]] {
        let batch = PacketBatch(capacity: 256, slotSize: 2048)
        for m in messages {
            _ = try m.withUnsafeBytes { raw throws(PacketError) in try GSO.split(raw, into: batch) }
        }
        return (0..<batch.count).map { Array(UnsafeRawBufferPointer(batch.packet($0))) }
    }

    /// `count` segments of one flow, valid checksums, consecutive IPv4 ids,
    /// PSH on the last.
    func flow(v6: Bool, count: Int, size: Int = 1000, seq: UInt32 = 5000, srcPort: UInt16 = 40000,
              ack: UInt32 = 777, pshLast: Bool = true, seed: UInt64 = 1) -> [[UInt8]] {
        var rng = TestRandom(seed: seed)
        return (0..<count).map { i in
            var p = makePacket(v6: v6, tcp: true, payload: rng.bytes(size), seq: seq &+ UInt32(i * size), ack: ack,
                               flags: pshLast && i == count - 1 ? 0x18 : 0x10, optionWords: 3, srcPort: srcPort,
                               id: 0x100 &+ UInt16(i))
            referenceFinish(&p)
            return p
        }
    }

    @Test(arguments: [false, true])
    func interleavedFlowsCoalesceAndSplitBack(v6: Bool) throws {
        let a = flow(v6: v6, count: 20, seed: 1)
        let b = flow(v6: v6, count: 10, size: 700, seq: 0xffff_fc00, srcPort: 40001, seed: 2)  // its sequence wraps
        var udp = makePacket(v6: v6, tcp: false, payload: [1, 2, 3, 4, 5], srcPort: 53)
        referenceFinish(&udp)
        var input: [[UInt8]] = []
        for i in 0..<20 {
            input.append(a[i])
            if i < 10 { input.append(b[i]) }
            if i == 5 { input.append(udp) }
        }
        let (messages, result) = try roundTrip(input)
        #expect(result.writes == 3 && result.written == 31 && result.failed == 0)
        // The first message is flow A's super-packet, with its vnet header.
        let header = try messages[0].withUnsafeBytes { try VirtioNetHeader(parsing: $0) }
        let ihl = v6 ? 40 : 20
        #expect(header.gsoType == (v6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4))
        #expect(header.flags == VirtioNetHeader.needsChecksum && header.gsoSize == 1000)
        #expect(header.csumStart == UInt16(ihl) && header.csumOffset == 16 && header.headerLength == UInt16(ihl + 32))
        #expect(messages[0].count == 10 + ihl + 32 + 20 * 1000)
        let out = try unwrap(messages)
        #expect(out.filter { $0.count > 100 && be16($0, ihl) == 40000 } == a)
        #expect(out.filter { $0.count > 100 && be16($0, ihl) == 40001 } == b)
        #expect(out.filter { be16($0, ihl) != 40000 && be16($0, ihl) != 40001 } == [udp])
    }

    @Test func whatMustNotCoalesce() throws {
        let base = flow(v6: false, count: 4, pshLast: false)
        func writes(_ packets: [[UInt8]]) throws -> Int {
            let (messages, result) = try roundTrip(packets)
            #expect(result.written == packets.count)
            #expect(try unwrap(messages).count == packets.count)
            return result.writes
        }
        #expect(try writes(base) == 1)
        // A gap in the sequence.
        #expect(try writes([base[0], base[1], base[3]]) == 2)
        // Another ACK number.
        var otherAck = flow(v6: false, count: 4, ack: 999, pshLast: false)
        #expect(try writes([base[0], base[1], otherAck[2]]) == 2)
        // A bad checksum: never coalesced, written alone (the kernel drops it).
        otherAck = base
        otherAck[2][60] ^= 0xff
        #expect(try writes(otherAck) == 3)
        // PSH ends a super-packet; a shorter segment too.
        let psh = flow(v6: false, count: 2, pshLast: true)
        let next = flow(v6: false, count: 1, seq: 7000, seed: 9)
        #expect(try writes(psh + next) == 2)
        var short = makePacket(v6: false, tcp: true, payload: [UInt8](repeating: 1, count: 500), seq: 7000, ack: 777, optionWords: 3)
        referenceFinish(&short)
        let after = flow(v6: false, count: 1, seq: 7500, seed: 3)
        #expect(try writes([base[0], base[1], short, after[0]]) == 2)
        // SYN/FIN/RST and packets without payload are left alone.
        var syn = base[0]
        syn[33] = 0x02
        referenceFinish(&syn)
        #expect(try writes([syn, base[1]]) == 2)
        // Coalescing off, or a plain TUN: one write per packet.
        #expect(try roundTrip(base, coalesce: false).1.writes == 4)
        let (plain, result) = try roundTrip(base, vnetHeader: false)
        #expect(result.writes == 4 && plain == base)
    }

    /// `count` datagrams of one UDP flow, consecutive IPv4 ids.
    func datagrams(v6: Bool, sizes: [Int], srcPort: UInt16 = 50000, seed: UInt64 = 4) -> [[UInt8]] {
        var rng = TestRandom(seed: seed)
        return sizes.enumerated().map { i, size in
            var p = makePacket(v6: v6, tcp: false, payload: rng.bytes(size), srcPort: srcPort, id: 0x200 &+ UInt16(i))
            referenceFinish(&p)
            return p
        }
    }

    @Test(arguments: [false, true])
    func udpFlowsCoalesceInOrder(v6: Bool) throws {
        let a = datagrams(v6: v6, sizes: [Int](repeating: 1200, count: 10) + [300], seed: 1)
        let b = datagrams(v6: v6, sizes: [800, 800, 800, 900, 800], srcPort: 50001, seed: 2)
        var input: [[UInt8]] = []
        for i in 0..<11 {
            input.append(a[i])
            if i < 5 { input.append(b[i]) }
        }
        let (messages, result) = try roundTrip(input, udp: true)
        // A: one super-packet (the short one ends it). B: 800 x3; the larger
        // 900 cannot follow them and starts an item, which the last 800
        // joins (not the first item: that would reorder B).
        #expect(result.writes == 3 && result.written == 16)
        let header = try messages[0].withUnsafeBytes { try VirtioNetHeader(parsing: $0) }
        #expect(header.gsoType == VirtioNetHeader.gsoUDPL4 && header.gsoSize == 1200 && header.csumOffset == 6)
        let out = try unwrap(messages)
        let ihl = v6 ? 40 : 20
        #expect(out.filter { be16($0, ihl) == 50000 } == a)
        #expect(out.filter { be16($0, ihl) == 50001 } == b)
        // Without UDP coalescing asked for, every datagram goes alone.
        #expect(try roundTrip(input).1.writes == 16)
    }

    @Test func fullBatchRefuses() {
        let batch = TUNWriteBatch(capacity: 2)
        var p = [UInt8](repeating: 0, count: 40)
        p.withUnsafeMutableBytes { raw in
            #expect(batch.append(raw) && batch.append(raw))
            #expect(!batch.append(raw))
        }
        #expect(batch.count == 2 && batch.writeCount == 2)
        batch.removeAll()
        #expect(batch.count == 0)
    }
}
