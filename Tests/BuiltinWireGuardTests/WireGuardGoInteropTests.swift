#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import CWGShim
import KeyStore
import WGNetlink
import TestSupport
@testable import BuiltinWireGuard

/// The judge for the handshake and the transport format: Debian's
/// wireguard-go in a network namespace of its own, configured with `wg`,
/// talking UDP over that namespace's loopback to a socket this test opens
/// inside the same namespace. Both directions: we initiate and ping it; it
/// initiates (a ping from its side) and we answer.
@Suite(.serialized) struct WireGuardGoInteropTests {
    static let canRun = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/wireguard-go")
        && which("wg") != nil && which("ip") != nil && which("nsenter") != nil && which("ping") != nil

    @Test(.enabled(if: canRun, "needs root, /usr/bin/wireguard-go, wg, ip, nsenter and ping"))
    func handshakeAndPingBothWaysWithWireGuardGo() throws {
        let tag = "\(getpid() % 100_000)"
        let ns = "wgnsproto\(tag)", ifname = "wgp\(tag)"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wgns-proto-\(tag)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer {
            _ = try? shell("ip netns pids \(ns) 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del \(ns) 2>/dev/null; rm -f /var/run/wireguard/\(ifname).sock")
            try? FileManager.default.removeItem(at: dir)
        }
        let goKey = PrivateKey.generate(), ourKey = PrivateKey.generate()
        let psk = PresharedKey.generate()
        let keyFile = dir.appendingPathComponent("key").path, pskFile = dir.appendingPathComponent("psk").path
        try KeyFile.write(goKey, to: keyFile)
        try KeyFile.write(psk, to: pskFile)
        let setup = try shell("""
            set -e
            ip netns add \(ns)
            ip -n \(ns) link set lo up
            mkdir -p /var/run/wireguard
            """)
        try #require(setup.status == 0, "\(setup.stderr)")
        let go = Process()
        // nsenter only joins the network namespace; `ip netns exec` also remounts /sys, which races with
        // other tests doing the same.
        go.executableURL = URL(fileURLWithPath: which("nsenter")!)
        go.arguments = ["--net=/run/netns/\(ns)", "/usr/bin/wireguard-go", "-f", ifname]
        var env = ProcessInfo.processInfo.environment
        env["LOG_LEVEL"] = "debug"
        go.environment = env
        let logURL = dir.appendingPathComponent("wireguard-go.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        go.standardOutput = try FileHandle(forWritingTo: logURL)
        go.standardError = go.standardOutput
        try go.run()
        defer { go.terminate(); go.waitUntilExit() }
        var up = false
        for _ in 0..<100 where !up {
            up = FileManager.default.fileExists(atPath: "/var/run/wireguard/\(ifname).sock")
            if !up { usleep(20_000) }
        }
        try #require(up, "wireguard-go did not start: \((try? String(contentsOf: logURL, encoding: .utf8)) ?? "")")

        // Our UDP socket, made inside the namespace by a thread that joined it.
        let box = InteropBox()
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread {
            box.fd = openSocketInNamespace(ns)
            ready.signal()
        }
        thread.start()
        ready.wait()
        try #require(box.fd >= 0, "could not open a UDP socket in the namespace")
        defer { close(box.fd) }
        let ourPort = localPort(box.fd)
        let goPort: UInt16 = 51999

        let conf = try shell("""
            set -e
            nsenter --net=/run/netns/\(ns) wg set \(ifname) private-key \(keyFile) listen-port \(goPort) \
              peer \(ourKey.publicKey.base64) preshared-key \(pskFile) allowed-ips 10.99.0.1/32 endpoint 127.0.0.1:\(ourPort)
            ip -n \(ns) addr add 10.99.0.2/24 dev \(ifname)
            ip -n \(ns) link set \(ifname) up
            """)
        try #require(conf.status == 0, "\(conf.stderr)")

        // 1. We initiate: an ICMP echo request through our device; the reply must come back through wireguard-go.
        let goEndpoint = SocketAddress(address: IPAddress("127.0.0.1")!, port: goPort)
        var device = WireGuardDevice()
        try device.configure(DeviceConfig(privateKey: ourKey, peers: [
            PeerConfig(publicKey: goKey.publicKey, presharedKey: psk, endpoint: goEndpoint, allowedIPs: [IPPrefix("10.99.0.2/32")!])]))
        let sink = UDPSink(fd: box.fd)
        icmpEcho(type: 8, from: (10, 99, 0, 1), to: (10, 99, 0, 2), id: 0x4242, seq: 1)
            .withUnsafeBytes { device.handleOutgoing($0, sink: sink) }
        pump(device, sink: sink, seconds: 10) { sink.tun.contains { isEchoReply($0, id: 0x4242, from: (10, 99, 0, 2)) } }
        let log1 = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        #expect(sink.tun.contains { isEchoReply($0, id: 0x4242, from: (10, 99, 0, 2)) }, "wireguard-go log:\n\(log1)")
        let show = try shell("nsenter --net=/run/netns/\(ns) wg show \(ifname) latest-handshakes")
        let stamp = show.stdout.split(separator: "\t").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        #expect(stamp > 0, "wg show: \(show.stdout)")
        #expect(device.snapshot(name: "x").peers[0].lastHandshake.seconds > 0)
        #expect(device.drops.incomingTotal == 0, "\(device.drops)")

        // 2. It initiates: a fresh device of ours (no session), a fresh peer on its side, and a ping from its
        // namespace. Ours is under load: wireguard-go must take our cookie reply and come back with mac2.
        device = WireGuardDevice()
        try device.configure(DeviceConfig(privateKey: ourKey, peers: [
            PeerConfig(publicKey: goKey.publicKey, presharedKey: psk, allowedIPs: [IPPrefix("10.99.0.2/32")!])]))
        device.underLoad = true
        let reset = try shell("""
            nsenter --net=/run/netns/\(ns) wg set \(ifname) peer \(ourKey.publicKey.base64) remove && \
            nsenter --net=/run/netns/\(ns) wg set \(ifname) peer \(ourKey.publicKey.base64) preshared-key \(pskFile) allowed-ips 10.99.0.1/32 endpoint 127.0.0.1:\(ourPort)
            """)
        try #require(reset.status == 0, "\(reset.stderr)")
        sink.tun.removeAll()
        let ping = Process()
        ping.executableURL = go.executableURL
        ping.arguments = ["--net=/run/netns/\(ns)", "ping", "-c", "1", "-W", "14", "10.99.0.1"]
        let pingURL = dir.appendingPathComponent("ping.out")
        _ = FileManager.default.createFile(atPath: pingURL.path, contents: nil)
        ping.standardOutput = try FileHandle(forWritingTo: pingURL)
        ping.standardError = ping.standardOutput
        try ping.run()
        var answered = 0
        pump(device, sink: sink, seconds: 16) {
            // Answer every echo request that arrives, as a host at 10.99.0.1 would.
            for p in sink.tun where p.count >= 28 && p[9] == 1 && p[20] == 8 {
                let id = UInt16(p[24]) << 8 | UInt16(p[25]), seq = UInt16(p[26]) << 8 | UInt16(p[27])
                icmpEcho(type: 0, from: (10, 99, 0, 1), to: (10, 99, 0, 2), id: id, seq: seq, payload: Array(p[28...]))
                    .withUnsafeBytes { device.handleOutgoing($0, sink: sink) }
                answered += 1
            }
            sink.tun.removeAll()
            return !ping.isRunning
        }
        ping.waitUntilExit()
        let log2 = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        #expect(answered >= 1)
        let pingOut = (try? String(contentsOf: pingURL, encoding: .utf8)) ?? ""
        #expect(ping.terminationStatus == 0, "ping from wireguard-go's side failed: \(pingOut)\nlog:\n\(log2.suffix(3000))")
        #expect(device.snapshot(name: "x").peers[0].endpoint == SocketAddress(address: IPAddress("127.0.0.1")!, port: goPort))
        // Its first initiation got a cookie reply; the retry carried a valid mac2 and nothing else was dropped.
        #expect(device.drops.cookieReplied >= 1, "\(device.drops)")
        #expect(device.drops.incomingTotal == device.drops.cookieReplied, "\(device.drops)")

        // 3. We rekey while the session lives (REKEY_AFTER_MESSAGES reached, as if 2^60 messages had gone):
        // the packet that crosses it still goes under the old keys, a new handshake runs, and the next
        // packet goes under the new ones; wireguard-go answers both.
        device.underLoad = false
        let old = device.locked { () -> Keypair? in
            let peer = device.peerOrder[0]
            peer.lastSentHandshake = nil  // its own initiation was answered a moment ago
            peer.keypairs.current?.sendCounter = Timing.rekeyAfterMessages + 1
            return peer.keypairs.current
        }
        try #require(old != nil)
        sink.tun.removeAll()
        icmpEcho(type: 8, from: (10, 99, 0, 1), to: (10, 99, 0, 2), id: 0x4343, seq: 1)
            .withUnsafeBytes { device.handleOutgoing($0, sink: sink) }
        pump(device, sink: sink, seconds: 10) {
            sink.tun.contains { isEchoReply($0, id: 0x4343, from: (10, 99, 0, 2)) }
                && device.locked { device.peerOrder[0].keypairs.current !== old }
        }
        let rotated = device.locked { () -> (Bool, Bool) in
            let k = device.peerOrder[0].keypairs
            return (k.current !== old && k.current?.isInitiator == true, k.previous === old)
        }
        #expect(sink.tun.contains { isEchoReply($0, id: 0x4343, from: (10, 99, 0, 2)) })
        #expect(rotated.0 && rotated.1, "a new session we initiated, the old one kept as previous")
        sink.tun.removeAll()
        icmpEcho(type: 8, from: (10, 99, 0, 1), to: (10, 99, 0, 2), id: 0x4444, seq: 1)
            .withUnsafeBytes { device.handleOutgoing($0, sink: sink) }
        pump(device, sink: sink, seconds: 10) { sink.tun.contains { isEchoReply($0, id: 0x4444, from: (10, 99, 0, 2)) } }
        #expect(sink.tun.contains { isEchoReply($0, id: 0x4444, from: (10, 99, 0, 2)) })
        #expect(device.locked { device.peerOrder[0].keypairs.current?.sendCounter ?? 0 } < 100)
        #expect(device.drops.incomingTotal == device.drops.cookieReplied, "\(device.drops)")

        // 4. Its cookies: a burst of initiations that pass its mac1 but nothing else puts wireguard-go under
        // load; our next initiation gets a cookie reply, which we must decrypt and use for mac2.
        device = WireGuardDevice()
        try device.configure(DeviceConfig(privateKey: ourKey, peers: [
            PeerConfig(publicKey: goKey.publicKey, presharedKey: psk, endpoint: goEndpoint, allowedIPs: [IPPrefix("10.99.0.2/32")!])]))
        let mac1Key = Noise.labelledKey(Noise.labelMAC1, Bytes32(goKey.publicKey))
        var gotCookie = false
        for round in 0..<5 where !gotCookie {
            var junk = [UInt8](repeating: 0, count: InitiationMessage.size)
            for _ in 0..<4000 {
                junk.withUnsafeMutableBytes { j in
                    Crypto.random(j)
                    writeLE32(j, 0, 1)
                    mac1Key.withBytes { Crypto.mac(key: $0, UnsafeRawBufferPointer(rebasing: j[..<116])) }.write(to: j, at: 116)
                    sink.sendDatagram(UnsafeRawBufferPointer(j), to: goEndpoint)
                }
            }
            device.locked { device.peerOrder[0].lastSentHandshake = nil }
            icmpEcho(type: 8, from: (10, 99, 0, 1), to: (10, 99, 0, 2), id: 0x4545, seq: UInt16(round))
                .withUnsafeBytes { device.handleOutgoing($0, sink: sink) }
            pump(device, sink: sink, seconds: 2) {
                gotCookie = device.locked { device.peerOrder[0].cookie.hasCookie(now: device.clock.monotonicNanoseconds()) }
                return gotCookie
            }
        }
        #expect(gotCookie, "wireguard-go never answered with a cookie reply that we could open; drops: \(device.drops)")
        // Our retry carries mac2 made with it, and the handshake completes.
        sink.tun.removeAll()
        pump(device, sink: sink, seconds: 12) { sink.tun.contains { isEchoReply($0, id: 0x4545, from: (10, 99, 0, 2)) } }
        #expect(sink.tun.contains { isEchoReply($0, id: 0x4545, from: (10, 99, 0, 2)) })
    }
}

final class InteropBox: @unchecked Sendable { var fd: Int32 = -1 }

/// Joins network namespace `name` on this thread and opens a UDP socket on 127.0.0.1 there.
func openSocketInNamespace(_ name: String) -> Int32 {
    let nsfd = open("/var/run/netns/\(name)", O_RDONLY)
    guard nsfd >= 0 else { return -1 }
    defer { close(nsfd) }
    guard CWGShim_setns(nsfd, CWGShim_CLONE_NEWNET) == 0 else { return -1 }
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { return -1 }
    var sa = sockaddr_in()
    sa.sin_family = sa_family_t(AF_INET)
    sa.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let rc = withUnsafePointer(to: &sa) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { close(fd); return -1 }
    return fd
}

func localPort(_ fd: Int32) -> UInt16 {
    var sa = sockaddr_in()
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return UInt16(bigEndian: sa.sin_port)
}

/// A sink over a real UDP socket (IPv4 only), recording what goes to the TUN.
final class UDPSink: PacketSink {
    let fd: Int32
    var tun: [[UInt8]] = []
    init(fd: Int32) { self.fd = fd }
    func sendDatagram(_ bytes: UnsafeRawBufferPointer, to endpoint: SocketAddress) {
        guard case let .v4(a, b, c, d) = endpoint.address else { return }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = endpoint.port.bigEndian
        sa.sin_addr.s_addr = (UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)).bigEndian
        _ = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
    func writeToTUN(_ packet: UnsafeRawBufferPointer) { tun.append(Array(packet)) }
}

/// Reads datagrams into the device and runs its timers until `done` or `seconds` pass.
func pump(_ device: WireGuardDevice, sink: UDPSink, seconds: Double, until done: () -> Bool) {
    let end = Date().addingTimeInterval(seconds)
    var buf = [UInt8](repeating: 0, count: 65536)
    while Date() < end {
        var pfd = pollfd(fd: sink.fd, events: Int16(POLLIN), revents: 0)
        if poll(&pfd, 1, 50) > 0 {
            var sa = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = buf.withUnsafeMutableBytes { b in
                withUnsafeMutablePointer(to: &sa) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(sink.fd, b.baseAddress, b.count, 0, $0, &len) }
                }
            }
            if n > 0 {
                let ip = UInt32(bigEndian: sa.sin_addr.s_addr)
                let source = SocketAddress(address: .v4(UInt8(ip >> 24), UInt8(truncatingIfNeeded: ip >> 16),
                                                        UInt8(truncatingIfNeeded: ip >> 8), UInt8(truncatingIfNeeded: ip)),
                                           port: UInt16(bigEndian: sa.sin_port))
                buf.withUnsafeBytes { device.handleIncoming(UnsafeRawBufferPointer(rebasing: $0[0..<n]), from: source, sink: sink) }
            }
        }
        device.tick(sink: sink)
        if done() { return }
    }
}

