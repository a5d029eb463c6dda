import CWGShim
import Foundation
import POSIX
import Testing
import TestSupport
import WGNetlink
@testable import BuiltinWireGuard
#if canImport(Glibc)
import Glibc
#endif

/// A network namespace of its own with a vnet-header TUN in it, opened by
/// this thread from inside (as the holder will) and then used from the
/// original namespace (as the engine will). Everything goes with it.
final class TUNLab {
    static let mtu = 1420
    let namespace = "wgio-\(getpid())-\(UInt32.random(in: 0...0xffffff))"
    let device: Descriptor
    let offloads: TUNOffloads
    let name: String

    /// Creates the namespace and the TUN (up, MTU 1420, 10.9.0.1/24 and
    /// fd00:9::1/64; with a vnet header and offloads unless told not), then runs `inside` in the namespace (to make sockets
    /// there) before coming back.
    init(offloads wanted: Bool = true, inside: () throws -> Void = {}) throws {
        try Self.ip(["netns", "add", namespace])
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        let target = open("/run/netns/\(namespace)", O_RDONLY | O_CLOEXEC)
        defer { close(original); close(target) }
        guard original >= 0, target >= 0, CWGShim_setns(target, CWGShim_CLONE_NEWNET) == 0 else {
            throw CheckFailure("cannot enter \(namespace): errno \(errno)")
        }
        defer { precondition(CWGShim_setns(original, CWGShim_CLONE_NEWNET) == 0, "cannot go back to the original namespace") }
        let tun = try TUNDevice.open(name: "wgio%d", offloads: wanted)
        name = tun.name
        offloads = tun.offloads
        device = tun.take()
        _ = device.raw
        try Self.ip(["-n", namespace, "link", "set", name, "up", "mtu", "\(Self.mtu)"])
        try Self.ip(["-n", namespace, "link", "set", "lo", "up"])
        try Self.ip(["-n", namespace, "addr", "add", "10.9.0.1/24", "dev", name])
        try Self.ip(["-n", namespace, "addr", "add", "fd00:9::1/64", "dev", name, "nodad"])
        try inside()
    }

    deinit {
        _ = try? Self.ip(["netns", "del", namespace])
    }

    static func ip(_ args: [String]) throws {
        let r = try run("/usr/sbin/ip", args)
        guard r.status == 0 else { throw CheckFailure("ip \(args.joined(separator: " ")): \(r.stderr)") }
    }

    /// Reads from the TUN until `handle` says stop or `seconds` pass; each
    /// read is split with GSO.split and handed over with its vnet header
    /// (a plain TUN's reads are handed over as they are, with `.none`).
    func pump(seconds: Double, idle: () -> Void = {}, _ handle: (VirtioNetHeader, [[UInt8]]) throws -> Bool) throws {
        let raw = device.raw
        var buffer = [UInt8](repeating: 0, count: TUNDevice.maxReadSize)
        let batch = PacketBatch(capacity: 64, slotSize: 2048, headroom: 16)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            idle()
            var pfd = pollfd(fd: raw, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 50) > 0 else { continue }
            let n = try buffer.withUnsafeMutableBytes { b in try TUNDevice.read(device, into: b) }
            guard n > 0 else { continue }
            batch.removeAll()
            guard offloads.contains(.vnetHeader) else {
                if try !handle(.none, [Array(buffer[..<n])]) { return }
                continue
            }
            let header = try buffer.withUnsafeBytes { try VirtioNetHeader(parsing: $0) }
            let count = try buffer.withUnsafeBytes { try GSO.split(UnsafeRawBufferPointer(rebasing: $0[..<n]), into: batch) }
            let packets = (0..<count).map { Array(UnsafeRawBufferPointer(batch.packet($0))) }
            if try !handle(header, packets) { return }
        }
        throw CheckFailure("timed out after \(seconds) s")
    }

    /// Writes one packet into the TUN, as the kernel will receive it.
    func write(_ packet: [UInt8]) throws {
        try packet.withUnsafeBytes { p in try TUNDevice.write(device, packet: p, vnetHeader: true) }
    }
}

@Suite(.serialized) struct IOTUNTests {
    static let canRun = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")

