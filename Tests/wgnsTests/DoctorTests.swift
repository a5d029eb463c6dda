import Foundation
import Testing
import TestSupport

/// `wgns doctor` on this machine, and on machines made to lack things.
@Suite struct DoctorCommandTests {
    @Test func thisMachineIsReady() throws {
        let r = try run(wgnsBinary, ["doctor"])
        #expect(r.status == 0, "\(r.stdout)")
        #expect(r.stdout.contains("ok   user namespaces"))
        #expect(r.stdout.contains("ok   wireguard-go") || r.stdout.contains("ok   kernel WireGuard"))
        #expect(r.stdout.contains("ok   libsodium: 1."))
    }

    @Test func missingToolsAreNamedWithTheirFix() throws {
        let r = try run(wgnsBinary, ["doctor"], environment: ["PATH": "/nonexistent"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("fail slirp4netns: not installed"))
        #expect(r.stdout.contains("fix: sudo apt-get install passt"))
        #expect(r.stdout.contains("fix: sudo apt-get install wireguard-go"))
    }

    /// Inside a user namespace whose user.max_user_namespaces is 0, nested
    /// namespaces are forbidden, as on a cluster that disables them.
    @Test func disabledUserNamespacesAreReported() throws {
        let unshare = try #require(which("unshare"))
        let r = try run(unshare, ["-U", "-r", "/bin/sh", "-c", "echo 0 > /proc/sys/user/max_user_namespaces && exec '\(wgnsBinary)' doctor"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("fail user namespaces: user.max_user_namespaces is 0"))
        #expect(r.stdout.contains("sysctl -w user.max_user_namespaces="))
    }
}
