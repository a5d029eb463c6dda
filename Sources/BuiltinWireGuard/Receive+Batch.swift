import WGNetlink

/// The batched receive's state per datagram between its three steps:
/// planned under the device's lock (which session), opened outside it
/// (decrypted in place), accepted under the lock again (replay window,
/// roaming, timers, cryptokey routing), in the order received. Room for
/// `capacity` datagrams, allocated once; one thread at a time.
final class OpenPlan: @unchecked Sendable {
    /// The most datagrams a plan covers.
    let capacity: Int
    /// Per datagram: the session it is for, or nil when it was handled
    /// (a handshake message) or dropped while planning.
    let keypairs: UnsafeMutablePointer<Keypair?>
    /// Per datagram: after `open`, the plaintext length, or -1 when the tag
    /// did not verify; after `acceptOpened`, the inner packet's length to
    /// write to the TUN (padding trimmed), or -1 for nothing to write.
    let lengths: UnsafeMutablePointer<Int>

    /// A plan for up to `capacity` datagrams.
    init(capacity: Int) {
        self.capacity = capacity
        keypairs = .allocate(capacity: capacity)
        keypairs.initialize(repeating: nil, count: capacity)
        lengths = .allocate(capacity: capacity)
        lengths.initialize(repeating: -1, count: capacity)
    }

    deinit {
        keypairs.deinitialize(count: capacity)
        keypairs.deallocate()
        lengths.deallocate()
    }

    /// Lets go of the sessions of datagrams `0..<count`.
    func release(_ count: Int) {
        for i in 0..<count { keypairs[i] = nil }
    }

    /// Decrypts the planned transport messages of `rx` in place (outside
    /// the device's lock): the plaintext of datagram `i` then starts 16
    /// bytes into it, `lengths[i]` bytes long.
    func open(_ rx: UDPReceiveBatch, _ range: Range<Int>) {
        for i in range {
            guard let kp = keypairs[i] else { lengths[i] = -1; continue }
            let d = rx.datagram(i)
            let length = d.count - TransportHeader.size - Crypto.tagLength
            let body = d.baseAddress! + TransportHeader.size
            let counter = UInt64(littleEndian: d.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            let ok = Crypto.open(key: kp.receiveKey, counter: counter,
                                 ciphertext: UnsafeRawBufferPointer(start: body, count: length), tag: body + length,
                                 ad: UnsafeRawBufferPointer(start: nil, count: 0), out: body)
            lengths[i] = ok ? length : -1
        }
    }
}

extension WireGuardDevice {
    /// Step one of a batched receive, under one lock: each transport
    /// message gets its session in `plan` (or is dropped and counted as
    /// `receiveTransport` would); every other message is handled right
    /// here, in order, as `handleIncoming` does.
    func planIncoming(_ rx: UDPReceiveBatch, plan: OpenPlan, sink: PacketSink) {
        precondition(rx.count <= plan.capacity)
        locked {
            let now = clock.monotonicNanoseconds()
            for i in 0..<rx.count {
                plan.keypairs[i] = nil
                let d = UnsafeRawBufferPointer(rx.datagram(i))
                guard MessageType(datagram: d) == .transport else {
                    handleIncomingLocked(d, from: rx.source(i), now: now, sink: sink)
                    continue
                }
                guard let header = TransportHeader(d) else { counters.malformed += 1; continue }
                guard case .keypair(let kp)? = indices.lookup(header.receiver) else { counters.unknownIndex += 1; continue }
                guard kp.canReceive(now: now) else { counters.expiredSession += 1; continue }
                plan.keypairs[i] = kp
            }
        }
    }

    /// Step three, under one lock: for each opened message, in order, what
    /// `receiveTransport` does after decryption (replay window, key
    /// confirmation, roaming, timers, counters, the inner packet's source
    /// against the peer's AllowedIPs). `plan.lengths[i]` is then the length
    /// of the packet to write to the TUN, or -1.
    func acceptOpened(_ rx: UDPReceiveBatch, plan: OpenPlan, sink: PacketSink) {
        locked {
            let now = clock.monotonicNanoseconds()
            for i in 0..<rx.count {
                guard let kp = plan.keypairs[i] else { continue }
                let length = plan.lengths[i]
                plan.lengths[i] = -1
                guard length >= 0 else { counters.decryptFailed += 1; continue }
                let d = UnsafeRawBufferPointer(rx.datagram(i))
                guard kp.replay.validate(readLE64(d, 8)) else { counters.replayed += 1; continue }
                let peer = kp.peer
                authenticated(peer, keypair: kp, from: rx.source(i), bytes: d.count, now: now, sink: sink)
                guard length > 0 else { continue }  // a keepalive
                peer.timersDataReceived(now: now)
                let plain = UnsafeRawBufferPointer(rebasing: d[TransportHeader.size..<(TransportHeader.size + length)])
                guard let (packetLength, sourceSlot) = innerSource(plain) else { counters.invalidInnerPacket += 1; continue }
                guard sourceSlot == peer.slot else { counters.disallowedSource += 1; continue }
                plan.lengths[i] = packetLength
            }
        }
    }
}