    /// The kernel's TCP sends 2 MiB over the TUN to a TCP peer played here
    /// (handshake, ACKs written back through the TUN): every read is split,
    /// and every segment must fit the MTU, have right IP and TCP checksums
    /// and follow the last one's sequence number; the bytes must be those sent.
    @Test(.enabled(if: canRun, "needs root and iproute2"), arguments: [false, true])
    func kernelTCPThroughTUN(v6: Bool) throws {
        var client: Int32 = -1
        let lab = try TUNLab {
            client = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        #expect(lab.offloads.isSuperset(of: [.vnetHeader, .checksum, .tso4, .tso6]))
        #expect(client >= 0)
        defer { close(client) }
        // Connect from the original namespace: the socket stays in the lab's.
        let peerPort: UInt16 = 5201
        let peer = SocketAddress(address: v6 ? IPAddress("fd00:9::2")! : .v4(10, 9, 0, 2), port: peerPort)
        var name = [UInt8](repeating: 0, count: 32)
        let nameLength = name.withUnsafeMutableBytes { peer.writeSockaddr(to: $0.baseAddress!, asIPv6: v6) }
        let rc = name.withUnsafeBytes { connect(client, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(nameLength)) }
        #expect(rc == -1 && errno == EINPROGRESS)

        var rng = TestRandom(seed: v6 ? 66 : 44)
        let data = rng.bytes(2 << 20)
        var sent = 0
        var received: [UInt8] = []
        received.reserveCapacity(data.count)
        let serverISN: UInt32 = 0x8000_0000
        var clientPort: UInt16 = 0
        var expected: UInt32 = 0
        var established = false
        var superPackets = 0, segments = 0, outOfOrder = 0
        let clientAddress: [UInt8] = v6 ? [0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] : [10, 9, 0, 1]
        let peerAddress: [UInt8] = v6 ? [0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2] : [10, 9, 0, 2]
        func reply(flags: UInt8, options: [UInt8] = [], window: UInt16 = 0xffff) throws {
            var p = makePacket(v6: v6, tcp: true, payload: [], seq: flags & 0x02 != 0 ? serverISN : serverISN &+ 1, ack: expected,
                               flags: flags, optionWords: options.count / 4, src: peerAddress, dst: clientAddress,
                               srcPort: peerPort, dstPort: clientPort)
            let ihl = v6 ? 40 : 20
            p.replaceSubrange((ihl + 20)..<(ihl + 20 + options.count), with: options)
            put16(&p, ihl + 14, window)
            referenceFinish(&p)
            try lab.write(p)
        }

        try lab.pump(seconds: 60, idle: {
            guard established, sent < data.count else { return }
            let n = data.withUnsafeBytes { send(client, $0.baseAddress! + sent, data.count - sent, Int32(MSG_DONTWAIT)) }
            if n > 0 { sent += n }
        }) { header, packets in
            var ackNow = false
            for p in packets {
                guard let parsed = try? ParsedPacket.check(p).get(), parsed.proto == 6, parsed.dstPort == peerPort else {
                    // Other traffic (IPv6 neighbour discovery, MLD): still
                    // split without error, not ours.
                    continue
                }
                #expect(p.count <= TUNLab.mtu, "segment of \(p.count) bytes over the MTU")
                #expect(parsed.isV6 == v6)
                if parsed.flags & 0x02 != 0 {  // SYN
                    clientPort = parsed.srcPort
                    expected = parsed.seq &+ 1
                    // MSS 1380, NOP, window scale 7.
                    try reply(flags: 0x12, options: [2, 4, 0x05, 0x64, 1, 3, 3, 7])
                    continue
                }
                if !established && parsed.flags & 0x10 != 0 { established = true }
                guard !parsed.payload.isEmpty else { continue }
                segments += 1
                if parsed.seq == expected {
                    received += parsed.payload
                    expected &+= UInt32(parsed.payload.count)
                } else {
                    outOfOrder += 1
                }
                ackNow = true
            }
            if header.gsoType == VirtioNetHeader.gsoTCPv4 || header.gsoType == VirtioNetHeader.gsoTCPv6 {
                superPackets += 1
                #expect(header.gsoType == (v6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4))
            }
            if ackNow { try reply(flags: 0x10, window: 0xffff) }
            return received.count < data.count
        }
        #expect(received == data)
        #expect(superPackets > 0, "the kernel never sent a TSO super-packet")
        #expect(segments > superPackets)
        #expect(outOfOrder == 0)
    }

    /// The kernel's UDP with UDP_SEGMENT (this code's own UDPSocket) sends
    /// over the TUN: with USO accepted the TUN gets UDP_L4 super-packets,
    /// which split into the datagrams sent, checksums right.
    @Test(.enabled(if: canRun, "needs root and iproute2"), arguments: [false, true])
    func kernelUDPSegmentsThroughTUN(v6: Bool) throws {
        var sender: UDPSocket?
        let lab = try TUNLab {
            sender = try UDPSocket.bind(port: 0, family: v6 ? .dualStack : .ipv4)
        }
        let socket = try #require(sender)
        #expect(socket.sendOffload)
        let destination = SocketAddress(address: v6 ? IPAddress("fd00:9::2")! : .v4(10, 9, 0, 2), port: 9999)
        var rng = TestRandom(seed: 5)
        let datagrams = (0..<21).map { i in rng.bytes(i == 20 ? 300 : 1000) }
        let joined = datagrams.reduce([], +)
        let batch = UDPSendBatch(capacity: 32)
        let result = joined.withUnsafeBytes { raw in
            var at = 0
            for d in datagrams {
                batch.append(UnsafeRawBufferPointer(rebasing: raw[at..<(at + d.count)]), to: destination)
                at += d.count
            }
            return socket.send(batch)
        }
        #expect(result.sent == 21 && result.failed == 0)
        var got: [[UInt8]] = []
        var superPackets = 0
        try lab.pump(seconds: 10) { header, packets in
            for p in packets {
                guard let parsed = try? ParsedPacket.check(p).get(), parsed.proto == 17, parsed.dstPort == 9999 else { continue }
                #expect(parsed.srcPort == socket.port)
                got.append(Array(parsed.payload))
            }
            if header.gsoType == VirtioNetHeader.gsoUDPL4 { superPackets += 1 }
            return got.count < datagrams.count
        }
        #expect(got == datagrams)
        if lab.offloads.contains(.uso4) { #expect(superPackets > 0, "USO accepted but no UDP_L4 super-packet came") }
    }

    /// The other way: a TCP client played here sends 2 MiB through the TUN
    /// to a listening kernel socket, its segments coalesced by
    /// TUNWriteBatch into super-packets; the kernel must take them (it
    /// checks nothing we got wrong silently: a bad length or partial
    /// checksum loses data) and deliver the bytes in order.
    @Test(.enabled(if: canRun, "needs root and iproute2"), arguments: [false, true])
    func coalescedWritesIntoKernelTCP(v6: Bool) throws {
        var listener: Int32 = -1
        let serverPort: UInt16 = 5202
        let lab = try TUNLab {
            listener = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var name = [UInt8](repeating: 0, count: 32)
            let me = SocketAddress(address: v6 ? IPAddress("fd00:9::1")! : .v4(10, 9, 0, 1), port: serverPort)
            let length = name.withUnsafeMutableBytes { me.writeSockaddr(to: $0.baseAddress!, asIPv6: v6) }
            let bound = name.withUnsafeBytes { bind(listener, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(length)) }
            guard bound == 0, listen(listener, 4) == 0 else { throw CheckFailure("listen: errno \(errno)") }
        }
        defer { close(listener) }
        var server: Int32 = -1
        defer { if server >= 0 { close(server) } }
        let kernelAddress: [UInt8] = v6 ? [0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] : [10, 9, 0, 1]
        let ourAddress: [UInt8] = v6 ? [0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2] : [10, 9, 0, 2]
        let ourPort: UInt16 = 41000
        let isn: UInt32 = 0xffff_0000  // wraps during the transfer
        let mss = 1380 - (v6 ? 20 : 0)
        var rng = TestRandom(seed: v6 ? 16 : 14)
        let data = rng.bytes(2 << 20)
        var kernelNext: UInt32 = 0
        var established = false
        var acked = 0, nextToSend = 0, window = 0, id: UInt16 = 0
        var lastProgress = Date()
        var received: [UInt8] = []
        var totals = TUNWriteResult()
        let storage = PacketBatch(capacity: 64, slotSize: 2048)
        let batch = TUNWriteBatch(capacity: 64)

        func segment(_ offset: Int, _ length: Int, flags: UInt8, options: [UInt8] = []) -> [UInt8] {
            id &+= 1
            var p = makePacket(v6: v6, tcp: true, payload: Array(data[offset..<(offset + length)]),
                               seq: isn &+ 1 &+ UInt32(offset), ack: kernelNext, flags: flags,
                               optionWords: options.count / 4, src: ourAddress, dst: kernelAddress,
                               srcPort: ourPort, dstPort: serverPort, id: id)
            let ihl = v6 ? 40 : 20
            p.replaceSubrange((ihl + 20)..<(ihl + 20 + options.count), with: options)
            referenceFinish(&p)
            return p
        }
        // SYN with MSS and no window scaling: the kernel's window stays in 16 bits.
        var syn = segment(0, 0, flags: 0x02, options: [2, 4, UInt8(mss >> 8), UInt8(mss & 0xff)])
        put32(&syn, v6 ? 44 : 24, isn)
        referenceFinish(&syn)
        try lab.write(syn)

        try lab.pump(seconds: 60, idle: {
            if server < 0 { server = accept(listener, nil, nil) }
            if server >= 0 {
                var chunk = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let n = chunk.withUnsafeMutableBytes { recv(server, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if n <= 0 { break }
                    received += chunk[..<n]
                }
            }
            guard established else { return }
            // Go back to the last ACK when nothing moved for a while (a
            // segment the kernel dropped would show as that).
            if Date().timeIntervalSince(lastProgress) > 0.5 && nextToSend > acked {
                nextToSend = acked
                lastProgress = Date()
            }
            storage.removeAll()
            while nextToSend < data.count, nextToSend - acked + mss <= max(window, mss), storage.count < storage.capacity {
                let length = min(mss, data.count - nextToSend)
                let last = nextToSend + length == data.count || storage.count == storage.capacity - 1
                let p = segment(nextToSend, length, flags: last ? 0x18 : 0x10)
                _ = p.withUnsafeBytes { storage.append($0) }
                batch.append(storage.packet(storage.count - 1))
                nextToSend += length
            }
            if batch.count > 0 {
                let r = batch.write(to: lab.device, vnetHeader: true)
                totals.written += r.written
                totals.writes += r.writes
                totals.failed += r.failed
                #expect(r.firstError == nil)
            }
        }) { _, packets in
            for p in packets {
                guard let parsed = try? ParsedPacket.check(p).get(), parsed.proto == 6, parsed.srcPort == serverPort else { continue }
                let ihl = parsed.ipHeaderLength
                if parsed.flags & 0x12 == 0x12 {
                    kernelNext = parsed.seq &+ 1
                    established = true
                    try lab.write(segment(0, 0, flags: 0x10))
                }
                let ackedNow = Int(be32(p, ihl + 8) &- (isn &+ 1))
                if ackedNow > acked && ackedNow <= data.count {
                    acked = ackedNow
                    lastProgress = Date()
                }
                window = Int(be16(p, ihl + 14))
            }
            return received.count < data.count
        }
        #expect(received == data)
        #expect(totals.failed == 0)
        // Coalescing happened: far fewer writes than segments.
        #expect(totals.writes * 4 < totals.written, "\(totals.writes) writes for \(totals.written) segments")
    }

    /// UDP datagrams coalesced by TUNWriteBatch into UDP_L4 super-packets
    /// and written into the TUN reach a kernel socket, with and without
    /// UDP_GRO, every one, in order, unchanged.
    @Test(.enabled(if: canRun, "needs root and iproute2"), arguments: [(false, true), (true, true), (false, false)])
    func coalescedUDPIntoKernelSocket(v6: Bool, gro: Bool) throws {
        var receiver: UDPSocket?
        let lab = try TUNLab {
            receiver = try UDPSocket.bind(port: 0, family: v6 ? .dualStack : .ipv4, offloads: gro)
        }
        let socket = try #require(receiver)
        #expect(socket.receiveOffload == gro)
        try #require(lab.offloads.contains(.uso4), "this kernel should take USO (6.2+)")
        let ours: [UInt8] = v6 ? [0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2] : [10, 9, 0, 2]
        let kernel: [UInt8] = v6 ? [0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] : [10, 9, 0, 1]
        var rng = TestRandom(seed: 12)
        let sizes = (0..<200).map { $0 % 25 == 24 ? 100 : 1300 }
        let payloads = sizes.map { rng.bytes($0) }
        let storage = PacketBatch(capacity: 200, slotSize: 2048)
        for (i, payload) in payloads.enumerated() {
            var p = makePacket(v6: v6, tcp: false, payload: payload, src: ours, dst: kernel, srcPort: 4242,
                               dstPort: socket.port, id: UInt16(i))
            referenceFinish(&p)
            _ = p.withUnsafeBytes { storage.append($0) }
        }
        let batch = TUNWriteBatch(capacity: 200, coalesceUDP: true)
        for i in 0..<200 { batch.append(storage.packet(i)) }
        let result = batch.write(to: lab.device, vnetHeader: true)
        #expect(result.written == 200 && result.failed == 0 && result.firstError == nil)
        #expect(result.writes == 8, "25-datagram runs ending in a short one: 8 super-packets")
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socket.descriptor.raw, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let rx = UDPReceiveBatch(messageCount: 16, bufferSize: 65536)
        var got: [[UInt8]] = []
        while got.count < 200 {
            let n = try socket.receive(into: rx)
            guard n > 0 else { break }
            for i in 0..<n {
                got.append(Array(UnsafeRawBufferPointer(rx.datagram(i))))
                #expect(rx.source(i) == SocketAddress(address: IPAddress(bytes: ours)!, port: 4242))
            }
        }
        #expect(got == payloads)
    }

    /// The kernel refuses UDP_SEGMENT with EMSGSIZE when a segment does not
    /// fit the route's MTU (1500-byte datagrams, MTU 1420): the send must
    /// still deliver every datagram, one per message (the kernel fragments
    /// them), and keep segmentation for later sends.
    @Test(.enabled(if: canRun, "needs root and iproute2"))
    func oversizeSegmentsGoOneByOne() throws {
        var sender: UDPSocket?
        let lab = try TUNLab(offloads: false) {
            sender = try UDPSocket.bind(port: 0, family: .ipv4)
        }
        #expect(lab.offloads == [])
        let socket = try #require(sender)
        #expect(socket.sendOffload)
        let destination = SocketAddress(address: .v4(10, 9, 0, 2), port: 9999)
        let size = 1500
        let payload = [UInt8](repeating: 0x5a, count: 16 * size)
        let batch = UDPSendBatch(capacity: 16)
        let result = payload.withUnsafeBytes { raw in
            for i in 0..<16 { batch.append(UnsafeRawBufferPointer(rebasing: raw[(i * size)..<((i + 1) * size)]), to: destination) }
            return socket.send(batch)
        }
        #expect(result.sent == 16 && result.failed == 0 && result.firstError == nil)
        #expect(socket.sendOffload, "an MTU refusal is no reason to give UDP_SEGMENT up")
        // Each datagram leaves as fragments; count the first ones.
        var firsts = 0
        try lab.pump(seconds: 10) { _, packets in
            for p in packets where p.count >= 28 && p[0] == 0x45 && p[9] == 17 && p[6] & 0x1f == 0 && p[7] == 0 {
                #expect(be16(p, 22) == 9999 && Int(be16(p, 24)) == 8 + size)
                firsts += 1
            }
            return firsts < 16
        }
    }

    /// Without offloads: no vnet header, reads are bare packets.
    @Test(.enabled(if: canRun, "needs root and iproute2"))
    func plainTUN() throws {
        let ns = "wgio-plain-\(getpid())"
        #expect(try run("/usr/sbin/ip", ["netns", "add", ns]).status == 0)
        defer { _ = try? run("/usr/sbin/ip", ["netns", "del", ns]) }
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        let target = open("/run/netns/\(ns)", O_RDONLY | O_CLOEXEC)
        defer { close(original); close(target) }
        #expect(CWGShim_setns(target, CWGShim_CLONE_NEWNET) == 0)
        let tun = try TUNDevice.open(name: "plain0", offloads: false)
        #expect(CWGShim_setns(original, CWGShim_CLONE_NEWNET) == 0)
        #expect(tun.name == "plain0" && tun.offloads == [])
        #expect(try TUNDevice.hasVirtioHeader(tun.descriptor) == false)
        // The device exists in that namespace, not in this one.
        let links = try run("/usr/sbin/ip", ["-n", ns, "link", "show", "plain0"])
        #expect(links.status == 0)
        #expect(try run("/usr/sbin/ip", ["link", "show", "plain0"]).status != 0)
    }
}
