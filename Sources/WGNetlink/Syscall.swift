import POSIX
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A system call through POSIX.valueOrErrno (EINTR retried); any other
/// failure becomes a `NetlinkError` naming `operation`.
@inline(__always) @discardableResult
func sys<T: FixedWidthInteger>(_ operation: @autoclosure () -> String, _ call: () -> T) throws(NetlinkError) -> T {
    try valueOrErrno(call) { NetlinkError.system(operation(), errno: $0.rawValue) }
}
