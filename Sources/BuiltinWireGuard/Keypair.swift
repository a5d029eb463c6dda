/// One session's keys (`struct noise_keypair`): the sending and receiving
/// keys in locked memory (wiped when the keypair goes), the sending counter,
/// the receiving replay window, when it was born, and who initiated it.
final class Keypair {
    /// Sending key at 0, receiving key at 32.
    let keys = SecretBuffer(count: 64)
    /// The next nonce to send.
    var sendCounter: UInt64 = 0
    /// Which received counters were seen.
    var replay = ReplayWindow()
    /// When the keys were derived (monotonic ns).
    let birth: UInt64
    /// True when we sent the initiation of this session.
    let isInitiator: Bool
    /// Our index: transport messages to us carry it.
    let localIndex: UInt32
    /// Their index: our transport messages carry it.
    let remoteIndex: UInt32
    /// False once the keypair must not send any more (expired, replaced).
    var sendingValid = true
    /// False once the keypair must not receive any more.
    var receivingValid = true
    /// The peer (the peer owns its keypairs).
    unowned let peer: PeerState

    /// A keypair whose keys the caller writes into `keys`.
    init(peer: PeerState, birth: UInt64, isInitiator: Bool, localIndex: UInt32, remoteIndex: UInt32) {
        self.peer = peer
        self.birth = birth
        self.isInitiator = isInitiator
        self.localIndex = localIndex
        self.remoteIndex = remoteIndex
    }

    /// The sending key.
    var sendKey: UnsafeRawBufferPointer { UnsafeRawBufferPointer(keys[0, 32]) }
    /// The receiving key.
    var receiveKey: UnsafeRawBufferPointer { UnsafeRawBufferPointer(keys[32, 32]) }

    /// True when this keypair may still send at `now`: valid, younger than
    /// REJECT_AFTER_TIME and below REJECT_AFTER_MESSAGES.
    func canSend(now: UInt64) -> Bool {
        sendingValid && now - birth < Timing.rejectAfterTime && sendCounter < Timing.rejectAfterMessages
    }

    /// True when this keypair may still receive at `now`.
    func canReceive(now: UInt64) -> Bool {
        receivingValid && now - birth < Timing.rejectAfterTime && replay.greatest < Timing.rejectAfterMessages
    }

    /// Transport encryption in place: `buffer` holds the 16-byte header
    /// space, then `length` bytes of packet already padded; writes the
    /// header and the tag after the packet. Returns the message length, or
    /// nil when the counter is exhausted (the keypair then stops sending).
    func seal(buffer: UnsafeMutableRawBufferPointer, length: Int) -> Int? {
        let counter = sendCounter
        guard counter < Timing.rejectAfterMessages else { sendingValid = false; return nil }
        sendCounter = counter + 1
        let body = buffer.baseAddress! + TransportHeader.size
        Crypto.seal(key: sendKey, counter: counter, plaintext: UnsafeRawBufferPointer(start: body, count: length),
                    ad: UnsafeRawBufferPointer(start: nil, count: 0), out: body, tag: body + length)
        TransportHeader(receiver: remoteIndex, counter: counter).encode(into: buffer)
        return TransportHeader.size + length + Crypto.tagLength
    }

    /// Transport decryption of `message` (header included) into `out`:
    /// returns the plaintext length, or nil when the tag does not verify.
    /// The counter is checked against the replay window only afterwards, by the caller.
    func open(message: UnsafeRawBufferPointer, counter: UInt64, out: UnsafeMutableRawPointer) -> Int? {
        let length = message.count - TransportHeader.size - Crypto.tagLength
        let body = message.baseAddress! + TransportHeader.size
        guard Crypto.open(key: receiveKey, counter: counter, ciphertext: UnsafeRawBufferPointer(start: body, count: length),
                          tag: body + length, ad: UnsafeRawBufferPointer(start: nil, count: 0), out: out)
        else { return nil }
        return length
    }
}

/// A peer's three session slots (`struct noise_keypairs`): the current one
/// that sends, the previous one still received on, and a responder's next
/// one, which becomes current only when the first data arrives under it
/// (that is the initiator's key confirmation).
struct Keypairs {
    var current: Keypair?
    var previous: Keypair?
    var next: Keypair?

    /// Installs a new session as the kernel's `add_new_keypair` does.
    mutating func add(_ new: Keypair, indices: inout IndexTable) {
        if new.isInitiator {
            if let n = next {
                // A responder session was pending: it is now older than this one.
                drop(previous, &indices)
                drop(current, &indices)
                previous = n
                next = nil
            } else {
                drop(previous, &indices)
                previous = current
            }
            current = new
        } else {
            drop(next, &indices)
            next = new
            drop(previous, &indices)
            previous = nil
        }
    }

    /// Called for every authenticated packet under `keypair`: promotes a
    /// `next` keypair to current. True when it did (the handshake is then complete).
    mutating func received(with keypair: Keypair, indices: inout IndexTable) -> Bool {
        guard let n = next, n === keypair else { return false }
        drop(previous, &indices)
        previous = current
        current = n
        next = nil
        return true
    }

    /// Forgets every session.
    mutating func clear(indices: inout IndexTable) {
        drop(current, &indices); drop(previous, &indices); drop(next, &indices)
        current = nil; previous = nil; next = nil
    }

    /// Stops the current and next sessions from sending (a new private key).
    func expireCurrent() {
        next?.sendingValid = false
        current?.sendingValid = false
    }

    /// True when `keypair` is one of the three.
    func holds(_ keypair: Keypair) -> Bool {
        current === keypair || previous === keypair || next === keypair
    }

    private func drop(_ k: Keypair?, _ indices: inout IndexTable) {
        guard let k else { return }
        k.sendingValid = false
        k.receivingValid = false
        indices.removeKeypair(k.localIndex, k)
    }
}
