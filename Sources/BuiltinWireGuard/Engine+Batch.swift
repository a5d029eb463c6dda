import POSIX
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The engine's batched loops for the product's core (`WireGuardDevice`),
/// as IO/TUN.swift lays them out: the lock is taken once or twice per batch,
/// not per packet, encryption and decryption run outside it, and the
/// packets go out with one `sendmmsg` (UDP_SEGMENT runs) or coalesced TUN
/// writes. Nothing here allocates per packet.
extension Engine {
    /// The largest batch of packets one TUN read can turn into: a 64 KiB
    /// super-packet cut at the smallest MSS a 1280-byte MTU allows is about
    /// 55 segments; a smaller MSS (a peer's tiny MSS option) still fits 128
    /// segments of 512 bytes.
    static let outboundCapacity = 128

    /// The slot size for packets of a TUN with `mtu` (0: unknown): the
    /// data header before the packet, then room for padding to 16 and the
    /// tag, rounded to 64 bytes.
    static func outboundSlotSize(mtu: Int) -> Int {
        let packet = mtu > 0 ? max(mtu, 1280) : 65535
        return (TransportHeader.size + packet + 15 + Crypto.tagLength + 63) & ~63
    }

    /// How many batches each way can be between the two stages.
    static let pipelineDepth = 4

