/// The internet checksum (RFC 1071) of IP, TCP and UDP headers.
///
/// Sums are 16-bit one's-complement sums of the data read as big-endian
/// words (a last odd byte padded with a zero byte), kept folded in a
/// `UInt16`; a checksum field holds the complement of the sum over what it
/// covers, written big-endian. `sum` reads 8 bytes at a time in the host's
/// order and swaps once at the end (the one's-complement sum does not care
/// about byte order until then, RFC 1071 §2(B)).
public enum Checksum {
    /// The one's-complement sum of `bytes`, added to `initial`.
    @inlinable
    public static func sum(_ bytes: UnsafeRawBufferPointer, initial: UInt16 = 0) -> UInt16 {
        guard var p = bytes.baseAddress else { return initial }
        var n = bytes.count
        // Two 64-bit accumulators of 32-bit halves: no carry handling in the
        // loop, and no overflow for anything up to 2^31 bytes.
        var a: UInt64 = 0, b: UInt64 = 0
        while n >= 16 {
            let w0 = p.loadUnaligned(as: UInt64.self)
            let w1 = p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            a &+= (w0 & 0xffff_ffff) &+ (w0 >> 32)
            b &+= (w1 & 0xffff_ffff) &+ (w1 >> 32)
            p += 16
            n -= 16
        }
        if n >= 8 {
            let w = p.loadUnaligned(as: UInt64.self)
            a &+= (w & 0xffff_ffff) &+ (w >> 32)
            p += 8
            n -= 8
        }
        if n >= 4 {
            b &+= UInt64(p.loadUnaligned(as: UInt32.self))
            p += 4
            n -= 4
        }
        if n >= 2 {
            a &+= UInt64(p.loadUnaligned(as: UInt16.self))
            p += 2
            n -= 2
        }
        if n == 1 {
            // The odd byte is the high byte of a big-endian word, which in
            // the host order of the loads above is the low byte on a
            // little-endian host (the swap below moves it up).
            let byte = UInt64(p.load(as: UInt8.self))
            #if _endian(little)
            b &+= byte
            #else
            b &+= byte << 8
            #endif
        }
        var s = a &+ b
        s = (s & 0xffff_ffff) &+ (s >> 32)
        s = (s & 0xffff) &+ (s >> 16)
        s = (s & 0xffff) &+ (s >> 16)
        s = (s & 0xffff) &+ (s >> 16)
        return add(UInt16(bigEndian: UInt16(truncatingIfNeeded: s)), initial)
    }

    /// One's-complement addition of two sums.
    @inlinable
    public static func add(_ x: UInt16, _ y: UInt16) -> UInt16 {
        let s = UInt32(x) + UInt32(y)
        return UInt16(truncatingIfNeeded: (s & 0xffff) + (s >> 16))
    }

    /// The sum of the TCP/UDP pseudo-header: source and destination
    /// addresses (4 bytes each for IPv4, 16 for IPv6), the protocol number
    /// and the transport length (header plus payload).
    @inlinable
    public static func pseudoHeaderSum(source: UnsafeRawBufferPointer, destination: UnsafeRawBufferPointer,
                                       protocol proto: UInt8, length: Int) -> UInt16 {
        var s = sum(source)
        s = sum(destination, initial: s)
        s = add(s, UInt16(proto))
        // A length over 65535 (IPv6 jumbograms) adds its high word too.
        s = add(s, UInt16(truncatingIfNeeded: length))
        return add(s, UInt16(truncatingIfNeeded: length >> 16))
    }

    /// The value for a checksum field: the complement of `sum` over
    /// `bytes` started at `initial` (with the field itself zero in `bytes`).
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, initial: UInt16 = 0) -> UInt16 {
        ~sum(bytes, initial: initial)
    }
}
