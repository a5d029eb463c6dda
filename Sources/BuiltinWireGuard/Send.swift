import KeyStore
import WGNetlink

/// The sending side (`send.c`): handshake messages, staging packets until
/// a session exists, transport encryption with padding, keepalives, and
/// starting a new handshake when the current session gets old.
extension WireGuardDevice {
    /// An IP packet read from the TUN: route by destination over AllowedIPs,
    /// encrypt into a transport message and send; with no valid session,
    /// queue it (at most 128 per peer, the oldest dropped, as the kernel's
    /// staging queue) and start a handshake. Packets to no peer are dropped
    /// and counted.
    public func handleOutgoing(_ packet: UnsafeRawBufferPointer, sink: PacketSink) {
        locked {
            let now = clock.monotonicNanoseconds()
            guard let slot = destinationSlot(packet) else { counters.invalidOutgoing += 1; return }
            guard slot != 0, let peer = peersBySlot[slot] else { counters.noRoute += 1; return }
            guard peer.endpoint != nil else { counters.noEndpoint += 1; return }
            if peer.staged.isEmpty, let kp = peer.keypairs.current, kp.canSend(now: now) {
                if encryptAndSend(packet, peer: peer, keypair: kp, now: now, sink: sink) {
                    keepKeyFreshSending(peer, now: now, sink: sink)
                    return
                }
            }
            stage(packet, peer: peer)
            sendStaged(peer, now: now, sink: sink)
        }
    }

    /// The AllowedIPs slot of a packet's destination (0 for none), or nil
    /// when it is not an IPv4/IPv6 packet that fits.
    func destinationSlot(_ packet: UnsafeRawBufferPointer) -> UInt32? {
        guard packet.count >= 1, packet.count <= 65535 else { return nil }
        switch packet[0] >> 4 {
        case 4:
            guard packet.count >= 20 else { return nil }
            return allowedIPs.lookup(raw: UnsafeRawBufferPointer(rebasing: packet[16..<20]), v6: false)
        case 6:
            guard packet.count >= 40 else { return nil }
            return allowedIPs.lookup(raw: UnsafeRawBufferPointer(rebasing: packet[24..<40]), v6: true)
        default:
            return nil
        }
    }

    /// Queues a copy of `packet` for `peer`, dropping the oldest when full.
    func stage(_ packet: UnsafeRawBufferPointer, peer: PeerState) {
        if peer.staged.count >= Timing.maxStagedPackets {
            peer.staged.removeFirst()
            counters.stagedOverflow += 1
        }
        peer.staged.append(Array(packet))
    }

    /// Sends what is staged under the current session; without a usable one,
    /// keeps it staged and starts a handshake (`wg_packet_send_staged_packets`).
    func sendStaged(_ peer: PeerState, now: UInt64, sink: PacketSink) {
        guard !peer.staged.isEmpty else { return }
        guard let kp = peer.keypairs.current, kp.canSend(now: now) else {
            sendHandshakeInitiation(peer, isRetry: false, now: now, sink: sink)
            return
        }
        let packets = peer.staged
        peer.staged.removeAll(keepingCapacity: true)
        for (i, p) in packets.enumerated() {
            let sent = p.withUnsafeBytes { encryptAndSend($0, peer: peer, keypair: kp, now: now, sink: sink) }
            if !sent {
                peer.staged.append(contentsOf: packets[i...])
                sendHandshakeInitiation(peer, isRetry: false, now: now, sink: sink)
                return
            }
        }
        keepKeyFreshSending(peer, now: now, sink: sink)
    }

    /// The padded length of a `length`-byte packet: the next multiple of
    /// 16, but never past the MTU (`calculate_skb_padding`).
    func paddedLength(_ length: Int) -> Int {
        let aligned = (length + 15) & ~15
        guard linkMTU > 0 else { return aligned }
        let lastUnit = length > linkMTU ? length % linkMTU : length
        let padded = min(linkMTU, (lastUnit + 15) & ~15)
        return length + max(0, padded - lastUnit)
    }

