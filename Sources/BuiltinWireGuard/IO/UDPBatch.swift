import CWGShim
import POSIX
import Synchronization
import SystemPackage
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// `::`.
private let anyIPv6 = withUnsafeBytes(of: (UInt64(0), UInt64(0))) { IPAddress.v6(IPv6Bytes($0)) }

/// Which addresses a `UDPSocket` speaks.
public enum UDPFamily: Sendable, Hashable {
    /// An AF_INET socket: IPv4 peers only.
    case ipv4
    /// An AF_INET6 socket with IPV6_V6ONLY off: IPv6 peers, and IPv4 peers
    /// as IPv4-mapped addresses (converted both ways here).
    case dualStack
}

/// The host side of the data plane: one UDP socket with batched receive
/// (`recvmmsg`, UDP_GRO) and batched send (`sendmmsg`, UDP_SEGMENT).
///
/// A receiving thread and a sending thread may use one socket at once
/// (the kernel allows it; the one piece of state, whether UDP_SEGMENT still
/// works, is atomic). The descriptor closes when the socket is dropped.
public final class UDPSocket: @unchecked Sendable {
    /// The socket's descriptor.
    public let descriptor: Descriptor
    /// The local port (the kernel's pick when 0 was asked for).
    public let port: UInt16
    /// IPv4 only, or dual-stack IPv6.
    public let family: UDPFamily
    /// Whether UDP_GRO is on: a receive may hold many datagrams of one
    /// sender, which `receive` splits. Receive buffers must then be 64 KiB.
    public let receiveOffload: Bool
    private let segmentation: Atomic<Bool>

    /// Whether sends still use UDP_SEGMENT (it turns off for good at the
    /// first EIO or EINVAL, as wireguard-go does at EIO: a device without
    /// checksum offload, or a socket with SO_NO_CHECK, refuses it).
    public var sendOffload: Bool { segmentation.load(ordering: .relaxed) }

    /// The most datagrams one UDP_SEGMENT send may carry (the kernel's UDP_MAX_SEGMENTS).
    public static let maxSegments = 64

    private init(descriptor: consuming Descriptor, port: UInt16, family: UDPFamily, gro: Bool, gso: Bool) {
        self.descriptor = descriptor
        self.port = port
        self.family = family
        self.receiveOffload = gro
        self.segmentation = Atomic(gso)
    }

