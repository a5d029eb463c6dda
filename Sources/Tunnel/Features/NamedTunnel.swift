import CWGShim
import KeyStore
import POSIX
import SystemPackage
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// Long-lived tunnels with a name (`wgns up --name NAME`): the supervisor
/// listens on an abstract unix socket `wgns/UID/NAME` in the host's network
/// namespace. Abstract sockets vanish with their process, so a tunnel killed
/// even with SIGKILL leaves no file behind. Anyone may bind an abstract name,
/// so both ends check the other's uid (SO_PEERCRED), and a name that another
/// user holds is not ours: `up` then binds `wgns/UID/NAME/RANDOM` instead,
/// and clients look for the ones that answer as us.
///
/// Requests, one line each, answered with descriptors (SCM_RIGHTS) that the
/// supervisor got from the holder: `admin` → `ok` with the tunnel's user,
/// mnt and net namespaces (where wg0 and wireguard-go's sockets are);
/// `exec` → `ok UID GID` with the tunnel's user namespace and the job
/// sandbox's user, mnt, net and pid namespaces; `down` → the connection
/// closes when the tunnel is gone. Nobody, the supervisor included, opens
/// the holder's /proc entries after the carrier has: they are undumpable.
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

    /// Binds and listens; fails when a tunnel of that name is up. A name
    /// squatted by another user gets a random suffix (see the type's doc).
    static func listen(_ name: String) throws(TunnelError) -> Int32 {
        // Decided by who holds the names (sock_diag), not by a connect, which
        // a neighbour's flood can starve.
        try validate(name)
        let held = bound().filter { $0.name == name || $0.name.hasPrefix(name + "/") }
        if held.contains(where: { $0.uid == getuid() }) { throw TunnelError(.config, "a tunnel named \(name) is already up") }
        if held.contains(where: { $0.uid == nil }) {
            let fds = try candidates(name)
            fds.forEach { close($0) }
            if !fds.isEmpty { throw TunnelError(.config, "a tunnel named \(name) is already up") }
        }
        var suffix = ""
        while true {
            let fd = try sys("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
            var (sa, len) = address(name + suffix)
            let r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
            if r == 0 {
                // A deep backlog, drained in one go (Server.serve): a
                // neighbour's flood must not crowd our own clients out.
                _ = Glibc.listen(fd, SOMAXCONN)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                return fd
            }
            let e = errno
            close(fd)
            guard e == EADDRINUSE else { throw TunnelError(.system, "bind the control socket of \(name)", errno: Errno(rawValue: e)) }
            // Ours since the check above (another `up --name` won the race)?
            if suffix.isEmpty, bound().contains(where: { $0.name == name && $0.uid == getuid() }) {
                throw TunnelError(.config, "a tunnel named \(name) is already up")
            }
            // Held by another user: squatted.
            suffix = "/" + String(UInt64.random(in: 1...UInt64.max), radix: 16)
        }
    }

    /// Connected sockets of this user's tunnels named `name`: the plain
    /// name, then any suffixed one (squatting), each checked with
    /// SO_PEERCRED. Names that sock_diag says another uid holds are not
    /// tried. A full backlog (a neighbour's connect flood) is waited on and
    /// retried for up to `patience` seconds, not taken for "not up".
    static func candidates(_ name: String, patience: Double = 10) throws(TunnelError) -> [Int32] {
        try validate(name)
        let me = getuid()
        var names: [String] = []
        for b in bound() where (b.name == name || b.name.hasPrefix(name + "/")) && (b.uid == nil || b.uid == me) {
            names.append(b.name)
        }
        // The plain name first.
        names.sort { (a: String, b: String) -> Bool in a.count != b.count ? a.count < b.count : a < b }
        var out: [Int32] = []
        let deadline = monotonicNanos() + UInt64(patience * 1e9)
        for n in names {
            var (sa, len) = address(n)
            while true {
                let fd = try sys("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
                // A blocking connect to a full backlog waits for a free slot
                // (the kernel queues the waiters), at most this long per try.
                var wait = timeval(tv_sec: 0, tv_usec: 250_000)
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
                let r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, len) } }
                let e = errno
                if r == 0 {
                    guard peerIsUs(fd) else { close(fd); break }
                    // A supervisor answers at once; "down" answers when the tunnel is gone.
                    var tv = timeval(tv_sec: 30, tv_usec: 0)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                    out.append(fd)
                    break
                }
                close(fd)
                guard (e == EAGAIN || e == EINTR || e == EINPROGRESS), monotonicNanos() < deadline else { break }
            }
        }
        return out
    }

    /// Connects to the tunnel `name` (one that runs as us).
    static func connect(_ name: String) throws(TunnelError) -> Int32 {
        var found = try candidates(name)
        guard !found.isEmpty else { throw TunnelError(.config, "no tunnel named \(name) is up (see `wgns list`)") }
        let fd = found.removeFirst()
        for other in found { close(other) }
        return fd
    }

    /// True when the peer of `fd` runs as our uid.
    static func peerIsUs(_ fd: Int32) -> Bool {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (needs _GNU_SOURCE to import).
        var cred: [UInt32] = [0, 0, 0]
        var len = socklen_t(12)
        return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred[1] == getuid()
    }

    /// Sends `line` and reads the one-line reply with its descriptors;
    /// throws unless the reply starts with `ok`.
    static func ask(_ name: String, _ line: String) throws(TunnelError) -> (reply: [Substring], fds: [Int32]) {
        let d = Descriptor(owning: try connect(name))
        do { try d.writeAll(Array((line + "\n").utf8)) } catch { throw TunnelError(.system, "tunnel \(name): send", errno: error) }
        var reader = LineReader()
        var fds: [Int32] = []
        while true {
            guard let got = try reader.receive(from: d.raw) else { break }
            fds += got
            if reader.buffer.contains(10) { break }
        }
        let text = reader.nextLine() ?? ""
        let words = text.split(separator: " ")
        guard words.first == "ok" else {
            fds.forEach { close($0) }
            throw TunnelError(.setup, "tunnel \(name): " + (text.isEmpty ? "no answer" : text))
        }
        return (Array(words.dropFirst()), fds)
    }

    /// Sends one request line and reads the reply until the other side closes.
    static func request(_ name: String, _ line: String) throws(TunnelError) -> String {
        let d = Descriptor(owning: try connect(name))
        do {
            try d.writeAll(Array((line + "\n").utf8))
            return String(decoding: try d.readAll(), as: UTF8.self)
        } catch { throw TunnelError(.system, "tunnel \(name): \(line)", errno: error) }
    }

    /// Abstract names bound under this user's prefix, without the prefix,
    /// and the uid that holds each (sock_diag; nil where the kernel does
    /// not say, or only /proc/net/unix could be read).
    static func bound() -> [(name: String, uid: UInt32?)] {
        let marker = "@" + prefix()
        if let found = try? UnixSocketDiag.listening(prefix: marker) {
            return found.map { (String($0.name.dropFirst(marker.count)), $0.uid) }
        }
        guard let text = try? FileIO.readAll("/proc/net/unix") else { return [] }
        var names = Set<String>()
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") {
            guard let path = line.split(separator: " ").last, path.hasPrefix(marker) else { continue }
            names.insert(String(path.dropFirst(marker.count)))
        }
        return names.sorted().map { ($0, nil) }
    }

    /// Names of this user's tunnels that are up: names bound by our uid
    /// (another user's squatting ones are not listed), told by the kernel,
    /// not by a connect that a neighbour's flood could starve.
    public static func list() -> [String] {
        var out = Set<String>()
        let me = getuid()
        for (n, uid) in bound() {
            let base = String(n.split(separator: "/", maxSplits: 1).first ?? "")
            guard !out.contains(base) else { continue }
            if uid == me { out.insert(base); continue }
            guard uid == nil, let fds = try? candidates(base), !fds.isEmpty else { continue }
            fds.forEach { close($0) }
            out.insert(base)
        }
        return out.sorted()
    }

    /// Stops the tunnel `name` and returns once it is gone.
    public static func down(_ name: String) throws(TunnelError) {
        _ = try request(name, "down")
    }

    /// Moves the calling process into the user, network and mount namespaces
    /// of tunnel `name` (root there, so the WireGuard devices can be read,
    /// wireguard-go's sockets included). The process stays there: call it
    /// from a short-lived, single-threaded process (setns into a user
    /// namespace requires one thread).
    public static func enterAsHolder(_ name: String) throws(TunnelError) {
        let (_, fds) = try ask(name, "admin")
        defer { fds.forEach { close($0) } }
        guard fds.count == 3 else { throw TunnelError(.setup, "tunnel \(name) passed \(fds.count) namespaces, not 3") }
        try enter(name, [(fds[0], CWGShim_CLONE_NEWUSER), (fds[2], CWGShim_CLONE_NEWNET), (fds[1], CWGShim_CLONE_NEWNS)])
        _ = chdir("/")
    }

    /// setns into each of `fds` in order.
    static func enter(_ name: String, _ fds: [(Int32, Int32)]) throws(TunnelError) {
        for (fd, flag) in fds { try sys("enter tunnel \(name)", code: .setup) { CWGShim_setns(fd, flag) } }
    }

    /// The WireGuard devices of tunnel `name`, read from inside (both
    /// backends). Enters the tunnel's namespaces first: see `enterAsHolder`.
    public static func devices(_ name: String) throws(TunnelError) -> [Device] {
        if let builtin = try builtinDevices(name), !builtin.isEmpty { return builtin }
        try enterAsHolder(name)
        do { return try WireGuardClient(socketDirectory: Namespace.runtimeDirectory() + "/" + Namespace.socketFolder).devices() } catch {
            throw TunnelError(.system, wrapping: error)
        }
    }

    /// The devices of tunnel `name`'s builtin data planes, as its supervisor
    /// reads them (`devices`: `ok N`, then `NAME LENGTH` and UAPI text each);
    /// nil from a supervisor that does not know the request. The reply holds
    /// keys and is wiped.
    static func builtinDevices(_ name: String) throws(TunnelError) -> [Device]? {
        let d = Descriptor(owning: try connect(name))
        var reply: [UInt8]
        do {
            try d.writeAll(Array("devices\n".utf8))
            reply = try d.readAll()
        } catch { throw TunnelError(.system, "tunnel \(name): devices", errno: error) }
        defer { KeyStore.wipe(&reply) }
        var pos = 0
        func line() -> String? {
            guard let nl = reply[pos...].firstIndex(of: 10) else { return nil }
            defer { pos = nl + 1 }
            return String(decoding: reply[pos..<nl], as: UTF8.self)
        }
        guard let head = line(), head.hasPrefix("ok "), let count = Int(head.dropFirst(3)) else { return nil }
        var devices: [Device] = []
        for _ in 0..<count {
            guard let h = line() else { break }
            let parts = h.split(separator: " ")
            guard parts.count == 2, let n = Int(parts[1]), pos + n <= reply.count else {
                throw TunnelError(.setup, "tunnel \(name): malformed devices reply")
            }
            var text = Array(reply[pos..<(pos + n)])
            defer { KeyStore.wipe(&text) }
            pos += n
            do { devices.append(try Device(uapiText: text, name: String(parts[0]))) } catch {
                throw TunnelError(.setup, "tunnel \(name)", wrapping: error)
            }
        }
        return devices
    }

    /// Runs `command` inside the tunnel `name`, as its MapUid/MapGid, and
    /// returns its shell-style status. Must run single-threaded (setns into
    /// a user namespace requires it).
    public static func exec(_ name: String, _ command: [String]) throws(TunnelError) -> Int32 {
        var cwd = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let hasCwd = getcwd(&cwd, cwd.count) != nil
        // Exactly the job's containment: the tunnel's user namespace only
        // long enough to join the sandbox's network and pid namespaces, then
        // the sandbox's mount and user namespaces. Without them (the
        // sandbox is not up) it fails: never a fallback to the tunnel's own.
        let (_, fds) = try ask(name, "exec")
        defer { fds.forEach { close($0) } }
        guard fds.count == 5 else { throw TunnelError(.setup, "tunnel \(name) passed \(fds.count) namespaces, not 5") }
        try enter(name, [(fds[0], CWGShim_CLONE_NEWUSER), (fds[3], CWGShim_CLONE_NEWNET), (fds[4], CWGShim_CLONE_NEWPID),
                         (fds[2], CWGShim_CLONE_NEWNS), (fds[1], CWGShim_CLONE_NEWUSER)])
        if hasCwd { _ = chdir(cwd) } else { _ = chdir("/") }
        var opts = SpawnOptions()
        opts.deathSignal = SIGKILL
        // The command shares our process group and terminal, so the terminal's
        // signals reach it; we only wait, as system() does.
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        let child: ChildProcess
        do { child = try ChildProcess.spawn(command, opts) } catch {
            if error.isExec {
                throw TunnelError(.command, "\(command.first ?? ""): " + (error.errno == .noSuchFileOrDirectory ? "command not found" : "\(error.errno)"))
            }
            throw TunnelError(.command, "cannot start \(command.first ?? "")", errno: error.errno)
        }
        return child.wait().shellStatus
    }
}
