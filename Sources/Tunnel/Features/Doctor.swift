import BuiltinWireGuard
import CWGShim
import KeyStore
import POSIX
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// `wgns doctor`: checks each prerequisite of `wgns up` on this machine and
/// says, in one line, what to run when one is missing. The same lines are
/// what `wgns up` says when it fails for one of these reasons.
///
/// What the machine says (`Facts`, read by `gather`) is kept apart from the
/// verdict (`assess`), so that every case can be judged in a test, including
/// those no kernel here can show (Ubuntu's AppArmor sysctl).
public enum Doctor {
    /// One finding.
    public struct Finding: Sendable, Hashable {
        /// How bad it is.
        public enum Status: String, Sendable, Hashable {
            /// Present and working.
            case ok
            /// Missing, but wgns can do without it (another option is there).
            case warn
            /// Missing, and `wgns up` cannot work without it.
            case fail
        }
        /// ok, warn or fail.
        public var status: Status
        /// What was checked ("user namespaces", "pasta").
        public var what: String
        /// What was found (a version, a path, a reason).
        public var detail: String
        /// The command or step that fixes it, when not ok.
        public var fix: String?
    }

    /// A reason `wgns up` cannot work here, with its fix.
    public struct Refusal: Sendable, Hashable, CustomStringConvertible {
        /// What the machine forbids ("user.max_user_namespaces = 0: ...").
        public var reason: String
        /// One line that fixes it.
        public var fix: String
        /// `reason (fix: fix)`: the one line `wgns up` prints.
        public var description: String { "\(reason) (fix: \(fix))" }
    }

    /// A carrier as found.
    public enum CarrierState: Sendable, Hashable {
        /// Not in PATH.
        case absent
        /// At this path, knows every option wgns gives it; its version line.
        case usable(path: String, version: String)
        /// At this path, but rejects an option wgns needs (the carrier's words).
        case tooOld(path: String, complaint: String)
    }

    /// Everything the verdict depends on, as read from this machine.
    public struct Facts: Sendable {
        /// /proc/sys/user/max_user_namespaces (nil if unreadable).
        public var maxUserNamespaces: String?
        /// /proc/sys/user/max_net_namespaces.
        public var maxNetNamespaces: String?
        /// /proc/sys/kernel/unprivileged_userns_clone (Debian's older kernels).
        public var unprivilegedUsernsClone: String?
        /// /proc/sys/kernel/apparmor_restrict_unprivileged_userns (Ubuntu 23.10 on).
        public var apparmorRestrictsUserns: String?
        /// A fresh process's try at what the holder does first (unshare,
        /// id maps, lo up): nil when it worked, else why not.
        public var userNamespaceProbe: String?
        /// Why /dev/net/tun cannot be opened read-write (nil: it can).
        public var tunProblem: Refusal?
        /// slirp4netns and pasta.
        public var slirp4netns: CarrierState = .absent
        public var pasta: CarrierState = .absent
        /// AppArmor is on and a profile for pasta is installed (its path).
        public var pastaAppArmorProfile: String?
        /// Kernel WireGuard: loaded, built in or a module on disk.
        public var kernelWireGuard: (available: Bool, detail: String) = (false, "")
        /// wireguard-go's path and version line.
        public var wireguardGo: (path: String, version: String)?
        /// wg (wireguard-tools), optional.
        public var wg: (path: String, version: String)?
        /// How many inotify instances one user may hold, and the sysctl that
        /// says so: the lower of fs.inotify.max_user_instances and this user
        /// namespace's user.max_inotify_instances. Each wireguard-go holds one.
        public var inotifyLimit: (sysctl: String, value: Int)?
        /// How many inotify instances this user's processes hold now (of
        /// those whose descriptors can be read).
        public var inotifyInUse = 0

        /// No facts yet.
        public init() {}
    }

    // MARK: The one-line reasons, shared with `wgns up`.