    /// TUN -> UDP in two stages on two threads, batches handed over in
    /// order (`HandoffRing`): this thread reads a packet or a GSO
    /// super-packet, splits it into `PacketBatch` slots (headroom for the
    /// data header) and plans it under the device's lock (sessions and
    /// nonce counters in order); the other seals the batch in place and
    /// sends it (`sealAndSend`). Reading, splitting and checksumming the
    /// next batch overlap with encrypting and sending this one.
    func readTUNBatched(_ device: WireGuardDevice) -> Never {
        let output = tunSide
        let mtu = device.mtu
        let stages = (0..<Self.pipelineDepth).map { _ in
            OutboundStage(plain: PacketBatch(capacity: Self.outboundCapacity, slotSize: Self.outboundSlotSize(mtu: mtu),
                                             headroom: TransportHeader.size),
                          plan: SealPlan(capacity: Self.outboundCapacity))
        }
        let ring = HandoffRing(depth: Self.pipelineDepth)
        Self.startThread { [self] in sealAndSend(stages, ring) }
        let vnet = output.vnetHeader
        let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: vnet ? TUNDevice.maxReadSize : 0, alignment: 16)
        while true {
            let stage = stages[ring.nextFree()]
            let plain = stage.plain
            plain.removeAll()
            if vnet {
                let n = read(output.tun, readBuffer.baseAddress, readBuffer.count)
                if n < 0 { Self.tunReadFailed(); continue }
                guard n > 0, (try? GSO.split(UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]), into: plain)) != nil
                else { continue }
            } else {
                // A plain TUN: read straight into the first slot, after its headroom.
                let slot = plain.slot(0)
                let n = read(output.tun, slot.baseAddress! + plain.headroom, plain.maxPacketSize)
                if n < 0 { Self.tunReadFailed(); continue }
                guard n > 0 else { continue }
                plain.commit(slot: 0, length: n)
            }
            device.planOutgoing(plain, plan: stage.plan, sink: output)
            ring.publish()
        }
    }

    /// The second outbound stage: seal each planned batch in place, send it
    /// with one `sendmmsg` (UDP_SEGMENT runs), in the order planned.
    func sealAndSend(_ stages: [OutboundStage], _ ring: HandoffRing) -> Never {
        let send = UDPSendBatch(capacity: Self.outboundCapacity)
        let socket = tunSide.socket
        while true {
            let stage = stages[ring.nextFilled()]
            let plain = stage.plain, plan = stage.plan
            plan.seal(plain, 0..<plain.count)
            send.removeAll()
            for i in 0..<plain.count where plan.keypairs[i] != nil {
                send.append(UnsafeRawBufferPointer(start: plain.slot(i).baseAddress!, count: plan.messageLength(i)),
                            to: plan.endpoints[i])
            }
            plan.release(plain.count)
            if send.count > 0 { socket.send(send) }
            ring.recycle()
        }
    }

    /// A failed TUN read: EBADFD means the device went with its namespace
    /// (the job is over: exit); anything transient is retried.
    static func tunReadFailed() {
        if errno == EINTR || errno == EAGAIN || errno == ENOBUFS { return }
        _exit(0)
    }

    /// UDP -> TUN in two stages on two threads, batches handed over in
    /// order: this thread receives a batch (`recvmmsg`, GRO split) and
    /// plans it under the device's lock (handshake messages are handled
    /// there); the other opens the transport messages in place, accepts
    /// them under the lock and writes the packets to the TUN with TCP
    /// coalescing (`openAndWrite`).
    func readUDPBatched(_ device: WireGuardDevice) -> Never {
        let output = udpSide
        let stages = (0..<Self.pipelineDepth).map { _ in
            InboundStage(rx: UDPReceiveBatch(messageCount: 32, bufferSize: 65536),
                         plan: OpenPlan(capacity: 32 * UDPSocket.maxSegments))
        }
        let ring = HandoffRing(depth: Self.pipelineDepth)
        Self.startThread { [self] in openAndWrite(device, stages, ring) }
        while true {
            let stage = stages[ring.nextFree()]
            let n: Int
            do { n = try output.socket.receive(into: stage.rx) } catch {
                // As `readUDP`: a socket that is gone ends the data plane;
                // anything else (an ICMP error queued on it, no memory for a
                // moment) is one lost receive.
                if error.errno == .badFileDescriptor || error.errno == .notSocket { _exit(1) }
                if error.errno != .interrupted { usleep(1000) }
                continue
            }
            guard n > 0 else { continue }
            device.planIncoming(stage.rx, plan: stage.plan, sink: output)
            ring.publish()
        }
    }

    /// The second inbound stage.
    func openAndWrite(_ device: WireGuardDevice, _ stages: [InboundStage], _ ring: HandoffRing) -> Never {
        // The same output as the receiving stage: the device calls it only
        // under its lock, so the two stages never use it at once.
        let output = udpSide
        let write = TUNWriteBatch(capacity: 32 * UDPSocket.maxSegments, coalesce: output.vnetHeader,
                                  coalesceUDP: output.tunBatch.coalesceUDP)
        // Borrowed for the writes; this loop ends only with the process.
        let tun = Descriptor(owning: output.tun)
        while true {
            let stage = stages[ring.nextFilled()]
            let rx = stage.rx, plan = stage.plan
            let n = rx.count
            plan.open(rx, 0..<n)
            device.acceptOpened(rx, plan: plan, sink: output)
            plan.release(n)
            for i in 0..<n where plan.lengths[i] > 0 {
                let packet = UnsafeMutableRawBufferPointer(start: rx.datagram(i).baseAddress! + TransportHeader.size,
                                                           count: plan.lengths[i])
                if !write.append(packet) {
                    write.write(to: tun, vnetHeader: output.vnetHeader)
                    _ = write.append(packet)
                }
            }
            if write.count > 0 { write.write(to: tun, vnetHeader: output.vnetHeader) }
            ring.recycle()
        }
    }
}

/// One outbound batch between the stages: the packets and their plan.
final class OutboundStage: @unchecked Sendable {
    let plain: PacketBatch
    let plan: SealPlan
    init(plain: PacketBatch, plan: SealPlan) { self.plain = plain; self.plan = plan }
}

/// One inbound batch between the stages: the datagrams and their plan.
final class InboundStage: @unchecked Sendable {
    let rx: UDPReceiveBatch
    let plan: OpenPlan
    init(rx: UDPReceiveBatch, plan: OpenPlan) { self.rx = rx; self.plan = plan }
}
