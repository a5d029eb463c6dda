import KeyStore
import POSIX
import SystemPackage
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// The protocol core as the engine drives it: IP packets from the TUN in,
/// datagrams from the UDP socket in, timers, and what `wg show` prints.
/// `WireGuardDevice` is the one the product runs. The engine calls it from
/// three threads at once, each with an output of its own: it guards its own
/// state, and it is done with the bytes it hands an output when the call
/// that handed them returns.
public protocol EngineCore: AnyObject {
    /// An IP packet read from the TUN.
    func engineOutgoing(_ packet: UnsafeRawBufferPointer, output: EngineOutput)
    /// A datagram received on the UDP socket from `source`.
    func engineIncoming(_ datagram: UnsafeRawBufferPointer, from source: SocketAddress, output: EngineOutput)
    /// The timers (handshake retries, keepalives, expiries).
    func engineTick(output: EngineOutput)
    /// When `engineTick` is next due (CLOCK_MONOTONIC ns).
    var engineDeadline: UInt64 { get }
    /// The device as `wg show` would print it.
    func engineSnapshot(name: String) -> Device
    /// Applies `config` with `wg set` semantics; a keepalive it turns on
    /// goes out through `output` at once.
    func engineConfigure(_ config: DeviceConfig, output: EngineOutput) throws(BuiltinError)
}

/// Where the core's output goes: datagrams to the UDP socket, decrypted
/// packets to the TUN. Each engine thread has one of its own (its address
/// buffer, batches and arenas are that thread's), so nothing is allocated
/// per packet and nothing is shared but the descriptors.
public final class EngineOutput: @unchecked Sendable {
    let tun: Int32
    let vnetHeader: Bool
    let socket: UDPSocket
    /// Room for a sockaddr_in6, reused for every send.
    let address = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 8)
    /// While the receive thread hands a batch of datagrams to the core,
    /// decrypted packets are copied into `arena` and collected in
    /// `tunBatch`, to be written together (TCP segments of one flow as one
    /// super-packet, UDP ones too where the TUN took USO); otherwise each
    /// packet is written at once. The core's own buffer is reused by its
    /// next call, hence the copy.
    var collecting = false
    let tunBatch: TUNWriteBatch
    let arena: UnsafeMutableRawBufferPointer
    var arenaUsed = 0
    static let arenaSize = 4 << 20
    /// The same for sends while the TUN thread hands a read (a GSO
    /// super-packet's segments) to the core: the datagrams go out together
    /// (`sendmmsg`, runs to one peer as UDP_SEGMENT messages).
    var collectingSends = false
    let sendBatch = UDPSendBatch(capacity: 128)
    let sendArena: UnsafeMutableRawBufferPointer
    var sendArenaUsed = 0

    init(tun: Int32, offloads: TUNOffloads, socket: UDPSocket) {
        self.tun = tun
        self.vnetHeader = offloads.contains(.vnetHeader)
        self.socket = socket
        tunBatch = TUNWriteBatch(capacity: 256, coalesce: vnetHeader, coalesceUDP: offloads.contains(.uso4) && offloads.contains(.uso6))
        arena = .allocate(byteCount: Self.arenaSize, alignment: 16)
        sendArena = .allocate(byteCount: Self.arenaSize, alignment: 16)
    }

    /// Sends what was collected and empties the batch.
    func flushSends() {
        if sendBatch.count > 0 {
            socket.send(sendBatch)
            sendBatch.removeAll()
        }
        sendArenaUsed = 0
    }

    /// Writes what was collected and empties the batch.
    func flush() {
        if tunBatch.count > 0 {
            let fd = Descriptor(owning: tun)
            tunBatch.write(to: fd, vnetHeader: vnetHeader)
            _ = fd.release()
            tunBatch.removeAll()
        }
        arenaUsed = 0
    }

    /// Sends one datagram to `endpoint` (`sendto`); a full socket buffer or
    /// an unreachable address drops it, as a network would.
    public func send(_ bytes: UnsafeRawBufferPointer, to endpoint: SocketAddress) {
        if collectingSends {
            let room = (bytes.count + 15) & ~15
            if sendArenaUsed + room > sendArena.count || sendBatch.count == sendBatch.capacity { flushSends() }
            if room <= sendArena.count {
                let slot = UnsafeMutableRawBufferPointer(rebasing: sendArena[sendArenaUsed..<(sendArenaUsed + bytes.count)])
                slot.copyMemory(from: bytes)
                sendArenaUsed += room
                sendBatch.append(UnsafeRawBufferPointer(slot), to: endpoint)
                return
            }
        }
        let length = endpoint.writeSockaddr(to: address, asIPv6: socket.family == .dualStack)
        guard length > 0 else { return }
        let fd = socket.descriptor.raw
        let sa = address.assumingMemoryBound(to: sockaddr.self)
        var r: Int
        repeat { r = sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), sa, socklen_t(length)) } while r < 0 && errno == EINTR
    }

    /// Writes one decrypted IP packet to the TUN (after an all-zero vnet
    /// header when the TUN has them); a full queue drops it.
    public func write(_ packet: UnsafeRawBufferPointer) {
        if collecting {
            let room = (packet.count + 15) & ~15
            if arenaUsed + room > arena.count || tunBatch.count == tunBatch.capacity { flush() }
            if room <= arena.count {
                let slot = UnsafeMutableRawBufferPointer(rebasing: arena[arenaUsed..<(arenaUsed + packet.count)])
                slot.copyMemory(from: packet)
                arenaUsed += room
                tunBatch.append(slot)
                return
            }
        }
        let fd = Descriptor(owning: tun)
        try? TUNDevice.write(fd, packet: packet, vnetHeader: vnetHeader)
        _ = fd.release()
    }
}