/// The Internet checksum.
func internetChecksum(_ bytes: ArraySlice<UInt8>) -> UInt16 {
    var sum: UInt32 = 0
    var i = bytes.startIndex
    while i + 1 < bytes.endIndex { sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]); i += 2 }
    if i < bytes.endIndex { sum += UInt32(bytes[i]) << 8 }
    while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
    return ~UInt16(sum)
}

/// An ICMP echo request (type 8) or reply (type 0) in IPv4, checksums right.
func icmpEcho(type: UInt8, from src: (UInt8, UInt8, UInt8, UInt8), to dst: (UInt8, UInt8, UInt8, UInt8),
              id: UInt16, seq: UInt16, payload: [UInt8] = Array("wgns-proto".utf8)) -> [UInt8] {
    var icmp: [UInt8] = [type, 0, 0, 0, UInt8(id >> 8), UInt8(id & 0xff), UInt8(seq >> 8), UInt8(seq & 0xff)] + payload
    let c = internetChecksum(icmp[...])
    icmp[2] = UInt8(c >> 8); icmp[3] = UInt8(c & 0xff)
    var p = ipv4(from: src, to: dst, payload: icmp)
    p[6] = 0x40  // don't fragment
    p[9] = 1
    let h = internetChecksum(p[0..<20])
    p[10] = UInt8(h >> 8); p[11] = UInt8(h & 0xff)
    return p
}

func isEchoReply(_ p: [UInt8], id: UInt16, from src: (UInt8, UInt8, UInt8, UInt8)) -> Bool {
    p.count >= 28 && p[0] >> 4 == 4 && p[9] == 1 && p[12] == src.0 && p[13] == src.1 && p[14] == src.2 && p[15] == src.3
        && p[20] == 0 && UInt16(p[24]) << 8 | UInt16(p[25]) == id
}
