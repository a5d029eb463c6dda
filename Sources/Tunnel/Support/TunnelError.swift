import KeyStore
import POSIX
import SystemPackage
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// The one error type of namespace work (`wgns up` and friends): what failed,
/// why, and what to do. `message` is one line and never holds a secret.
public struct TunnelError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Hashable {
        /// A config file or a flag is wrong.
        case config
        /// A flag contradicts another flag or the configs: the command
        /// line's mistake (wgns exits 64, as for its own usage errors).
        case usage
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
    /// The errno behind it, when a system call failed (here or in `underlying`).
    public var errno: Errno?
    /// One line saying what failed and what to do; with `underlying`, what
    /// was being done (may be empty).
    public var message: String
    /// The error this one wraps: a `ConfigError`, `NetlinkError`,
    /// `KeyStoreError`, another `TunnelError`, or a spawn `ChildProcess.Failure`.
    public var underlying: (any Error)?

    /// Wraps a code, a message and an errno.
    public init(_ code: Code, _ message: String, errno: Errno? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    /// Wraps `error` as the cause; `context` (a file, an interface, a step)
    /// leads the line. The errno is the cause's.
    public init(_ code: Code, _ context: String = "", wrapping error: any Error) {
        self.code = code
        self.message = context
        self.underlying = error
        switch error {
        case let e as TunnelError: self.errno = e.errno
        case let e as NetlinkError: self.errno = e.errno
        case let e as KeyStoreError: self.errno = e.errno
        case let e as ChildProcess.Failure: self.errno = e.errno
        default: self.errno = nil
        }
    }

    /// The message, with the cause's text or the errno's.
    public var description: String {
        if let underlying {
            return message.isEmpty ? "\(underlying)" : "\(message): \(underlying)"
        }
        guard let errno else { return message }
        return "\(message): \(String(cString: strerror(errno.rawValue)))"
    }
}

/// Runs a system call (POSIX.valueOrErrno: EINTR retried); `-1` becomes a
/// `TunnelError` naming `what`.
@discardableResult
func sys<T: FixedWidthInteger>(_ what: @autoclosure () -> String, code: TunnelError.Code = .system,
                               _ body: () -> T) throws(TunnelError) -> T {
    try valueOrErrno(body) { TunnelError(code, what(), errno: $0) }
}

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC is the same in every namespace here).
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
