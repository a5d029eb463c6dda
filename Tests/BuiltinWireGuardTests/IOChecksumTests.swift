import Testing
@testable import BuiltinWireGuard

@Suite struct IOChecksumTests {
    /// The IPv4 header often used to show the checksum by hand: b861.
    @Test func knownIPv4Header() {
        let header: [UInt8] = [0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                               0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7]
        #expect(header.withUnsafeBytes { Checksum.checksum($0) } == 0xb861)
    }

    /// Every length from 0 to 300 at every start alignment 0...7, against
    /// the word-at-a-time reference, with and without an initial sum.
    @Test func matchesReferenceAtEveryLengthAndAlignment() {
        var rng = TestRandom(seed: 0xc0ffee)
        let data = rng.bytes(400)
        for start in 0..<8 {
            for length in 0...300 {
                let slice = data[start..<(start + length)]
                let initial = UInt16(truncatingIfNeeded: rng.next())
                let ours = slice.withUnsafeBytes { Checksum.sum($0, initial: initial) }
                var ref = referenceSum(slice) + UInt32(initial)
                while ref > 0xffff { ref = (ref & 0xffff) + (ref >> 16) }
                // 0 and 0xffff are the same one's-complement number.
                #expect(ours == UInt16(ref) || (ours == 0xffff && ref == 0) || (ours == 0 && ref == 0xffff),
                        "start \(start) length \(length)")
            }
        }
    }

    /// All-0xff data makes carries on every word: 64 KiB of it.
    @Test func carriesOnLargeBuffers() {
        let data = [UInt8](repeating: 0xff, count: 65535)
        let ours = data.withUnsafeBytes { Checksum.sum($0) }
        #expect(UInt32(ours) == referenceSum(data[...]))
    }

    @Test func pseudoHeader() {
        let src: [UInt8] = [10, 0, 0, 1], dst: [UInt8] = [10, 0, 0, 2]
        let ours = src.withUnsafeBytes { s in dst.withUnsafeBytes { d in
            Checksum.pseudoHeaderSum(source: s, destination: d, protocol: 6, length: 1480) } }
        var ref = referenceSum((src + dst)[...]) + 6 + 1480
        while ref > 0xffff { ref = (ref & 0xffff) + (ref >> 16) }
        #expect(UInt32(ours) == ref)
    }
}
