import CSodium

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
    }

    deinit {
        wipe(pointer.baseAddress, count: keyLength)
        pointer.deallocate()
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(pointer) }
}
