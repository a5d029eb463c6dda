/// The 10-byte `struct virtio_net_hdr` (linux/virtio_net.h) that a TUN
/// opened with IFF_VNET_HDR puts before every packet it reads, and expects
/// before every packet written to it.
///
/// Layout: flags (u8), gso_type (u8), hdr_len, gso_size, csum_start,
/// csum_offset (u16 each, in the host's byte order: legacy virtio without
/// TUNSETVNETLE/BE, which is what this code sets up).
public struct VirtioNetHeader: Sendable, Hashable {
    /// The header's size in bytes (TUNSETVNETHDRSZ is set to this).
    public static let size = 10

    /// `flags`: VIRTIO_NET_HDR_F_NEEDS_CSUM (1) means the checksum field at
    /// `csumStart + csumOffset` holds only the pseudo-header sum and the
    /// sum from `csumStart` to the end must be completed.
    public var flags: UInt8
    /// `gso_type`: one of the `gso*` constants, with bit 0x80 (ECN) possible.
    public var gsoType: UInt8
    /// `hdr_len`: the length of the IP plus transport headers (a hint only:
    /// the kernel may put the whole first packet's length there).
    public var headerLength: UInt16
    /// `gso_size`: the payload bytes of each segment (the MSS).
    public var gsoSize: UInt16
    /// `csum_start`: where the checksummed part (the transport header) starts.
    public var csumStart: UInt16
    /// `csum_offset`: the checksum field's offset from `csumStart` (16 for TCP, 6 for UDP).
    public var csumOffset: UInt16

    /// VIRTIO_NET_HDR_F_NEEDS_CSUM.
    public static let needsChecksum: UInt8 = 1
    /// VIRTIO_NET_HDR_F_DATA_VALID.
    public static let dataValid: UInt8 = 2
    /// VIRTIO_NET_HDR_GSO_NONE: a single packet.
    public static let gsoNone: UInt8 = 0
    /// VIRTIO_NET_HDR_GSO_TCPV4: a TCP/IPv4 super-packet.
    public static let gsoTCPv4: UInt8 = 1
    /// VIRTIO_NET_HDR_GSO_UDP: UFO (IP fragmentation), not split here.
    public static let gsoUDP: UInt8 = 3
    /// VIRTIO_NET_HDR_GSO_TCPV6: a TCP/IPv6 super-packet.
    public static let gsoTCPv6: UInt8 = 4
    /// VIRTIO_NET_HDR_GSO_UDP_L4: a UDP super-packet (USO), IPv4 or IPv6.
    public static let gsoUDPL4: UInt8 = 5
    /// VIRTIO_NET_HDR_GSO_ECN: the sender set ECN bits.
    public static let gsoECN: UInt8 = 0x80

    /// The all-zero header: one packet, checksums complete, no GSO.
    public static let none = VirtioNetHeader(flags: 0, gsoType: gsoNone, headerLength: 0, gsoSize: 0,
                                             csumStart: 0, csumOffset: 0)

    /// Wraps the six fields.
    public init(flags: UInt8, gsoType: UInt8, headerLength: UInt16, gsoSize: UInt16,
                csumStart: UInt16, csumOffset: UInt16) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.csumStart = csumStart
        self.csumOffset = csumOffset
    }

    /// Reads the header from the first 10 bytes of `bytes`; throws
    /// `.truncatedVirtioHeader` when there are fewer.
    @inlinable
    public init(parsing bytes: UnsafeRawBufferPointer) throws(PacketError) {
        guard bytes.count >= Self.size, let p = bytes.baseAddress else { throw .truncatedVirtioHeader }
        self.init(flags: p.load(as: UInt8.self),
                  gsoType: p.load(fromByteOffset: 1, as: UInt8.self),
                  headerLength: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self),
                  gsoSize: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self),
                  csumStart: p.loadUnaligned(fromByteOffset: 6, as: UInt16.self),
                  csumOffset: p.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
    }

    /// Writes the header into the first 10 bytes of `bytes`; returns false
    /// (writing nothing) when there are fewer.
    @inlinable @discardableResult
    public func write(to bytes: UnsafeMutableRawBufferPointer) -> Bool {
        guard bytes.count >= Self.size, let p = bytes.baseAddress else { return false }
        p.storeBytes(of: flags, as: UInt8.self)
        p.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: headerLength, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: gsoSize, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: csumStart, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: csumOffset, toByteOffset: 8, as: UInt16.self)
        return true
    }
}
