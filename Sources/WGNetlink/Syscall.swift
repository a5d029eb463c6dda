#if canImport(Glibc)
import Glibc
#endif

/// Runs a C call that returns -1 and sets `errno` on failure, retrying on
/// EINTR (the one place that does), and turns any other failure into a
/// `NetlinkError` naming `operation`.
@inline(__always)
func valueOrErrno<T: FixedWidthInteger>(_ operation: @autoclosure () -> String,
                                        _ call: () -> T) throws(NetlinkError) -> T {
    while true {
        let result = call()
        if result != -1 { return result }
        let e = errno
        if e == EINTR { continue }
        throw NetlinkError.system(operation(), errno: e)
    }
}
