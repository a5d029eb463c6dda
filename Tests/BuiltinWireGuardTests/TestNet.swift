import KeyStore
import WGNetlink
@testable import BuiltinWireGuard

/// Hex to bytes (test vectors).
func hex(_ s: String) -> [UInt8] {
    let chars = Array(s.utf8.filter { $0 != UInt8(ascii: " ") })
    func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
    return stride(from: 0, to: chars.count, by: 2).map { nibble(chars[$0]) << 4 | nibble(chars[$0 + 1]) }
}

/// Bytes to lowercase hex.
func hexString(_ b: some Sequence<UInt8>) -> String {
    b.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

/// A sink that records what the device sends and delivers.
final class RecordingSink: PacketSink {
    var sent: [(bytes: [UInt8], to: SocketAddress)] = []
    var tun: [[UInt8]] = []
    func sendDatagram(_ bytes: UnsafeRawBufferPointer, to endpoint: SocketAddress) { sent.append((Array(bytes), endpoint)) }
    func writeToTUN(_ packet: UnsafeRawBufferPointer) { tun.append(Array(packet)) }
    /// Takes what was sent so far.
    func take() -> [(bytes: [UInt8], to: SocketAddress)] { defer { sent = [] }; return sent }
}

/// An IPv4 packet with a correct total length (no checksum: nothing here checks it).
func ipv4(from src: (UInt8, UInt8, UInt8, UInt8), to dst: (UInt8, UInt8, UInt8, UInt8), payload: [UInt8]) -> [UInt8] {
    let total = 20 + payload.count
    var p: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 0, 0, 0, 64, 17, 0, 0,
                      src.0, src.1, src.2, src.3, dst.0, dst.1, dst.2, dst.3]
    p += payload
    return p
}

/// An IPv6 packet with a correct payload length.
func ipv6(from src: IPAddress, to dst: IPAddress, payload: [UInt8]) -> [UInt8] {
    var p: [UInt8] = [0x60, 0, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xff), 17, 64]
    p += src.bytes + dst.bytes + payload
    return p
}

func prefix(_ s: String) -> IPPrefix { IPPrefix(s)! }

/// Two devices A (10.0.0.1, fd00::1, UDP 192.0.2.1:51820) and B (10.0.0.2,
/// fd00::2, UDP 192.0.2.2:51821) wired through recording sinks, on one
/// manual clock; `deliver()` carries datagrams until the wire is quiet.
final class Pair {
    let clock = ManualClock()
    let a: WireGuardDevice
    let b: WireGuardDevice
    let sinkA = RecordingSink()
    let sinkB = RecordingSink()
    let keyA = PrivateKey.generate()
    let keyB = PrivateKey.generate()
    var addrA = SocketAddress(address: IPAddress("192.0.2.1")!, port: 51820)
    let addrB = SocketAddress(address: IPAddress("192.0.2.2")!, port: 51821)
    /// Every datagram carried, as (from A?, bytes).
    var log: [(fromA: Bool, bytes: [UInt8])] = []

    init(psk: PresharedKey? = nil, pskB: PresharedKey? = nil, aKnowsB: Bool = true, bEndpointOfA: Bool = false,
         keepaliveA: UInt16? = nil) throws {
        a = WireGuardDevice(clock: clock)
        b = WireGuardDevice(clock: clock)
        try a.configure(DeviceConfig(privateKey: keyA, listenPort: 51820, peers: [
            PeerConfig(publicKey: keyB.publicKey, presharedKey: psk, endpoint: aKnowsB ? addrB : nil,
                       persistentKeepaliveInterval: keepaliveA,
                       allowedIPs: [prefix("10.0.0.2/32"), prefix("fd00::2/128")])]))
        try b.configure(DeviceConfig(privateKey: keyB, listenPort: 51821, peers: [
            PeerConfig(publicKey: keyA.publicKey, presharedKey: pskB ?? psk, endpoint: bEndpointOfA ? addrA : nil,
                       allowedIPs: [prefix("10.0.0.1/32"), prefix("fd00::1/128")])]))
        a.boundPort = 51820
        b.boundPort = 51821
    }

    /// Carries datagrams both ways until none is left; returns how many went.
    @discardableResult
    func deliver(filter: (Bool, [UInt8]) -> Bool = { _, _ in true }) -> Int {
        var n = 0
        while true {
            let fromA = sinkA.take(), fromB = sinkB.take()
            if fromA.isEmpty && fromB.isEmpty { return n }
            for d in fromA where d.to == addrB && filter(true, d.bytes) {
                log.append((true, d.bytes)); n += 1
                d.bytes.withUnsafeBytes { b.handleIncoming($0, from: addrA, sink: sinkB) }
            }
            for d in fromB where d.to == addrA && filter(false, d.bytes) {
                log.append((false, d.bytes)); n += 1
                d.bytes.withUnsafeBytes { a.handleIncoming($0, from: addrB, sink: sinkA) }
            }
        }
    }

    /// A sends an IPv4 packet to B's tunnel address.
    func sendAtoB(_ payload: [UInt8]) {
        ipv4(from: (10, 0, 0, 1), to: (10, 0, 0, 2), payload: payload).withUnsafeBytes { a.handleOutgoing($0, sink: sinkA) }
    }

    /// B sends an IPv4 packet to A's tunnel address.
    func sendBtoA(_ payload: [UInt8]) {
        ipv4(from: (10, 0, 0, 2), to: (10, 0, 0, 1), payload: payload).withUnsafeBytes { b.handleOutgoing($0, sink: sinkB) }
    }

    /// Advances the clock and runs both devices' timers (no delivery).
    func advance(_ seconds: Double) {
        clock.advance(seconds: seconds)
        a.tick(sink: sinkA)
        b.tick(sink: sinkB)
    }

    /// Advances in steps of `step` seconds for `seconds`, delivering after each tick.
    func run(for seconds: Double, step: Double = 0.1, deliver carry: Bool = true) {
        var t = 0.0
        while t < seconds {
            advance(step)
            if carry { deliver() }
            t += step
        }
    }

    /// Handshake then one packet each way; true when both arrived.
    func establish() -> Bool {
        sendAtoB([1, 2, 3])
        deliver()
        guard sinkB.tun.count == 1 else { return false }
        sendBtoA([4, 5, 6])
        deliver()
        return sinkA.tun.count == 1
    }
}

/// The type byte of a datagram.
func messageType(_ d: [UInt8]) -> UInt8 { d.first ?? 0 }
