/// The protocol's constants (whitepaper §6, `messages.h`, `constants.go`),
/// times in nanoseconds. The product runs with exactly these.
enum Timing {
    static let second: UInt64 = 1_000_000_000
    static let millisecond: UInt64 = 1_000_000
    /// Start a new handshake after this many messages under one key.
    static let rekeyAfterMessages: UInt64 = 1 << 60
    /// Never send or accept a counter at or past this: 2^64 − 2^13 − 1.
    static let rejectAfterMessages: UInt64 = UInt64.max - (1 << 13)
    /// The initiator starts a new handshake when its key is this old.
    static let rekeyAfterTime: UInt64 = 120 * second
    /// No packet is sent or accepted under a key this old.
    static let rejectAfterTime: UInt64 = 180 * second
    /// How long handshakes are retried before giving up.
    static let rekeyAttemptTime: UInt64 = 90 * second
    /// How long to wait for a handshake response before retrying.
    static let rekeyTimeout: UInt64 = 5 * second
    /// Retries before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT.
    static let maxTimerHandshakes = Int(rekeyAttemptTime / rekeyTimeout)
    /// Upper bound (exclusive, ms) of the random jitter added to REKEY_TIMEOUT: up to 333 ms.
    static let rekeyTimeoutJitterMaxMilliseconds: UInt32 = 334
    /// Send a keepalive after receiving data and sending nothing for this long.
    static let keepaliveTimeout: UInt64 = 10 * second
    /// The responder's cookie secret changes this often.
    static let cookieSecretMaxAge: UInt64 = 120 * second
    /// A received cookie is used for this much less than the secret's age.
    static let cookieSecretLatency: UInt64 = 5 * second
    /// Initiations accepted from one peer per second at most.
    static let initiationsPerSecond: UInt64 = 50
    /// Packets kept per peer while waiting for a session (the kernel's MAX_STAGED_PACKETS).
    static let maxStagedPackets = 128
    /// The device is under load for this long after load was seen.
    static let underLoadAfterTime: UInt64 = second
    /// Handshake messages per second above which the device is under load.
    static let underLoadHandshakesPerSecond = 128

    /// REKEY_TIMEOUT plus a fresh random jitter of 0 to 333 ms.
    static func rekeyTimeoutWithJitter() -> UInt64 {
        rekeyTimeout + UInt64(Crypto.random(below: rekeyTimeoutJitterMaxMilliseconds)) * millisecond
    }
}

/// A peer's five timers (`timers.c`), as deadlines on the monotonic clock;
/// 0 means not pending. The device's `tick` fires those that are due.
struct PeerTimers {
    /// Resend the initiation when no response came (REKEY_TIMEOUT + jitter).
    var retransmitHandshake: UInt64 = 0
    /// Send a keepalive after data was received and nothing sent (KEEPALIVE_TIMEOUT).
    var sendKeepalive: UInt64 = 0
    /// Start a new handshake when data was sent and nothing came back
    /// (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter).
    var newHandshake: UInt64 = 0
    /// Wipe every key 3 × REJECT_AFTER_TIME after the last session was made.
    var zeroKeyMaterial: UInt64 = 0
    /// The persistent keepalive.
    var persistentKeepalive: UInt64 = 0

    /// Handshake retries since the last attempt that was not a retry.
    var handshakeAttempts = 0
    /// Data came in while the keepalive timer was already running.
    var needAnotherKeepalive = false
    /// The initiator already started its last-minute rekey on receive.
    var sentLastMinuteHandshake = false

    /// The earliest pending deadline, or 0.
    var earliest: UInt64 {
        var e: UInt64 = 0
        for t in [retransmitHandshake, sendKeepalive, newHandshake, zeroKeyMaterial, persistentKeepalive] where t != 0 {
            e = e == 0 ? t : min(e, t)
        }
        return e
    }
}

extension PeerState {
    // The kernel's timer events, one function each.

