import CLibMnl
#if canImport(Glibc)
import Glibc
#endif

/// A netlink socket (`mnl_socket`), bound in the network namespace of the
/// thread that opened it. One owner: not copyable in spirit, closed exactly
/// once, by `close()` or by `deinit`.
///
/// Every request gets a fresh sequence number; replies are checked against
/// it and against the socket's port id. Errors in `NLMSG_ERROR` replies,
/// with their extended-ack message, become `NetlinkError`s.
public final class NetlinkSocket {
    /// The libmnl socket; nil once closed.
    private var socket: OpaquePointer?
    /// The port id the kernel gave this socket.
    public let portID: UInt32
    /// The last sequence number used.
    private var sequence: UInt32
    /// Where replies are received (64 KiB: a dump message is at most 32 KiB).
    private let receiveBuffer: UnsafeMutableRawBufferPointer

    /// Bytes of the receive buffer.
    static let receiveBufferSize = 65536

    /// Opens and binds a socket of `netlinkProtocol` (`NETLINK_ROUTE`,
    /// `NETLINK_GENERIC`): `mnl_socket_open`, `mnl_socket_bind`, and
    /// `NETLINK_CAP_ACK` + `NETLINK_EXT_ACK` so that errors come back short
    /// and with the kernel's explanation.
    public init(protocol netlinkProtocol: Int32) throws(NetlinkError) {
        guard let s = mnl_socket_open(netlinkProtocol) else {
            throw NetlinkError.system("open netlink socket", errno: errno)
        }
        do {
            _ = try sys("bind netlink socket") { mnl_socket_bind(s, 0, pid_t(MNL_SOCKET_AUTOPID)) }
            var one: Int32 = 1
            // Both are best-effort: old kernels lack them and still work.
            _ = mnl_socket_setsockopt(s, NETLINK_CAP_ACK, &one, socklen_t(MemoryLayout<Int32>.size))
            _ = mnl_socket_setsockopt(s, NETLINK_EXT_ACK, &one, socklen_t(MemoryLayout<Int32>.size))
        } catch {
            mnl_socket_close(s)
            throw error
        }
        socket = s
        portID = mnl_socket_get_portid(s)
        var seed = timespec()
        clock_gettime(CLOCK_MONOTONIC, &seed)
        sequence = UInt32(truncatingIfNeeded: seed.tv_nsec)
        receiveBuffer = .allocate(byteCount: Self.receiveBufferSize, alignment: 8)
    }

    /// Closes the socket (`mnl_socket_close`). Later calls do nothing.
    public func close() {
        if let s = socket { mnl_socket_close(s) }
        socket = nil
    }

    deinit {
        close()
        receiveBuffer.deallocate()
    }

    /// The next sequence number.
    func nextSequence() -> UInt32 {
        sequence &+= 1
        if sequence == 0 { sequence = 1 }
        return sequence
    }

    private func open(_ operation: String) throws(NetlinkError) -> OpaquePointer {
        guard let s = socket else { throw NetlinkError(.system, errno: EBADF, "\(operation): netlink socket already closed") }
        return s
    }

    /// Sends bytes as one datagram (`mnl_socket_sendto`).
    func send(_ bytes: UnsafeRawBufferPointer, operation: String) throws(NetlinkError) {
        let s = try open(operation)
        _ = try sys(operation) { mnl_socket_sendto(s, bytes.baseAddress, bytes.count) }
    }

    /// Receives one datagram (`mnl_socket_recvfrom`) into the receive buffer.
    func receive(operation: String) throws(NetlinkError) -> UnsafeRawBufferPointer {
        let s = try open(operation)
        let n = try sys(operation) { mnl_socket_recvfrom(s, receiveBuffer.baseAddress, receiveBuffer.count) }
        return UnsafeRawBufferPointer(start: receiveBuffer.baseAddress, count: n)
    }

    /// How the kernel ended a request.
    enum Outcome {
        /// An ack with error 0, or the end of a dump.
        case done
        /// A dump that the kernel marked `NLM_F_DUMP_INTR`: the data changed
        /// while it was being read; the caller should ask again.
        case interrupted
    }

