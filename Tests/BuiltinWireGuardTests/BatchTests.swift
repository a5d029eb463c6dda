import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Testing
import WGNetlink
@testable import BuiltinWireGuard

/// The batched paths the engine runs (`planOutgoing`, `SealPlan.seal`,
/// `planIncoming`, `OpenPlan.open`, `acceptOpened`, `HandoffRing`) between
/// two devices over real loopback UDP sockets (sendmmsg with UDP_SEGMENT,
/// recvmmsg with UDP_GRO).
@Suite struct BatchTests {
    /// 100 packets planned in one batch on A, sealed by two threads at once
    /// (disjoint halves), sent in one call, received, opened and accepted
    /// in batches on B: every packet arrives, in order, byte for byte, with
    /// consecutive counters; the same datagrams again are all replays.
    @Test func batchOfHundredInOrderThenAllReplayed() throws {
        let p = try Pair()
        #expect(p.establish())
        let loopback = IPAddress("127.0.0.1")!
        let tx = try UDPSocket.bind(port: 0, family: .ipv4, address: loopback)
        let rxSocket = try UDPSocket.bind(port: 0, family: .ipv4, address: loopback, nonBlocking: true)
        let to = SocketAddress(address: loopback, port: rxSocket.port)
        let count = 100
        let plain = PacketBatch(capacity: count, slotSize: Engine.outboundSlotSize(mtu: 1420), headroom: TransportHeader.size)
        let originals = (0..<count).map { i in
            ipv4(from: (10, 0, 0, 1), to: (10, 0, 0, 2), payload: (0..<(1000 + i)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) })
        }
        for o in originals { o.withUnsafeBytes { _ = plain.append($0) } }
        let plan = SealPlan(capacity: count)
        p.a.planOutgoing(plain, plan: plan, sink: p.sinkA)
        #expect((0..<count).allSatisfy { plan.keypairs[$0] != nil })
        #expect((0..<count).allSatisfy { plan.counters[$0] == plan.counters[0] + UInt64($0) })
        DispatchQueue.concurrentPerform(iterations: 2) { k in plan.seal(plain, k == 0 ? 0..<(count / 2) : (count / 2)..<count) }
        let send = UDPSendBatch(capacity: count)
        for i in 0..<count {
            send.append(UnsafeRawBufferPointer(start: plain.slot(i).baseAddress!, count: plan.messageLength(i)), to: to)
        }
        plan.release(count)

        /// Receives until `expected` datagrams came (or 2 s passed), each
        /// batch through B's three steps; returns the packets B would write.
        func receive(_ expected: Int) -> [[UInt8]] {
            let rx = UDPReceiveBatch(messageCount: 32, bufferSize: 65536)
            let open = OpenPlan(capacity: 32 * UDPSocket.maxSegments)
            var got: [[UInt8]] = []
            var datagrams = 0
            for _ in 0..<2000 where datagrams < expected {
                let n = (try? rxSocket.receive(into: rx)) ?? 0
                if n == 0 { usleep(1000); continue }
                datagrams += n
                p.b.planIncoming(rx, plan: open, sink: p.sinkB)
                open.open(rx, 0..<n)
                p.b.acceptOpened(rx, plan: open, sink: p.sinkB)
                open.release(n)
                for i in 0..<n where open.lengths[i] > 0 {
                    got.append(Array(UnsafeRawBufferPointer(start: rx.datagram(i).baseAddress! + TransportHeader.size, count: open.lengths[i])))
                }
            }
            return got
        }

        #expect(tx.send(send).sent == count)
        let got = receive(count)
        #expect(got.count == count)
        #expect(got == originals)
        #expect(p.b.drops.incomingTotal == 0)
        #expect(tx.send(send).sent == count)
        #expect(receive(count).isEmpty)
        #expect(p.b.drops.replayed == UInt64(count))
    }

    /// The ring hands slots over first in, first out, and never lets the
    /// producer get more than `depth` ahead.
    @Test func handoffRingKeepsOrder() {
        let ring = HandoffRing(depth: 3)
        let values = UnsafeMutablePointer<Int>.allocate(capacity: 3)
        defer { values.deallocate() }
        nonisolated(unsafe) let shared = values
        let total = 10_000
        DispatchQueue.concurrentPerform(iterations: 2) { role in
            if role == 0 {
                for v in 0..<total { shared[ring.nextFree()] = v; ring.publish() }
            } else {
                var next = 0
                for _ in 0..<total {
                    let v = shared[ring.nextFilled()]
                    if v == next { next += 1 }
                    ring.recycle()
                }
                #expect(next == total)
            }
        }
    }
}