    /// Data (not a keepalive) was sent: expect an answer within 15 s.
    func timersDataSent(now: UInt64) {
        if timers.newHandshake == 0 {
            timers.newHandshake = now + Timing.keepaliveTimeout + Timing.rekeyTimeoutWithJitter()
        }
    }

    /// Data (not a keepalive) was received: answer with a keepalive unless we send something.
    func timersDataReceived(now: UInt64) {
        if timers.sendKeepalive == 0 {
            timers.sendKeepalive = now + Timing.keepaliveTimeout
        } else {
            timers.needAnotherKeepalive = true
        }
    }

    /// Any authenticated packet (data, keepalive, handshake) was sent.
    func timersAnyAuthenticatedPacketSent() {
        timers.sendKeepalive = 0
    }

    /// Any authenticated packet was received.
    func timersAnyAuthenticatedPacketReceived() {
        timers.newHandshake = 0
    }

    /// An initiation was sent.
    func timersHandshakeInitiated(now: UInt64) {
        timers.retransmitHandshake = now + Timing.rekeyTimeoutWithJitter()
    }

    /// A handshake completed (response consumed, or first data under a responder's session).
    func timersHandshakeComplete(wallTime: (seconds: Int64, nanoseconds: Int64)) {
        timers.retransmitHandshake = 0
        timers.handshakeAttempts = 0
        timers.sentLastMinuteHandshake = false
        lastHandshake = wallTime
    }

    /// A session's keys were derived.
    func timersSessionDerived(now: UInt64) {
        timers.zeroKeyMaterial = now + 3 * Timing.rejectAfterTime
    }

    /// Any authenticated packet went either way: restart the persistent keepalive.
    func timersAnyAuthenticatedPacketTraversal(now: UInt64) {
        if persistentKeepaliveInterval > 0 {
            timers.persistentKeepalive = now + UInt64(persistentKeepaliveInterval) * Timing.second
        }
    }
}

extension WireGuardDevice {
    /// Fires the peer's due timers (`timers.c`'s expiry handlers).
    func runTimers(_ peer: PeerState, now: UInt64, sink: PacketSink) {
        if peer.timers.retransmitHandshake != 0, peer.timers.retransmitHandshake <= now {
            peer.timers.retransmitHandshake = 0
            if peer.timers.handshakeAttempts > Timing.maxTimerHandshakes {
                // Giving up after REKEY_ATTEMPT_TIME: drop what waited, wipe keys later.
                peer.timers.sendKeepalive = 0
                peer.staged.removeAll()
                if peer.timers.zeroKeyMaterial == 0 {
                    peer.timers.zeroKeyMaterial = now + 3 * Timing.rejectAfterTime
                }
            } else {
                peer.timers.handshakeAttempts += 1
                sendHandshakeInitiation(peer, isRetry: true, now: now, sink: sink)
            }
        }
        if peer.timers.sendKeepalive != 0, peer.timers.sendKeepalive <= now {
            peer.timers.sendKeepalive = 0
            sendKeepalive(peer, now: now, sink: sink)
            if peer.timers.needAnotherKeepalive {
                peer.timers.needAnotherKeepalive = false
                peer.timers.sendKeepalive = now + Timing.keepaliveTimeout
            }
        }
        if peer.timers.newHandshake != 0, peer.timers.newHandshake <= now {
            // Data went out 15 s ago and nothing came back.
            peer.timers.newHandshake = 0
            sendHandshakeInitiation(peer, isRetry: false, now: now, sink: sink)
        }
        if peer.timers.zeroKeyMaterial != 0, peer.timers.zeroKeyMaterial <= now {
            peer.timers.zeroKeyMaterial = 0
            peer.keypairs.clear(indices: &indices)
            peer.clearHandshake(indices: &indices)
        }
        if peer.timers.persistentKeepalive != 0, peer.timers.persistentKeepalive <= now {
            peer.timers.persistentKeepalive = 0
            if peer.persistentKeepaliveInterval > 0 { sendKeepalive(peer, now: now, sink: sink) }
        }
    }
}
