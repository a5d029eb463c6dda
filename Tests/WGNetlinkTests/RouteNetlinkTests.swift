import Foundation
import Testing
import TestSupport
@testable import WGNetlink

/// rtnetlink against the real kernel, in fresh user + network namespaces
/// (a multi-threaded test runner cannot unshare itself, so each case runs
/// the test helper `wgns-rtnl`'s steps in a child `unshare -Urn`), with
/// iproute2's `ip` as the judge.
@Suite(.serialized) struct RouteNetlinkTests {
    @Test func linksAddressesRoutesRules() throws {
        let r = try inFreshNamespace(String(contentsOfFile: "\(scriptsFolder)/rtnl-links.sh", encoding: .utf8))
        #expect(r.status == 0, "\(r.stderr)")
        let parts = r.stdout.components(separatedBy: "---\n")
        #expect(parts.count == 2)
        let ours = parts[0].split(separator: "\n").map(String.init)
        let ip = parts.count == 2 ? parts[1] : ""
        #expect(ours.contains { $0.hasSuffix(" lo - 65536 up") })
        #expect(ours.contains { $0.hasSuffix(" d0 veth 1400 up") })
        #expect(ours.contains { $0.hasSuffix(" d1 veth 1500 down") })
        #expect(ours.contains("none"))
        #expect(ours.contains("dev d0 via - src 10.1.0.2 mtu 1400"))
        #expect(ip.contains("mtu 1400"))
        #expect(ip.contains("inet 10.1.0.2/24"))
        #expect(ip.contains("inet6 fd00::2/64"))
        #expect(ip.contains("10.2.0.0/16 dev d0 scope link"))
        #expect(ip.contains("default dev d0 scope link"))
        #expect(ip.contains("default dev d0 metric 1024"))
        #expect(ip.contains("not from all fwmark 0xca6c lookup 51820"))
        #expect(ip.contains("from all lookup main suppress_prefixlength 0"))
        // The index line is the link's real index, as ip sees it.
        let index = ours.first { Int($0) != nil }
        #expect(index != nil && ip.contains("\(index!): d0@d1"))
    }

    @Test func removalUndoesEverything() throws {
        let r = try inFreshNamespace(String(contentsOfFile: "\(scriptsFolder)/rtnl-removal.sh", encoding: .utf8))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.contains("10.1.0.2"))
        #expect(!r.stdout.contains("fd00::2"))
        #expect(!r.stdout.contains("lookup 100"))
        #expect(!r.stdout.contains("suppress_prefixlength"))
        #expect(!r.stdout.contains("state UP"))
        let after = r.stdout.components(separatedBy: "---\n").last ?? ""
        #expect(!after.contains("d0") && !after.contains("d1"))
    }

    @Test func tunLinkAndMoveToAnotherNamespace() throws {
        // A TUN device (as wireguard-go makes) moved by fd into a second
        // network namespace of the same user namespace.
        let r = try inFreshNamespace(String(contentsOfFile: "\(scriptsFolder)/rtnl-tun-move.sh", encoding: .utf8))
        #expect(r.status == 0, "\(r.stderr)")
        let parts = r.stdout.components(separatedBy: "---\n")
        #expect(parts.count == 3)
        guard parts.count == 3 else { return }
        #expect(parts[0].contains(" t0 tun 1500 down"))
        #expect(!parts[1].contains("t0"))
        #expect(parts[2].contains(" t0 tun 1500 down"))
    }

    @Test func errorsSayWhatFailed() throws {
        let r = try inFreshNamespace("""
            "$RTNL" 'up nosuch' 2>&1 || true
            "$RTNL" 'veth d0 d1' 'veth d0 d2' 2>&1 || true
            "$RTNL" 'addr-add nosuch 10.0.0.1/8' 2>&1 || true
            "$RTNL" 'delete nosuch' 2>&1 || true
            "$RTNL" 'create x0 nosuchkind' 2>&1 || true
            """)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        #expect(lines.first == "wgns-rtnl: cannot set link nosuch up: no such device nosuch")
        #expect(lines.dropFirst().first?.hasPrefix("wgns-rtnl: cannot create veth link d0: already exists") == true)
        #expect(lines.contains("wgns-rtnl: cannot add address 10.0.0.1/8 to nosuch: no such device nosuch"))
        #expect(lines.contains { $0.hasPrefix("wgns-rtnl: cannot delete link nosuch: no such device nosuch") })
        #expect(lines.contains { $0.hasPrefix("wgns-rtnl: cannot create nosuchkind link x0: this kernel does not know link kind") })
    }

    @Test(.enabled(if: !kernelHasWireGuard)) func wireGuardLinkWithoutModule() throws {
        let r = try inFreshNamespace(#""$RTNL" 'create wg0 wireguard'"#)
        #expect(r.status == 1)
        #expect(r.stderr == "wgns-rtnl: cannot create wireguard link wg0: this kernel has no WireGuard module (use the userspace backend, wireguard-go)\n")
    }

    @Test(.enabled(if: getuid() == 0 && testUser != nil)) func permissionDeniedOutsideOwnNamespace() throws {
        // The unprivileged user in the host's namespaces has no CAP_NET_ADMIN there.
        let r = try run("/usr/bin/setpriv", ["--reuid", testUser!, "--regid", testUser!, "--clear-groups",
                                             builtProduct("wgns-rtnl"), "veth wgnsx0 wgnsx1"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("wgns-rtnl: cannot create veth link wgnsx0: permission denied: needs CAP_NET_ADMIN"))
    }

    @Test func socketClosesOnce() throws {
        let s = try NetlinkSocket(protocol: NETLINK_ROUTE_VALUE)
        s.close()
        s.close()
        let buffer = MessageBuffer(capacity: 64)
        buffer.start(type: 18, flags: 1)
        #expect(throws: NetlinkError.self) { try s.request(buffer, operation: "after close") }
    }
}

/// NETLINK_ROUTE without importing the C module into the tests.
let NETLINK_ROUTE_VALUE: Int32 = 0