    /// Sends the message in `buffer` (setting its sequence number) and reads
    /// replies until its ack or the end of its dump, calling `handle` with
    /// every data message. A kernel error becomes a `NetlinkError` built by
    /// `NetlinkError.kernel` from `operation`, `device` and `context`.
    @discardableResult
    func request(_ buffer: MessageBuffer, operation: @autoclosure () -> String, device: String? = nil,
                 context: NetlinkError.Context = .other,
                 _ handle: (UnsafePointer<nlmsghdr>) throws(NetlinkError) -> Void = { _ in }) throws(NetlinkError) -> Outcome {
        let seq = nextSequence()
        buffer.header.pointee.nlmsg_seq = seq
        buffer.header.pointee.nlmsg_pid = 0
        let isDump = Int32(buffer.header.pointee.nlmsg_flags) & NLM_F_DUMP == NLM_F_DUMP
        try send(buffer.bytes, operation: operation())
        var interrupted = false
        while true {
            let data = try receive(operation: operation())
            var offset = 0
            while offset + 16 <= data.count {
                let msg = (data.baseAddress! + offset).assumingMemoryBound(to: nlmsghdr.self)
                let len = Int(msg.pointee.nlmsg_len)
                guard len >= 16, offset + len <= data.count else {
                    throw NetlinkError(.protocolError, "\(operation()): truncated netlink message")
                }
                offset += netlinkAlign(len)
                if msg.pointee.nlmsg_pid != 0 && msg.pointee.nlmsg_pid != portID {
                    throw NetlinkError(.protocolError, errno: ESRCH,
                                       "\(operation()): reply for port \(msg.pointee.nlmsg_pid), not this socket's \(portID)")
                }
                if msg.pointee.nlmsg_seq != seq {
                    throw NetlinkError(.protocolError, errno: EPROTO,
                                       "\(operation()): reply with sequence number \(msg.pointee.nlmsg_seq), expected \(seq)")
                }
                if Int32(msg.pointee.nlmsg_flags) & NLM_F_DUMP_INTR != 0 { interrupted = true }
                switch Int32(msg.pointee.nlmsg_type) {
                case NLMSG_NOOP:
                    continue
                case NLMSG_OVERRUN:
                    throw NetlinkError(.protocolError, "\(operation()): netlink overrun")
                case NLMSG_ERROR:
                    let (code, text) = Self.parseError(msg)
                    if code == 0 {
                        if isDump { continue }
                        return interrupted ? .interrupted : .done
                    }
                    throw NetlinkError.kernel(operation(), errno: code, device: device, kernelMessage: text, context: context)
                case NLMSG_DONE:
                    // A dump's end carries its error as an int, with ext-ack TLVs after it.
                    if len >= 20 {
                        let code = UnsafeRawPointer(msg).loadUnaligned(fromByteOffset: 16, as: Int32.self)
                        if code < 0 {
                            var text: String?
                            if Int32(msg.pointee.nlmsg_flags) & NLM_F_ACK_TLVS != 0 {
                                text = Self.extAckMessage(UnsafeRawBufferPointer(start: UnsafeRawPointer(msg) + 20, count: len - 20))
                            }
                            throw NetlinkError.kernel(operation(), errno: -code, device: device, kernelMessage: text, context: context)
                        }
                    }
                    return interrupted ? .interrupted : .done
                default:
                    try handle(UnsafePointer(msg))
                    // A request without ack and without dump ends at its one reply.
                    if !isDump && Int32(buffer.header.pointee.nlmsg_flags) & NLM_F_ACK == 0 {
                        return .done
                    }
                }
            }
        }
    }

    /// Reads an `NLMSG_ERROR`: the positive errno (0 for an ack) and the
    /// extended-ack message, if any.
    static func parseError(_ msg: UnsafePointer<nlmsghdr>) -> (Int32, String?) {
        let len = Int(msg.pointee.nlmsg_len)
        let base = UnsafeRawPointer(msg)
        guard len >= 16 + 4 else { return (EPROTO, nil) }
        let err = -base.loadUnaligned(fromByteOffset: 16, as: Int32.self)
        let flags = Int32(msg.pointee.nlmsg_flags)
        guard flags & NLM_F_ACK_TLVS != 0, len >= 16 + 4 + 16 else { return (err, nil) }
        // After the error: the request's header, and its payload unless capped.
        var tlvStart = 16 + 4 + 16
        if flags & NLM_F_CAPPED == 0 {
            let origLen = Int(base.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
            tlvStart = 16 + 4 + netlinkAlign(origLen)
        }
        guard tlvStart < len else { return (err, nil) }
        return (err, extAckMessage(UnsafeRawBufferPointer(start: base + tlvStart, count: len - tlvStart)))
    }

    /// The `NLMSGERR_ATTR_MSG` string among ext-ack TLVs.
    static func extAckMessage(_ tlvs: UnsafeRawBufferPointer) -> String? {
        for a in Attributes(tlvs) where Int32(a.type) == Int32(NLMSGERR_ATTR_MSG.rawValue) {
            return a.string
        }
        return nil
    }
}
