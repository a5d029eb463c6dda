import CWGShim
#if canImport(Glibc)
import Glibc
#endif

/// How a wireguard-go binary reads the TUN device it is handed (WG_TUN_FD).
///
/// wireguard-go up to its 2022 releases (Debian 12's 0.0.20220316) reads a
/// TUN from WG_TUN_FD as one made without `IFF_NO_PI` (a 4-byte header
/// before each packet); since its vectorized I/O (2023-03-02, in Debian 13's
/// 0.0.20231211) it takes every TUN as `IFF_NO_PI`. Neither checks. Its
/// `--version` cannot tell them apart: 0.0.20231211 still says
/// "v0.0.20230223", as does the tag before the change. What tells them
/// apart is the code: the vectorized TUN has a `BatchSize` method, and Go
/// keeps every function's name in the binary (stripped or not, for its
/// stack traces).
///
/// Since its TCP (and later UDP) offloads (2023-03, also in 0.0.20231211) a
/// wireguard-go that makes its own TUN asks for IFF_VNET_HDR and
/// TUNSETOFFLOAD, and one handed a TUN reads its flags (TUNGETIFF) and uses
/// the vnet header when it is there. Such a binary has the offload code's
/// functions (`tun.handleVirtioRead`): it gets a TUN made as it would make
/// it itself, so that inside wgns it is as fast as over a bare veth.
enum WireGuardGoTUN: Equatable {
    /// Hand over a TUN made without IFF_NO_PI.
    case packetInformation
    /// Hand over a TUN made with IFF_NO_PI.
    case noPacketInformation
    /// Hand over a TUN made with IFF_NO_PI and IFF_VNET_HDR, with
    /// TUNSETOFFLOAD (checksum, TSO, and USO where the kernel has it).
    case offloads
    /// Not a wireguard-go we know: let it make its own TUN (always right, but
    /// its exit then waits for the device's removal).
    case ownDevice

    static let tunType = Array("golang.zx2c4.com/wireguard/tun.(*NativeTun).".utf8)
    /// A function of the offload code (virtio header reads, GSO split).
    static let offloadCode = Array("golang.zx2c4.com/wireguard/tun.handleVirtioRead".utf8)

    /// Reads the binary at `path` (mapped, about 3 MB, in the page cache
    /// after the first run; 0.2-0.4 ms here) and says which TUN it wants.
    static func of(_ path: String) -> WireGuardGoTUN {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .ownDevice }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else { return .ownDevice }
        let size = Int(st.st_size)
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else { return .ownDevice }
        defer { munmap(map, size) }
        return classify(UnsafeRawBufferPointer(start: map, count: size))
    }

    /// The verdict for a binary's bytes, in one pass: each name of the TUN
    /// type's methods, looking for BatchSize among them.
    static func classify(_ bytes: UnsafeRawBufferPointer) -> WireGuardGoTUN {
        guard let base = bytes.baseAddress else { return .ownDevice }
        let method = Array("BatchSize".utf8)
        var found = false
        var offset = 0
        while offset < bytes.count {
            let hit = tunType.withUnsafeBytes { CWGShim_memmem(base + offset, bytes.count - offset, $0.baseAddress, $0.count) }
            guard let hit else { break }
            found = true
            let after = base.distance(to: UnsafeRawPointer(hit)) + tunType.count
            if after + method.count <= bytes.count, method.withUnsafeBytes({ memcmp(base + after, $0.baseAddress!, method.count) == 0 }) {
                let offloads = offloadCode.withUnsafeBytes { CWGShim_memmem(base, bytes.count, $0.baseAddress, $0.count) }
                return offloads == nil ? .noPacketInformation : .offloads
            }
            offset = after
        }
        return found ? .packetInformation : .ownDevice
    }
}
