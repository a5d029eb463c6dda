import Foundation
import Testing
import TestSupport
import Tunnel

/// `wgns doctor` on this machine, and on machines made to lack things. The
/// sysctl cases set the sysctl for real, inside a user namespace of the test's
/// own (the limits are per user namespace); scripts/vm/tests/50-doctor.sh sets
/// them machine-wide in the VM.
@Suite struct DoctorCommandTests {
    @Test func thisMachineIsReady() throws {
        let r = try run(wgnsBinary, ["doctor"])
        #expect(r.status == 0, "\(r.stdout)")
        #expect(r.stdout.contains("ok   user namespaces"))
        #expect(r.stdout.contains("ok   /dev/net/tun"))
        // Both carriers here know every option wgns gives them.
        #expect(r.stdout.contains("ok   slirp4netns: "))
        #expect(r.stdout.contains("ok   pasta: "))
        #expect(r.stdout.contains("ok   wireguard-go") || r.stdout.contains("ok   kernel WireGuard"))
        #expect(r.stdout.contains("ok   libsodium: 1."))
        #expect(r.stdout.hasSuffix("wgns up can work here\n"))
    }

    @Test func jsonSaysTheSame() throws {
        let r = try run(wgnsBinary, ["doctor", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["ready"] as? Bool == (r.status == 0))
        let findings = try #require(object["findings"] as? [[String: Any]])
        #expect(findings.contains { $0["what"] as? String == "user namespaces" && $0["status"] as? String == "ok" })
        #expect(findings.allSatisfy { ["ok", "warn", "fail"].contains($0["status"] as? String ?? "") })
    }

    /// No carrier and no wireguard-go: on a kernel without WireGuard the
    /// builtin backend still works (a carrier is only for split tunnels),
    /// and doctor says so; with kernel WireGuard the carrier is needed.
    @Test func missingToolsAreNamedWithTheirFix() throws {
        let r = try run(wgnsBinary, ["doctor"], environment: ["PATH": "/nonexistent"])
        let builtin = r.stdout.contains("the builtin backend is used instead")
        #expect(r.stdout.contains("slirp4netns: not installed"))
        #expect(r.stdout.contains("fix: sudo apt-get install passt"))
        #expect(r.stdout.contains("ok   wireguard-go: not installed (only --backend wireguard-go needs it)"), "\(r.stdout)")
        let j = try run(wgnsBinary, ["doctor", "--json"], environment: ["PATH": "/nonexistent"])
        if builtin {
            #expect(r.status == 0, "\(r.stdout)")
            #expect(r.stdout.contains("warn slirp4netns: not installed"))
            #expect(r.stdout.contains("ok   wgns up: backend builtin (no kernel WireGuard; its UDP socket is on the host), no carrier for a full tunnel, an isolated job, a VPN member or a hub, none usable for a split tunnel\n"), "\(r.stdout)")
            #expect(j.stdout.hasPrefix("{\"ready\":true,"))
        } else {
            #expect(r.status == 1)
            #expect(r.stdout.contains("fail slirp4netns: not installed"))
            #expect(j.stdout.hasPrefix("{\"ready\":false,"))
        }
    }

    /// In a user namespace of its own where /proc/sys/`file` is 0, runs
    /// `wgns doctor` and `wgns up` of a minimal config; stdout has
    /// "doctor status N" and "up status N".
    func doctorAndUp(withZeroIn file: String) throws -> RunResult {
        let unshare = try #require(which("unshare"))
        let dir = "/tmp/wgns-doctor-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try run(wgnsBinary, ["genkey"]).stdout
        try Data("[Interface]\nPrivateKey = \(key)Address = 10.99.0.2/24\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/job.conf"))
        chmod("\(dir)/job.conf", 0o600)
        let sh = "echo 0 > /proc/sys/\(file) && '\(wgnsBinary)' doctor; echo \"doctor status $?\"; "
            + "'\(wgnsBinary)' up --backend wireguard-go --carrier slirp4netns '\(dir)/job.conf' -- true; echo \"up status $?\""
        return try run(unshare, ["-U", "-r", "/bin/sh", "-c", sh])
    }

