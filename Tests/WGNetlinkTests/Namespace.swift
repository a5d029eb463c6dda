import Foundation
import TestSupport

/// Runs `script` with `/bin/sh` in a fresh user + network (+ mount) namespace
/// (`unshare -Urn[m]`), with `$WGNS` set to the built wgns binary. When the
/// tests run as root and `WGNS_TEST_USER` is set, the script runs as that
/// unprivileged user, which is the case wgns exists for.
func inFreshNamespace(_ script: String, mount: Bool = false, asTestUser: Bool = true) throws -> RunResult {
    var argv = ["unshare", mount ? "-Urnm" : "-Urn", "/bin/sh", "-c", "set -e\n" + script]
    if asTestUser, getuid() == 0, let user = testUser {
        argv = ["setpriv", "--reuid", user, "--regid", user, "--clear-groups"] + argv
    }
    var env = ProcessInfo.processInfo.environment
    env["WGNS"] = wgnsBinary
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    return try run("/usr/bin/env", argv, environment: env)
}

/// The unprivileged user `scripts/test.sh` made, when running as root.
let testUser: String? = {
    guard let u = ProcessInfo.processInfo.environment["WGNS_TEST_USER"], !u.isEmpty else { return nil }
    return u
}()

/// True when this kernel has WireGuard loaded or loadable as a module that is already in.
let kernelHasWireGuard = FileManager.default.fileExists(atPath: "/sys/module/wireguard")
