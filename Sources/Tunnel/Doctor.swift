import KeyStore
import CWGShim
#if canImport(Glibc)
import Glibc
#endif

/// `wgns doctor`: checks each prerequisite of `wgns up` on this machine and
/// says what to run when one is missing.
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

    /// Runs every check. `probeUserNamespace` runs a fresh process that tries
    /// `unshare(CLONE_NEWUSER|CLONE_NEWNET)` and returns nil on success or the
    /// reason it failed (the check cannot run in this multi-threaded process).
    public static func run(probeUserNamespace: () -> String?) -> [Finding] {
        var out: [Finding] = []

        // User namespaces: the sysctls that can forbid them, then a real try.
        var userns = Finding(status: .ok, what: "user namespaces", detail: "unprivileged user + network namespaces work")
        if let max = readTrimmed("/proc/sys/user/max_user_namespaces"), max == "0" {
            userns = Finding(status: .fail, what: "user namespaces", detail: "user.max_user_namespaces is 0",
                             fix: "sudo sysctl -w user.max_user_namespaces=15000")
        } else if let v = readTrimmed("/proc/sys/kernel/unprivileged_userns_clone"), v == "0" {
            userns = Finding(status: .fail, what: "user namespaces", detail: "kernel.unprivileged_userns_clone is 0",
                             fix: "sudo sysctl -w kernel.unprivileged_userns_clone=1")
        } else if let v = readTrimmed("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"), v == "1",
                  let reason = probeUserNamespace() {
            userns = Finding(status: .fail, what: "user namespaces",
                             detail: "AppArmor restricts unprivileged user namespaces (\(reason))",
                             fix: "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for wgns")
        } else if let reason = probeUserNamespace() {
            userns = Finding(status: .fail, what: "user namespaces", detail: "unshare failed: \(reason)",
                             fix: "ask the administrator to allow unprivileged user namespaces")
        }
        out.append(userns)

        // Carriers.
        let slirp = findExecutable("slirp4netns"), pasta = findExecutable("pasta")
        for (name, path, package) in [("slirp4netns", slirp, "slirp4netns"), ("pasta", pasta, "passt")] {
            if let path {
                out.append(Finding(status: .ok, what: name, detail: "\(path) \(version(of: path))"))
            } else {
                out.append(Finding(status: slirp == nil && pasta == nil ? .fail : .warn, what: name, detail: "not installed",
                                   fix: "sudo apt-get install \(package)"))
            }
        }

        // WireGuard: the kernel's, else wireguard-go (which needs /dev/net/tun).
        let kernel = kernelWireGuard()
        let wggo = findExecutable("wireguard-go")
        out.append(Finding(status: kernel.available ? .ok : (wggo == nil ? .fail : .warn), what: "kernel WireGuard",
                           detail: kernel.detail,
                           fix: kernel.available ? nil : "load it (sudo modprobe wireguard) or use the userspace backend"))
        if let wggo {
            out.append(Finding(status: .ok, what: "wireguard-go", detail: "\(wggo) \(version(of: wggo))"))
        } else {
            out.append(Finding(status: kernel.available ? .warn : .fail, what: "wireguard-go", detail: "not installed",
                               fix: "sudo apt-get install wireguard-go"))
        }
        let tunFD = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        if tunFD >= 0 {
            close(tunFD)
            out.append(Finding(status: .ok, what: "/dev/net/tun", detail: "readable and writable"))
        } else {
            let reason = String(cString: strerror(errno))
            out.append(Finding(status: kernel.available || wggo == nil ? .warn : .fail, what: "/dev/net/tun",
                               detail: "cannot open: \(reason) (needed by wireguard-go)",
                               fix: "sudo chmod 0666 /dev/net/tun"))
        }

        // Libraries wgns is linked with (present, or this binary would not start).
        out.append(Finding(status: .ok, what: "libsodium", detail: libsodiumVersion))
        out.append(Finding(status: .ok, what: "libmnl", detail: "linked"))
        if let wg = findExecutable("wg") {
            out.append(Finding(status: .ok, what: "wg (optional)", detail: "\(wg) \(version(of: wg))"))
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

    /// The first line a program prints for `--version`.
    static func version(of path: String) -> String {
        let line = firstLine(of: [path, "--version"]).line
        return line.isEmpty ? "" : "(\(line))"
    }

    /// Runs a program (`popen`, stdin from /dev/null, stderr with stdout)
    /// and returns the first line it prints, trimmed, and its wait status.
    public static func firstLine(of argv: [String]) -> (line: String, status: Int32) {
        let quoted = argv.map { "'" + $0.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'" }
        guard let f = popen(quoted.joined(separator: " ") + " 2>&1 </dev/null", "r") else { return ("", -1) }
        var buf = [CChar](repeating: 0, count: 256)
        let line = fgets(&buf, Int32(buf.count), f) != nil ? buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }.trimmingWhitespace() : ""
        return (line, pclose(f))
    }

    static func readTrimmed(_ path: String) -> String? {
        guard let bytes = try? FileIO.readAll(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
    }

    /// Tries `unshare(CLONE_NEWUSER | CLONE_NEWNET)` in this process. Call only
    /// first thing in a fresh, single-threaded process (`wgns _probe-userns`).
    public static func probeUserNamespaceHere() -> Int32 {
        CWGShim_unshare(CWGShim_CLONE_NEWUSER | CWGShim_CLONE_NEWNET) == 0 ? 0 : errno
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var utf8 = Array(self.utf8)
        return utf8.withUnsafeMutableBufferPointer { str(trimmed(Bytes($0))) }
    }
}
