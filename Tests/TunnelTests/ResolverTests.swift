import Testing
@testable import Tunnel
import WGNetlink

/// What the resolver keeps of nsswitch.conf, and its retry policy.
@Suite struct ResolverTests {
    /// Only the services a static glibc has built in stay, in their order;
    /// actions and comments go; nothing usable means "files dns".
    @Test func hostServicesKeepsFilesAndDNS() {
        #expect(Resolver.hostServices(nsswitch: nil) == "files dns")
        #expect(Resolver.hostServices(nsswitch: "") == "files dns")
        #expect(Resolver.hostServices(nsswitch: "passwd: files\nhosts: sss ldap myhostname\n") == "files dns")
        #expect(Resolver.hostServices(nsswitch: "hosts:\tfiles mdns4_minimal [NOTFOUND=return] dns myhostname") == "files dns")
        #expect(Resolver.hostServices(nsswitch: "hosts: dns [ NOTFOUND = return ] files") == "dns files")
        #expect(Resolver.hostServices(nsswitch: "hosts: files\n# hosts: dns\n") == "files")
        #expect(Resolver.hostServices(nsswitch: "  hosts: FILES sss # dns") == "files")
        #expect(Resolver.hostServices(nsswitch: "ghosts: dns\nnetgroup: files") == "files dns")
    }

    /// An address endpoint is taken as it is, with no lookup and no retry.
    @Test func addressNeedsNoLookup() throws {
        var notices = 0
        let a = try Resolver.resolve(Endpoint(host: "fd00::1", port: 7), prefer: .ipv4,
                                     policy: .init(retries: 0), notice: { _ in notices += 1 })
        #expect(a.description == "[fd00::1]:7")
        #expect(notices == 0)
    }

    /// WG_ENDPOINT_RESOLUTION_RETRIES as wg reads it, and wg's pauses:
    /// 1 s, a fifth longer each time, at most 20 s.
    @Test func retryPolicyIsWgs() throws {
        #expect(try Resolver.RetryPolicy.parse(nil).retries == 15)
        #expect(try Resolver.RetryPolicy.parse("0").retries == 0)
        #expect(try Resolver.RetryPolicy.parse("infinity").retries == nil)
        #expect(throws: TunnelError.self) { try Resolver.RetryPolicy.parse("many") }
        #expect(throws: TunnelError.self) { try Resolver.RetryPolicy.parse("-1") }
        let p = Resolver.RetryPolicy(retries: 15)
        var pauses = [p.firstPause]
        for _ in 0..<20 { pauses.append(p.next(after: pauses.last!)) }
        #expect(Array(pauses.prefix(4)) == [1_000_000, 1_200_000, 1_440_000, 1_728_000])
        #expect(pauses.last == 20_000_000 && pauses.allSatisfy { $0 <= 20_000_000 })
    }
}
