import KeyStore
import WGNetlink

/// The receiving side (`receive.c`): handshake messages (mac1 first, then
/// under load mac2 or a cookie reply), cookie replies, and transport data
/// (decrypt, replay window, key confirmation, roaming, cryptokey routing).
extension WireGuardDevice {
    /// A datagram received on the UDP socket from `source`. Valid transport
    /// data whose inner source address is allowed for the peer goes to
    /// `sink.writeToTUN`; the endpoint is learnt from every authenticated
    /// packet (roaming). Everything malformed, unauthenticated, replayed or
    /// disallowed is dropped and counted by kind.
    public func handleIncoming(_ datagram: UnsafeRawBufferPointer, from source: SocketAddress, sink: PacketSink) {
        locked { handleIncomingLocked(datagram, from: source, now: clock.monotonicNanoseconds(), sink: sink) }
    }

    /// `handleIncoming` for a caller that holds the lock (the batched receive).
    func handleIncomingLocked(_ datagram: UnsafeRawBufferPointer, from source: SocketAddress, now: UInt64,
                              sink: PacketSink) {
            switch MessageType(datagram: datagram) {
            case .initiation?:
                guard datagram.count == InitiationMessage.size else { counters.malformed += 1; return }
                receiveHandshake(datagram, type: .initiation, source: source, now: now, sink: sink)
            case .response?:
                guard datagram.count == ResponseMessage.size else { counters.malformed += 1; return }
                receiveHandshake(datagram, type: .response, source: source, now: now, sink: sink)
            case .cookieReply?:
                guard let msg = CookieReplyMessage(datagram) else { counters.malformed += 1; return }
                receiveCookieReply(msg, now: now)
            case .transport?:
                guard let header = TransportHeader(datagram) else { counters.malformed += 1; return }
                receiveTransport(datagram, header: header, source: source, now: now, sink: sink)
            case nil:
                counters.malformed += 1
            }
    }

    func receiveHandshake(_ raw: UnsafeRawBufferPointer, type: MessageType, source: SocketAddress, now: UInt64,
                          sink: PacketSink) {
        guard let identity else { counters.noPrivateKey += 1; return }
        let initiation = type == .initiation
        let mac1Offset = initiation ? InitiationMessage.mac1Offset : ResponseMessage.mac1Offset
        let mac2Offset = initiation ? InitiationMessage.mac2Offset : ResponseMessage.mac2Offset
        guard checker.checkMAC1(raw, mac1Offset: mac1Offset) else { counters.invalidMAC1 += 1; return }
        noteHandshake(now: now)
        if isUnderLoad(now: now) {
            if checker.checkMAC2(raw, mac2Offset: mac2Offset, source: source, now: now) {
                guard ratelimiter.allow(source.address, now: now) else { counters.rateLimited += 1; return }
            } else {
                let reply = checker.makeReply(to: raw, mac1Offset: mac1Offset, receiver: readLE32(raw, 4),
                                              source: source, now: now)
                withUnsafeTemporaryAllocation(byteCount: CookieReplyMessage.size, alignment: 8) { buf in
                    reply.encode(into: buf)
                    sink.sendDatagram(UnsafeRawBufferPointer(buf), to: source)
                }
                counters.cookieReplied += 1
                return
            }
        }
        if initiation {
            let msg = InitiationMessage(raw)!
            switch Noise.consumeInitiation(msg, identity: identity, now: now, lookup: { peers[$0] }) {
            case .failure(let f): count(f)
            case .success(let peer):
                peer.endpoint = source
                peer.receiveBytes &+= UInt64(raw.count)
                peer.timersAnyAuthenticatedPacketReceived()
                peer.timersAnyAuthenticatedPacketTraversal(now: now)
                sendHandshakeResponse(peer, now: now, sink: sink)
            }
        } else {
            let msg = ResponseMessage(raw)!
            switch Noise.consumeResponse(msg, identity: identity, indices: indices) {
            case .failure(let f): count(f)
            case .success(let peer):
                peer.endpoint = source
                peer.receiveBytes &+= UInt64(raw.count)
                guard let kp = Noise.beginSession(peer: peer, now: now, indices: &indices) else {
                    counters.handshakeFailed += 1
                    return
                }
                peer.keypairs.add(kp, indices: &indices)
                peer.timersSessionDerived(now: now)
                peer.timersHandshakeComplete(wallTime: clock.wallTime())
                peer.timersAnyAuthenticatedPacketReceived()
                peer.timersAnyAuthenticatedPacketTraversal(now: now)
                // Confirms the session to the responder, and flushes what waited for it.
                sendKeepalive(peer, now: now, sink: sink)
            }
        }
    }