    /// Opens a UDP socket (close-on-exec) bound to `address` (nil: every
    /// address of the family) and `port` (0: the kernel picks; `port` says
    /// which). With `offloads`, UDP_GRO is turned on where the kernel
    /// accepts it, and UDP_SEGMENT is used where getsockopt says it exists;
    /// without, every datagram is its own message both ways. Receive and send
    /// buffers are raised towards 7 MiB (as far as rmem_max/wmem_max allow).
    public static func bind(port: UInt16, family: UDPFamily, address: IPAddress? = nil,
                            offloads: Bool = true, nonBlocking: Bool = false) throws(IOError) -> UDPSocket {
        let domain = family == .ipv4 ? AF_INET : AF_INET6
        let type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd: Descriptor
        do {
            fd = Descriptor(owning: try valueOrErrno { socket(domain, type, 0) })
        } catch {
            throw IOError(.socket, errno: error, "cannot open a UDP socket")
        }
        let raw = fd.raw
        if family == .dualStack {
            do { try setOption(raw, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 0) } catch {
                throw IOError(.socket, errno: error, "cannot make the UDP socket dual-stack (IPV6_V6ONLY)")
            }
        }
        let bufferSize: Int32 = 7 << 20
        try? setOption(raw, SOL_SOCKET, SO_RCVBUF, bufferSize)
        try? setOption(raw, SOL_SOCKET, SO_SNDBUF, bufferSize)

        var name = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))  // room for a sockaddr_in6
        let length = withUnsafeMutableBytes(of: &name) { p in
            SocketAddress(address: address ?? (family == .ipv4 ? .v4(0, 0, 0, 0) : anyIPv6), port: port)
                .writeSockaddr(to: p.baseAddress!, asIPv6: family == .dualStack)
        }
        guard length > 0 else {
            throw IOError(.bind, errno: .addressFamilyNotSupported, "cannot bind an IPv4 socket to an IPv6 address")
        }
        do {
            try valueOrErrno { withUnsafeBytes(of: &name) { Glibc.bind(raw, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(length)) } }
        } catch {
            throw IOError(.bind, errno: error, "cannot bind the UDP socket to port \(port)" + (error == .addressInUse ? " (in use: pick another ListenPort)" : ""))
        }
        var boundLength = socklen_t(MemoryLayout.size(ofValue: name))
        do {
            try valueOrErrno { withUnsafeMutableBytes(of: &name) { getsockname(raw, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &boundLength) } }
        } catch {
            throw IOError(.socket, errno: error, "getsockname on the UDP socket failed")
        }
        let bound = withUnsafeBytes(of: &name) { SocketAddress(sockaddr: $0.baseAddress!, length: Int(boundLength)) }
        var gro = false, gso = false
        if offloads {
            gro = (try? setOption(raw, Int32(CWGShim_SOL_UDP), Int32(CWGShim_UDP_GRO), 1)) != nil
            var value: Int32 = 0
            var valueLength = socklen_t(MemoryLayout<Int32>.size)
            gso = (try? valueOrErrno { getsockopt(raw, Int32(CWGShim_SOL_UDP), Int32(CWGShim_UDP_SEGMENT), &value, &valueLength) }) != nil
        }
        return UDPSocket(descriptor: fd, port: bound?.port ?? port, family: family, gro: gro, gso: gso)
    }

    /// setsockopt(2) of an int.
    private static func setOption(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: Int32) throws(Errno) {
        var v = value
        try valueOrErrno { setsockopt(fd, level, option, &v, socklen_t(MemoryLayout<Int32>.size)) }
    }

    /// Turns UDP_SEGMENT off for this socket's sends (tests; or a caller
    /// that knows better).
    public func disableSendOffload() { segmentation.store(false, ordering: .relaxed) }

    /// shutdown(2) both ways: a thread blocked in `receive` returns (with 0
    /// datagrams), and later calls fail.
    public func shutdown() {
        _ = Glibc.shutdown(descriptor.raw, Int32(SHUT_RDWR))
    }

    /// Receives a batch (`recvmmsg` with MSG_WAITFORONE: it blocks until one
    /// message arrives, then takes what else is queued, up to the batch's
    /// message count), splits GRO-coalesced messages by their segment size,
    /// and returns how many datagrams `batch` now holds (0 for EAGAIN on a
    /// non-blocking socket, or after `shutdown`). Truncated messages are
    /// dropped and counted in `batch.truncated`.
    public func receive(into batch: UDPReceiveBatch) throws(IOError) -> Int {
        if receiveOffload && batch.bufferSize < 65535 {
            throw IOError(.bufferTooSmall, "a UDP_GRO socket needs 64 KiB receive buffers, not \(batch.bufferSize)")
        }
        batch.prepare()
        let got: Int32
        do {
            got = try valueOrErrno { CWGShim_recvmmsg(descriptor.raw, batch.messages, UInt32(batch.messageCount), CWGShim_MSG_WAITFORONE) }
        } catch {
            if error == .wouldBlock { return 0 }
            throw IOError(.receive, errno: error, "receiving from the UDP socket failed")
        }
        batch.collect(Int(got))
        return batch.count
    }

    /// Sends every datagram in `batch` (`sendmmsg`, looping until all are
    /// through). With `sendOffload`, runs of consecutive datagrams to one
    /// destination, all of one size but a last shorter one, up to 64 and
    /// 64 KiB, go as one UDP_SEGMENT message. At EIO or EINVAL on such a
    /// message, segmentation turns off for good, and at EMSGSIZE (segments
    /// larger than the route's MTU allows) for the rest of this call; the
    /// rest goes one datagram per message (which the kernel may fragment).
    /// Other errors drop the message they hit and sending goes on;
    /// the result counts both and keeps the first error. The datagrams'
    /// memory is only read during the call.
    @discardableResult
    public func send(_ batch: UDPSendBatch) -> UDPSendResult {
        var result = UDPSendResult()
        let asIPv6 = family == .dualStack
        var gso = sendOffload
        var messageCount = batch.build(from: 0, segmentation: gso, asIPv6: asIPv6, result: &result)
        var start = 0
        while start < messageCount {
            let sent: Int32
            do {
                sent = try valueOrErrno { CWGShim_sendmmsg(descriptor.raw, batch.messages + start, UInt32(messageCount - start), 0) }
            } catch {
                let failedAt = start
                if gso && batch.isSegmented(failedAt) && (error == .ioError || error == .invalidArgument || error == .messageTooLong) {
                    // EIO/EINVAL: the device or socket cannot segment at all;
                    // EMSGSIZE: these segments do not fit the route's MTU, a
                    // matter of this destination, so only this call goes without.
                    if error != .messageTooLong { disableSendOffload() }
                    gso = false
                    messageCount = batch.build(from: batch.firstDatagram(failedAt), segmentation: false, asIPv6: asIPv6, result: &result)
                    start = 0
                    continue
                }
                result.failed += batch.datagramCount(failedAt)
                if result.firstError == nil { result.firstError = error }
                start += 1
                continue
            }
            for m in start..<(start + Int(sent)) { result.sent += batch.datagramCount(m) }
            start += Int(sent)
        }
        return result
    }
}

