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

    /// TUN -> UDP: read a packet or a GSO super-packet, split it into
    /// `PacketBatch` slots (headroom for the data header), plan it under
    /// the device's lock, seal in place, send the batch.
    func readTUNBatched(_ device: WireGuardDevice) -> Never {
        let mtu = device.mtu
        let plain = PacketBatch(capacity: Self.outboundCapacity, slotSize: Self.outboundSlotSize(mtu: mtu),
                                headroom: TransportHeader.size)
        let plan = SealPlan(capacity: Self.outboundCapacity)
        let send = UDPSendBatch(capacity: Self.outboundCapacity)
        let vnet = output.vnetHeader
        let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: vnet ? TUNDevice.maxReadSize : 0, alignment: 16)
        while true {
            plain.removeAll()
            if vnet {
                let n = read(output.tun, readBuffer.baseAddress, readBuffer.count)
                if n < 0 { Self.tunReadFailed() ; continue }
                guard n > 0, (try? GSO.split(UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]), into: plain)) != nil
                else { continue }
            } else {
                // A plain TUN: read straight into the first slot, after its headroom.
                let slot = plain.slot(0)
                let n = read(output.tun, slot.baseAddress! + plain.headroom, plain.maxPacketSize)
                if n < 0 { Self.tunReadFailed() ; continue }
                guard n > 0 else { continue }
                plain.commit(slot: 0, length: n)
            }
            device.planOutgoing(plain, plan: plan, sink: output)
            plan.seal(plain, 0..<plain.count)
            send.removeAll()
            for i in 0..<plain.count where plan.keypairs[i] != nil {
                send.append(UnsafeRawBufferPointer(start: plain.slot(i).baseAddress!, count: plan.messageLength(i)),
                            to: plan.endpoints[i])
            }
            plan.release(plain.count)
            if send.count > 0 { output.socket.send(send) }
        }
    }

    /// A failed TUN read: EBADFD means the device went with its namespace
    /// (the job is over: exit); anything transient is retried.
    static func tunReadFailed() {
        if errno == EINTR || errno == EAGAIN || errno == ENOBUFS { return }
        _exit(0)
    }

    /// UDP -> TUN: receive a batch (`recvmmsg`, GRO split), plan it under
    /// the device's lock (handshake messages are handled there), open the
    /// transport messages in place outside it, accept them under the lock,
    /// write the packets with TCP coalescing.
    func readUDPBatched(_ device: WireGuardDevice) -> Never {
        let rx = UDPReceiveBatch(messageCount: 32, bufferSize: 65536)
        let capacity = 32 * UDPSocket.maxSegments
        let plan = OpenPlan(capacity: capacity)
        let write = TUNWriteBatch(capacity: capacity)
        // Borrowed for the writes; this loop ends only with the process.
        let tun = Descriptor(owning: output.tun)
        while true {
            let n: Int
            do { n = try output.socket.receive(into: rx) } catch {
                if error.errno == .interrupted { continue }
                _exit(1)
            }
            guard n > 0 else { continue }
            device.planIncoming(rx, plan: plan, sink: output)
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
        }
    }
}
