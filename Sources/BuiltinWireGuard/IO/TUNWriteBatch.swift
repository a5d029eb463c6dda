import POSIX
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// What `TUNWriteBatch.write` did.
public struct TUNWriteResult: Sendable, Hashable {
    /// Packets the kernel took (a coalesced super-packet counts each segment).
    public var written = 0
    /// Writes made (one per super-packet or lone packet).
    public var writes = 0
    /// Packets whose write failed (`firstError` says why).
    public var failed = 0
    /// The first errno a write got, if any.
    public var firstError: Errno?
    /// An empty result.
    public init() {}
}

/// Packets on their way into the TUN, written with as few system calls as
/// the kernel allows: with a vnet header, consecutive in-order segments of
/// one TCP flow (and, when asked, datagrams of one UDP flow) are coalesced
/// into one super-packet (GRO, what makes wireguard-go fast on receive) and
/// written with one `writev`; every other packet is written alone with an
/// all-zero header.
///
/// Nothing is copied: the batch keeps pointers to the caller's packets,
/// which must stay valid until `write` or `removeAll`, and it rewrites the
/// IP and TCP headers of a super-packet's first segment in place. Room for
/// `capacity` packets is allocated once. One thread at a time.
public final class TUNWriteBatch: @unchecked Sendable {
    /// The most packets the batch holds.
    public let capacity: Int
    /// Whether TCP segments are coalesced (with a vnet-header TUN only).
    public let coalesce: Bool
    /// Whether UDP datagrams are coalesced too (a TUN that accepted USO only).
    public let coalesceUDP: Bool
    /// Packets appended since the last write.
    public private(set) var count = 0
    /// Writes the batch will make: lone packets and super-packets.
    public var writeCount: Int { items }

    /// The most segments one super-packet gets (the kernel's GRO limit too).
    static let maxSegments = 64

    private let packets: UnsafeMutablePointer<UnsafeMutableRawBufferPointer>
    /// Per packet: the next segment of its super-packet (-1: none).
    private let next: UnsafeMutablePointer<Int32>
    /// Per write: its first packet, and TCP state while it can still grow.
    private let itemFirst: UnsafeMutablePointer<Int32>
    private let itemFlow: UnsafeMutablePointer<FlowState>
    private var items = 0
    private let iovecs: UnsafeMutablePointer<iovec>
    private let header: UnsafeMutableRawPointer

    /// What an item that may still take segments knows of itself.
    struct FlowState {
        enum Kind { case none, tcp, udp }
        var kind = Kind.none
        var isV6 = false
        var ipHeaderLength = 0
        var transportHeaderLength = 0
        var nextSeq: UInt32 = 0
        var segmentSize = 0
        var lastSize = 0
        var total = 0
        var segments = 0
        var last: Int32 = 0
        var psh = false
    }

    /// Room for `capacity` packets; `coalesce: false` writes each packet
    /// alone; `coalesceUDP` (pass `offloads.contains(.uso4)`: older kernels
    /// refuse UDP_L4 super-packets) coalesces UDP datagrams of one flow,
    /// equal in size but a shorter last one, as well.
    public init(capacity: Int = 128, coalesce: Bool = true, coalesceUDP: Bool = false) {
        precondition(capacity > 0, "TUNWriteBatch: bad capacity")
        self.capacity = capacity
        self.coalesce = coalesce
        self.coalesceUDP = coalesce && coalesceUDP
        packets = .allocate(capacity: capacity)
        packets.initialize(repeating: UnsafeMutableRawBufferPointer(start: nil, count: 0), count: capacity)
        next = .allocate(capacity: capacity)
        itemFirst = .allocate(capacity: capacity)
        itemFlow = .allocate(capacity: capacity)
        itemFlow.initialize(repeating: FlowState(), count: capacity)
        iovecs = .allocate(capacity: Self.maxSegments + 2)
        iovecs.initialize(repeating: iovec(), count: Self.maxSegments + 2)
        header = .allocate(byteCount: VirtioNetHeader.size, alignment: 8)
    }

    deinit {
        packets.deallocate()
        next.deallocate()
        itemFirst.deallocate()
        itemFlow.deallocate()
        iovecs.deallocate()
        header.deallocate()
    }

    /// Forgets every packet.
    public func removeAll() {
        count = 0
        items = 0
    }

    /// Adds one IP packet; returns false (adding nothing) when the batch is
    /// full. Its bytes must stay valid, and untouched by the caller, until
    /// `write` or `removeAll`.
    @discardableResult
    public func append(_ packet: UnsafeMutableRawBufferPointer) -> Bool {
        guard count < capacity else { return false }
        let index = count
        packets[index] = packet
        next[index] = -1
        count += 1
        if coalesce, let candidate = Self.candidate(packet, udp: coalesceUDP) {
            // Newest items first: a flow's open item is usually the last.
            var i = items - 1
            let oldest = max(0, items - 8)
            while i >= oldest {
                if itemFlow[i].kind == candidate.kind && sameFlow(i, index) {
                    if tryAppend(index, candidate, to: i) { return true }
                    // A UDP datagram may not pass its flow's newest item
                    // (that would reorder the flow); a TCP segment may, its
                    // place is its sequence number.
                    if candidate.kind == .udp { break }
                }
                i -= 1
            }
            itemFirst[items] = Int32(index)
            itemFlow[items] = candidate
            itemFlow[items].last = Int32(index)
            items += 1
            return true
        }
        itemFirst[items] = Int32(index)
        itemFlow[items] = FlowState()
        items += 1
        return true
    }

