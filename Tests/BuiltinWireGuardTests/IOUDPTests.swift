import Testing
import WGNetlink
@testable import BuiltinWireGuard
#if canImport(Glibc)
import Glibc
#endif

/// Two real sockets on loopback: batches of datagrams both ways, with and
/// without UDP_SEGMENT/UDP_GRO, checked for count, size, contents and order.
@Suite(.serialized) struct IOUDPTests {
    static let loopback = IPAddress.v4(127, 0, 0, 1)

    /// Datagram `i` of a run: its size, and bytes that say which it is.
    static func datagram(_ i: Int, sizes: (Int) -> Int) -> [UInt8] {
        var d = [UInt8](repeating: UInt8(truncatingIfNeeded: i &* 31), count: sizes(i))
        d[0] = UInt8(i >> 8); d[1] = UInt8(i & 0xff)
        return d
    }

    /// Sends `total` datagrams from `sender` to `receiver` in batches of 64,
    /// receives them all, and returns them with their sources.
    func exchange(_ sender: UDPSocket, _ receiver: UDPSocket, total: Int, to destination: SocketAddress,
                  sizes: @escaping (Int) -> Int, receiveBatch: UDPReceiveBatch) throws -> (got: [[UInt8]], sources: [SocketAddress], sent: UDPSendResult, maxPerReceive: Int) {
        let all = (0..<total).map { Self.datagram($0, sizes: sizes) }
        let batch = UDPSendBatch(capacity: 64)
        var got: [[UInt8]] = []
        var sources: [SocketAddress] = []
        var sentTotal = UDPSendResult()
        var maxPerReceive = 0
        var next = 0
        // A lost datagram must fail the test, not hang it: receives time out.
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(receiver.descriptor.raw, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while next < total {
            batch.removeAll()
            let end = min(total, next + 64)
            // The datagrams' memory must stay put until send returns: one
            // pinned copy per batch.
            let chunk = all[next..<end].reduce([], +)
            var offsets: [Int] = [0]
            for d in all[next..<end] { offsets.append(offsets.last! + d.count) }
            let result = chunk.withUnsafeBytes { raw in
                for k in 0..<(end - next) {
                    #expect(batch.append(UnsafeRawBufferPointer(rebasing: raw[offsets[k]..<offsets[k + 1]]), to: destination))
                }
                return sender.send(batch)
            }
            sentTotal.sent += result.sent
            sentTotal.failed += result.failed
            if sentTotal.firstError == nil { sentTotal.firstError = result.firstError }
            next = end
            // Drain what has arrived so that the receive buffer never fills.
            while got.count < next - sentTotal.failed {
                let n = try receiver.receive(into: receiveBatch)
                if n == 0 { throw CheckFailure("no datagram within 5 s after \(got.count)") }
                maxPerReceive = max(maxPerReceive, n)
                for i in 0..<n {
                    got.append(Array(UnsafeRawBufferPointer(receiveBatch.datagram(i))))
                    sources.append(receiveBatch.source(i))
                }
            }
        }
        return (got, sources, sentTotal, maxPerReceive)
    }

    @Test(arguments: [true, false])
    func thousandDatagramsInOrder(offloads: Bool) throws {
        let receiver = try UDPSocket.bind(port: 0, family: .ipv4, address: Self.loopback, offloads: offloads)
        let sender = try UDPSocket.bind(port: 0, family: .ipv4, address: Self.loopback, offloads: offloads)
        #expect(receiver.port != 0 && sender.port != 0 && receiver.port != sender.port)
        if offloads {
            // This kernel (6.x) has both; without them the test would not test them.
            #expect(receiver.receiveOffload && sender.sendOffload)
        } else {
            #expect(!receiver.receiveOffload && !sender.sendOffload)
        }
        // Runs of equal sizes with a shorter one now and then (it must end a
        // UDP_SEGMENT run), and a larger one after it.
        let sizes = { (i: Int) -> Int in i % 10 == 9 ? 300 + i % 7 : 1232 }
        let r = try exchange(sender, receiver, total: 1000,
                             to: SocketAddress(address: Self.loopback, port: receiver.port), sizes: sizes,
                             receiveBatch: UDPReceiveBatch(messageCount: 16, bufferSize: 65536))
        #expect(r.sent.sent == 1000 && r.sent.failed == 0 && r.sent.firstError == nil)
        #expect(r.got.count == 1000)
        #expect(r.got == (0..<1000).map { Self.datagram($0, sizes: sizes) })
        #expect(r.sources.allSatisfy { $0 == SocketAddress(address: Self.loopback, port: sender.port) })
        if offloads {
            // GRO on loopback hands over whole UDP_SEGMENT runs: many
            // datagrams per message, so more per receive than messages.
            #expect(r.maxPerReceive > 16)
        }
    }

    /// Forced fallback: the sender with UDP_SEGMENT turned off by the flag,
    /// the receiver with GRO; and the sender turned off after opening.
    @Test func fallbackPaths() throws {
        let receiver = try UDPSocket.bind(port: 0, family: .ipv4, address: Self.loopback)
        let sender = try UDPSocket.bind(port: 0, family: .ipv4, address: Self.loopback)
        sender.disableSendOffload()
        #expect(!sender.sendOffload)
        let sizes = { (_: Int) -> Int in 100 }
        let r = try exchange(sender, receiver, total: 300, to: SocketAddress(address: Self.loopback, port: receiver.port),
                             sizes: sizes, receiveBatch: UDPReceiveBatch(messageCount: 8))
        #expect(r.got == (0..<300).map { Self.datagram($0, sizes: sizes) })
        // A small-buffer batch on a GRO socket is refused, not truncated.
        #expect(throws: IOError.self) { try receiver.receive(into: UDPReceiveBatch(messageCount: 4, bufferSize: 2048)) }
    }

    /// A dual-stack socket talks to IPv4 peers (as IPv4, not ::ffff:) and
    /// IPv6 ones; an IPv4 socket refuses an IPv6 destination per datagram.
    @Test func dualStackAndFamilies() throws {
        let v6 = try UDPSocket.bind(port: 0, family: .dualStack)
        let v4 = try UDPSocket.bind(port: 0, family: .ipv4, address: Self.loopback)
        let sizes = { (i: Int) -> Int in 200 + i }
        let there = try exchange(v4, v6, total: 50, to: SocketAddress(address: Self.loopback, port: v6.port), sizes: sizes,
                                 receiveBatch: UDPReceiveBatch(messageCount: 8))
        #expect(there.got == (0..<50).map { Self.datagram($0, sizes: sizes) })
        #expect(there.sources.allSatisfy { $0 == SocketAddress(address: Self.loopback, port: v4.port) })
        let back = try exchange(v6, v4, total: 50, to: SocketAddress(address: Self.loopback, port: v4.port), sizes: sizes,
                                receiveBatch: UDPReceiveBatch(messageCount: 8))
        #expect(back.got.count == 50 && back.sources.first == SocketAddress(address: Self.loopback, port: v6.port))
        let ip6Loopback = IPAddress("::1")!
        let other = try UDPSocket.bind(port: 0, family: .dualStack, address: ip6Loopback)
        let six = try exchange(v6, other, total: 20, to: SocketAddress(address: ip6Loopback, port: other.port), sizes: sizes,
                               receiveBatch: UDPReceiveBatch(messageCount: 8))
        #expect(six.got.count == 20 && six.sources.first == SocketAddress(address: ip6Loopback, port: v6.port))

        let batch = UDPSendBatch(capacity: 4)
        let payload: [UInt8] = [1, 2, 3]
        let result = payload.withUnsafeBytes { p in
            batch.append(p, to: SocketAddress(address: ip6Loopback, port: 9))
            return v4.send(batch)
        }
        #expect(result.sent == 0 && result.failed == 1 && result.firstError == .addressFamilyNotSupported)
    }

    /// A socket that cannot segment (SO_NO_CHECK: the kernel says EINVAL to
    /// UDP_SEGMENT) turns segmentation off for good and delivers anyway.
    @Test func segmentationRefusedTurnsOff() throws {
        let receiver = try UDPSocket.bind(port: 0, family: .ipv4, address: Self.loopback)
        let sender = try UDPSocket.bind(port: 0, family: .ipv4, address: Self.loopback)
        var one: Int32 = 1
        #expect(setsockopt(sender.descriptor.raw, SOL_SOCKET, SO_NO_CHECK, &one, 4) == 0)
        #expect(sender.sendOffload)
        let sizes = { (_: Int) -> Int in 512 }
        let r = try exchange(sender, receiver, total: 200, to: SocketAddress(address: Self.loopback, port: receiver.port),
                             sizes: sizes, receiveBatch: UDPReceiveBatch(messageCount: 8))
        #expect(r.sent.sent == 200 && r.sent.failed == 0)
        #expect(r.got == (0..<200).map { Self.datagram($0, sizes: sizes) })
        #expect(!sender.sendOffload)
    }

    /// A non-blocking socket with nothing queued receives 0, no error.
    @Test func nonBlockingReceiveOfNothing() throws {
        let socket = try UDPSocket.bind(port: 0, family: .ipv4, address: Self.loopback, nonBlocking: true)
        let rx = UDPReceiveBatch(messageCount: 4)
        #expect(try socket.receive(into: rx) == 0 && rx.count == 0)
    }

    /// shutdown() wakes a thread blocked in receive, which then sees 0.
    @Test func shutdownWakesAReceiver() async throws {
        let socket = try UDPSocket.bind(port: 0, family: .ipv4, address: Self.loopback)
        let received = Task.detached { () throws -> Int in
            try socket.receive(into: UDPReceiveBatch(messageCount: 2))
        }
        try await Task.sleep(nanoseconds: 200_000_000)
        socket.shutdown()
        #expect(try await received.value == 0)
    }

    /// A dropped socket closes its descriptor (checked by number and inode:
    /// other tests running meanwhile may get the number again, never the inode).
    @Test func droppedSocketClosesItsDescriptor() throws {
        var (fd, inode): (Int32, UInt) = (-1, 0)
        do {
            let a = try UDPSocket.bind(port: 0, family: .dualStack)
            var st = stat()
            #expect(fstat(a.descriptor.raw, &st) == 0)
            (fd, inode) = (a.descriptor.raw, UInt(st.st_ino))
        }
        var st = stat()
        #expect(fstat(fd, &st) == -1 || UInt(st.st_ino) != inode)
    }

    @Test func portInUse() throws {
        let a = try UDPSocket.bind(port: 0, family: .ipv4, address: Self.loopback)
        #expect(throws: IOError.self) { try UDPSocket.bind(port: a.port, family: .ipv4, address: Self.loopback) }
        do {
            _ = try UDPSocket.bind(port: a.port, family: .ipv4, address: Self.loopback)
        } catch {
            #expect(error.code == .bind && error.errno == .addressInUse)
        }
    }
}
