import Testing
@testable import Tunnel
import WGNetlink
import KeyStore

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

    /// `check --resolve` and `up` quote a host name whole, but at most 12
    /// characters of a host that is no name: one glued to a key by a lost
    /// newline (`Endpoint = vpn.example PresharedKey = KEY:51820`) must not
    /// put the key into the error.
    @Test func unresolvedHostIsQuotedShort() {
        let key = PresharedKey.generate().base64Secret()
        for host in ["vpnPresharedKey=\(key)", "no-such-host.invalid"] {
            do {
                _ = try Resolver.resolve(Endpoint(host: host, port: 51820), prefer: .ipv4, context: "f.conf",
                                         policy: .init(retries: 0), notice: { _ in })
                Issue.record("resolved \(host)")
            } catch {
                let quoted = host.contains("=") ? "vpnPreshared...:51820" : "\(host):51820"
                #expect("\(error)".hasPrefix("f.conf: endpoint \(quoted) does not resolve"), "\(error)")
                #expect(!"\(error)".contains(key.prefix(6)), "\(error)")
            }
        }
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
