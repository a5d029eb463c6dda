/// Turning what a vnet-header TUN gives into plain IP packets (the way
/// back, coalescing packets into super-packets, is `TUNWriteBatch`).
///
/// A TUN opened with IFF_VNET_HDR and TUNSETOFFLOAD hands out, per read, a
/// `VirtioNetHeader` and either one packet whose TCP/UDP checksum may be
/// left partial (NEEDS_CSUM), or a TCP or UDP "super-packet" of up to 64 KiB
/// that must be cut into segments of `gsoSize` payload bytes (what the
/// kernel's `tcp_gso_segment`/`__udp_gso_segment` would do on a real NIC).
public enum GSO {
    static let tcpProtocol: UInt8 = 6
    static let udpProtocol: UInt8 = 17
    static let tcpFIN: UInt8 = 0x01
    static let tcpPSH: UInt8 = 0x08
    static let tcpCWR: UInt8 = 0x80

    /// Splits one read from a vnet-header TUN (`read` = the 10-byte
    /// `virtio_net_hdr` then the packet) into complete IP packets appended
    /// to `batch`, and returns how many were appended.
    ///
    /// Every packet comes out with its IPv4 header checksum, total length
    /// and (after the first) identification, or its IPv6 payload length,
    /// and its full TCP or UDP checksum (pseudo-header included); TCP
    /// segments get consecutive sequence numbers, FIN and PSH only on the
    /// last and CWR only on the first; UDP segments get their own length.
    /// A single packet (GSO_NONE) has a partial checksum completed when
    /// NEEDS_CSUM says so, and is otherwise copied as it is.
    ///
    /// Throws a `PacketError` (appending nothing) when the header or packet
    /// is malformed or `batch` has too few free slots or too small ones.
    public static func split(_ read: UnsafeRawBufferPointer, into batch: PacketBatch) throws(PacketError) -> Int {
        let hdr = try VirtioNetHeader(parsing: read)
        let pkt = UnsafeRawBufferPointer(rebasing: read[VirtioNetHeader.size...])
        if hdr.gsoType == VirtioNetHeader.gsoNone {
            return try single(pkt, hdr, into: batch)
        }
        let isTCP: Bool
        switch hdr.gsoType {
        case VirtioNetHeader.gsoTCPv4, VirtioNetHeader.gsoTCPv6: isTCP = true
        case VirtioNetHeader.gsoUDPL4: isTCP = false
        default: throw .unsupportedGSOType(hdr.gsoType)
        }
        let ip = try IPHeader(pkt, gsoType: hdr.gsoType)
        guard ip.transportProtocol == (isTCP ? tcpProtocol : udpProtocol) else { throw .badIPHeader }
        // The IP header length is parsed, not taken from csum_start, and the
        // transport header's from the packet: hdr_len can be the whole first
        // packet's length on the forwarding path (wireguard-go notes it too).
        guard Int(hdr.csumStart) == ip.headerLength,
              Int(hdr.csumOffset) == (isTCP ? 16 : 6) else { throw .badChecksumOffsets }
        let l4 = ip.headerLength
        let l4Length: Int
        if isTCP {
            guard pkt.count >= l4 + 20 else { throw .badTransportHeader }
            l4Length = Int(pkt[l4 + 12] >> 4) * 4
            guard l4Length >= 20 else { throw .badTransportHeader }
        } else {
            l4Length = 8
        }
        let headers = l4 + l4Length
        guard pkt.count >= headers else { throw .badTransportHeader }
        let mss = Int(hdr.gsoSize)
        guard mss > 0 else { throw .badSegmentSize }
        let payload = pkt.count - headers
        let segments = max(1, (payload + mss - 1) / mss)
        guard segments <= batch.capacity - batch.count,
              headers + min(mss, payload) <= batch.maxPacketSize,
              headers + min(mss, payload) <= 65535 else { throw .outputTooSmall }

        let src = pkt.baseAddress!
        let firstSeq = isTCP ? load32(src + l4 + 4) : 0
        let firstID = ip.isV6 ? 0 : load16(src + 4)
        let first = batch.count
        for i in 0..<segments {
            let offset = i * mss
            let segment = min(mss, payload - offset)
            let length = headers + segment
            let out = batch.slot(first + i).baseAddress! + batch.headroom
            out.copyMemory(from: src, byteCount: headers)
            (out + headers).copyMemory(from: src + headers + offset, byteCount: segment)
            if ip.isV6 {
                store16(out + 4, UInt16(length - 40))
            } else {
                store16(out + 2, UInt16(length))
                store16(out + 4, firstID &+ UInt16(truncatingIfNeeded: i))
                store16(out + 10, 0)
                store16(out + 10, Checksum.checksum(UnsafeRawBufferPointer(start: out, count: l4)))
            }
            let l4Start = out + l4
            if isTCP {
                store32(l4Start + 4, firstSeq &+ UInt32(truncatingIfNeeded: offset))
                var flags = l4Start.load(fromByteOffset: 13, as: UInt8.self)
                if i != segments - 1 { flags &= ~(tcpFIN | tcpPSH) }
                if i != 0 { flags &= ~tcpCWR }
                l4Start.storeBytes(of: flags, toByteOffset: 13, as: UInt8.self)
            } else {
                store16(l4Start + 4, UInt16(l4Length + segment))
            }
            let checksumField = l4Start + (isTCP ? 16 : 6)
            store16(checksumField, 0)
            let packet = UnsafeRawBufferPointer(start: out, count: length)
            var sum = ip.pseudoHeaderSum(packet, transportLength: l4Length + segment)
            sum = Checksum.checksum(UnsafeRawBufferPointer(rebasing: packet[l4...]), initial: sum)
            store16(checksumField, !isTCP && sum == 0 ? 0xffff : sum)
            batch.commit(slot: first + i, length: length)
        }
        return segments
    }