/// What `UDPSocket.send` did with a batch.
public struct UDPSendResult: Sendable, Hashable {
    /// Datagrams the kernel took.
    public var sent = 0
    /// Datagrams dropped: the kernel refused their message (`firstError`
    /// says why), or an IPv6 destination on an IPv4 socket.
    public var failed = 0
    /// The first errno a message got, if any.
    public var firstError: Errno?
    /// An empty result.
    public init() {}
}

/// Reusable memory for `UDPSocket.receive`: `messageCount` buffers of
/// `bufferSize` bytes with their address and control room, allocated once,
/// and the datagrams of the last receive as views into those buffers.
///
/// One thread at a time (it may move between threads).
public final class UDPReceiveBatch: @unchecked Sendable {
    /// How many messages one `recvmmsg` may take.
    public let messageCount: Int
    /// Bytes per message buffer (65536 for a UDP_GRO socket).
    public let bufferSize: Int
    /// Datagrams from the last receive.
    public private(set) var count = 0
    /// Messages dropped by the last receive because they were truncated.
    public private(set) var truncated = 0

    let messages: UnsafeMutablePointer<CWGShim_mmsghdr>
    private let iovecs: UnsafeMutablePointer<iovec>
    private let buffers: UnsafeMutableRawPointer
    private let names: UnsafeMutableRawPointer
    private let controls: UnsafeMutableRawPointer
    private let controlSpace: Int
    private let sources: UnsafeMutablePointer<SocketAddress>
    private let maxDatagrams: Int
    private let datagramMessage: UnsafeMutablePointer<Int32>
    private let datagramOffset: UnsafeMutablePointer<Int32>
    private let datagramLength: UnsafeMutablePointer<Int32>

    /// Allocates `messageCount` buffers of `bufferSize` bytes (default: 64
    /// KiB, what a UDP_GRO socket needs; a socket without offloads can use
    /// the largest datagram it expects).
    public init(messageCount: Int = 32, bufferSize: Int = 65536) {
        precondition(messageCount > 0 && bufferSize > 0 && bufferSize <= Int(Int32.max), "UDPReceiveBatch: bad geometry")
        self.messageCount = messageCount
        self.bufferSize = bufferSize
        messages = .allocate(capacity: messageCount)
        messages.initialize(repeating: CWGShim_mmsghdr(), count: messageCount)
        iovecs = .allocate(capacity: messageCount)
        iovecs.initialize(repeating: iovec(), count: messageCount)
        buffers = .allocate(byteCount: messageCount * bufferSize, alignment: 64)
        names = .allocate(byteCount: messageCount * socketAddressStorageSize, alignment: 8)
        controlSpace = CWGShim_udp_control_space()
        controls = .allocate(byteCount: messageCount * controlSpace, alignment: 8)
        sources = .allocate(capacity: messageCount)
        sources.initialize(repeating: SocketAddress(address: .v4(0, 0, 0, 0), port: 0), count: messageCount)
        // A GRO message holds at most UDP_GRO_CNT_MAX (64) segments.
        maxDatagrams = messageCount * UDPSocket.maxSegments
        datagramMessage = .allocate(capacity: maxDatagrams)
        datagramOffset = .allocate(capacity: maxDatagrams)
        datagramLength = .allocate(capacity: maxDatagrams)
        for i in 0..<messageCount {
            iovecs[i].iov_base = buffers + i * bufferSize
        }
    }

