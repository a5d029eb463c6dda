import WGNetlink

/// What the batched send decided for each packet of a `PacketBatch`, under
/// the device's lock, so that the encryption itself can run outside it: the
/// session, the nonce counter reserved for the packet, its padded length and
/// where it goes. Counters are reserved in the order of the batch, so the
/// peer sees them in order however the encryption is scheduled (as the
/// kernel's and wireguard-go's queues do). Room for `capacity` packets,
/// allocated once; one thread at a time (or disjoint ranges on several).
final class SealPlan: @unchecked Sendable {
    /// The most packets a plan covers.
    let capacity: Int
    /// Per packet: the session to encrypt under, or nil when the packet was
    /// handled (sent the slow way, staged or dropped) while planning.
    let keypairs: UnsafeMutablePointer<Keypair?>
    /// Per packet: its nonce counter.
    let counters: UnsafeMutablePointer<UInt64>
    /// Per packet: its length with padding.
    let paddedLengths: UnsafeMutablePointer<Int>
    /// Per packet: the peer's endpoint when it was planned.
    let endpoints: UnsafeMutablePointer<SocketAddress>

    /// A plan for up to `capacity` packets.
    init(capacity: Int) {
        self.capacity = capacity
        keypairs = .allocate(capacity: capacity)
        keypairs.initialize(repeating: nil, count: capacity)
        counters = .allocate(capacity: capacity)
        counters.initialize(repeating: 0, count: capacity)
        paddedLengths = .allocate(capacity: capacity)
        paddedLengths.initialize(repeating: 0, count: capacity)
        endpoints = .allocate(capacity: capacity)
        endpoints.initialize(repeating: SocketAddress(address: .v4(0, 0, 0, 0), port: 0), count: capacity)
    }

    deinit {
        keypairs.deinitialize(count: capacity)
        keypairs.deallocate()
        counters.deallocate()
        paddedLengths.deallocate()
        endpoints.deallocate()
    }

    /// Lets go of the sessions of packets `0..<count`.
    func release(_ count: Int) {
        for i in 0..<count { keypairs[i] = nil }
    }
}

extension WireGuardDevice {
    /// The batched `handleOutgoing`: one lock for the whole batch. Packets
    /// that can go under the current session right away (nothing staged
    /// before them, room in their slot for the padding and the tag) get
    /// their session, counter and endpoint in `plan`, and are counted and
    /// timed as sent; the caller then seals them (`SealPlan.seal`) and sends
    /// them, in order. Everything else takes `handleOutgoing`'s path here
    /// (staged, a handshake started, or sent through `sink`), with nil in
    /// `plan`. A slot is `slotSize` bytes, the packet `batch.headroom` (16)
    /// bytes in.
    func planOutgoing(_ batch: PacketBatch, plan: SealPlan, sink: PacketSink) {
        precondition(batch.count <= plan.capacity && batch.headroom == TransportHeader.size)
        locked {
            let now = clock.monotonicNanoseconds()
            for i in 0..<batch.count {
                plan.keypairs[i] = nil
                let packet = UnsafeRawBufferPointer(batch.packet(i))
                guard let slot = destinationSlot(packet) else { counters.invalidOutgoing += 1; continue }
                guard slot != 0, let peer = peersBySlot[slot] else { counters.noRoute += 1; continue }
                guard let endpoint = peer.endpoint else { counters.noEndpoint += 1; continue }
                if peer.staged.isEmpty, let kp = peer.keypairs.current, kp.canSend(now: now) {
                    let padded = paddedLength(packet.count)
                    if TransportHeader.size + padded + Crypto.tagLength <= batch.slotSize {
                        plan.keypairs[i] = kp
                        plan.counters[i] = kp.sendCounter
                        kp.sendCounter += 1
                        plan.paddedLengths[i] = padded
                        plan.endpoints[i] = endpoint
                        peer.transmitBytes &+= UInt64(TransportHeader.size + padded + Crypto.tagLength)
                        peer.timersAnyAuthenticatedPacketTraversal(now: now)
                        peer.timersAnyAuthenticatedPacketSent()
                        if packet.count > 0 { peer.timersDataSent(now: now) }
                        keepKeyFreshSending(peer, now: now, sink: sink)
                        continue
                    }
                    if encryptAndSend(packet, peer: peer, keypair: kp, now: now, sink: sink) {
                        keepKeyFreshSending(peer, now: now, sink: sink)
                        continue
                    }
                }
                stage(packet, peer: peer)
                sendStaged(peer, now: now, sink: sink)
            }
        }
    }
}

extension SealPlan {
    /// Encrypts the planned packets of `batch` in place, `range` of them
    /// (outside the device's lock; two threads may seal disjoint ranges):
    /// zero padding after the packet, the data header in the headroom, the
    /// tag after the padding. Slot `i` then holds message `i`,
    /// `messageLength(i)` bytes from the slot's start.
    func seal(_ batch: PacketBatch, _ range: Range<Int>) {
        for i in range {
            guard let kp = keypairs[i] else { continue }
            let start = batch.slot(i).baseAddress!
            let body = start + TransportHeader.size
            let length = batch.packet(i).count
            let padded = paddedLengths[i]
            if padded > length { (body + length).initializeMemory(as: UInt8.self, repeating: 0, count: padded - length) }
            Crypto.seal(key: kp.sendKey, counter: counters[i], plaintext: UnsafeRawBufferPointer(start: body, count: padded),
                        ad: UnsafeRawBufferPointer(start: nil, count: 0), out: body, tag: body + padded)
            TransportHeader(receiver: kp.remoteIndex, counter: counters[i])
                .encode(into: UnsafeMutableRawBufferPointer(start: start, count: TransportHeader.size))
        }
    }

    /// The sealed message's length for packet `i`.
    func messageLength(_ i: Int) -> Int { TransportHeader.size + paddedLengths[i] + Crypto.tagLength }
}
