/// One device API over both WireGuard backends: the kernel's (generic
/// netlink, `KernelWireGuard`) and wireguard-go's (UAPI socket,
/// `UserspaceWireGuard`). Callers need not care which is underneath.
/// Errors are `NetlinkError`s.
public protocol WireGuardControl {
    /// Applies a desired state to the device `device` (`nil` fields are left alone).
    func configure(_ device: String, _ config: DeviceConfig) throws
    /// Reads the device's whole state back.
    func device(_ name: String) throws -> Device
    /// The names of every WireGuard device this backend can reach.
    func deviceNames() throws -> [String]
}
