#if canImport(Glibc)
import Glibc
#endif

/// Verbose step lines on stderr: `wgns: [+  12.3 ms] step (1.2 ms)`.
/// Callers must never pass secrets.
struct StepLog {
    let enabled: Bool
    let start: UInt64
    var last: UInt64

    init(enabled: Bool, start: UInt64) {
        self.enabled = enabled
        self.start = start
        self.last = monotonicNanos()
    }

    /// Logs that `what` just finished, with its duration since the previous step.
    mutating func step(_ what: String) {
        let now = monotonicNanos()
        defer { last = now }
        guard enabled else { return }
        func ms(_ ns: UInt64) -> String {
            let tenths = ns / 100_000
            return "\(tenths / 10).\(tenths % 10) ms"
        }
        writeStderr("wgns: [+\(ms(now &- start))] \(what) (\(ms(now &- last)))\n")
    }

    /// Starts timing the next step from now.
    mutating func mark() { last = monotonicNanos() }
}

/// Writes a string to stderr in one `write`.
func writeStderr(_ s: String) { write(s, to: STDERR_FILENO) }

/// Writes a string to stdout in one `write`.
func writeStdout(_ s: String) { write(s, to: STDOUT_FILENO) }

private func write(_ s: String, to fd: Int32) {
    let b = Array(s.utf8)
    b.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
}
