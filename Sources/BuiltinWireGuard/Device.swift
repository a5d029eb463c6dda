#if canImport(Glibc)
import Glibc
#endif
import KeyStore
import WGNetlink

/// Where the device's output goes: the engine's UDP socket and TUN device.
/// The device calls these while holding its lock, so they must not call
/// back into the device.
public protocol PacketSink: AnyObject {
    /// Send one UDP datagram to `endpoint`.
    func sendDatagram(_ bytes: UnsafeRawBufferPointer, to endpoint: SocketAddress)
    /// Deliver one decrypted IP packet to the TUN device.
    func writeToTUN(_ packet: UnsafeRawBufferPointer)
}

/// The WireGuard protocol core of one interface, with no I/O of its own:
/// the engine feeds it packets read from the TUN device (`handleOutgoing`),
/// datagrams read from the UDP socket (`handleIncoming`) and the passing of
/// time (`tick`), and it answers through a `PacketSink`. Configuration has
/// `wg set` semantics (`configure`) and reads back as `wg show` would
/// (`snapshot`).
///
/// One lock guards all state; the transport path encrypts and decrypts in
/// place in buffers allocated once.
public final class WireGuardDevice: @unchecked Sendable {
    let clock: any WireGuardClock
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    var identity: StaticIdentity?
    var peers: [Bytes32: PeerState] = [:]
    var peersBySlot: [UInt32: PeerState] = [:]
    var peerOrder: [PeerState] = []
    var nextSlot: UInt32 = 1
    var allowedIPs = AllowedIPs()
    var indices = IndexTable()
    var checker = CookieChecker()
    var ratelimiter = Ratelimiter()
    var counters = DropCounters()
    var configuredListenPort: UInt16 = 0
    var firewallMark: UInt32 = 0
    var port: UInt16 = 0
    var forcedUnderLoad = false
    var loadWindowStart: UInt64 = 0
    var loadWindowCount = 0
    var underLoadUntil: UInt64 = 0
    var linkMTU = 0

    /// Room for the largest IP packet (65535), padded, with header and tag.
    static let bufferSize = 65536 + 64
    let sendBuffer: UnsafeMutableRawBufferPointer
    let receiveBuffer: UnsafeMutableRawBufferPointer

    /// The most peers one device holds (as wireguard-go).
    public static let maxPeers = 1 << 16

    /// An unconfigured device (no key, no peers) reading time from `clock`.
    public init(clock: any WireGuardClock = SystemClock()) {
        _ = Crypto.ready
        self.clock = clock
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        sendBuffer = .allocate(byteCount: Self.bufferSize, alignment: 16)
        receiveBuffer = .allocate(byteCount: Self.bufferSize, alignment: 16)
        sendBuffer.initializeMemory(as: UInt8.self, repeating: 0)
        receiveBuffer.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        // Plaintext passed through these buffers.
        wipe(sendBuffer.baseAddress, count: sendBuffer.count)
        wipe(receiveBuffer.baseAddress, count: receiveBuffer.count)
        sendBuffer.deallocate()
        receiveBuffer.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always) func locked<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// The UDP port the engine bound; `snapshot` reports it as the listen port.
    public var boundPort: UInt16 {
        get { locked { port } }
        set { locked { port = newValue } }
    }

    /// The listen port the configuration asked for (0 = any); the engine binds it.
    public var listenPort: UInt16 { locked { configuredListenPort } }

    /// The firewall mark the configuration asked for (0 = none); the engine applies it to its socket.
    public var fwmark: UInt32 { locked { firewallMark } }

    /// The TUN device's MTU: padding never grows a packet past it (0 = unknown: pad to 16 always).
    public var mtu: Int {
        get { locked { linkMTU } }
        set { locked { linkMTU = newValue } }
    }

    /// Counters of dropped packets by kind.
    public var drops: DropCounters { locked { counters } }

    /// True when handshake messages must carry a valid mac2 (else they get a
    /// cookie reply). Setting it forces the state (the engine's own
    /// measure); unset, the device decides by itself: more than 128
    /// handshake messages in a second puts it under load for a second.
    public var underLoad: Bool {
        get { locked { isUnderLoad(now: clock.monotonicNanoseconds()) } }
        set { locked { forcedUnderLoad = newValue } }
    }

    func isUnderLoad(now: UInt64) -> Bool { forcedUnderLoad || now < underLoadUntil }

    /// Counts a handshake message toward the load estimate.
    func noteHandshake(now: UInt64) {
        if now - loadWindowStart >= Timing.second {
            loadWindowStart = now
            loadWindowCount = 0
        }
        loadWindowCount += 1
        if loadWindowCount > Timing.underLoadHandshakesPerSecond {
            underLoadUntil = now + Timing.underLoadAfterTime
        }
    }

    /// The earliest timer deadline of any peer (monotonic ns), or `UInt64.max` when none is pending.
    public var nextDeadline: UInt64 {
        locked {
            var d = UInt64.max
            for p in peerOrder {
                let e = p.timers.earliest
                if e != 0 { d = min(d, e) }
            }
            return d
        }
    }

    /// The public key of the device, when it has a private key.
    public var publicKey: PublicKey? { locked { identity?.key.publicKey } }

    /// Runs every timer that is due: handshake retransmission and giving up,
    /// keepalives, new handshakes when nothing came back, persistent
    /// keepalives, and zeroing of keys.
    public func tick(sink: PacketSink) {
        locked {
            let now = clock.monotonicNanoseconds()
            for peer in peerOrder { runTimers(peer, now: now, sink: sink) }
        }
    }

    /// What `wg show` would print: keys, the bound port, the mark, and per
    /// peer the endpoint, latest handshake, transfer counters, keepalive
    /// and allowed IPs (in the order the peers were added).
    public func snapshot(name: String) -> Device {
        locked {
            Device(name: name, privateKey: identity?.key, publicKey: identity?.key.publicKey, listenPort: port,
                   firewallMark: firewallMark,
                   peers: peerOrder.map { p in
                       Peer(publicKey: p.publicKey, presharedKey: p.presharedKey, endpoint: p.endpoint,
                            persistentKeepaliveInterval: p.persistentKeepaliveInterval, lastHandshake: p.lastHandshake,
                            receiveBytes: p.receiveBytes, transmitBytes: p.transmitBytes,
                            allowedIPs: allowedIPs.prefixes(of: p.slot))
                   })
        }
    }
}
