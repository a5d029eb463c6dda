#if canImport(Glibc)
import Glibc
#endif

/// Whether a file or folder that wgns acts on as its user could have been
/// written by someone else. A VPN folder and a config with hooks decide what
/// runs as the user (PreUp ... PostDown) and which keys and endpoints the
/// tunnel uses: in a group-writable project folder another member could swap
/// them for their own. So they must be owned by the user (or root) and not
/// writable by group or others; the config with hooks' folder too (whoever
/// may write a folder may replace the files in it).
public enum Ownership {
    /// Throws one line naming `path` and the fix unless `path` is owned by
    /// this process's uid (or root) and neither its group nor others may
    /// write it. `what` says what it is ("VPN folder", "config with hooks").
    public static func check(_ path: String, what: String) throws(TunnelError) {
        var st = stat()
        guard stat(path, &st) == 0 else { return }  // a missing file is someone else's error
        let me = getuid()
        if st.st_uid != me && st.st_uid != 0 {
            let owner = getpwuid(st.st_uid).map { String(cString: $0.pointee.pw_name) } ?? "uid \(st.st_uid)"
            throw TunnelError(.config, "\(path): this \(what) belongs to \(owner), not to you, and wgns would run what it says as you; use one of your own (\(what.hasPrefix("VPN") ? "`wgns vpn new`, or " : "")a copy you own)")
        }
        if st.st_mode & 0o022 != 0 {
            let who = st.st_mode & 0o002 != 0 ? "everyone" : "its group"
            throw TunnelError(.config, "\(path): this \(what) is writable by \(who), who could change what wgns runs as you; run `chmod go-w \(path)`")
        }
    }

    /// A VPN folder and the config wgns takes from it (`wgns up DIR`, `wgns hub DIR`).
    public static func checkVPN(_ dir: String, file: String) throws(TunnelError) {
        try check(dir, what: "VPN folder")
        try check(file, what: "VPN config")
    }

    /// A config with PreUp, PostUp, PreDown or PostDown, and its folder.
    static func checkHooks(_ c: TunnelConfig, file: String) throws(TunnelError) {
        let i = c.interface
        guard !(i.preUp.isEmpty && i.postUp.isEmpty && i.preDown.isEmpty && i.postDown.isEmpty) else { return }
        try check(file, what: "config with hooks")
        let dir = file.contains("/") ? String(file[..<file.lastIndex(of: "/")!]) : "."
        try check(dir.isEmpty ? "/" : dir, what: "folder of a config with hooks")
    }
}
