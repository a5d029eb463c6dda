import CWGShim
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// Isolation (`--isolate`, `Isolate = true`): the job's network namespace
/// holds only `lo` and the WireGuard interfaces. The interfaces are born in
/// the namespace that holds the carrier's tap device, where their UDP stays
/// (the kernel's WireGuard keeps its socket in the namespace it was created
/// in; wireguard-go keeps its sockets in its own process's namespace), and
/// are then moved into a new namespace of the same user namespace, where the
/// job runs: its only way anywhere is the tunnel.
///
/// The job itself runs in a user namespace of its own (`JobSandbox`), so
/// that even as MapUid 0 it holds no capability over either network
/// namespace and cannot `setns` into the carrier's; only a job given
/// network administration (`NetAdmin`) could leave.
enum Isolation {
    /// Makes a new network namespace, moves the links `names` into it with
    /// `outer` (a socket of the namespace they are in), and leaves the calling
    /// process inside it with `lo` up. Returns an rtnetlink socket of the new
    /// namespace. The caller stays single-threaded; children inherit the namespace.
    /// `existing`: the job's network namespace when it was made earlier
    /// (for PreUp hooks, see Hooks.runPreUp); taken over and closed.
    static func enterOwnNamespace(moving names: [String], from outer: RouteNetlink, existing: Int32 = -1) throws(TunnelError) -> RouteNetlink {
        let inner: Int32
        if existing >= 0 {
            inner = existing
            try sys("enter the job's network namespace", code: .setup) { CWGShim_setns(inner, CWGShim_CLONE_NEWNET) }
        } else {
            try sys("unshare a network namespace for the job", code: .setup) { CWGShim_unshare(CWGShim_CLONE_NEWNET) }
            inner = try sys("open the job's network namespace", code: .setup) { open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC) }
        }
        defer { close(inner) }
        let routes: RouteNetlink
        do {
            for n in names { try outer.moveLink(n, toNetnsFD: inner) }
            routes = try RouteNetlink()
            try routes.setLink("lo", up: true)
        } catch { throw TunnelError(.setup, "isolation", wrapping: error) }
        Namespace.openNetworkToJob()
        // A sysfs of this namespace, so that /sys/class/net lists what the job
        // really has (best effort: the host's /sys stays if this is refused).
        try? Namespace.mount("sysfs", "/sys", "sysfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC))
        return routes
    }
}
