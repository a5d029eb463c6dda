/// The one place that decides which backend serves a WireGuard device of
/// this network namespace, as wg's `ipc.c` and wgctrl-go's `client.go` do:
/// the kernel's when the link is of kind `wireguard` (generic netlink), else
/// wireguard-go's UAPI socket in `socketDirectory`. The command line
/// (`wgns show`, `setconf`, ...) and `Tunnel` (named tunnels) both use it.
public struct WireGuardClient {
    /// Where wireguard-go puts its UAPI sockets.
    public var socketDirectory: String

    /// A client for this namespace's devices.
    public init(socketDirectory: String = "/var/run/wireguard") {
        self.socketDirectory = socketDirectory
    }

    /// The backend for device `name`; throws when there is no such device
    /// or it is not WireGuard.
    public func open(_ name: String) throws(NetlinkError) -> any WireGuardControl {
        let userspace = UserspaceWireGuard(socketDirectory: socketDirectory)
        let link = try RouteNetlink().link(name)
        if link?.kind == "wireguard" { return try KernelWireGuard() }
        if userspace.hasDevice(name) { return userspace }
        if link != nil { throw NetlinkError(.notWireGuard, "\(name) is not a WireGuard device") }
        throw NetlinkError(.noSuchDevice, "no such WireGuard device \(name)")
    }

    /// Every WireGuard device here, kernel ones first, each with its backend.
    public func all() throws(NetlinkError) -> [(name: String, control: any WireGuardControl)] {
        var result: [(name: String, control: any WireGuardControl)] = []
        let kernelNames = try RouteNetlink().links().filter { $0.kind == "wireguard" }.map(\.name)
        if !kernelNames.isEmpty {
            let kernel = try KernelWireGuard()
            result += kernelNames.map { ($0, kernel as any WireGuardControl) }
        }
        let userspace = UserspaceWireGuard(socketDirectory: socketDirectory)
        for name in try userspace.deviceNames() where !kernelNames.contains(name) {
            result.append((name, userspace))
        }
        return result
    }

    /// Every WireGuard device here, read back, sorted by name.
    public func devices() throws(NetlinkError) -> [Device] {
        var out: [Device] = []
        for (name, control) in try all() {
            do { out.append(try control.device(name)) } catch let e as NetlinkError { throw e } catch {
                throw NetlinkError(.system, "\(name): \(error)")
            }
        }
        return out.sorted { $0.name < $1.name }
    }
}
