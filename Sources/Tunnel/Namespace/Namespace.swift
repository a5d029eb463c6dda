import CWGShim
import POSIX
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Namespace steps of the holder: entering fresh namespaces and preparing
/// the mount namespace the job will see.
enum Namespace {
    /// `unshare(CLONE_NEWUSER|CLONE_NEWNET|CLONE_NEWNS|CLONE_NEWPID)` and a
    /// single-id mapping that makes the caller root inside. Must run while
    /// the process is single-threaded (EINVAL otherwise).
    static func enter() throws(TunnelError) {
        let uid = getuid(), gid = getgid()
        let flags = CWGShim_CLONE_NEWUSER | CWGShim_CLONE_NEWNET | CWGShim_CLONE_NEWNS | CWGShim_CLONE_NEWPID
        if CWGShim_unshare(flags) != 0 {
            let e = errno
            throw TunnelError(.userNamespaces, Doctor.namespaceFailure(errno: e, step: "unshare"))
        }
        try writeFile("/proc/self/setgroups", "deny")
        try writeFile("/proc/self/uid_map", "0 \(uid) 1\n")
        try writeFile("/proc/self/gid_map", "0 \(gid) 1\n")
    }

    /// The network namespace's sysctls for a job without capabilities there:
    /// ICMP datagram sockets (`ping`) for the one group mapped in, and every
    /// port bindable (root of the job's own user namespace is no root here,
    /// so `MapUid = 0` could not otherwise bind a port below 1024). Best
    /// effort: an older kernel without a knob keeps its default.
    static func openNetworkToJob() {
        try? writeFile("/proc/sys/net/ipv4/ping_group_range", "0 0")
        try? writeFile("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")
    }

    /// Writes `text` to an existing file (no create, no truncate: for /proc files).
    static func writeFile(_ path: String, _ text: String) throws(TunnelError) {
        let fd = try sys("open \(path)", code: .setup) { open(path, O_WRONLY | O_CLOEXEC) }
        let d = Descriptor(owning: fd)
        do { try d.writeAll(Array(text.utf8)) } catch {
            throw TunnelError(.setup, "write \(path)", errno: error)
        }
    }