    /// Inside a user namespace whose user.max_user_namespaces (or
    /// user.max_net_namespaces) is 0, nested namespaces are forbidden, as on
    /// a cluster that disables them; doctor and `wgns up` say the same line.
    @Test(arguments: [("user.max_user_namespaces", "user/max_user_namespaces"),
                      ("user.max_net_namespaces", "user/max_net_namespaces")])
    func disabledNamespacesAreReported(sysctl: String, file: String) throws {
        let r = try doctorAndUp(withZeroIn: file)
        #expect(r.stdout.contains("doctor status 1"), "\(r.stdout)")
        #expect(r.stdout.contains("fail user namespaces: "))
        #expect(r.stdout.contains("(\(sysctl) = 0)"))
        #expect(r.stdout.contains("fix: sudo sysctl -w \(sysctl)=15000"))
        #expect(r.stdout.contains("up status 1"))
        let upError = r.stderr.split(separator: "\n").filter { $0.hasPrefix("wgns:") }
        #expect(upError.count == 1, "\(r.stderr)")
        #expect(upError.first?.contains("(\(sysctl) = 0) (fix: sudo sysctl -w \(sysctl)=15000)") == true, "\(r.stderr)")
    }

    /// Inside a user namespace whose user.max_inotify_instances is 0 (the
    /// kernel checks every level, so no process in it can make one), as for
    /// the 129th wireguard-go of one user: doctor warns with the sysctl, and
    /// `wgns up` names it beside wireguard-go's "too many open files".
    /// Where the kernel has WireGuard, doctor reports no inotify room (no
    /// wireguard-go runs): the test is then skipped, not passed.
    static let backendIsWireGuardGo = (try? run(wgnsBinary, ["doctor"]))?.stdout.contains("the builtin backend is used instead") == true

    @Test(.enabled(if: backendIsWireGuardGo, "the kernel has WireGuard: no wireguard-go, no inotify line"))
    func noInotifyInstanceLeftIsReported() throws {
        let r = try doctorAndUp(withZeroIn: "user/max_inotify_instances")
        #expect(r.stdout.contains("warn inotify instances: user.max_inotify_instances = 0, "), "\(r.stdout)")
        #expect(r.stdout.contains("room for 0 more userspace tunnels"))
        #expect(r.stdout.contains("fix: sudo sysctl -w user.max_inotify_instances=1024"))
        #expect(r.stdout.contains("doctor status 0"), "a warning only")
        #expect(r.stdout.contains("up status 1"))
        let upError = r.stderr.split(separator: "\n").filter { $0.hasPrefix("wgns:") }
        #expect(upError.count == 1, "\(r.stderr)")
        #expect(upError.first?.contains("too many open files; most likely this user holds as many inotify instances") == true, "\(r.stderr)")
    }
}

/// The verdicts for machines this host cannot be: Ubuntu's AppArmor
/// restriction (a sysctl Debian's kernels do not have), a carrier too old
/// for an option, no kernel WireGuard and no carrier.
@Suite struct DoctorVerdictTests {
    func healthy() -> Doctor.Facts {
        var f = Doctor.Facts()
        f.maxUserNamespaces = "15000"
        f.maxNetNamespaces = "15000"
        f.slirp4netns = .usable(path: "/usr/bin/slirp4netns", version: "slirp4netns version 1.2.1")
        f.pasta = .usable(path: "/usr/bin/pasta", version: "")
        f.kernelWireGuard = (true, "loaded")
        return f
    }

    func finding(_ what: String, _ fs: [Doctor.Finding]) -> Doctor.Finding? { fs.first { $0.what == what } }

    @Test func healthyIsReady() {
        #expect(Doctor.ready(Doctor.assess(healthy())))
    }

    @Test func appArmorRestrictionCountsOnlyWhenTheTryFails() throws {
        var f = healthy()
        f.apparmorRestrictsUserns = "1"
        #expect(Doctor.ready(Doctor.assess(f)), "a profile may allow wgns: then the real try works")
        f.userNamespaceProbe = "set lo up: Operation not permitted"
        let fs = Doctor.assess(f)
        #expect(!Doctor.ready(fs))
        let u = try #require(finding("user namespaces", fs))
        #expect(u.status == .fail)
        #expect(u.detail.contains("kernel.apparmor_restrict_unprivileged_userns = 1"))
        #expect(u.fix?.contains("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0") == true)
    }

