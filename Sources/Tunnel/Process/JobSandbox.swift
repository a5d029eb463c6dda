import CWGShim
import KeyStore
import SystemPackage
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// The job's sandbox: where the job runs, inside the tunnel's namespaces
/// but with no power over them.
///
/// Pid 1 of the tunnel (`NamespaceInit`) is root in the tunnel's user
/// namespace, which owns the network namespaces that hold wg0 and the
/// carrier's tap0. The job must not be: whoever holds a capability in that
/// user namespace can reconfigure the tunnel. So the sandbox is
/// - a pid namespace of its own, whose pid 1 is a small reaper (C, in
///   spawn.c) that passes signals on and holds no descriptor: the job sees
///   no wgns process, no wireguard-go, no carrier;
/// - a mount namespace with a /proc of that pid namespace and without the
///   folders that hold wireguard-go's UAPI sockets and wgns's generated
///   files (their read-only bind mounts over /etc stay);
/// - unless the user asked for network administration, a user namespace of
///   its own, nested under the tunnel's, mapping MapUid/MapGid to the
///   caller's ids: MapUid 0 is root over nothing that wgns made, and every
///   mount it inherits is locked (read-only stays read-only).
///
/// Its pid 1 sends descriptors of the sandbox's namespaces to the
/// supervisor, which hands them to `wgns exec` (see `NamedTunnel`).
struct JobSandbox {
    /// The job gets a user namespace of its own (everything but NetAdmin).
    var ownUserNamespace = true
    /// The job's uid and gid there.
    var uid: UInt32 = 0
    var gid: UInt32 = 0
    /// Mount points the job's mount namespace drops.
    var detach: [String] = []
    /// A socket to the supervisor that gets `channelText` with the
    /// descriptors of the sandbox's user, mnt, net and pid namespaces; -1: none.
    var channel: Int32 = -1
    /// The message that goes with them.
    var channelText = HolderStatus.namespaces(.job).line
    /// Absolute paths the job must not read (`UpPlan.masked`): a folder gets
    /// an empty read-only tmpfs over it, a file an empty read-only file.
    var mask: [String] = []
    /// Also mask the unix sockets under /tmp, /var/tmp and /dev/shm, and in
    /// the folders there that tmux, X11, emacs, screen, ssh-agent, VS Code
    /// and Jupyter use (`CWGShim_sandbox_attr.mask_host_sockets`).
    var maskHostSockets = false
    /// The empty file bound over masked files: made in the folder of
    /// generated files, which the sandbox then detaches.
    static let maskSource = Namespace.runtimeDirectory() + "/" + Namespace.generatedFolder + "/empty"

    /// Starts the sandbox and, inside it, `command` with `options` (nil: an
    /// idle sandbox, for `wgns exec`, that ends on SIGTERM). The returned
    /// process is the sandbox's pid 1: signal it to signal the job; it exits
    /// with the job's shell status.
    func start(_ command: [String]?, _ options: SpawnOptions) throws(ChildProcess.Failure) -> ChildProcess {
        var stage: Int32 = 0
        var err: Int32 = 0
        var cdetach: [UnsafePointer<CChar>?] = detach.map { UnsafePointer(strdup($0)) }
        var cmask: [UnsafePointer<CChar>?] = mask.map { UnsafePointer(strdup($0)) }
        let ctext = strdup(channelText)
        let csource = strdup(Self.maskSource)
        defer {
            for p in cdetach + cmask { free(UnsafeMutablePointer(mutating: p)) }
            free(ctext)
            free(csource)
        }
        if !mask.isEmpty || maskHostSockets {
            let fd = open(Self.maskSource, O_WRONLY | O_CREAT | O_CLOEXEC, 0o444)
            if fd < 0 { throw ChildProcess.Failure(stage: Int32(CWGShim_STAGE_SANDBOX), errno: Errno(rawValue: errno)) }
            close(fd)
        }
        let pid: pid_t = cdetach.withUnsafeMutableBufferPointer { dp in cmask.withUnsafeMutableBufferPointer { mp in
            var sb = CWGShim_sandbox_attr()
            sb.mask = UnsafePointer(mp.baseAddress)
            sb.mask_count = Int32(mp.count)
            sb.mask_source = UnsafePointer(csource)
            sb.mask_host_sockets = maskHostSockets ? 1 : 0
            // A sandbox with a user namespace of its own is dumpable for a
            // moment (to write its uid_map), and its memory is a copy of
            // this process's: it wipes its copy of every key first (ours stay).
            sb.before_dumpable = { KeyStore.wipeEveryKeyAfterFork() }
            sb.nested_userns = ownUserNamespace ? 1 : 0
            sb.inner_uid = uid
            sb.inner_gid = gid
            sb.detach = UnsafePointer(dp.baseAddress)
            sb.detach_count = Int32(dp.count)
            sb.channel_fd = channel
            sb.channel_text = UnsafePointer(ctext)
            guard let command else { return CWGShim_spawn_sandboxed(nil, &sb, &stage, &err) }
            // The job shares the user's terminal (job control, Ctrl-C): it
            // must not push input into the shell that started wgns.
            var options = options
            options.denyTerminalInjection = true
            return ChildProcess.withSpawnAttributes(command, options) { CWGShim_spawn_sandboxed($0, &sb, &stage, &err) }
        } }
        if pid < 0 { throw ChildProcess.Failure(stage: stage, errno: Errno(rawValue: err)) }
        return ChildProcess(pid: pid)
    }
}

/// What a config's routes mean for containment.
enum Containment {
    /// True when the AllowedIPs of `peers` together cover every address of
    /// IPv4 or of IPv6 (`0.0.0.0/0`, or `0.0.0.0/1, 128.0.0.0/1` as some
    /// providers write it): a full tunnel, which is isolated by default and
    /// never falls back to the carrier's DNS.
    static func isFullTunnel(_ allowedIPs: [IPPrefix]) -> Bool {
        for v6 in [false, true] {
            let nets = Array(Set(allowedIPs.filter { $0.address.isV6 == v6 }.map(\.network)))
            guard !nets.isEmpty else { continue }
            let all = IPPrefix(address: v6 ? IPAddress("::")! : IPAddress("0.0.0.0")!, prefixLength: 0)!
            if covers(nets, all) { return true }
        }
        return false
    }

    /// True when the union of `nets` (networks of one family) holds all of `p`.
    private static func covers(_ nets: [IPPrefix], _ p: IPPrefix) -> Bool {
        if nets.contains(where: { $0.prefixLength <= p.prefixLength && p.address.masked(to: $0.prefixLength) == $0.address }) {
            return true
        }
        let inside = nets.filter { $0.prefixLength > p.prefixLength && $0.address.masked(to: p.prefixLength) == p.address }
        guard !inside.isEmpty, p.prefixLength < p.address.maxPrefixLength else { return false }
        var upper = p.address.bytes
        upper[Int(p.prefixLength) / 8] |= 0x80 >> (p.prefixLength % 8)
        let low = IPPrefix(address: p.address, prefixLength: p.prefixLength + 1)!
        let high = IPPrefix(address: IPAddress(bytes: upper)!, prefixLength: p.prefixLength + 1)!
        return covers(inside, low) && covers(inside, high)
    }
}
