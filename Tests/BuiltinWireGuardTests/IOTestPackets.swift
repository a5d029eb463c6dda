// Packet builders and an independent checker for the IO tests. The
// checksum here is the textbook one (16-bit big-endian words, one at a
// time, carries folded at the end): written differently from Checksum.sum
// on purpose, so that each judges the other.

/// RFC 1071, the slow way: the one's-complement sum of big-endian words.
func referenceSum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    var sum: UInt32 = 0
    var i = bytes.startIndex
    while i + 1 < bytes.endIndex {
        sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
        i += 2
    }
    if i < bytes.endIndex { sum += UInt32(bytes[i]) << 8 }
    while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
    return sum
}

/// True when the bytes (checksum field included) sum to 0xffff.
func referenceVerifies(_ bytes: ArraySlice<UInt8>, pseudo: UInt32 = 0) -> Bool {
    var s = referenceSum(bytes) + pseudo
    while s > 0xffff { s = (s & 0xffff) + (s >> 16) }
    return s == 0xffff
}

/// The pseudo-header sum of an IPv4 or IPv6 packet for its transport part.
func referencePseudo(_ packet: [UInt8]) -> UInt32 {
    let v6 = packet[0] >> 4 == 6
    let addresses = v6 ? packet[8..<40] : packet[12..<20]
    let ihl = v6 ? 40 : Int(packet[0] & 0x0f) * 4
    let proto = UInt32(v6 ? packet[6] : packet[9])
    let length = UInt32(packet.count - ihl)
    return referenceSum(addresses) + proto + length
}

/// A checked view of one IP packet carrying TCP or UDP.
struct ParsedPacket {
    var isV6: Bool
    var ipHeaderLength: Int
    var proto: UInt8
    var transportHeaderLength: Int
    var payload: ArraySlice<UInt8>
    var seq: UInt32
    var flags: UInt8
    var id: UInt16
    var srcPort: UInt16
    var dstPort: UInt16

    /// Parses and checks lengths and checksums; nil with a reason otherwise.
    static func check(_ p: [UInt8]) -> Result<ParsedPacket, CheckFailure> {
        guard p.count >= 20 else { return .failure(.init("short")) }
        let v6 = p[0] >> 4 == 6
        let ihl = v6 ? 40 : Int(p[0] & 0x0f) * 4
        guard p.count >= ihl + 8 else { return .failure(.init("short transport")) }
        if v6 {
            guard Int(be16(p, 4)) == p.count - 40 else { return .failure(.init("IPv6 payload length \(be16(p, 4)) for \(p.count)")) }
        } else {
            guard Int(be16(p, 2)) == p.count else { return .failure(.init("IPv4 total length \(be16(p, 2)) for \(p.count)")) }
            guard referenceVerifies(p[0..<ihl]) else { return .failure(.init("IPv4 header checksum")) }
        }
        let proto = v6 ? p[6] : p[9]
        let thl: Int
        if proto == 6 {
            thl = Int(p[ihl + 12] >> 4) * 4
        } else if proto == 17 {
            thl = 8
            guard Int(be16(p, ihl + 4)) == p.count - ihl else { return .failure(.init("UDP length")) }
            guard be16(p, ihl + 6) != 0 else { return .failure(.init("UDP checksum left zero")) }
        } else {
            return .failure(.init("protocol \(proto)"))
        }
        guard p.count >= ihl + thl else { return .failure(.init("short transport header")) }
        guard referenceVerifies(p[ihl...], pseudo: referencePseudo(p)) else { return .failure(.init("transport checksum")) }
        return .success(ParsedPacket(isV6: v6, ipHeaderLength: ihl, proto: proto, transportHeaderLength: thl,
                                     payload: p[(ihl + thl)...], seq: proto == 6 ? be32(p, ihl + 4) : 0,
                                     flags: proto == 6 ? p[ihl + 13] : 0, id: v6 ? 0 : be16(p, 4),
                                     srcPort: be16(p, ihl), dstPort: be16(p, ihl + 2)))
    }
}

