import CWGShim
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// Long-lived tunnels with a name (`wgns up --name NAME`): the supervisor
/// listens on an abstract unix socket `wgns/UID/NAME` in the host's network
/// namespace. Abstract sockets vanish with their process, so a tunnel killed
/// even with SIGKILL leaves no file behind; only the same uid may talk to it
/// (checked with SO_PEERCRED).
///
/// Requests, one line each: `info` → `HOLDERPID MAPUID MAPGID`; `down` →
/// the connection closes when the tunnel is gone.
public enum NamedTunnel {
    /// Checks a tunnel name: 1 to 32 of `A-Z a-z 0-9 _ . -`.
    public static func validate(_ name: String) throws(TunnelError) {
        let ok = !name.isEmpty && name.count <= 32 && name.utf8.allSatisfy {
            ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 95 || $0 == 46 || $0 == 45
        }
        if !ok { throw TunnelError(.config, "tunnel name '\(name)' must be 1 to 32 letters, digits, '_', '.' or '-'") }
    }

    static func prefix() -> String { "wgns/\(getuid())/" }

    /// `sockaddr_un` for the abstract name, and its length.
    static func address(_ name: String) -> (sockaddr_un, socklen_t) {
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        let bytes = [UInt8(0)] + Array((prefix() + name).utf8)
        withUnsafeMutableBytes(of: &sa.sun_path) { p in
            for (i, b) in bytes.enumerated() where i < p.count { p[i] = b }
        }
        let len = MemoryLayout<sa_family_t>.size + bytes.count
        return (sa, socklen_t(len))
    }

