// The packet I/O layer of the built-in data plane, and how its pieces fit.
//
// Set-up (the holder, inside the tunnel's namespace): `TUNDevice.open(name:
// offloads: true)`; send `release()` and `offloads.rawValue` over
// SCM_RIGHTS. The engine wraps the number in a `Descriptor` and opens its
// `UDPSocket.bind(port:family:)` on the host.
//
// Outbound (TUN -> UDP), per round:
//   read:    `TUNDevice.read(fd, into: buf)` with `buf` of `maxReadSize` bytes
//   split:   `GSO.split(buf[..<n], into: plain)`, `plain` a `PacketBatch` with
//            headroom 16 (the data message header) and slots of at least
//            MTU + 16 + 32 bytes (padding to 16 and the tag): every packet
//            comes out complete, checksums and all (repeat while the batch
//            has room and the TUN has packets, if it is non-blocking)
//   seal:    encrypt each `plain.packet(i)` in its slot, header in the headroom
//   send:    `UDPSendBatch.append(slot bytes, to: endpoint)` for each, then
//            `UDPSocket.send(batch)`: runs to one peer go as UDP_SEGMENT sends.
//
// Inbound (UDP -> TUN), per round:
//   receive: `UDPSocket.receive(into: rx)`, `rx` a `UDPReceiveBatch`; GRO'd
//            messages are already split: `rx.datagram(i)`, `rx.source(i)`
//   open:    decrypt each datagram in place
//   write:   `TUNWriteBatch.append(plaintext bytes)` for each packet (they
//            stay in `rx`'s buffers: no copy), then `write(to: fd,
//            vnetHeader:)`: TCP segments of one flow go as one super-packet.
//            Write before the next receive reuses `rx`.
//
// Nothing on these paths allocates; malformed TUN input throws a
// `PacketError` (drop it and go on), system calls throw an `IOError`.

import CWGShim
import POSIX
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// What a TUN device was set up to do: whether reads and writes carry a
/// `VirtioNetHeader`, and which offloads the kernel accepted (TUNSETOFFLOAD).
/// The raw value is what a holder passes along with the descriptor.
public struct TUNOffloads: OptionSet, Sendable, Hashable {
    /// The bits: `vnetHeader` is this code's own (bit 31), the others are
    /// the kernel's TUN_F_* values.
    public let rawValue: UInt32
    /// Wraps raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// IFF_VNET_HDR: every read and write starts with the 10-byte header.
    public static let vnetHeader = TUNOffloads(rawValue: 1 << 31)
    /// TUN_F_CSUM: reads may carry partial checksums (NEEDS_CSUM).
    public static let checksum = TUNOffloads(rawValue: UInt32(CWGShim_TUN_F_CSUM))
    /// TUN_F_TSO4: reads may be TCP/IPv4 super-packets.
    public static let tso4 = TUNOffloads(rawValue: UInt32(CWGShim_TUN_F_TSO4))
    /// TUN_F_TSO6: reads may be TCP/IPv6 super-packets.
    public static let tso6 = TUNOffloads(rawValue: UInt32(CWGShim_TUN_F_TSO6))
    /// TUN_F_USO4: reads may be UDP/IPv4 super-packets (Linux 6.2+).
    public static let uso4 = TUNOffloads(rawValue: UInt32(CWGShim_TUN_F_USO4))
    /// TUN_F_USO6: reads may be UDP/IPv6 super-packets (Linux 6.2+).
    public static let uso6 = TUNOffloads(rawValue: UInt32(CWGShim_TUN_F_USO6))

    /// The TUN_F_* bits alone, as TUNSETOFFLOAD takes them.
    var kernelFlags: UInt32 { rawValue & ~TUNOffloads.vnetHeader.rawValue }
}

/// An open TUN device (IFF_TUN|IFF_NO_PI: every read and write is one IP
/// packet, after a `VirtioNetHeader` when `offloads` has `.vnetHeader`).
///
/// Opened inside the tunnel's network namespace (CAP_NET_ADMIN is needed
/// there), the descriptor keeps working after it is passed over SCM_RIGHTS
/// to a process in another namespace: `release()` gives up the number for
/// that, and whoever receives it wraps it in a `Descriptor` and keeps
/// `offloads` (its `rawValue`) to know how to read it.
public struct TUNDevice: ~Copyable {
    /// The open /dev/net/tun descriptor, attached to the device.
    public let descriptor: Descriptor
    /// The device's name as the kernel has it (it fills in `%d` patterns).
    public let name: String
    /// Whether reads carry a vnet header, and which offloads were accepted.
    public let offloads: TUNOffloads

    /// The largest read a vnet-header TUN can return: the header and a
    /// 64 KiB super-packet. Read buffers should be this big.
    public static let maxReadSize = VirtioNetHeader.size + 65535