struct CheckFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func be16(_ p: [UInt8], _ at: Int) -> UInt16 { UInt16(p[at]) << 8 | UInt16(p[at + 1]) }
func be32(_ p: [UInt8], _ at: Int) -> UInt32 { UInt32(be16(p, at)) << 16 | UInt32(be16(p, at + 2)) }
func put16(_ p: inout [UInt8], _ at: Int, _ v: UInt16) { p[at] = UInt8(v >> 8); p[at + 1] = UInt8(v & 0xff) }
func put32(_ p: inout [UInt8], _ at: Int, _ v: UInt32) { put16(&p, at, UInt16(v >> 16)); put16(&p, at + 2, UInt16(v & 0xffff)) }

/// Fills in a packet's checksums the reference way (IPv4 header, TCP/UDP).
func referenceFinish(_ p: inout [UInt8]) {
    let v6 = p[0] >> 4 == 6
    let ihl = v6 ? 40 : Int(p[0] & 0x0f) * 4
    if !v6 {
        put16(&p, 10, 0)
        put16(&p, 10, ~UInt16(referenceSum(p[0..<ihl])))
    }
    let at = ihl + ((v6 ? p[6] : p[9]) == 6 ? 16 : 6)
    put16(&p, at, 0)
    var s = referenceSum(p[ihl...]) + referencePseudo(p)
    while s > 0xffff { s = (s & 0xffff) + (s >> 16) }
    let c = ~UInt16(s)
    put16(&p, at, c == 0 ? 0xffff : c)
}

/// An IPv4 or IPv6 packet with a TCP header (with `optionWords` 4-byte
/// option words) or a UDP header, and `payload`; lengths set, checksums not.
func makePacket(v6: Bool, tcp: Bool, payload: [UInt8], seq: UInt32 = 1000, ack: UInt32 = 777, flags: UInt8 = 0x10,
                optionWords: Int = 0, src: [UInt8]? = nil, dst: [UInt8]? = nil,
                srcPort: UInt16 = 40000, dstPort: UInt16 = 5201, id: UInt16 = 0x1234) -> [UInt8] {
    let ihl = v6 ? 40 : 20
    let thl = tcp ? 20 + 4 * optionWords : 8
    var p = [UInt8](repeating: 0, count: ihl + thl + payload.count)
    if v6 {
        p[0] = 0x60
        put16(&p, 4, UInt16(thl + payload.count))
        p[6] = tcp ? 6 : 17
        p[7] = 64
        let s = src ?? [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        let d = dst ?? [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
        p.replaceSubrange(8..<24, with: s)
        p.replaceSubrange(24..<40, with: d)
    } else {
        p[0] = 0x45
        put16(&p, 2, UInt16(p.count))
        put16(&p, 4, id)
        p[6] = 0x40  // DF
        p[8] = 64
        p[9] = tcp ? 6 : 17
        p.replaceSubrange(12..<16, with: src ?? [10, 0, 0, 1])
        p.replaceSubrange(16..<20, with: dst ?? [10, 0, 0, 2])
    }
    put16(&p, ihl, srcPort)
    put16(&p, ihl + 2, dstPort)
    if tcp {
        put32(&p, ihl + 4, seq)
        put32(&p, ihl + 8, ack)
        p[ihl + 12] = UInt8(thl / 4) << 4
        p[ihl + 13] = flags
        put16(&p, ihl + 14, 65535)
        for w in 0..<optionWords { p.replaceSubrange((ihl + 20 + 4 * w)..<(ihl + 24 + 4 * w), with: [1, 1, 8, 10]) }
    } else {
        put16(&p, ihl + 4, UInt16(thl + payload.count))
    }
    p.replaceSubrange((ihl + thl)..., with: payload)
    return p
}

/// The 10-byte vnet header, host order, built by hand.
func vnetHeader(flags: UInt8, gsoType: UInt8, hdrLen: UInt16, gsoSize: UInt16, csumStart: UInt16, csumOffset: UInt16) -> [UInt8] {
    var h: [UInt8] = [flags, gsoType]
    for v in [hdrLen, gsoSize, csumStart, csumOffset] {
        withUnsafeBytes(of: v) { h.append(contentsOf: $0) }
    }
    return h
}

/// Deterministic bytes (xorshift), so failures repeat.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
