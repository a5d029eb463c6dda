#if canImport(Glibc)
import Glibc
#endif

/// The one error type of namespace work (`wgns up` and friends): what failed,
/// why, and what to do. `message` is one line and never holds a secret.
public struct TunnelError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Hashable {
        /// A config file or a flag is wrong.
        case config
        /// User namespaces are disabled or exhausted.
        case userNamespaces
        /// Neither slirp4netns nor pasta (or not the one asked for) is installed.
        case noCarrier
        /// The carrier failed to start or died.
        case carrier
        /// Neither kernel WireGuard nor wireguard-go is available (or not the one asked for).
        case noWireGuard
        /// An endpoint host name did not resolve.
        case resolve
        /// The job's command could not be started.
        case command
        /// Setting up the namespace failed.
        case setup
        /// Any other system error.
        case system
    }

    /// What kind of failure this is.
    public var code: Code
    /// The errno behind it; 0 when none.
    public var errno: Int32
    /// One line saying what failed and what to do.
    public var message: String

    /// Wraps a code, a message and an errno.
    public init(_ code: Code, _ message: String, errno: Int32 = 0) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    /// The message, with the errno's text when there is one.
    public var description: String {
        errno == 0 ? message : "\(message): \(String(cString: strerror(errno)))"
    }
}

/// Runs a system call, retrying EINTR; `-1` becomes a `TunnelError` naming `what`.
@discardableResult
func sys(_ what: @autoclosure () -> String, code: TunnelError.Code = .system,
         _ body: () -> Int32) throws(TunnelError) -> Int32 {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = Glibc.errno
        if e == EINTR { continue }
        throw TunnelError(code, what(), errno: e)
    }
}

/// Same as `sys` for calls that return `ssize_t`.
@discardableResult
func sysSize(_ what: @autoclosure () -> String, _ body: () -> Int) throws(TunnelError) -> Int {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = Glibc.errno
        if e == EINTR { continue }
        throw TunnelError(.system, what(), errno: e)
    }
}

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC is the same in every namespace here).
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