    deinit {
        messages.deallocate()
        iovecs.deallocate()
        buffers.deallocate()
        names.deallocate()
        controls.deallocate()
        sources.deallocate()
        datagramMessage.deallocate()
        datagramOffset.deallocate()
        datagramLength.deallocate()
    }

    /// Datagram `i` of the last receive (`i < count`), in place in its
    /// message buffer; valid (and writable) until the next receive.
    public func datagram(_ i: Int) -> UnsafeMutableRawBufferPointer {
        precondition(i >= 0 && i < count, "UDPReceiveBatch: index out of range")
        let m = Int(datagramMessage[i])
        return UnsafeMutableRawBufferPointer(start: buffers + m * bufferSize + Int(datagramOffset[i]), count: Int(datagramLength[i]))
    }

    /// Who sent datagram `i` (IPv4-mapped addresses come back as IPv4).
    public func source(_ i: Int) -> SocketAddress {
        precondition(i >= 0 && i < count, "UDPReceiveBatch: index out of range")
        return sources[Int(datagramMessage[i])]
    }

    /// Resets every message header for a receive.
    func prepare() {
        count = 0
        truncated = 0
        for i in 0..<messageCount {
            iovecs[i].iov_len = bufferSize
            var h = CWGShim_msghdr()
            h.msg_name = names + i * socketAddressStorageSize
            h.msg_namelen = socklen_t(socketAddressStorageSize)
            h.msg_iov = UnsafeMutableRawPointer(iovecs + i)
            h.msg_iovlen = 1
            h.msg_control = controls + i * controlSpace
            h.msg_controllen = controlSpace
            messages[i] = CWGShim_mmsghdr(msg_hdr: h, msg_len: 0)
        }
    }

    /// Turns `received` messages into datagrams, splitting GRO messages.
    func collect(_ received: Int) {
        for m in 0..<received {
            let length = Int(messages[m].msg_hdr.msg_flags & CWGShim_MSG_TRUNC != 0 ? -1 : Int(messages[m].msg_len))
            guard length >= 0,
                  let source = SocketAddress(sockaddr: names + m * socketAddressStorageSize,
                                             length: Int(messages[m].msg_hdr.msg_namelen)) else {
                truncated += 1
                continue
            }
            sources[m] = source
            let segment = withUnsafePointer(to: &messages[m].msg_hdr) { Int(CWGShim_udp_gro_size($0)) }
            let size = segment > 0 ? segment : max(length, 1)
            var offset = 0
            repeat {
                guard count < maxDatagrams else { truncated += 1; break }
                datagramMessage[count] = Int32(m)
                datagramOffset[count] = Int32(offset)
                datagramLength[count] = Int32(min(size, length - offset))
                count += 1
                offset += size
            } while offset < length
        }
    }
}

/// Datagrams to send, gathered by the caller and sent with one
/// `UDPSocket.send`: pointers to the caller's memory (nothing is copied)
/// and destinations, in room allocated once for `capacity` datagrams.
///
/// One thread at a time (it may move between threads).
public final class UDPSendBatch: @unchecked Sendable {
    /// The most datagrams the batch holds.
    public let capacity: Int
    /// Datagrams appended since the last `removeAll`.
    public private(set) var count = 0

    let messages: UnsafeMutablePointer<CWGShim_mmsghdr>
    private let iovecs: UnsafeMutablePointer<iovec>
    private let destinations: UnsafeMutablePointer<SocketAddress>
    private let names: UnsafeMutableRawPointer
    private let controls: UnsafeMutableRawPointer
    private let controlSpace: Int
    /// Per message: its first datagram and how many it carries.
    private let messageFirst: UnsafeMutablePointer<Int>
    private let messageDatagrams: UnsafeMutablePointer<Int>

