import Foundation
import Testing
import TestSupport

/// Runs `script` with `/bin/sh` in a fresh user + network (+ mount) namespace
/// (`unshare -Urn[m]`), with `$WGNS` set to the built wgns binary. With
/// `pidNamespace` the shell is pid 1 of a pid namespace of its own
/// (`-p --kill-child`; /proc still shows the host's pids), so whatever the
/// script starts (a wireguard-go daemon, say) is killed by the kernel when
/// the shell ends, however it ends. Every run checks that none of its
/// processes outlives it (`leftoverProcesses`). When the tests run as root and
/// `WGNS_TEST_USER` is set, the script runs as that unprivileged user, which
/// is the case wgns exists for.
func inFreshNamespace(_ script: String, mount: Bool = false, pidNamespace: Bool = false,
                      asTestUser: Bool = true) throws -> RunResult {
    let token = UUID().uuidString
    var argv = ["unshare", mount ? "-Urnm" : "-Urn"]
    if pidNamespace { argv += ["--pid", "--kill-child"] }
    argv += ["/bin/sh", "-c", "set -e\n" + script]
    if asTestUser, getuid() == 0, let user = testUser {
        argv = ["setpriv", "--reuid", user, "--regid", user, "--clear-groups"] + argv
    }
    var env = ProcessInfo.processInfo.environment
    env["WGNS"] = wgnsBinary
    env["RTNL"] = builtProduct("wgns-rtnl")
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    env["WGNS_TEST_RUN"] = token
    let r = try run("/usr/bin/env", argv, environment: env)
    let left = leftoverProcesses(token)
    #expect(left.isEmpty, "processes left behind by the namespace script: \(left)")
    return r
}

/// Processes still alive (not zombies) whose environment holds
/// `WGNS_TEST_RUN=token`: everything one `inFreshNamespace` run started
/// inherits it. Scoped by the token rather than by user, because other
/// suites and other people may run as the test user at the same time.
func leftoverProcesses(_ token: String) -> [String] {
    let needle = Array("WGNS_TEST_RUN=\(token)".utf8)
    var found: [String] = []
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(entry) != nil {
        guard let env = FileManager.default.contents(atPath: "/proc/\(entry)/environ"),
              env.split(separator: 0).contains(where: { $0.elementsEqual(needle) }) else { continue }
        let stat = (try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8)) ?? ""
        // "pid (comm) S ...": zombies are already dead, waiting to be reaped.
        if let close = stat.lastIndex(of: ")"), stat[close...].dropFirst(2).first == "Z" { continue }
        let cmd = (try? String(contentsOfFile: "/proc/\(entry)/cmdline", encoding: .utf8)) ?? ""
        found.append("\(entry) \(cmd.replacingOccurrences(of: "\0", with: " "))")
    }
    return found
}

/// True when this kernel has WireGuard loaded or loadable as a module that is already in.
let kernelHasWireGuard = FileManager.default.fileExists(atPath: "/sys/module/wireguard")