    /// Binds and listens; fails when a tunnel of that name is up.
    static func listen(_ name: String) throws(TunnelError) -> Int32 {
        let fd = try sys("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        var (sa, len) = address(name)
        let r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        if r != 0 {
            let e = errno
            close(fd)
            if e == EADDRINUSE { throw TunnelError(.config, "a tunnel named \(name) is already up") }
            throw TunnelError(.system, "bind the control socket of \(name)", errno: e)
        }
        _ = Glibc.listen(fd, 8)
        return fd
    }

    /// Connects to the tunnel `name`.
    static func connect(_ name: String) throws(TunnelError) -> Int32 {
        try validate(name)
        let fd = try sys("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        var (sa, len) = address(name)
        let r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, len) } }
        if r != 0 {
            close(fd)
            throw TunnelError(.config, "no tunnel named \(name) is up (see `wgns list`)")
        }
        // Abstract names are open to every user of this network namespace:
        // talk only to a supervisor that runs as us.
        if !peerIsUs(fd) {
            close(fd)
            throw TunnelError(.config, "the control socket of tunnel \(name) belongs to another user")
        }
        return fd
    }

    /// True when the peer of `fd` runs as our uid.
    static func peerIsUs(_ fd: Int32) -> Bool {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (needs _GNU_SOURCE to import).
        var cred: [UInt32] = [0, 0, 0]
        var len = socklen_t(12)
        return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred[1] == getuid()
    }

    /// Sends one request line and reads the reply until the other side closes.
    static func request(_ name: String, _ line: String) throws(TunnelError) -> String {
        let fd = try connect(name)
        let d = Descriptor(owning: fd)
        try d.writeAll(Array((line + "\n").utf8))
        var out: [UInt8] = []
        while true {
            let chunk = try d.read(max: 4096)
            if chunk.isEmpty { break }
            out += chunk
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Names of this user's tunnels that are up (from /proc/net/unix).
    public static func list() -> [String] {
        guard let text = try? FileIO.readAll("/proc/net/unix") else { return [] }
        let marker = "@" + prefix()
        var names = Set<String>()
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") {
            guard let path = line.split(separator: " ").last, path.hasPrefix(marker) else { continue }
            names.insert(String(path.dropFirst(marker.count)))
        }
        return names.sorted()
    }

    /// Stops the tunnel `name` and returns once it is gone.
    public static func down(_ name: String) throws(TunnelError) {
        _ = try request(name, "down")
    }

    /// Moves the calling process into the user, network and mount namespaces
    /// of tunnel `name`'s holder (root there, so the WireGuard devices can be
    /// read). The process stays there: call it from a short-lived,
    /// single-threaded process (setns into a user namespace requires one thread).
    public static func enterAsHolder(_ name: String) throws(TunnelError) {
        try enter(name, holder: info(name).holder,
                  [("user", CWGShim_CLONE_NEWUSER), ("net", CWGShim_CLONE_NEWNET), ("mnt", CWGShim_CLONE_NEWNS)])
        _ = chdir("/")
    }

    /// Tunnel `name`'s answer to `info`: its holder's pid and the job's uid and gid.
    static func info(_ name: String) throws(TunnelError) -> (holder: Int32, uid: UInt32, gid: UInt32) {
        let fields = try request(name, "info").split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 3, let pid = Int32(fields[0]), let uid = UInt32(fields[1]), let gid = UInt32(fields[2]) else {
            throw TunnelError(.setup, "tunnel \(name) did not answer")
        }
        return (pid, uid, gid)
    }

    /// Moves the calling process into the namespaces `which` (name under
    /// /proc/PID/ns, CLONE_ flag) of tunnel `name`, whose holder is `holder`:
    /// the network namespace is the job's (see `jobNetworkPID`). Every one is
    /// opened before any is entered: after the user namespace, /proc paths
    /// may no longer open.
    static func enter(_ name: String, holder: Int32, _ which: [(String, Int32)]) throws(TunnelError) {
        var fds: [(Int32, Int32)] = []
        defer { for (fd, _) in fds { close(fd) } }
        for (ns, flag) in which {
            let owner = ns == "net" ? jobNetworkPID(holder) : holder
            let fd = try sys("open namespace \(ns) of tunnel \(name)") { open("/proc/\(owner)/ns/\(ns)", O_RDONLY | O_CLOEXEC) }
            fds.append((fd, flag))
        }
        for (fd, flag) in fds { try sys("enter tunnel \(name)", code: .setup) { CWGShim_setns(fd, flag) } }
    }

    /// The WireGuard devices of tunnel `name`, read from inside (both
    /// backends). Enters the tunnel's namespaces first: see `enterAsHolder`.
    public static func devices(_ name: String) throws(TunnelError) -> [Device] {
        try enterAsHolder(name)
        var out: [Device] = []
        let user = UserspaceWireGuard(socketDirectory: Namespace.runtimeDirectory() + "/wireguard")
        do {
            for d in try user.deviceNames() { out.append(try user.device(d)) }
            if let kernel = try? KernelWireGuard() {
                for d in (try? kernel.deviceNames()) ?? [] where !out.contains(where: { $0.name == d }) {
                    out.append(try kernel.device(d))
                }
            }
        } catch { throw TunnelError(.system, "\(error)") }
        return out.sorted { $0.name < $1.name }
    }

    /// The process whose network namespace is the job's: the holder's child
    /// (pid 1 of the tunnel's pid namespace), which under isolation lives in
    /// the job's own network namespace, not the holder's; else the holder.
    static func jobNetworkPID(_ holder: Int32) -> Int32 {
        guard let text = try? FileIO.readAll("/proc/\(holder)/task/\(holder)/children"),
              let first = String(decoding: text, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }).first,
              let pid = Int32(first) else { return holder }
        return pid
    }

    /// Runs `command` inside the tunnel `name`, as its MapUid/MapGid, and
    /// returns its shell-style status. Must run single-threaded (setns into
    /// a user namespace requires it).
    public static func exec(_ name: String, _ command: [String]) throws(TunnelError) -> Int32 {
        let (pid, uid, gid) = try info(name)
        var cwd = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let hasCwd = getcwd(&cwd, cwd.count) != nil
        try enter(name, holder: pid, [("user", CWGShim_CLONE_NEWUSER), ("net", CWGShim_CLONE_NEWNET),
                                      ("mnt", CWGShim_CLONE_NEWNS), ("pid_for_children", CWGShim_CLONE_NEWPID)])
        if hasCwd { _ = chdir(cwd) } else { _ = chdir("/") }
        var opts = SpawnOptions()
        opts.deathSignal = SIGKILL
        if uid != 0 || gid != 0 { opts.userNamespaceIDs = (uid, gid) }
        // The command shares our process group and terminal, so the terminal's
        // signals reach it; we only wait, as system() does.
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        let child: ChildProcess
        do { child = try ChildProcess.spawn(command, opts) } catch {
            if error.isExec {
                throw TunnelError(.command, "\(command.first ?? ""): " + (error.errno == ENOENT ? "command not found" : String(cString: strerror(error.errno))), errno: 0)
            }
            throw TunnelError(.command, "cannot start \(command.first ?? "")", errno: error.errno)
        }
        return child.wait().shellStatus
    }
}