    /// Allocates room for `capacity` datagrams.
    public init(capacity: Int = 128) {
        precondition(capacity > 0, "UDPSendBatch: bad capacity")
        self.capacity = capacity
        messages = .allocate(capacity: capacity)
        messages.initialize(repeating: CWGShim_mmsghdr(), count: capacity)
        iovecs = .allocate(capacity: capacity)
        iovecs.initialize(repeating: iovec(), count: capacity)
        destinations = .allocate(capacity: capacity)
        destinations.initialize(repeating: SocketAddress(address: .v4(0, 0, 0, 0), port: 0), count: capacity)
        names = .allocate(byteCount: capacity * socketAddressStorageSize, alignment: 8)
        controlSpace = CWGShim_udp_control_space()
        controls = .allocate(byteCount: capacity * controlSpace, alignment: 8)
        messageFirst = .allocate(capacity: capacity)
        messageDatagrams = .allocate(capacity: capacity)
    }

    deinit {
        messages.deallocate()
        iovecs.deallocate()
        destinations.deallocate()
        names.deallocate()
        controls.deallocate()
        messageFirst.deallocate()
        messageDatagrams.deallocate()
    }

    /// Adds a datagram: `bytes` must stay valid until the batch is sent.
    /// Returns false (adding nothing) when the batch is full.
    @discardableResult
    public func append(_ bytes: UnsafeRawBufferPointer, to destination: SocketAddress) -> Bool {
        guard count < capacity else { return false }
        iovecs[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
        destinations[count] = destination
        count += 1
        return true
    }

    /// Forgets every datagram (the room stays).
    public func removeAll() { count = 0 }

    /// Lays out messages for datagrams `first..<count` from message 0 on:
    /// with `segmentation`, runs that UDP_SEGMENT may carry share one
    /// message; returns the number of messages.
    func build(from first: Int, segmentation: Bool, asIPv6: Bool, result: inout UDPSendResult) -> Int {
        // IPv6 headers do not count in the payload length limit, IPv4's do.
        let maxPayload = asIPv6 ? 65535 - 8 : 65535 - 20 - 8
        var m = 0
        var d = first
        while d < count {
            let name = names + m * socketAddressStorageSize
            let nameLength = destinations[d].writeSockaddr(to: name, asIPv6: asIPv6)
            guard nameLength > 0 else {
                result.failed += 1
                if result.firstError == nil { result.firstError = .addressFamilyNotSupported }
                d += 1
                continue
            }
            let size = iovecs[d].iov_len
            var end = d + 1
            var total = size
            if segmentation && size > 0 {
                while end < count, end - d < UDPSocket.maxSegments, destinations[end] == destinations[d],
                      iovecs[end].iov_len <= size, iovecs[end].iov_len > 0, total + iovecs[end].iov_len <= maxPayload {
                    total += iovecs[end].iov_len
                    end += 1
                    // A shorter datagram must be the run's last.
                    if iovecs[end - 1].iov_len < size { break }
                }
            }
            var h = CWGShim_msghdr()
            h.msg_name = name
            h.msg_namelen = socklen_t(nameLength)
            h.msg_iov = UnsafeMutableRawPointer(iovecs + d)
            h.msg_iovlen = end - d
            if end - d > 1 {
                let control = controls + m * controlSpace
                h.msg_control = control
                h.msg_controllen = CWGShim_put_udp_segment(control, controlSpace, UInt16(size))
            }
            messages[m] = CWGShim_mmsghdr(msg_hdr: h, msg_len: 0)
            messageFirst[m] = d
            messageDatagrams[m] = end - d
            m += 1
            d = end
        }
        return m
    }

    /// Whether message `m` carries more than one datagram.
    func isSegmented(_ m: Int) -> Bool { messageDatagrams[m] > 1 }
    /// Message `m`'s first datagram.
    func firstDatagram(_ m: Int) -> Int { messageFirst[m] }
    /// How many datagrams message `m` carries.
    func datagramCount(_ m: Int) -> Int { messageDatagrams[m] }
}