    /// The coalescing state of `p` when it may be coalesced: IPv4 without
    /// options or IPv6 without extension headers, not a fragment, lengths
    /// that agree, a payload, a valid checksum (the kernel checks no
    /// checksum of a coalesced packet, so a bad one must not get in), and
    /// for TCP only ACK (and PSH) set; UDP only when `udp`.
    static func candidate(_ p: UnsafeMutableRawBufferPointer, udp: Bool) -> FlowState? {
        guard p.count >= 28, p.count <= 65535, let base = p.baseAddress else { return nil }
        var s = FlowState()
        let proto: UInt8
        switch p[0] {
        case 0x45:
            guard Int(load16(base + 2)) == p.count, p[6] & 0x3f == 0, p[7] == 0 else { return nil }
            proto = p[9]
            s.ipHeaderLength = 20
        case 0x60...0x6f:
            guard p.count >= 48, Int(load16(base + 4)) == p.count - 40 else { return nil }
            proto = p[6]
            s.isV6 = true
            s.ipHeaderLength = 40
        default:
            return nil
        }
        let l4 = s.ipHeaderLength
        switch proto {
        case GSO.tcpProtocol:
            guard p.count >= l4 + 20 else { return nil }
            s.kind = .tcp
            s.transportHeaderLength = Int(p[l4 + 12] >> 4) * 4
            guard s.transportHeaderLength >= 20, p.count > l4 + s.transportHeaderLength else { return nil }
            let flags = p[l4 + 13]
            guard flags == 0x10 || flags == 0x18 else { return nil }
            s.nextSeq = load32(base + l4 + 4) &+ UInt32(p.count - l4 - s.transportHeaderLength)
            s.psh = flags & 0x08 != 0
        case GSO.udpProtocol where udp:
            s.kind = .udp
            s.transportHeaderLength = 8
            guard p.count > l4 + 8, Int(load16(base + l4 + 4)) == p.count - l4 else { return nil }
        default:
            return nil
        }
        let packet = UnsafeRawBufferPointer(p)
        let ip = IPHeader(isV6: s.isV6, headerLength: l4, transportProtocol: proto)
        let pseudo = ip.pseudoHeaderSum(packet, transportLength: p.count - l4)
        guard Checksum.sum(UnsafeRawBufferPointer(rebasing: packet[l4...]), initial: pseudo) == 0xffff else { return nil }
        s.segmentSize = p.count - l4 - s.transportHeaderLength
        s.lastSize = s.segmentSize
        s.total = p.count
        s.segments = 1
        return s
    }

    /// Whether packet `index` has item `i`'s addresses and ports.
    private func sameFlow(_ i: Int, _ index: Int) -> Bool {
        let f = itemFlow[i]
        let head = packets[Int(itemFirst[i])].baseAddress!
        let p = packets[index].baseAddress!
        let (addressAt, addressBytes) = f.isV6 ? (8, 32) : (12, 8)
        guard packets[index].count >= f.ipHeaderLength + 4, (p.load(as: UInt8.self) >> 4 == 6) == f.isV6 else { return false }
        return memcmp(head + addressAt, p + addressAt, addressBytes) == 0
            && load32(head + f.ipHeaderLength) == load32(p + f.ipHeaderLength)
    }

    /// Appends packet `index` to item `i` (of the same flow) when it
    /// continues it.
    private func tryAppend(_ index: Int, _ c: FlowState, to i: Int) -> Bool {
        var f = itemFlow[i]
        guard f.isV6 == c.isV6, f.transportHeaderLength == c.transportHeaderLength, !f.psh,
              f.lastSize == f.segmentSize, c.segmentSize <= f.segmentSize,
              f.segments < Self.maxSegments, f.total + c.segmentSize <= 65535 else { return false }
        let head = packets[Int(itemFirst[i])].baseAddress!
        let p = packets[index].baseAddress!
        let l4 = f.ipHeaderLength
        if f.kind == .tcp {
            // The next bytes in order, the same ACK number, the same options.
            guard load32(p + l4 + 4) == f.nextSeq,
                  load32(head + l4 + 8) == load32(p + l4 + 8),
                  memcmp(head + l4 + 20, p + l4 + 20, f.transportHeaderLength - 20) == 0 else { return false }
        }
        // IP fields the segments must share.
        if f.isV6 {
            guard head.load(as: UInt8.self) == p.load(as: UInt8.self),
                  head.load(fromByteOffset: 1, as: UInt8.self) >> 4 == p.load(fromByteOffset: 1, as: UInt8.self) >> 4,
                  head.load(fromByteOffset: 7, as: UInt8.self) == p.load(fromByteOffset: 7, as: UInt8.self) else { return false }
        } else {
            guard head.load(fromByteOffset: 1, as: UInt8.self) == p.load(fromByteOffset: 1, as: UInt8.self),
                  head.load(fromByteOffset: 6, as: UInt8.self) >> 5 == p.load(fromByteOffset: 6, as: UInt8.self) >> 5,
                  head.load(fromByteOffset: 8, as: UInt8.self) == p.load(fromByteOffset: 8, as: UInt8.self) else { return false }
        }
        next[Int(f.last)] = Int32(index)
        f.last = Int32(index)
        f.nextSeq = f.nextSeq &+ UInt32(c.segmentSize)
        f.lastSize = c.segmentSize
        f.total += c.segmentSize
        f.segments += 1
        if c.psh {
            f.psh = true
            head.storeBytes(of: head.load(fromByteOffset: l4 + 13, as: UInt8.self) | 0x08, toByteOffset: l4 + 13, as: UInt8.self)
        }
        itemFlow[i] = f
        return true
    }

