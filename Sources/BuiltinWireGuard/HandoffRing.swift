#if canImport(Glibc)
import Glibc
#endif

/// A bounded first-in first-out handoff of `depth` reusable work slots
/// between one producer thread and one consumer thread (the data plane's
/// two stages each way: one reads and plans, the other encrypts or
/// decrypts and writes). Slots are handed over in the order they were
/// filled, so a peer's packets leave in the order they came, as the
/// kernel's per-peer serial queue keeps them. Allocates nothing after init.
final class HandoffRing: @unchecked Sendable {
    /// How many slots circulate.
    let depth: Int
    private var produced = 0
    private var consumed = 0
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let notFull: UnsafeMutablePointer<pthread_cond_t>
    private let notEmpty: UnsafeMutablePointer<pthread_cond_t>

    /// A ring of `depth` slots, all free.
    init(depth: Int) {
        precondition(depth > 0)
        self.depth = depth
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        notFull = .allocate(capacity: 1)
        pthread_cond_init(notFull, nil)
        notEmpty = .allocate(capacity: 1)
        pthread_cond_init(notEmpty, nil)
    }

    deinit {
        pthread_cond_destroy(notFull)
        pthread_cond_destroy(notEmpty)
        pthread_mutex_destroy(mutex)
        notFull.deallocate()
        notEmpty.deallocate()
        mutex.deallocate()
    }

    /// Producer: the next free slot's number, waiting while all are full.
    func nextFree() -> Int {
        pthread_mutex_lock(mutex)
        while produced - consumed == depth { pthread_cond_wait(notFull, mutex) }
        let slot = produced % depth
        pthread_mutex_unlock(mutex)
        return slot
    }

    /// Producer: the slot from `nextFree` is filled; the consumer may take it.
    func publish() {
        pthread_mutex_lock(mutex)
        produced += 1
        pthread_cond_signal(notEmpty)
        pthread_mutex_unlock(mutex)
    }

    /// Consumer: the oldest filled slot's number, waiting while none is.
    func nextFilled() -> Int {
        pthread_mutex_lock(mutex)
        while produced == consumed { pthread_cond_wait(notEmpty, mutex) }
        let slot = consumed % depth
        pthread_mutex_unlock(mutex)
        return slot
    }

    /// Consumer: the slot from `nextFilled` is done with; the producer may refill it.
    func recycle() {
        pthread_mutex_lock(mutex)
        consumed += 1
        pthread_cond_signal(notFull)
        pthread_mutex_unlock(mutex)
    }
}