    /// Opens /dev/net/tun and attaches it to the TUN device `name`
    /// (creating it if needed; TUNSETIFF with IFF_TUN|IFF_NO_PI).
    ///
    /// With `offloads`, it also asks for IFF_VNET_HDR, sets the header size
    /// to 10 bytes (TUNSETVNETHDRSZ) and asks for checksum and TCP
    /// segmentation offload (TUN_F_CSUM|TSO4|TSO6, required then), and UDP
    /// segmentation offload (USO4|USO6) where the kernel accepts it (6.2+;
    /// older kernels say EINVAL and it is left out). Without `offloads`,
    /// reads and writes are bare IP packets.
    public static func open(name: String, offloads: Bool) throws(IOError) -> TUNDevice {
        let fd = try openClone()
        let raw = fd.raw
        var kernelName = (UInt64(0), UInt64(0))
        do {
            try valueOrErrno {
                withUnsafeMutableBytes(of: &kernelName) { out in
                    CWGShim_tun_set_iff(raw, name, offloads ? 1 : 0, out.baseAddress!.assumingMemoryBound(to: CChar.self))
                }
            }
        } catch {
            throw IOError(.tunOpen, errno: error, "cannot create TUN device \(name) (TUNSETIFF; needs CAP_NET_ADMIN in its network namespace, and a name not used by another kind of link)")
        }
        let actualName = withUnsafeBytes(of: kernelName) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard offloads else { return TUNDevice(descriptor: fd, name: actualName, offloads: []) }

        do {
            try valueOrErrno { CWGShim_tun_set_vnet_hdr_size(raw, Int32(VirtioNetHeader.size)) }
        } catch {
            throw IOError(.tunConfigure, errno: error, "TUNSETVNETHDRSZ \(VirtioNetHeader.size) refused on \(actualName)")
        }
        let tcp: TUNOffloads = [.checksum, .tso4, .tso6]
        let udp: TUNOffloads = [.uso4, .uso6]
        var accepted: TUNOffloads = [.vnetHeader]
        if (try? valueOrErrno({ CWGShim_tun_set_offload(raw, tcp.union(udp).kernelFlags) })) != nil {
            accepted.formUnion(tcp.union(udp))
        } else {
            do {
                try valueOrErrno { CWGShim_tun_set_offload(raw, tcp.kernelFlags) }
            } catch {
                throw IOError(.tunConfigure, errno: error, "TUNSETOFFLOAD (checksum and TSO) refused on \(actualName)")
            }
            accepted.formUnion(tcp)
        }
        return TUNDevice(descriptor: fd, name: actualName, offloads: accepted)
    }

    /// /dev/net/tun, opened read-write and close-on-exec.
    private static func openClone() throws(IOError) -> Descriptor {
        do {
            return try Descriptor.open("/dev/net/tun", O_RDWR)
        } catch {
            throw IOError(.tunOpen, errno: error, "cannot open /dev/net/tun (is the tun module loaded and the device readable?)")
        }
    }

    /// Gives up the descriptor without closing it (to send it over
    /// SCM_RIGHTS, say), returning its number.
    public consuming func release() -> Int32 {
        descriptor.release()
    }

    /// Takes the descriptor out (the device stays as long as it is open).
    public consuming func take() -> Descriptor {
        descriptor
    }

    /// Whether the TUN behind `fd` was set up with IFF_VNET_HDR (TUNGETIFF):
    /// for a receiver of a descriptor to check what it was told.
    public static func hasVirtioHeader(_ fd: borrowing Descriptor) throws(IOError) -> Bool {
        var on: Int32 = 0
        do {
            try valueOrErrno { CWGShim_tun_get_vnet_hdr(fd.raw, &on) }
        } catch {
            throw IOError(.tunIO, errno: error, "TUNGETIFF failed: not a TUN descriptor?")
        }
        return on != 0
    }

    /// Reads one packet (or, with a vnet header, one header and packet or
    /// super-packet) into `buffer` (`read(2)`); returns its length, or 0
    /// when a non-blocking descriptor has nothing (EAGAIN). The buffer should
    /// be `maxReadSize` bytes with a vnet header: a longer packet is cut.
    public static func read(_ fd: borrowing Descriptor, into buffer: UnsafeMutableRawBufferPointer) throws(IOError) -> Int {
        do {
            return try valueOrErrno { Glibc.read(fd.raw, buffer.baseAddress, buffer.count) }
        } catch {
            if error == .wouldBlock { return 0 }
            throw IOError(.tunIO, errno: error, "reading from the TUN device failed")
        }
    }

    /// Writes one IP packet (`write(2)`), or, with `vnetHeader`, the
    /// all-zero `VirtioNetHeader` and the packet (`writev(2)`: no copy).
    /// The packet's checksums must be complete.
    public static func write(_ fd: borrowing Descriptor, packet: UnsafeRawBufferPointer, vnetHeader: Bool) throws(IOError) {
        do {
            if vnetHeader {
                var zero = (UInt64(0), UInt16(0))  // 10 zero bytes (and padding)
                try withUnsafeMutableBytes(of: &zero) { header throws(Errno) in
                    var iov = (iovec(iov_base: header.baseAddress, iov_len: VirtioNetHeader.size),
                               iovec(iov_base: UnsafeMutableRawPointer(mutating: packet.baseAddress), iov_len: packet.count))
                    _ = try withUnsafeMutableBytes(of: &iov) { v throws(Errno) in
                        try valueOrErrno { writev(fd.raw, v.baseAddress!.assumingMemoryBound(to: iovec.self), 2) }
                    }
                }
            } else {
                _ = try valueOrErrno { Glibc.write(fd.raw, packet.baseAddress, packet.count) }
            }
        } catch {
            throw IOError(.tunIO, errno: error, "writing a packet to the TUN device failed")
        }
    }
}