/// The built-in data plane's loop: one thread reads the TUN, one the UDP
/// socket, and the calling thread runs the timers and answers the
/// supervisor's snapshot requests on `control`. The core guards its own
/// state (`WireGuardDevice` has one lock); each thread writes through an
/// output of its own, so that one thread's system calls overlap another's
/// crypto.
public final class Engine: @unchecked Sendable {
    let core: any EngineCore
    /// The TUN thread's output (sends collected per read).
    let tunSide: EngineOutput
    /// The UDP thread's output (TUN writes collected per receive).
    let udpSide: EngineOutput
    /// The timer thread's output (everything at once).
    let timerSide: EngineOutput
    let name: String

    /// An engine for interface `name` between `tun` (a TUN descriptor set
    /// up with `offloads`, which it owns from here on) and the bound UDP
    /// socket `socket` of the host.
    public init(core: any EngineCore, name: String, tun: Int32, offloads: TUNOffloads, socket: UDPSocket) {
        self.core = core
        self.name = name
        tunSide = EngineOutput(tun: tun, offloads: offloads, socket: socket)
        udpSide = EngineOutput(tun: tun, offloads: offloads, socket: socket)
        timerSide = EngineOutput(tun: tun, offloads: offloads, socket: socket)
    }

    /// The request byte on the control socket: reply with the device as
    /// UAPI `get=1` text (`Device.uapiText`).
    public static let snapshotRequest: UInt8 = UInt8(ascii: "g")

    /// The request byte on the control socket that re-points a peer: then
    /// one length byte and `PUBLICKEY ADDRESS PORT` (base64, text); the
    /// peer is made afresh (no session left, same preshared key, keepalive
    /// and AllowedIPs) at the new endpoint, so its keepalive starts a
    /// handshake at once. No reply.
    public static let repointRequest: UInt8 = UInt8(ascii: "e")

    /// The bytes of a re-point request for peer `key` to `endpoint`.
    public static func repointMessage(_ key: PublicKey, to endpoint: SocketAddress) -> [UInt8] {
        let text = Array("\(key.base64) \(endpoint.address) \(endpoint.port)".utf8)
        return [repointRequest, UInt8(text.count)] + text
    }

