#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import KeyStore
import WGNetlink
@testable import BuiltinWireGuard

/// A sink that several threads may call: datagrams go into a queue that
/// another thread drains.
final class QueueSink: PacketSink, @unchecked Sendable {
    private let lock = NSLock()
    private var queue: [[UInt8]] = []
    private(set) var delivered = 0
    func sendDatagram(_ bytes: UnsafeRawBufferPointer, to endpoint: SocketAddress) {
        lock.lock(); queue.append(Array(bytes)); lock.unlock()
    }
    func writeToTUN(_ packet: UnsafeRawBufferPointer) { lock.lock(); delivered += 1; lock.unlock() }
    func drain() -> [[UInt8]] { lock.lock(); defer { queue = []; lock.unlock() }; return queue }
    var count: Int { lock.lock(); defer { lock.unlock() }; return delivered }
}

@Suite struct ConcurrencyTests {
    /// The engine calls from a TUN reader and a UDP reader at once, and ticks: one lock must cover it all.
    @Test func twoReadersAndATickerAtOnce() throws {
        let p = try Pair()
        #expect(p.establish())
        let toB = QueueSink(), toA = QueueSink()
        let n = 3000
        let a = p.a, b = p.b, addrA = p.addrA, addrB = p.addrB
        let group = DispatchGroup()
        let done = Atomicish()
        DispatchQueue.global().async(group: group) {
            for i in 0..<n {
                ipv4(from: (10, 0, 0, 1), to: (10, 0, 0, 2), payload: [UInt8(i & 0xff)]).withUnsafeBytes { a.handleOutgoing($0, sink: toB) }
            }
        }
        DispatchQueue.global().async(group: group) {
            for i in 0..<n {
                ipv4(from: (10, 0, 0, 2), to: (10, 0, 0, 1), payload: [UInt8(i & 0xff)]).withUnsafeBytes { b.handleOutgoing($0, sink: toA) }
            }
        }
        DispatchQueue.global().async(group: group) {
            while !done.value {
                for d in toB.drain() { d.withUnsafeBytes { b.handleIncoming($0, from: addrA, sink: toA) } }
                for d in toA.drain() { d.withUnsafeBytes { a.handleIncoming($0, from: addrB, sink: toB) } }
                a.tick(sink: toB); b.tick(sink: toA)
                _ = a.snapshot(name: "a"); _ = b.drops
            }
            for d in toB.drain() { d.withUnsafeBytes { b.handleIncoming($0, from: addrA, sink: toA) } }
            for d in toA.drain() { d.withUnsafeBytes { a.handleIncoming($0, from: addrB, sink: toB) } }
        }
        // Until everything arrived (or 30 s: a lost packet fails the test below instead of hanging).
        let deadline = Date().addingTimeInterval(30)
        while toB.count + toA.count < 2 * n && Date() < deadline { usleep(1000) }
        done.value = true
        group.wait()
        #expect(toB.count == n && toA.count == n)
        #expect(a.drops.incomingTotal == 0 && b.drops.incomingTotal == 0)
    }
}

final class Atomicish: @unchecked Sendable {
    private let lock = NSLock()
    private var v = false
    var value: Bool {
        get { lock.lock(); defer { lock.unlock() }; return v }
        set { lock.lock(); v = newValue; lock.unlock() }
    }
}
