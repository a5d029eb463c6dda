import CSodium
#if canImport(Glibc)
import Glibc
#endif

/// Every live key buffer of this process, so that a fork that is about to
/// become readable by others can wipe its copy of all of them
/// (`wipeEveryKey`). Guarded by `liveKeysLock`.
nonisolated(unsafe) private var liveKeys: Set<UnsafeMutableRawPointer> = []
nonisolated(unsafe) private let liveKeysLock: UnsafeMutablePointer<pthread_mutex_t> = {
    let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    pthread_mutex_init(m, nil)
    return m
}()

/// Wipes every secret key this process holds (`PrivateKey`, `PresharedKey`),
/// in place: the keys read as all zeros afterwards. For a forked process
/// that must become dumpable for a moment (to write its own uid_map, or to
/// let a carrier open its namespaces) and needs none of the keys it
/// inherited: its memory then holds no key that others could read.
/// Call it while the process is single-threaded.
public func wipeEveryKey() {
    pthread_mutex_lock(liveKeysLock)
    for p in liveKeys { wipe(p, count: keyLength) }
    pthread_mutex_unlock(liveKeysLock)
}

/// `wipeEveryKey` for the child of a fork, before it execs or becomes
/// dumpable: it has one thread, so it takes no lock (a lock another thread
/// of the parent held at the fork would never be released).
public func wipeEveryKeyAfterFork() {
    for p in liveKeys { wipe(p, count: keyLength) }
}

/// Storage behind the secret key types (private and preshared); not meant
/// to be used directly.
/// 32 bytes of key material in their own heap allocation, wiped with
/// `sodium_memzero` when the last reference goes away. Immutable after
/// creation, so sharing it across threads is safe.
public final class KeyBytes: @unchecked Sendable {
    let pointer: UnsafeMutableRawBufferPointer

    /// Fills a fresh buffer by calling `fill`, which must write all 32 bytes.
    init<E: Error>(_ fill: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        // Filled before `self` is complete, so a failure frees the buffer
        // here and `deinit` never sees it.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: keyLength, alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        do { try fill(buffer) } catch {
            wipe(buffer.baseAddress, count: keyLength)
            buffer.deallocate()
            throw error
        }
        pointer = buffer
        pthread_mutex_lock(liveKeysLock)
        liveKeys.insert(buffer.baseAddress!)
        pthread_mutex_unlock(liveKeysLock)
    }

    deinit {
        pthread_mutex_lock(liveKeysLock)
        liveKeys.remove(pointer.baseAddress!)
        pthread_mutex_unlock(liveKeysLock)
        wipe(pointer.baseAddress, count: keyLength)
        pointer.deallocate()
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(pointer) }
}