    /// The sysctl that forbids unprivileged user or network namespaces, as
    /// `facts` show it, or nil. `probe` is why a real try failed (nil: it
    /// worked, or was not made): AppArmor's restriction counts only then,
    /// since a profile may allow wgns.
    static func namespaceRefusal(_ f: Facts, probe: String?) -> Refusal? {
        if f.maxUserNamespaces == "0" {
            return Refusal(reason: "user namespaces are disabled on this machine (user.max_user_namespaces = 0)",
                           fix: "sudo sysctl -w user.max_user_namespaces=15000")
        }
        if f.maxNetNamespaces == "0" {
            return Refusal(reason: "network namespaces are disabled for users on this machine (user.max_net_namespaces = 0)",
                           fix: "sudo sysctl -w user.max_net_namespaces=15000")
        }
        if f.unprivilegedUsernsClone == "0" {
            return Refusal(reason: "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)",
                           fix: "sudo sysctl -w kernel.unprivileged_userns_clone=1")
        }
        if f.apparmorRestrictsUserns == "1", let probe {
            return Refusal(reason: "AppArmor forbids unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1): \(probe)",
                           fix: "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for wgns with the 'userns,' rule")
        }
        return nil
    }

    /// Why `wgns up` could not make its namespaces (the holder calls this
    /// when unshare or the id maps fail with `errno`): the sysctl that
    /// forbids them, read now, with its fix; else the error itself.
    public static func namespaceFailure(errno e: Int32, step: String) -> String {
        var f = Facts()
        readSysctls(&f)
        let what = "\(step): \(String(cString: strerror(e)))"
        if let r = namespaceRefusal(f, probe: what) { return "cannot create a user namespace: \(r)" }
        return "cannot create a user namespace (\(what)); `wgns doctor` tells why"
    }

    /// Why /dev/net/tun cannot serve the carriers and wireguard-go, or nil.
    /// Both carriers make their tap device through it, so every `wgns up`
    /// needs it.
    public static func tunRefusal() -> Refusal? {
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        if fd >= 0 { close(fd); return nil }
        let e = errno
        var st = stat()
        if e == ENOENT || stat("/dev/net/tun", &st) != 0 {
            return Refusal(reason: "/dev/net/tun is missing (slirp4netns, pasta and wireguard-go need it)",
                           fix: "sudo modprobe tun, or sudo mkdir -p /dev/net && sudo mknod -m 0666 /dev/net/tun c 10 200")
        }
        if e == EACCES || e == EPERM {
            let mode = String(st.st_mode & 0o777, radix: 8)
            return Refusal(reason: "/dev/net/tun is mode 0\(mode), not usable by you (slirp4netns, pasta and wireguard-go need it)",
                           fix: "sudo chmod 0666 /dev/net/tun")
        }
        return Refusal(reason: "cannot open /dev/net/tun: \(String(cString: strerror(e)))", fix: "sudo chmod 0666 /dev/net/tun")
    }

    /// What `wgns up` adds when wireguard-go could not start because
    /// `line`, its last words, says "too many open files" ("" otherwise):
    /// wireguard-go's first inotify instance (on its UAPI socket) fails with
    /// that when the user already holds as many as the kernel allows (128 by
    /// default), as 128 peers of one user on one host do.
    public static func wireguardGoHint(_ line: String) -> String {
        guard line.contains("too many open files") else { return "" }
        return "; most likely this user holds as many inotify instances as the kernel allows (fs.inotify.max_user_instances), "
            + "one per wireguard-go (fix: sudo sysctl -w fs.inotify.max_user_instances=1024; `wgns doctor` counts them)"
    }

    /// Fewer inotify instances left than this is a warning: a per-job VPN
    /// of that many userspace peers on this host would not start.
    static let inotifyHeadroom = 16

    // MARK: Reading the machine.

    /// Reads every fact. `probeUserNamespace` runs a fresh process that does
    /// what the holder does first (`probeUserNamespaceHere`) and returns nil
    /// on success or the reason it failed (the check cannot run in this
    /// multi-threaded process).
    public static func gather(probeUserNamespace: () -> String?) -> Facts {
        var f = Facts()
        readSysctls(&f)
        f.userNamespaceProbe = probeUserNamespace()
        f.tunProblem = tunRefusal()
        f.slirp4netns = carrier(.slirp4netns)
        f.pasta = carrier(.pasta)
        if readTrimmed("/sys/module/apparmor/parameters/enabled") == "Y" {
            f.pastaAppArmorProfile = ["/etc/apparmor.d/usr.bin.pasta", "/etc/apparmor.d/usr.bin.passt"].first { access($0, F_OK) == 0 }
        }
        f.kernelWireGuard = kernelWireGuard()
        if let p = findExecutable("wireguard-go") { f.wireguardGo = (p, firstLine(of: [p, "--version"]).line) }
        if let p = findExecutable("wg") { f.wg = (p, firstLine(of: [p, "--version"]).line) }
        f.inotifyLimit = inotifyLimit()
        f.inotifyInUse = inotifyInstancesInUse()
        return f
    }