    /// Pads, encrypts in place in the send buffer and sends one transport
    /// message; false when the session's counter is exhausted.
    func encryptAndSend(_ packet: UnsafeRawBufferPointer, peer: PeerState, keypair: Keypair, now: UInt64,
                        sink: PacketSink) -> Bool {
        let length = packet.count
        let padded = paddedLength(length)
        guard TransportHeader.size + padded + Crypto.tagLength <= sendBuffer.count else { return true }
        let body = sendBuffer.baseAddress! + TransportHeader.size
        if length > 0 { body.copyMemory(from: packet.baseAddress!, byteCount: length) }
        if padded > length { (body + length).initializeMemory(as: UInt8.self, repeating: 0, count: padded - length) }
        guard let total = keypair.seal(buffer: sendBuffer, length: padded) else { return false }
        send(UnsafeRawBufferPointer(rebasing: sendBuffer[0..<total]), to: peer, sink: sink)
        peer.timersAnyAuthenticatedPacketTraversal(now: now)
        peer.timersAnyAuthenticatedPacketSent()
        if length > 0 { peer.timersDataSent(now: now) }
        return true
    }

    /// Sends bytes to the peer's endpoint and counts them.
    func send(_ bytes: UnsafeRawBufferPointer, to peer: PeerState, sink: PacketSink) {
        guard let ep = peer.endpoint else { return }
        sink.sendDatagram(bytes, to: ep)
        peer.transmitBytes &+= UInt64(bytes.count)
    }

    /// A keepalive (an empty transport message) unless data is already waiting.
    func sendKeepalive(_ peer: PeerState, now: UInt64, sink: PacketSink) {
        if peer.staged.isEmpty { peer.staged.append([]) }
        sendStaged(peer, now: now, sink: sink)
    }

    /// After sending: a new handshake when the session has sent 2^60
    /// messages or, for the initiator, is older than REKEY_AFTER_TIME.
    func keepKeyFreshSending(_ peer: PeerState, now: UInt64, sink: PacketSink) {
        guard let kp = peer.keypairs.current, kp.sendingValid else { return }
        if kp.sendCounter > Timing.rekeyAfterMessages || (kp.isInitiator && now - kp.birth >= Timing.rekeyAfterTime) {
            sendHandshakeInitiation(peer, isRetry: false, now: now, sink: sink)
        }
    }

    /// Sends an initiation unless one went out less than REKEY_TIMEOUT ago;
    /// a retry keeps the attempt count, anything else resets it.
    func sendHandshakeInitiation(_ peer: PeerState, isRetry: Bool, now: UInt64, sink: PacketSink) {
        if !isRetry { peer.timers.handshakeAttempts = 0 }
        if let last = peer.lastSentHandshake, now - last < Timing.rekeyTimeout { return }
        guard let identity else { return }
        peer.lastSentHandshake = now
        guard let msg = Noise.createInitiation(peer: peer, identity: identity, wallTime: clock.wallTime(), indices: &indices)
        else { return }
        withUnsafeTemporaryAllocation(byteCount: InitiationMessage.size, alignment: 8) { buf in
            msg.encode(into: buf)
            peer.cookie.addMACs(buf, mac1Offset: InitiationMessage.mac1Offset, mac2Offset: InitiationMessage.mac2Offset, now: now)
            peer.timersAnyAuthenticatedPacketTraversal(now: now)
            peer.timersAnyAuthenticatedPacketSent()
            send(UnsafeRawBufferPointer(buf), to: peer, sink: sink)
        }
        peer.timersHandshakeInitiated(now: now)
    }

    /// Answers a consumed initiation: the response, then the new session
    /// (as `next`, confirmed by the first data that arrives under it).
    func sendHandshakeResponse(_ peer: PeerState, now: UInt64, sink: PacketSink) {
        guard let msg = Noise.createResponse(peer: peer, indices: &indices) else { return }
        withUnsafeTemporaryAllocation(byteCount: ResponseMessage.size, alignment: 8) { buf in
            msg.encode(into: buf)
            peer.cookie.addMACs(buf, mac1Offset: ResponseMessage.mac1Offset, mac2Offset: ResponseMessage.mac2Offset, now: now)
            if let kp = Noise.beginSession(peer: peer, now: now, indices: &indices) {
                peer.keypairs.add(kp, indices: &indices)
                peer.timersSessionDerived(now: now)
            }
            peer.timersAnyAuthenticatedPacketTraversal(now: now)
            peer.timersAnyAuthenticatedPacketSent()
            peer.lastSentHandshake = now
            send(UnsafeRawBufferPointer(buf), to: peer, sink: sink)
        }
    }
}
