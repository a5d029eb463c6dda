#if canImport(Glibc)
import Glibc
#endif

/// Where the protocol reads time: a monotonic clock for every timer and
/// age (nanoseconds, never going back), and the wall clock for the TAI64N
/// timestamp of initiations and the "latest handshake" that `wg show` prints.
/// Tests inject their own to advance time.
public protocol WireGuardClock: Sendable {
    /// Monotonic time in nanoseconds.
    func monotonicNanoseconds() -> UInt64
    /// Wall-clock time since the Unix epoch.
    func wallTime() -> (seconds: Int64, nanoseconds: Int64)
}

/// The system's clocks: `CLOCK_BOOTTIME` (monotonic, counting suspend, as
/// the kernel's WireGuard uses) and `CLOCK_REALTIME`.
public struct SystemClock: WireGuardClock {
    /// The system clock.
    public init() {}

    /// `clock_gettime(CLOCK_BOOTTIME)` in nanoseconds.
    public func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// `clock_gettime(CLOCK_REALTIME)`.
    public func wallTime() -> (seconds: Int64, nanoseconds: Int64) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return (Int64(ts.tv_sec), Int64(ts.tv_nsec))
    }
}

/// A clock that moves only when told: monotonic time starts at `start`,
/// wall time is `wallBase` plus the same elapsed time. For tests of timers.
public final class ManualClock: WireGuardClock, @unchecked Sendable {
    private var lock = pthread_mutex_t()
    private var now: UInt64
    private let wallBase: Int64

    /// A clock at monotonic `start` ns whose wall time starts at `wallBase` seconds.
    public init(start: UInt64 = 1_000_000_000, wallBase: Int64 = 1_700_000_000) {
        pthread_mutex_init(&lock, nil)
        now = start
        self.wallBase = wallBase
    }

    /// Moves time forward by `nanoseconds`.
    public func advance(nanoseconds: UInt64) {
        pthread_mutex_lock(&lock); now += nanoseconds; pthread_mutex_unlock(&lock)
    }

    /// Moves time forward by `seconds` (fractions allowed).
    public func advance(seconds: Double) { advance(nanoseconds: UInt64(seconds * 1e9)) }

    /// The current monotonic time.
    public func monotonicNanoseconds() -> UInt64 {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        return now
    }

    /// `wallBase` plus the monotonic time.
    public func wallTime() -> (seconds: Int64, nanoseconds: Int64) {
        let t = monotonicNanoseconds()
        return (wallBase + Int64(t / 1_000_000_000), Int64(t % 1_000_000_000))
    }
}
