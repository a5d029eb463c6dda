import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

// The one POSIX layer under KeyStore, WGNetlink and Tunnel: a system call
// wrapper that retries EINTR, and an owned descriptor (Descriptor.swift).
// Errors are swift-system's `Errno`; each module maps them into its own
// error type with the closure form of `valueOrErrno`.

/// Runs a C call that returns -1 and sets errno on failure, retrying EINTR
/// (the one place that does), and throws the errno of any other failure.
@inline(__always) @discardableResult
public func valueOrErrno<T: FixedWidthInteger>(_ call: () -> T) throws(Errno) -> T {
    while true {
        let r = call()
        if r != -1 { return r }
        let e = Errno(rawValue: Glibc.errno)
        if e != .interrupted { throw e }
    }
}

/// `valueOrErrno`, with the errno turned into the caller's error type.
@inline(__always) @discardableResult
public func valueOrErrno<T: FixedWidthInteger, E: Error>(_ call: () -> T, orThrow error: (Errno) -> E) throws(E) -> T {
    do { return try valueOrErrno(call) } catch let e { throw error(e) }
}

/// The calling thread's errno, as swift-system's `Errno`.
public var currentErrno: Errno { Errno(rawValue: Glibc.errno) }
