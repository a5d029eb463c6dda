import Foundation

/// The unprivileged user the tests run wgns as when they run as root:
/// `WGNS_TEST_USER` (scripts/host-setup.sh makes the user and exports it),
/// or nil when unset or when the tests do not run as root (wgns then runs
/// as whoever runs the tests). Pasta refuses root, and rootless is the point.
public let testUser: String? = {
    guard getuid() == 0, let name = ProcessInfo.processInfo.environment["WGNS_TEST_USER"], !name.isEmpty,
          getpwnam(name) != nil else { return nil }
    return name
}()

/// The folder of the shell jobs the tests run (Tests/jobs): `member.sh`, the
/// member job of every multi-node test, and `upload-recv`/`upload-send`,
/// the one upload checked end to end.
public let jobsFolder = "\(packageRoot)/Tests/jobs"

/// The folder of the longer shell scenarios the Swift tests run (Tests/scripts).
public let scriptsFolder = "\(packageRoot)/Tests/scripts"

/// A work folder for wgns under /tmp, owned by the user the tests run wgns
/// as (`testUser`, else this process's), holding its own copies of the wgns
/// binary (`wgns`) and of Tests/jobs (`jobs/`): the checkout may be
/// unreadable to the test user. Removed at deinit.
public final class TestFolder {
    /// The folder's path (/tmp/wgns-KIND-XXXXXXXX).
    public let path: String
    /// The user wgns runs as (`testUser`), or nil for this process's own.
    public let user: String?
    /// The uid and gid that own the folder and what `write` puts in it.
    public let uid: uid_t
    public let gid: gid_t

    /// Makes /tmp/wgns-KIND-XXXXXXXX (mode 0755) with `wgns` and `jobs/` in it.
    public init(_ kind: String) throws {
        path = "/tmp/wgns-\(kind)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        if let name = testUser, let pw = getpwnam(name) {
            user = name
            uid = pw.pointee.pw_uid
            gid = pw.pointee.pw_gid
        } else {
            user = nil
            uid = getuid()
            gid = getgid()
        }
        chmod(path, 0o755)
        chown(path, uid, gid)
        try FileManager.default.copyItem(atPath: wgnsBinary, toPath: "\(path)/wgns")
        chmod("\(path)/wgns", 0o755)
        try FileManager.default.copyItem(atPath: jobsFolder, toPath: "\(path)/jobs")
        chmod("\(path)/jobs", 0o755)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes a file in the folder, owned by the user wgns runs as.
    public func write(_ name: String, _ text: String, mode: mode_t = 0o600) throws {
        let file = "\(path)/\(name)"
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        chmod(file, mode)
        chown(file, uid, gid)
    }
}