    /// GSO_NONE: one packet, its checksum completed when NEEDS_CSUM is set.
    static func single(_ pkt: UnsafeRawBufferPointer, _ hdr: VirtioNetHeader,
                       into batch: PacketBatch) throws(PacketError) -> Int {
        guard pkt.count >= 1 else { throw .badIPHeader }
        guard batch.count < batch.capacity, pkt.count <= batch.maxPacketSize else { throw .outputTooSmall }
        let needsChecksum = hdr.flags & VirtioNetHeader.needsChecksum != 0
        let at = Int(hdr.csumStart) + Int(hdr.csumOffset)
        if needsChecksum {
            guard at + 2 <= pkt.count else { throw .badChecksumOffsets }
        }
        let slot = batch.count
        let out = batch.slot(slot).baseAddress! + batch.headroom
        out.copyMemory(from: pkt.baseAddress!, byteCount: pkt.count)
        if needsChecksum {
            // The field holds the pseudo-header sum already (CHECKSUM_PARTIAL):
            // it is the initial value of the sum from csum_start to the end.
            let initial = load16(out + at)
            store16(out + at, 0)
            let covered = UnsafeRawBufferPointer(start: out + Int(hdr.csumStart), count: pkt.count - Int(hdr.csumStart))
            let sum = Checksum.checksum(covered, initial: initial)
            // A zero UDP checksum means "none"; 0xffff is the same sum. For
            // TCP either is valid, so the one rule serves both.
            store16(out + at, sum == 0 ? 0xffff : sum)
        }
        batch.commit(slot: slot, length: pkt.count)
        return 1
    }
}

/// What the GSO split needs of an IPv4 or IPv6 header.
struct IPHeader {
    let isV6: Bool
    let headerLength: Int
    let transportProtocol: UInt8

    /// Wraps known fields.
    init(isV6: Bool, headerLength: Int, transportProtocol: UInt8) {
        self.isV6 = isV6
        self.headerLength = headerLength
        self.transportProtocol = transportProtocol
    }

    /// Parses the IP header at the start of `pkt` and checks it against the
    /// GSO type (TCPV4 needs IPv4, TCPV6 IPv6, UDP_L4 either).
    init(_ pkt: UnsafeRawBufferPointer, gsoType: UInt8) throws(PacketError) {
        guard pkt.count >= 20 else { throw .badIPHeader }
        switch pkt[0] >> 4 {
        case 4:
            guard gsoType != VirtioNetHeader.gsoTCPv6 else { throw .badIPHeader }
            headerLength = Int(pkt[0] & 0x0f) * 4
            guard headerLength >= 20, pkt.count >= headerLength else { throw .badIPHeader }
            // A fragment (MF or an offset) cannot be a super-packet.
            guard pkt[6] & 0x3f == 0, pkt[7] == 0 else { throw .badIPHeader }
            isV6 = false
            transportProtocol = pkt[9]
        case 6:
            guard gsoType != VirtioNetHeader.gsoTCPv4, pkt.count >= 40 else { throw .badIPHeader }
            // Extension headers are not followed: TCP or UDP must come next.
            headerLength = 40
            isV6 = true
            transportProtocol = pkt[6]
        default:
            throw .badIPHeader
        }
    }

    /// The pseudo-header sum for `packet` (whose addresses it reads) with
    /// the given transport length.
    func pseudoHeaderSum(_ packet: UnsafeRawBufferPointer, transportLength: Int) -> UInt16 {
        let (at, size) = isV6 ? (8, 16) : (12, 4)
        return Checksum.pseudoHeaderSum(source: UnsafeRawBufferPointer(rebasing: packet[at..<(at + size)]),
                                        destination: UnsafeRawBufferPointer(rebasing: packet[(at + size)..<(at + 2 * size)]),
                                        protocol: transportProtocol, length: transportLength)
    }
}

@inline(__always) func load16(_ p: UnsafeRawPointer) -> UInt16 { UInt16(bigEndian: p.loadUnaligned(as: UInt16.self)) }
@inline(__always) func load32(_ p: UnsafeRawPointer) -> UInt32 { UInt32(bigEndian: p.loadUnaligned(as: UInt32.self)) }
@inline(__always) func store16(_ p: UnsafeMutableRawPointer, _ v: UInt16) { p.storeBytes(of: v.bigEndian, as: UInt16.self) }
@inline(__always) func store32(_ p: UnsafeMutableRawPointer, _ v: UInt32) { p.storeBytes(of: v.bigEndian, as: UInt32.self) }