    /// The lower of fs.inotify.max_user_instances (the whole machine's) and
    /// user.max_inotify_instances (this user namespace's; the kernel checks
    /// every level), with its name; nil if neither can be read.
    static func inotifyLimit() -> (sysctl: String, value: Int)? {
        let limits = [("fs.inotify.max_user_instances", "/proc/sys/fs/inotify/max_user_instances"),
                      ("user.max_inotify_instances", "/proc/sys/user/max_inotify_instances")]
            .compactMap { name, path in readTrimmed(path).flatMap(Int.init).map { (sysctl: name, value: $0) } }
        return limits.min { $0.value < $1.value }
    }

    /// The inotify instances ("anon_inode:inotify" descriptors) held by the
    /// processes of this user whose descriptors it may read.
    static func inotifyInstancesInUse() -> Int {
        let me = getuid()
        guard let proc = opendir("/proc") else { return 0 }
        defer { closedir(proc) }
        var count = 0
        var target = [CChar](repeating: 0, count: 64)
        while let e = readdir(proc) {
            let pid = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
            guard pid.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { continue }
            var st = stat()
            guard stat("/proc/\(pid)", &st) == 0, st.st_uid == me, let fds = opendir("/proc/\(pid)/fd") else { continue }
            while let fd = readdir(fds) {
                let name = withUnsafeBytes(of: fd.pointee.d_name) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
                let n = readlink("/proc/\(pid)/fd/\(name)", &target, target.count - 1)
                if n == 18, String(decoding: target[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == "anon_inode:inotify" { count += 1 }
            }
            closedir(fds)
        }
        return count
    }

    static func readSysctls(_ f: inout Facts) {
        f.maxUserNamespaces = readTrimmed("/proc/sys/user/max_user_namespaces")
        f.maxNetNamespaces = readTrimmed("/proc/sys/user/max_net_namespaces")
        f.unprivilegedUsernsClone = readTrimmed("/proc/sys/kernel/unprivileged_userns_clone")
        f.apparmorRestrictsUserns = readTrimmed("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    }

    /// Finds a carrier and has it parse every option wgns gives it (then
    /// `--version`, which makes it exit): an older one names the option it
    /// does not know.
    static func carrier(_ kind: CarrierKind) -> CarrierState {
        guard let path = findExecutable(kind.rawValue) else { return .absent }
        let (lines, status) = output(of: [path] + Carrier.optionProbe(kind))
        if status != 0 {
            let complaint = lines.first { $0.contains("unrecognized") || $0.contains("invalid") || $0.contains("unknown") }
                ?? lines.first ?? "exit status \(status)"
            return .tooOld(path: path, complaint: complaint)
        }
        // "slirp4netns version 1.2.0", "pasta 2023_03_29.b10b983" ("pasta
        // unknown version" in Debian 12's; nothing in Debian 13's); warnings
        // and pasta's AVX2 notice come before it.
        let version = lines.first { $0.hasPrefix(kind.rawValue + " ") } ?? ""
        return .usable(path: path, version: version)
    }

    // MARK: The verdict.

    /// Runs every check.
    public static func run(probeUserNamespace: () -> String?) -> [Finding] {
        assess(gather(probeUserNamespace: probeUserNamespace))
    }

    /// Whether `wgns up` can work, given these findings.
    public static func ready(_ findings: [Finding]) -> Bool { !findings.contains { $0.status == .fail } }

    /// The findings for `facts`.
    public static func assess(_ f: Facts) -> [Finding] {
        var out: [Finding] = []

        // User and network namespaces: the sysctls that forbid them, then a real try.
        if let r = namespaceRefusal(f, probe: f.userNamespaceProbe) {
            out.append(Finding(status: .fail, what: "user namespaces", detail: r.reason, fix: r.fix))
        } else if let reason = f.userNamespaceProbe {
            out.append(Finding(status: .fail, what: "user namespaces", detail: "a user + network namespace cannot be set up: \(reason)",
                               fix: "ask the administrator to allow unprivileged user namespaces"))
        } else {
            out.append(Finding(status: .ok, what: "user namespaces", detail: "unprivileged user + network namespaces work"))
        }

        if let r = f.tunProblem {
            out.append(Finding(status: .fail, what: "/dev/net/tun", detail: r.reason, fix: r.fix))
        } else {
            out.append(Finding(status: .ok, what: "/dev/net/tun", detail: "readable and writable"))
        }

        // What `wgns up` picks (UpPlan.prepare): the kernel's WireGuard where
        // the kernel has it, with a carrier; else the builtin backend,
        // which needs a carrier only for a split tunnel's other traffic.
        let k = f.kernelWireGuard
        let usable: [CarrierKind] = [(CarrierKind.slirp4netns, f.slirp4netns), (.pasta, f.pasta)].compactMap {
            if case .usable = $0.1 { return $0.0 } else { return nil }
        }
        let carrierNeeded = k.available
        for (kind, state, package) in [(CarrierKind.slirp4netns, f.slirp4netns, "slirp4netns"), (.pasta, f.pasta, "passt")] {
            let name = kind.rawValue
            let missing: Finding.Status = !usable.isEmpty ? .warn : carrierNeeded ? .fail : .warn
            switch state {
            case .absent:
                out.append(Finding(status: missing, what: name, detail: "not installed",
                                   fix: "sudo apt-get install \(package)" + (carrierNeeded ? "" : " (only a split tunnel on the builtin backend needs a carrier)")))
            case .tooOld(let path, let complaint):
                out.append(Finding(status: missing, what: name,
                                   detail: "\(path) is too old for wgns: \(complaint)",
                                   fix: "install a newer \(package) (wgns is tested with \(kind == .pasta ? "2023-03 and 2025" : "1.0.1 to 1.2.1")), or use the other carrier"))
            case .usable(let path, let version):
                out.append(Finding(status: .ok, what: name, detail: version.isEmpty ? path : "\(path) (\(version))"))
                if kind == .pasta, let profile = f.pastaAppArmorProfile {
                    out.append(Finding(status: .warn, what: "pasta's AppArmor profile",
                                       detail: "pasta runs confined by \(profile), which may deny it the namespace or its pid file",
                                       fix: "if pasta fails to start: --carrier slirp4netns, or sudo aa-complain pasta"))
                }
            }
        }

        // WireGuard: the kernel's, else the builtin one (always here);
        // wireguard-go only when asked for.
        out.append(Finding(status: .ok, what: "kernel WireGuard",
                           detail: k.available ? k.detail : "\(k.detail): the builtin backend is used instead"))
        if let w = f.wireguardGo {
            out.append(Finding(status: .ok, what: "wireguard-go", detail: (w.version.isEmpty ? w.path : "\(w.path) (\(w.version))") + ", for --backend wireguard-go"))
        } else {
            out.append(Finding(status: .ok, what: "wireguard-go", detail: "not installed (only --backend wireguard-go needs it)"))
        }
        let split = usable.first.map { "\($0.rawValue)" } ?? "none usable"
        let choice = k.available
            ? "backend kernel (the kernel has WireGuard: \(k.detail)), carrier \(usable.first?.rawValue ?? "none usable: install slirp4netns")"
            : "backend builtin (no kernel WireGuard; its UDP socket is on the host), no carrier for a full tunnel, an isolated job, a VPN member or a hub, \(split) for a split tunnel"
        out.append(Finding(status: k.available && usable.isEmpty ? .fail : .ok, what: "wgns up", detail: choice,
                           fix: k.available && usable.isEmpty ? "sudo apt-get install slirp4netns, or --backend builtin" : nil))

        // The userspace backend's one per-user limit: each wireguard-go
        // holds an inotify instance.
        if !k.available, f.wireguardGo != nil, let l = f.inotifyLimit {
            let room = max(0, l.value - f.inotifyInUse)
            let short = room < inotifyHeadroom
            out.append(Finding(status: short ? .warn : .ok, what: "inotify instances",
                               detail: "\(l.sysctl) = \(l.value), \(f.inotifyInUse) held by your processes: room for \(room) more userspace tunnels (each wireguard-go holds one)",
                               fix: short ? "sudo sysctl -w \(l.sysctl)=\(max(1024, 2 * l.value))" : nil))
        }

        // Libraries wgns is linked with (present, or this binary would not start).
        out.append(Finding(status: .ok, what: "libsodium", detail: libsodiumVersion))
        if let wg = f.wg {
            out.append(Finding(status: .ok, what: "wg (optional)", detail: wg.version.isEmpty ? wg.path : "\(wg.path) (\(wg.version))"))
        }
        return out
    }

    /// Whether this kernel has WireGuard: built in or loaded (in /sys/module),
    /// or a module for the running kernel (in its modules.dep, wherever it
    /// sits: kernel/, updates/, extra/ for DKMS builds), which the kernel
    /// loads itself when a wireguard link is first created.
    public static func kernelWireGuard() -> (available: Bool, detail: String) {
        if access("/sys/module/wireguard", F_OK) == 0 { return (true, "loaded") }
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        let dir = "/lib/modules/\(release)"
        if let module = wireguardModule(inModulesDep: (try? FileIO.readAll("\(dir)/modules.dep")) ?? []) {
            return (true, "module \(dir)/\(module) (loads when a wireguard link is created)")
        }
        return (false, "not in kernel \(release) (no wireguard module in \(dir)/modules.dep)")
    }

    /// The path of wireguard.ko (possibly compressed) in a modules.dep's
    /// text, or nil.
    static func wireguardModule(inModulesDep text: [UInt8]) -> String? {
        for line in text.split(separator: UInt8(ascii: "\n")) {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let path = line[line.startIndex..<colon]
            let name = path.split(separator: UInt8(ascii: "/")).last ?? path[...]
            for suffix in ["", ".xz", ".zst", ".gz"] where name.elementsEqual("wireguard.ko\(suffix)".utf8) {
                return String(decoding: path, as: UTF8.self)
            }
        }
        return nil
    }

    // MARK: Running programs.

    /// Runs a program (stdin /dev/null, stdout and stderr into one pipe)
    /// and returns its non-empty output lines, trimmed, and its shell status.
    static func output(of argv: [String]) -> (lines: [String], status: Int32) {
        var fds: [Int32] = [-1, -1]
        guard CWGShim_pipe2(&fds, O_CLOEXEC) == 0 else { return ([], -1) }
        let reader = Descriptor(owning: fds[0])
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devnull) }
        var opts = SpawnOptions()
        opts.fds = [devnull, fds[1], fds[1]]
        opts.deathSignal = SIGKILL
        let spawned = Result { () throws(ChildProcess.Failure) in try ChildProcess.spawn(argv, opts) }
        // Our copy of the write end goes, so that the child's exit is EOF.
        close(fds[1])
        guard case .success(let child) = spawned else { return ([], 127) }
        let bytes = (try? reader.readAll()) ?? []
        let status = child.wait().shellStatus
        let lines = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        return (lines, status)
    }

    /// The first line a program prints (stdout or stderr) and its shell status.
    public static func firstLine(of argv: [String]) -> (line: String, status: Int32) {
        let (lines, status) = output(of: argv)
        return (lines.first ?? "", status)
    }

    static func readTrimmed(_ path: String) -> String? {
        guard let bytes = try? FileIO.readAll(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
    }

    /// What the holder does first, in this process: `unshare` of a user and
    /// a network namespace, the id maps, then `lo` up (which needs the
    /// capabilities that AppArmor's userns restriction takes away). Returns
    /// nil or why it failed. Call only first thing in a fresh, single-threaded
    /// process (`wgns _probe-userns`).
    public static func probeUserNamespaceHere() -> String? {
        let uid = getuid(), gid = getgid()
        if CWGShim_unshare(CWGShim_CLONE_NEWUSER | CWGShim_CLONE_NEWNET) != 0 {
            return "unshare: \(String(cString: strerror(errno)))"
        }
        // wgns is undumpable from main's first line, which makes /proc/self
        // root's: the id maps could not be written. This process holds no
        // key (it only probes), so it may be dumpable, as the holder is for
        // the same writes.
        _ = CWGShim_set_dumpable(1)
        do {
            try Namespace.writeFile("/proc/self/setgroups", "deny")
            try Namespace.writeFile("/proc/self/uid_map", "0 \(uid) 1\n")
            try Namespace.writeFile("/proc/self/gid_map", "0 \(gid) 1\n")
            let routes = try RouteNetlink()
            defer { routes.close() }
            try routes.setLink("lo", up: true)
        } catch {
            return "\(error)"
        }
        // What the builtin backend (and a carrier's tap0) does inside: a TUN.
        do { _ = try TUNDevice.open(name: "wgnsprobe0", offloads: true).take() } catch {
            return "a TUN device in a user namespace: \(error.message)"
        }
        return nil
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var utf8 = Array(self.utf8)
        return utf8.withUnsafeMutableBufferPointer { str(trimmed(Bytes($0))) }
    }
}