    func count(_ failure: HandshakeFailure) {
        switch failure {
        case .failed: counters.handshakeFailed += 1
        case .unknownPeer: counters.unknownPeer += 1
        case .replayedTimestamp: counters.replayedInitiation += 1
        case .flood: counters.initiationFlood += 1
        }
    }

    func receiveCookieReply(_ msg: CookieReplyMessage, now: UInt64) {
        let peer: PeerState
        switch indices.lookup(msg.receiver) {
        case .handshake(let p)?: peer = p
        case .keypair(let k)?: peer = k.peer
        case nil: counters.invalidCookie += 1; return
        }
        if !peer.cookie.consume(msg, now: now) { counters.invalidCookie += 1 }
    }

    func receiveTransport(_ raw: UnsafeRawBufferPointer, header: TransportHeader, source: SocketAddress, now: UInt64,
                          sink: PacketSink) {
        guard case .keypair(let kp)? = indices.lookup(header.receiver) else { counters.unknownIndex += 1; return }
        guard kp.canReceive(now: now) else { counters.expiredSession += 1; return }
        guard raw.count - TransportHeader.size - Crypto.tagLength <= receiveBuffer.count else {
            counters.malformed += 1
            return
        }
        guard let length = kp.open(message: raw, counter: header.counter, out: receiveBuffer.baseAddress!) else {
            counters.decryptFailed += 1
            return
        }
        guard kp.replay.validate(header.counter) else { counters.replayed += 1; return }
        let peer = kp.peer
        authenticated(peer, keypair: kp, from: source, bytes: raw.count, now: now, sink: sink)
        guard length > 0 else { return }  // a keepalive
        peer.timersDataReceived(now: now)
        let plain = UnsafeRawBufferPointer(rebasing: receiveBuffer[0..<length])
        guard let (packetLength, sourceSlot) = innerSource(plain) else { counters.invalidInnerPacket += 1; return }
        guard sourceSlot == peer.slot else { counters.disallowedSource += 1; return }
        sink.writeToTUN(UnsafeRawBufferPointer(rebasing: plain[0..<packetLength]))
    }

    /// The length an inner packet declares (its padding trimmed) and the
    /// AllowedIPs slot of its source address; nil when it is not a
    /// well-formed IPv4/IPv6 packet that fits in what was decrypted.
    func innerSource(_ plain: UnsafeRawBufferPointer) -> (Int, UInt32)? {
        switch plain[0] >> 4 {
        case 4:
            guard plain.count >= 20 else { return nil }
            let total = Int(plain[2]) << 8 | Int(plain[3])
            guard total >= 20, total <= plain.count else { return nil }
            return (total, allowedIPs.lookup(raw: UnsafeRawBufferPointer(rebasing: plain[12..<16]), v6: false))
        case 6:
            guard plain.count >= 40 else { return nil }
            let total = 40 + (Int(plain[4]) << 8 | Int(plain[5]))
            guard total <= plain.count else { return nil }
            return (total, allowedIPs.lookup(raw: UnsafeRawBufferPointer(rebasing: plain[8..<24]), v6: true))
        default:
            return nil
        }
    }

    /// After receiving: the initiator starts its last handshake before the
    /// session's REJECT_AFTER_TIME would cut it off (at REJECT − KEEPALIVE − REKEY_TIMEOUT), once.
    func keepKeyFreshReceiving(_ peer: PeerState, now: UInt64, sink: PacketSink) {
        guard let kp = peer.keypairs.current, kp.sendingValid, kp.isInitiator,
              !peer.timers.sentLastMinuteHandshake,
              now - kp.birth >= Timing.rejectAfterTime - Timing.keepaliveTimeout - Timing.rekeyTimeout
        else { return }
        peer.timers.sentLastMinuteHandshake = true
        sendHandshakeInitiation(peer, isRetry: false, now: now, sink: sink)
    }
}

extension WireGuardDevice {
    /// What every authenticated transport packet does, one at a time or in
    /// a batch (under the device's lock): the endpoint is learnt from it
    /// (roaming), the responder's keypair is confirmed by it (and what was
    /// staged goes out), the timers and the receive counter move.
    func authenticated(_ peer: PeerState, keypair kp: Keypair, from source: SocketAddress, bytes: Int, now: UInt64, sink: PacketSink) {
        peer.endpoint = source
        if peer.keypairs.received(with: kp, indices: &indices) {
            peer.timersHandshakeComplete(wallTime: clock.wallTime())
            sendStaged(peer, now: now, sink: sink)
        }
        keepKeyFreshReceiving(peer, now: now, sink: sink)
        peer.timersAnyAuthenticatedPacketReceived()
        peer.timersAnyAuthenticatedPacketTraversal(now: now)
        peer.receiveBytes &+= UInt64(bytes)
    }
}