    /// Writes every packet to the TUN and empties the batch. With
    /// `vnetHeader` (the TUN has IFF_VNET_HDR), each item is one `writev` of
    /// a `VirtioNetHeader` and the packet, or, for coalesced segments, the
    /// first segment (its lengths, IPv4 header checksum and partial TCP
    /// checksum rewritten) and the payloads of the others. Without (a plain
    /// TUN), every packet is one `write` in the order appended, coalesced
    /// or not. A failed write is counted and the others still go.
    @discardableResult
    public func write(to fd: borrowing Descriptor, vnetHeader: Bool) -> TUNWriteResult {
        var result = TUNWriteResult()
        let raw = fd.raw
        guard vnetHeader else {
            for i in 0..<count {
                do {
                    _ = try valueOrErrno { Glibc.write(raw, packets[i].baseAddress, packets[i].count) }
                    result.written += 1
                } catch {
                    result.failed += 1
                    if result.firstError == nil { result.firstError = error }
                }
                result.writes += 1
            }
            removeAll()
            return result
        }
        for i in 0..<items {
            let first = Int(itemFirst[i])
            let f = itemFlow[i]
            var segments = 1
            var vcount = 0
            let coalesced = f.kind != .none && f.segments > 1
            (coalesced ? finish(first, f) : .none).write(to: UnsafeMutableRawBufferPointer(start: header, count: VirtioNetHeader.size))
            iovecs[0] = iovec(iov_base: header, iov_len: VirtioNetHeader.size)
            vcount = 1
            iovecs[vcount] = iovec(iov_base: packets[first].baseAddress, iov_len: packets[first].count)
            vcount += 1
            if coalesced {
                let headers = f.ipHeaderLength + f.transportHeaderLength
                var p = Int(next[first])
                while p >= 0 {
                    iovecs[vcount] = iovec(iov_base: packets[p].baseAddress! + headers, iov_len: packets[p].count - headers)
                    vcount += 1
                    segments += 1
                    p = Int(next[p])
                }
            }
            do {
                let n = Int32(vcount)
                _ = try valueOrErrno { writev(raw, iovecs, n) }
                result.written += segments
            } catch {
                result.failed += segments
                if result.firstError == nil { result.firstError = error }
            }
            result.writes += 1
        }
        removeAll()
        return result
    }

    /// Rewrites the first segment's headers for the whole super-packet and
    /// returns its vnet header: IPv4 total length and header checksum, or
    /// IPv6 payload length; the UDP length; the TCP or UDP checksum field
    /// holds the pseudo-header sum (NEEDS_CSUM: the kernel counts the rest
    /// as verified and computes it only if it sends the packet on).
    private func finish(_ first: Int, _ f: FlowState) -> VirtioNetHeader {
        let head = packets[first].baseAddress!
        let l4 = f.ipHeaderLength
        if f.isV6 {
            store16(head + 4, UInt16(f.total - 40))
        } else {
            store16(head + 2, UInt16(f.total))
            store16(head + 10, 0)
            store16(head + 10, Checksum.checksum(UnsafeRawBufferPointer(start: head, count: l4)))
        }
        let tcp = f.kind == .tcp
        if !tcp { store16(head + l4 + 4, UInt16(f.total - l4)) }
        let ip = IPHeader(isV6: f.isV6, headerLength: l4, transportProtocol: tcp ? GSO.tcpProtocol : GSO.udpProtocol)
        let pseudo = ip.pseudoHeaderSum(UnsafeRawBufferPointer(start: head, count: l4), transportLength: f.total - l4)
        let csumOffset = tcp ? 16 : 6
        store16(head + l4 + csumOffset, pseudo)
        let gsoType = tcp ? (f.isV6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4) : VirtioNetHeader.gsoUDPL4
        return VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: gsoType,
                               headerLength: UInt16(l4 + f.transportHeaderLength), gsoSize: UInt16(f.segmentSize),
                               csumStart: UInt16(l4), csumOffset: UInt16(csumOffset))
    }
}
