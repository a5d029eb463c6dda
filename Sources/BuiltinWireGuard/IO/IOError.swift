import SystemPackage

/// A failed system call of the packet I/O layer (TUN, UDP): what failed,
/// the errno behind it, and what to do.
///
/// `code` is for `catch`, `errno` is the system's reason, `message` is one
/// line a person can act on. Malformed packets are not `IOError`s: they are
/// `PacketError`s, which carry no text and cost nothing to throw.
public struct IOError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Hashable {
        /// /dev/net/tun could not be opened or TUNSETIFF refused (no CAP_NET_ADMIN
        /// in the namespace, no TUN support, a name in use by a non-TUN link).
        case tunOpen
        /// TUNSETVNETHDRSZ or TUNSETOFFLOAD refused the vnet-header set-up.
        case tunConfigure
        /// Reading from or writing to the TUN descriptor failed.
        case tunIO
        /// socket(2), setsockopt(2) or getsockname(2) failed for the UDP socket.
        case socket
        /// bind(2) failed: the port is in use (EADDRINUSE) or not allowed (EACCES).
        case bind
        /// recvmmsg(2) failed.
        case receive
        /// sendmmsg(2) failed.
        case send
        /// A caller-provided buffer cannot hold what it has to.
        case bufferTooSmall
    }

    /// What kind of failure this is.
    public var code: Code
    /// The errno behind it; nil when there is none.
    public var errno: Errno?
    /// One line that says what failed and what to do.
    public var message: String

    /// Wraps a code, an errno and a message.
    public init(_ code: Code, errno: Errno? = nil, _ message: String) {
        self.code = code
        self.errno = errno
        self.message = message
    }

    /// The message, with the errno's text when there is one.
    public var description: String {
        guard let errno else { return message }
        return "\(message): \(errno)"
    }
}

/// Why a packet read from the TUN (or handed in for writing) was dropped.
/// Thrown on the hot path: no text, no allocation.
public enum PacketError: Error, Sendable, Hashable {
    /// Shorter than the 10-byte virtio_net_hdr.
    case truncatedVirtioHeader
    /// A gso_type this code does not split (UDP UFO, ECN, unknown values).
    case unsupportedGSOType(UInt8)
    /// The IP header is missing, has a bad version or length, or does not
    /// match the GSO type.
    case badIPHeader
    /// The TCP or UDP header is missing or its length is invalid.
    case badTransportHeader
    /// csum_start/csum_offset point outside the packet.
    case badChecksumOffsets
    /// gso_size is 0 where segments are expected.
    case badSegmentSize
    /// The caller's output batch has too few slots or too small slots.
    case outputTooSmall
}
