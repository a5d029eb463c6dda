import CWGShim
import KeyStore
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// A member of a per-job VPN (`wgns up DIR`) following its hub across
/// restarts. A restarted hub picks a new port (or, with a fixed port, has
/// none of the old sessions, and WireGuard would only notice after its own
/// timeouts, about 12 s). So while the job runs, the supervisor reads
/// `DIR/hub.endpoint` once a second, and when a live hub other than the one
/// it knows has published there (another pid, start time, node or
/// endpoint), it sets the hub's peer again: the new endpoint, and a fresh
/// peer (no session left), whose persistent keepalive starts a handshake at
/// once.
public final class HubFollower: @unchecked Sendable {
    /// The VPN folder.
    let directory: String
    /// The hub the tunnel points at (nil: none seen yet).
    var current: HubEndpoint?
    /// When to read the file next (monotonic ns).
    var nextCheck: UInt64 = 0
    /// Between two reads of the file.
    static let period: UInt64 = 1_000_000_000

    /// Follows the hub of `directory`, starting from `current`.
    public init(directory: String, current: HubEndpoint?) {
        self.directory = directory
        self.current = current
    }
}

extension Supervisor {
    /// When the follower wants to read the file next, if it runs.
    var followerWake: UInt64? {
        guard let f = plan.follower, jobRunning, server.namespaces.admin.count == 3 else { return nil }
        return f.nextCheck
    }

    /// Reads `DIR/hub.endpoint` when due; points the tunnel at a new hub.
    mutating func followHub() {
        guard let f = plan.follower, let due = followerWake else { return }
        let now = monotonicNanos()
        guard now >= due else { return }
        f.nextCheck = now + HubFollower.period
        guard case .live(let hub) = HubEndpoint.read(f.directory), hub != f.current else { return }
        // A hub that appears where none was (a member with a fixed endpoint
        // started first) is new too: its handshake need not wait 5 s more.
        f.current = hub
        guard let (e, _) = try? VPN.peerEndpoint(toward: hub.endpoint, in: f.directory), let address = IPAddress(e.host),
              let i = plan.interfaces.first else { return }
        var dc = DeviceConfig(replacePeers: true)
        dc.peers = i.config.peers.map { p in
            PeerConfig(publicKey: p.publicKey, presharedKey: try? p.presharedKey?.load(),
                       endpoint: SocketAddress(address: address, port: e.port),
                       persistentKeepaliveInterval: p.persistentKeepalive ?? 25,
                       replaceAllowedIPs: true, allowedIPs: p.allowedIPs)
        }
        if plan.verbose { writeStderr("wgns: hub \(hub.endpoint) (pid \(hub.pid) on \(hub.node)) is new in \(f.directory): pointing \(i.name) at it\n") }
        if let d = dataPlanes.first(where: { $0.name == i.name }) {
            // The builtin backend: its data plane holds the device (and, in
            // a mesh, the other members' peers, which stay).
            for p in i.config.peers { d.repoint(p.publicKey, to: SocketAddress(address: address, port: e.port)) }
            return
        }
        configureInside(i.name, dc)
    }

    /// Configures `device` from a child that enters the tunnel's namespaces
    /// (setns into a user namespace needs a single-threaded process: a
    /// fresh fork is one). Waits for it at most 2 s.
    func configureInside(_ device: String, _ dc: DeviceConfig) {
        let fds = server.namespaces.admin
        let pid = CWGShim_fork_with_pdeathsig(SIGKILL)
        if pid < 0 { return }
        if pid == 0 {
            for (fd, flag) in [(fds[0], CWGShim_CLONE_NEWUSER), (fds[2], CWGShim_CLONE_NEWNET), (fds[1], CWGShim_CLONE_NEWNS)] {
                if CWGShim_setns(fd, flag) != 0 { _exit(1) }
            }
            let client = WireGuardClient(socketDirectory: Namespace.runtimeDirectory() + "/" + Namespace.socketFolder)
            do { try client.open(device).configure(device, dc) } catch {
                writeStderr("wgns: cannot point \(device) at the new hub: \(error)\n")
                _exit(1)
            }
            _exit(0)
        }
        let child = ChildProcess(pid: pid)
        let end = monotonicNanos() + 2_000_000_000
        while child.poll() == nil {
            if monotonicNanos() >= end { child.kill(SIGKILL); _ = child.wait(); return }
            usleep(1000)
        }
    }
}