    /// Reads the rest of a re-point request and applies it (timer thread).
    func repoint(from control: Int32) {
        var length: UInt8 = 0
        guard read(control, &length, 1) == 1 else { return }
        var text = [UInt8](repeating: 0, count: Int(length))
        var got = 0
        while got < text.count {
            let n = text.withUnsafeMutableBytes { read(control, $0.baseAddress! + got, $0.count - got) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            got += n
        }
        let f = String(decoding: text, as: UTF8.self).split(separator: " ")
        guard f.count == 3, let key = try? PublicKey(base64: String(f[0])), let address = IPAddress(String(f[1])),
              let port = UInt16(f[2]) else { return }
        guard let old = snapshot().peers.first(where: { $0.publicKey == key }) else { return }
        var remove = DeviceConfig()
        remove.peers = [PeerConfig(publicKey: key, remove: true)]
        var add = DeviceConfig()
        add.peers = [PeerConfig(publicKey: key, presharedKey: old.presharedKey, endpoint: SocketAddress(address: address, port: port),
                                persistentKeepaliveInterval: old.persistentKeepaliveInterval, replaceAllowedIPs: true,
                                allowedIPs: old.allowedIPs)]
        try? configure(remove)
        try? configure(add)
    }

    /// The device as `wg show` would print it (for a housekeeping task).
    public func snapshot() -> Device { core.engineSnapshot(name: name) }

    /// Changes the running device (`wg set` semantics). Only on the timer
    /// thread (a housekeeping task, a control request): it sends through
    /// that thread's output.
    public func configure(_ config: DeviceConfig) throws(BuiltinError) {
        try core.engineConfigure(config, output: timerSide)
    }

    /// Runs until the supervisor closes `control` (or the TUN goes away
    /// with its namespace), then exits the process: the data plane is a
    /// process of its own. `housekeeping`, when given, runs on the timer
    /// thread at most every 100 ms (it may call `snapshot` and
    /// `configure`), never per packet.
    public func run(control: Int32, housekeeping: ((Engine) -> Void)? = nil) -> Never {
        if let device = core as? WireGuardDevice {
            Self.startThread { [self] in readTUNBatched(device) }
            Self.startThread { [self] in readUDPBatched(device) }
        } else {
            Self.startThread { [self] in readTUN() }
            Self.startThread { [self] in readUDP() }
        }
        var request: UInt8 = 0
        var nextHousekeeping: UInt64 = 0
        while true {
            let now = engineNow()
            let deadline = core.engineDeadline
            let wait = deadline <= now ? 0 : Int32(min(100, (deadline - now) / 1_000_000 + 1))
            var p = pollfd(fd: control, events: Int16(POLLIN), revents: 0)
            let n = poll(&p, 1, wait)
            if n > 0 {
                let r = read(control, &request, 1)
                if r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN) { _exit(0) }
                if r == 1 && request == Self.snapshotRequest {
                    var text = core.engineSnapshot(name: name).uapiText()
                    try? Descriptor(owning: dup(control)).writeAll(text)
                    KeyStore.wipe(&text)
                } else if r == 1 && request == Self.repointRequest {
                    repoint(from: control)
                }
            }
            if engineNow() >= core.engineDeadline || n == 0 {
                core.engineTick(output: timerSide)
            }
            if let housekeeping, engineNow() >= nextHousekeeping {
                housekeeping(self)
                nextHousekeeping = engineNow() + 100_000_000
            }
        }
    }

    /// The TUN's packets, each (or each segment of a GSO super-packet) to
    /// the core.
    func readTUN() {
        let output = tunSide
        let size = output.vnetHeader ? TUNDevice.maxReadSize : 65536
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        let batch = PacketBatch(capacity: 128, slotSize: 65536)
        while true {
            let n = read(output.tun, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR || errno == EAGAIN || errno == ENOBUFS { continue }
                // EBADFD: the device went with its namespace; the job is over.
                _exit(0)
            }
            guard n > 0 else { continue }
            let read = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            if output.vnetHeader {
                batch.removeAll()
                guard let count = try? GSO.split(read, into: batch) else { continue }
                output.collectingSends = true
                for i in 0..<count { core.engineOutgoing(UnsafeRawBufferPointer(batch.packet(i)), output: output) }
                output.flushSends()
                output.collectingSends = false
            } else {
                core.engineOutgoing(read, output: output)
            }
        }
    }

    /// The UDP socket's datagrams, received in batches (`recvmmsg`, GRO
    /// split), each to the core with its source, in order.
    func readUDP() {
        let output = udpSide
        let batch = UDPReceiveBatch(messageCount: 32, bufferSize: 65536)
        while true {
            let n: Int
            do { n = try output.socket.receive(into: batch) } catch {
                // A socket that is gone ends the data plane; anything else
                // (an ICMP error queued on it, no memory for a moment) is
                // one lost receive.
                if error.errno == .badFileDescriptor || error.errno == .notSocket { _exit(1) }
                if error.errno != .interrupted { usleep(1000) }
                continue
            }
            guard n > 0 else { continue }
            output.collecting = true
            for i in 0..<n { core.engineIncoming(UnsafeRawBufferPointer(batch.datagram(i)), from: batch.source(i), output: output) }
            output.flush()
            output.collecting = false
        }
    }

    /// Starts a detached thread running `body`.
    static func startThread(_ body: @escaping @Sendable () -> Void) {
        final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        let arg = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let r = pthread_create(&thread, nil, { p in
            Unmanaged<Box>.fromOpaque(p!).takeRetainedValue().body()
            return nil
        }, arg)
        if r != 0 { _exit(1) }
        pthread_detach(thread)
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
private func engineNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