    @Test func pastasAppArmorProfileIsAWarning() throws {
        var f = healthy()
        f.pastaAppArmorProfile = "/etc/apparmor.d/usr.bin.passt"
        let fs = Doctor.assess(f)
        #expect(Doctor.ready(fs))
        #expect(try #require(finding("pasta's AppArmor profile", fs)).status == .warn)
    }

    @Test func tooOldCarriers() throws {
        var f = healthy()
        f.pasta = .tooOld(path: "/usr/bin/pasta", complaint: "pasta: unrecognized option '--dns-forward'")
        var fs = Doctor.assess(f)
        #expect(Doctor.ready(fs), "slirp4netns is still there")
        #expect(try #require(finding("pasta", fs)).status == .warn)
        f.slirp4netns = .tooOld(path: "/usr/bin/slirp4netns", complaint: "slirp4netns: unrecognized option '--exit-fd=4'")
        fs = Doctor.assess(f)
        #expect(!Doctor.ready(fs))
        let s = try #require(finding("slirp4netns", fs))
        #expect(s.status == .fail)
        #expect(s.detail.contains("too old") && s.detail.contains("--exit-fd"))
    }

    /// Without kernel WireGuard and wireguard-go the builtin backend is
    /// used, and without carriers it still works for all but split
    /// tunnels; with kernel WireGuard, no carrier fails.
    @Test func noKernelWireGuardMeansBuiltin() throws {
        var f = healthy()
        f.kernelWireGuard = (false, "not in kernel 6.1.0")
        var fs = Doctor.assess(f)
        #expect(Doctor.ready(fs))
        #expect(try #require(finding("wgns up", fs)).detail.hasPrefix("backend builtin (no kernel WireGuard"))
        #expect(try #require(finding("wgns up", fs)).detail.hasSuffix(", slirp4netns for a split tunnel"))
        f.slirp4netns = .absent
        f.pasta = .absent
        fs = Doctor.assess(f)
        #expect(Doctor.ready(fs), "no carrier: only split tunnels need one")
        #expect(try #require(finding("slirp4netns", fs)).status == .warn)
        f.kernelWireGuard = (true, "loaded")
        fs = Doctor.assess(f)
        #expect(!Doctor.ready(fs))
        #expect(try #require(finding("wgns up", fs)).detail.hasPrefix("backend kernel (the kernel has WireGuard: loaded)"))
        #expect(try #require(finding("slirp4netns", fs)).status == .fail)
    }

    /// Each wireguard-go holds an inotify instance: the line counts the room
    /// left, warns when a VPN of a few userspace peers would no longer fit,
    /// and is not there when the kernel's WireGuard is used.
    @Test func inotifyInstancesForTheUserspaceBackend() throws {
        var f = healthy()
        f.inotifyLimit = ("fs.inotify.max_user_instances", 128)
        f.inotifyInUse = 40
        #expect(finding("inotify instances", Doctor.assess(f)) == nil, "kernel WireGuard needs none")
        f.kernelWireGuard = (false, "not in kernel 6.1.0")
        f.wireguardGo = ("/usr/bin/wireguard-go", "wireguard-go v0.0.20220316")
        let ok = try #require(finding("inotify instances", Doctor.assess(f)))
        #expect(ok.status == .ok)
        #expect(ok.detail == "fs.inotify.max_user_instances = 128, 40 held by your processes: room for 88 more userspace tunnels (each wireguard-go holds one)")
        #expect(ok.fix == nil)
        f.inotifyInUse = 120
        let fs = Doctor.assess(f)
        let short = try #require(finding("inotify instances", fs))
        #expect(short.status == .warn)
        #expect(short.detail.contains("room for 8 more"))
        #expect(short.fix == "sudo sysctl -w fs.inotify.max_user_instances=1024")
        #expect(Doctor.ready(fs), "a warning: one more tunnel still starts")
    }

    @Test func wireguardGoOutOfInotifyInstancesGetsTheHint() {
        let line = "ERROR: (wg0) 2026/12/02 01:24:59 Failed to listen on uapi socket: too many open files"
        #expect(Doctor.wireguardGoHint(line).contains("(fix: sudo sysctl -w fs.inotify.max_user_instances=1024;"))
        #expect(Doctor.wireguardGoHint("ERROR: (wg0) Failed to create TUN device: operation not permitted") == "")
    }
}
