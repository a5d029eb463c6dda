import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The one error type of WGNetlink: what failed, why, and what to do.
///
/// `code` is for `catch` (`error.code == .noSuchDevice`), `errno` is the
/// underlying system or kernel error (nil when there is none), `message` is
/// one line a person can act on.
public struct NetlinkError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Hashable {
        /// The named interface does not exist (ENODEV).
        case noSuchDevice
        /// The interface exists but is not a WireGuard device.
        case notWireGuard
        /// The kernel has no WireGuard: no `wireguard` generic netlink family,
        /// or link kind `wireguard` unknown (EOPNOTSUPP on link creation).
        case noWireGuardModule
        /// The caller lacks CAP_NET_ADMIN over this network namespace (EPERM, EACCES).
        case permissionDenied
        /// The object (link, address, route, rule) already exists (EEXIST).
        case exists
        /// The object to remove or look up does not exist (ENOENT, ESRCH, EADDRNOTAVAIL).
        case notFound
        /// The kernel or the peer process refused a value (EINVAL, ERANGE, ...).
        case invalidArgument
        /// The userspace WireGuard socket is not there or nobody listens on it.
        case noUserspaceDevice
        /// A reply did not follow the protocol (wrong sequence number, truncated message).
        case protocolError
        /// Any other system error.
        case system
    }

    /// What kind of failure this is.
    public var code: Code
    /// The errno behind it (from the kernel's NLMSG_ERROR, a system call, or a
    /// UAPI `errno=` reply); nil when there is none.
    public var errno: Errno?
    /// One line that says what failed and what to do.
    public var message: String

    /// Wraps a code, an errno and a message.
    public init(_ code: Code, errno: Errno? = nil, _ message: String) {
        self.code = code
        self.errno = errno
        self.message = message
    }

    /// Wraps a code, a raw errno (a kernel reply's, a system call's; 0 for
    /// none) and a message.
    init(_ code: Code, errno e: Int32, _ message: String) {
        self.init(code, errno: e == 0 ? nil : Errno(rawValue: e), message)
    }

    /// The message.
    public var description: String { message }

    /// What the failing request was about, so that an errno can be
    /// explained in its terms.
    enum Context: Sendable {
        /// A link of this kind is being created.
        case createLink(kind: String)
        /// A WireGuard device is being configured or read through generic netlink.
        case wireGuard
        /// The generic netlink family is being resolved.
        case family(String)
        /// Anything else.
        case other
    }

    /// Builds the error for a failed system call.
    static func system(_ operation: String, errno e: Int32) -> NetlinkError {
        let code: Code = (e == EPERM || e == EACCES) ? .permissionDenied : .system
        var text = "\(operation): \(errnoText(e))"
        if code == .permissionDenied { text += " (needs CAP_NET_ADMIN in this network namespace's user namespace)" }
        return NetlinkError(code, errno: e, text)
    }

    /// Builds the error for a kernel NLMSG_ERROR reply: `operation` says what
    /// was asked ("create link wg0"), `device` names the interface if any,
    /// `kernelMessage` is the extended-ack text when the kernel sent one.
    static func kernel(_ operation: String, errno e: Int32, device: String?, kernelMessage: String?,
                       context: Context = .other) -> NetlinkError {
        let dev = device.map { "\($0)" } ?? "device"
        var code: Code
        var text: String
        switch (e, context) {
        case (EOPNOTSUPP, .createLink("wireguard")), (ENOENT, .family("wireguard")):
            code = .noWireGuardModule
            text = "this kernel has no WireGuard module (use the userspace backend, wireguard-go)"
        case (EOPNOTSUPP, .createLink(let kind)):
            code = .invalidArgument
            text = "this kernel does not know link kind \"\(kind)\""
        case (ENOENT, .family(let name)):
            code = .notFound
            text = "the kernel has no generic netlink family \"\(name)\""
        case (EOPNOTSUPP, .wireGuard):
            code = .notWireGuard
            text = "\(dev) is not a WireGuard device"
        case (ENODEV, _):
            code = .noSuchDevice
            text = "no such device \(dev)"
        case (EPERM, _), (EACCES, _):
            code = .permissionDenied
            text = "permission denied: needs CAP_NET_ADMIN in this network namespace's user namespace"
        case (EEXIST, _):
            code = .exists
            text = "already exists"
        case (ENOENT, _), (ESRCH, _), (EADDRNOTAVAIL, _):
            code = .notFound
            text = "not found"
        case (EINVAL, _), (ERANGE, _), (EAFNOSUPPORT, _), (EMSGSIZE, _):
            code = .invalidArgument
            text = errnoText(e)
        default:
            code = .system
            text = errnoText(e)
        }
        var line = "cannot \(operation): \(text)"
        if let k = kernelMessage, !k.isEmpty, code != .noWireGuardModule { line += " (kernel: \(k))" }
        return NetlinkError(code, errno: e, line)
    }
}

/// `strerror` text for an errno.
func errnoText(_ e: Int32) -> String {
    String(cString: strerror(e))
}
