import CLibMnl
import KeyStore
#if canImport(Glibc)
import Glibc
#endif

/// The kernel backend: WireGuard's generic netlink family
/// (`WG_CMD_SET_DEVICE`, `WG_CMD_GET_DEVICE`), in the network namespace of
/// the thread that created it.
public final class KernelWireGuard: WireGuardControl {
    private let socket: NetlinkSocket
    /// The `wireguard` family's id, resolved once.
    public let familyID: UInt16
    private let buffer = MessageBuffer(capacity: KernelWireGuard.messageCapacity)
    private var routes: RouteNetlink?

    /// Bytes per `WG_CMD_SET_DEVICE` message. Bigger than wg's page-sized
    /// messages (fewer round trips), and small enough that the peers nest's
    /// 16-bit length can never overflow.
    static let messageCapacity = 32768

    /// Opens a generic netlink socket and resolves the `wireguard` family
    /// (`CTRL_CMD_GETFAMILY`). A kernel without WireGuard gives
    /// `.noWireGuardModule`.
    public init() throws(NetlinkError) {
        socket = try NetlinkSocket(protocol: NETLINK_GENERIC)
        familyID = try Self.resolveFamily(WG_GENL_NAME, socket: socket, buffer: buffer)
    }

    /// Closes the socket now (also done when the object goes away).
    public func close() {
        socket.close()
        routes?.close()
    }

    /// Resolves a generic netlink family's id by name.
    static func resolveFamily(_ name: String, socket: NetlinkSocket, buffer: MessageBuffer) throws(NetlinkError) -> UInt16 {
        buffer.start(type: UInt16(GENL_ID_CTRL), flags: NLM_F_REQUEST | NLM_F_ACK)
        let g = buffer.extraHeader(genlmsghdr.self)
        g.pointee.cmd = UInt8(CTRL_CMD_GETFAMILY)
        g.pointee.version = 1
        buffer.put(CTRL_ATTR_FAMILY_NAME, string: name)
        var id: UInt16 = 0
        try socket.request(buffer, operation: "find the \(name) generic netlink family", context: .family(name)) { msg in
            for a in Attributes(message: msg, headerSize: MemoryLayout<genlmsghdr>.size)
            where Int(a.type) == CTRL_ATTR_FAMILY_ID {
                id = a.u16
            }
        }
        guard id != 0 else {
            throw NetlinkError(.protocolError, "cannot find the \(name) generic netlink family: the reply has no id")
        }
        return id
    }

    /// Applies `config` to `device` (`WG_CMD_SET_DEVICE`), in as many
    /// messages as it takes, each acknowledged before the next is sent.
    public func configure(_ device: String, _ config: DeviceConfig) throws(NetlinkError) {
        try checkName(device)
        var encoder = SetDeviceEncoder(config: config, device: device, family: familyID)
        while encoder.next(into: buffer) {
            try socket.request(buffer, operation: "configure WireGuard device \(device)", device: device, context: .wireGuard)
        }
    }

    /// Reads `name`'s state (`WG_CMD_GET_DEVICE` dump), merging peers that
    /// continue across messages; starts over if the dump was interrupted.
    public func device(_ name: String) throws(NetlinkError) -> Device {
        try checkName(name)
        while true {
            buffer.start(type: familyID, flags: NLM_F_REQUEST | NLM_F_DUMP)
            let g = buffer.extraHeader(genlmsghdr.self)
            g.pointee.cmd = UInt8(WG_CMD_GET_DEVICE.rawValue)
            g.pointee.version = UInt8(WG_GENL_VERSION)
            buffer.put(WGDEVICE_A_IFNAME.rawValue, string: name)
            var decoder = GetDeviceDecoder(name: name)
            let outcome = try socket.request(buffer, operation: "read WireGuard device \(name)", device: name,
                                             context: .wireGuard) { msg in decoder.add(msg) }
            if outcome == .done { return decoder.device }
        }
    }

    /// The names of every link of kind `wireguard` in this namespace.
    public func deviceNames() throws(NetlinkError) -> [String] {
        if routes == nil { routes = try RouteNetlink() }
        return try routes!.links().filter { $0.kind == "wireguard" }.map(\.name)
    }

    private func checkName(_ name: String) throws(NetlinkError) {
        guard !name.isEmpty, name.utf8.count < Int(IFNAMSIZ) else {
            throw NetlinkError(.invalidArgument, errno: EINVAL, "invalid interface name \"\(name)\"")
        }
    }
}