    /// Creates or replaces a regular file with `text` and `mode`.
    static func createFile(_ path: String, _ text: String, mode: mode_t = 0o644) throws(TunnelError) {
        let fd = try sys("create \(path)", code: .setup) { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        let d = Descriptor(owning: fd)
        do { try d.writeAll(Array(text.utf8)) } catch {
            throw TunnelError(.setup, "write \(path)", errno: error)
        }
    }

    static func mount(_ source: String?, _ target: String, _ type: String?, _ flags: UInt, _ data: String? = nil) throws(TunnelError) {
        try sys("mount \(type ?? "bind") on \(target)", code: .setup) {
            Glibc.mount(source, target, type, flags, data)
        }
    }

    /// Makes every mount private (nothing we do propagates) and mounts a
    /// fresh /proc for the new pid namespace.
    static func prepareMounts() throws(TunnelError) {
        try mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE))
        try mount("proc", "/proc", "proc", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC))
    }

    /// The folder under the runtime directory where wireguard-go puts its
    /// UAPI sockets: a tmpfs of its own, so that the job's mount namespace
    /// can drop it (see `JobSandbox`).
    static let socketFolder = "wireguard"
    /// The folder under the runtime directory that holds the files wgns
    /// generates for the namespace (resolv.conf, hosts): a tmpfs of its own,
    /// dropped from the job's mount namespace once they are mounted in place.
    static let generatedFolder = "wgns"

    /// Puts a private, empty tmpfs over `dir` (the runtime directory, /run)
    /// and mounts a private tmpfs on each of `DIR/wireguard` (mode 0700)
    /// and `DIR/wgns`. None of the host's entries come back: its unix
    /// sockets there (nscd, systemd-resolved, the system and the user's
    /// D-Bus, through which `systemd-run --user` starts a process outside
    /// every namespace) are ways out of the tunnel, in every mode. The
    /// user's runtime directory (`XDG_RUNTIME_DIR`, when it is under `dir`)
    /// and `DIR/lock` exist, empty and private.
    static func overlayRuntimeDirectory(_ dir: String) throws(TunnelError) {
        try mount("tmpfs", dir, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=0755")
        for (name, mode) in [(socketFolder, "0700"), (generatedFolder, "0755")] {
            let path = "\(dir)/\(name)"
            try sys("mkdir \(path)", code: .setup) { mkdir(path, 0o700) }
            try mount("tmpfs", path, "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), "mode=\(mode)")
        }
        _ = mkdir("\(dir)/lock", 0o755)
        _ = chmod("\(dir)/lock", 0o1777)
        if let xdg = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), xdg.hasPrefix(dir + "/"), !xdg.contains("/../") {
            var path = dir
            for part in xdg.dropFirst(dir.count + 1).split(separator: "/") {
                path += "/\(part)"
                _ = mkdir(path, 0o755)
            }
            _ = chmod(path, 0o700)
        }
    }

    /// Puts a private tmpfs over `dir` and binds every entry of the old one
    /// back (directories recursively, symlinks copied), except the names in
    /// `except`, which the caller fills in.
    static func overlayDirectory(_ dir: String, except: Set<String>) throws(TunnelError) {
        let old = try sys("open \(dir)", code: .setup) { open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(old) }
        try mount("tmpfs", dir, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=0755")
        let listFD = dup(old)
        guard let d = fdopendir(listFD) else { return }
        defer { closedir(d) }
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "." || name == ".." || except.contains(name) { continue }
            let source = "/proc/self/fd/\(old)/\(name)"
            let target = "\(dir)/\(name)"
            var st = stat()
            guard fstatat(old, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                guard mkdir(target, st.st_mode & 0o7777) == 0 else { continue }
                _ = Glibc.mount(source, target, nil, UInt(MS_BIND | MS_REC), nil)
            case S_IFLNK:
                var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlinkat(old, name, &buf, buf.count - 1)
                if n > 0 { _ = buf.withUnsafeBufferPointer { symlink($0.baseAddress!, target) } }
            default:
                let fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
                if fd >= 0 { close(fd) } else { continue }
                _ = Glibc.mount(source, target, nil, UInt(MS_BIND), nil)
            }
        }
    }

    /// The directory /var/run resolves to (normally /run).
    static func runtimeDirectory() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard realpath("/var/run", &buf) != nil else { return "/run" }
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Writes `text` as `dir/name` and mounts it read-only over `/etc/name`
    /// (or over the file a symlink there points to). A missing target (or a
    /// symlink to nowhere, such as a stopped resolver's stub file) gets a
    /// private /etc in this mount namespace: a tmpfs with the host's entries
    /// bound back, made read-only once the file is in place. The host's /etc
    /// is never written. The job cannot change the file: its own mount
    /// namespace inherits this bind mount locked read-only.
    static func installEtcFile(_ name: String, _ text: String, from dir: String) throws(TunnelError) {
        let source = "\(dir)/\(name)", target = "/etc/\(name)"
        try createFile(source, text)
        if Glibc.mount(source, target, nil, UInt(MS_BIND), nil) != 0 {
            let e = errno
            guard e == ENOENT else { throw TunnelError(.setup, "mount bind on \(target)", errno: Errno(rawValue: e)) }
            try overlayDirectory("/etc", except: [name])
            try createFile(target, "")
            try mount(source, target, nil, UInt(MS_BIND))
            try mount(nil, "/etc", nil, UInt(MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV))
        }
        try mount(nil, target, nil, UInt(MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV))
    }

    /// The namespace's resolv.conf: `servers` and `search` domains. No
    /// server at all (a full tunnel whose config names none) gives a file
    /// without a `nameserver` line, so that nothing resolves rather than
    /// queries leaving outside the tunnel.
    static func installResolvConf(servers: [String], search: [String], in dir: String) throws(TunnelError) {
        var text = "# generated by wgns for this namespace only\n"
        if servers.isEmpty { text += "# no DNS server: add DNS = ... to the config's [Interface]\n" }
        for s in servers { text += "nameserver \(s)\n" }
        if !search.isEmpty { text += "search \(search.joined(separator: " "))\n" }
        try installEtcFile("resolv.conf", text, from: dir)
    }
}
