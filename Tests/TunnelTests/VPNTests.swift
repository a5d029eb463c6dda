import Foundation
import SystemPackage
import Testing
import TestSupport
import KeyStore
import WGNetlink
@testable import Tunnel

@Suite struct VPNGeneration {
    func tempDir() -> String { NSTemporaryDirectory() + "wgns-vpn-\(UUID().uuidString)" }

    @Test func addressesFollowTheRule() throws {
        let vpn = try VPN.generate(peerCount: 5, subnets: [IPPrefix("10.97.0.0/24")!, IPPrefix("fd97::/64")!],
                                   endpoint: Endpoint(host: "hub.example", port: 51820), presharedKeys: false)
        #expect(vpn.hub.interface.addresses.map(\.description) == ["10.97.0.1/24", "fd97::1/64"])
        for k in 1...5 {
            #expect(vpn.peers[k - 1].interface.addresses.map(\.description) == ["10.97.0.\(k + 1)/24", "fd97::\(k + 1)/64"])
            #expect(vpn.hub.peers[k - 1].allowedIPs.map(\.description) == ["10.97.0.\(k + 1)/32", "fd97::\(k + 1)/128"])
        }
        // A subnet given with host bits set still numbers from its network.
        let odd = try VPN.generate(peerCount: 300, subnets: [IPPrefix("10.1.2.3/16")!], endpoint: Endpoint(host: "h", port: 1), presharedKeys: false)
        #expect(odd.hub.interface.addresses[0].description == "10.1.0.1/16")
        #expect(odd.peers[299].interface.addresses[0].description == "10.1.1.45/16")
    }

    @Test func keysPairUp() throws {
        let vpn = try VPN.generate(peerCount: 3, subnets: [IPPrefix("10.97.0.0/24")!],
                                   endpoint: Endpoint(host: "127.0.0.1", port: 40000), presharedKeys: true)
        guard case .inline(let hubKey)? = vpn.hub.interface.privateKey else { Issue.record("no hub key"); return }
        for (i, peer) in vpn.peers.enumerated() {
            guard case .inline(let key)? = peer.interface.privateKey,
                  case .inline(let psk)? = peer.peers[0].presharedKey,
                  case .inline(let hubPsk)? = vpn.hub.peers[i].presharedKey else { Issue.record("missing keys"); return }
            #expect(peer.peers[0].publicKey == hubKey.publicKey)
            #expect(vpn.hub.peers[i].publicKey == key.publicKey)
            #expect(psk == hubPsk)
            #expect(peer.peers[0].persistentKeepalive == 25)
            // The host's loopback, as seen from inside a namespace.
            #expect(peer.peers[0].endpoint == Endpoint(host: "10.0.2.2", port: 40000))
            #expect(peer.namespace.hostLoopback == true)
        }
        #expect(Set(vpn.hub.peers.map(\.publicKey)).count == 3)
        #expect(vpn.hub.interface.listenPort == 40000)
        #expect(vpn.hub.interface.mtu == 65440)
        #expect(vpn.hub.namespace.forwardUDP == [PortForward(hostPort: 40000, namespacePort: 40000)])
    }

    @Test func refusesWhatCannotWork() throws {
        let ep = Endpoint(host: "h", port: 1)
        #expect(throws: TunnelError.self) { try VPN.generate(peerCount: 0, subnets: [IPPrefix("10.0.0.0/24")!], endpoint: ep, presharedKeys: false) }
        #expect(throws: TunnelError.self) { try VPN.generate(peerCount: 254, subnets: [IPPrefix("10.0.0.0/24")!], endpoint: ep, presharedKeys: false) }
        #expect(throws: TunnelError.self) { try VPN.generate(peerCount: 2, subnets: [IPPrefix("10.0.0.0/24")!, IPPrefix("10.1.0.0/24")!], endpoint: ep, presharedKeys: false) }
        // The largest VPN a /24 holds: the hub and 253 peers.
        let full = try VPN.generate(peerCount: 253, subnets: [IPPrefix("10.0.0.0/24")!], endpoint: ep, presharedKeys: false)
        #expect(full.peers.last?.interface.addresses.first?.description == "10.0.0.254/24")
    }

    @Test func writtenFilesArePrivateParseAndAreNotReplaced() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vpn = try VPN.generate(peerCount: 4, subnets: [IPPrefix("10.97.0.0/24")!], endpoint: Endpoint(host: "h", port: 9), presharedKeys: true)
        try vpn.write(to: dir, overwrite: false)
        let mode = { (p: String) in ((try? FileManager.default.attributesOfItem(atPath: p)[.posixPermissions]) as? NSNumber)?.intValue }
        #expect(mode(dir) == 0o700)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["hub.conf", "peer-1.conf", "peer-2.conf", "peer-3.conf", "peer-4.conf"])
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            #expect(mode("\(dir)/\(name)") == 0o600)
        }
        #expect(try TunnelConfig(contentsOf: VPN.hubPath(dir)) == vpn.hub)
        #expect(try TunnelConfig(contentsOf: VPN.peerPath(dir, 2)) == vpn.peers[1])
        #expect(throws: TunnelError.self) { try vpn.write(to: dir, overwrite: false) }
        // Replacing with a smaller VPN leaves no stale peers behind.
        let small = try VPN.generate(peerCount: 2, subnets: [IPPrefix("10.97.0.0/24")!], endpoint: Endpoint(host: "h", port: 9), presharedKeys: false)
        try small.write(to: dir, overwrite: true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["hub.conf", "peer-1.conf", "peer-2.conf"])
    }

    @Test func commandLine() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ok = try run(wgnsBinary, ["vpn", "new", dir, "--peers", "1000", "--subnet", "10.97.0.0/22", "--endpoint", "127.0.0.1:51820", "--psk"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try run(wgnsBinary, ["check", VPN.hubPath(dir), VPN.peerPath(dir, 1000)]).status == 0)
        let again = try run(wgnsBinary, ["vpn", "new", dir, "--peers", "2", "--endpoint", "h:1"])
        #expect(again.status == 1)
        #expect(again.stderr.contains("--force"))
        let badSubnet = try run(wgnsBinary, ["vpn", "new", dir + "x", "--peers", "2", "--subnet", "10.0.0.0", "--endpoint", "h:1"])
        #expect(badSubnet.status == 64)
        #expect(badSubnet.stderr.contains("--subnet '10.0.0.0'"))
        #expect(!FileManager.default.fileExists(atPath: dir + "x"))
        let badEndpoint = try run(wgnsBinary, ["vpn", "new", dir + "y", "--peers", "2", "--endpoint", "nowhere:99999"])
        #expect(badEndpoint.status == 64)
        #expect(badEndpoint.stderr == "wgns: --endpoint 'nowhere:99999': expected HOST, HOST:PORT, 1.2.3.4:PORT or [v6]:PORT\n")
        #expect(!FileManager.default.fileExists(atPath: dir + "y"))
        // No --endpoint: no port anywhere; the hub publishes one.
        let open = try run(wgnsBinary, ["vpn", "new", dir + "z", "--peers", "2"])
        defer { try? FileManager.default.removeItem(atPath: dir + "z") }
        #expect(open.status == 0, "\(open.stderr)")
        let hub = try TunnelConfig(contentsOf: VPN.hubPath(dir + "z"))
        #expect(hub.interface.listenPort == nil && hub.namespace.forwardUDP.isEmpty)
        #expect(try TunnelConfig(contentsOf: VPN.peerPath(dir + "z", 2)).peers.first?.endpoint == nil)
        // --endpoint HOST (no port): the hub publishes that name with the port it picks.
        let named = try run(wgnsBinary, ["vpn", "new", dir + "z", "--peers", "2", "--endpoint", "node7.example", "--force"])
        #expect(named.status == 0, "\(named.stderr)")
        #expect(try String(contentsOfFile: VPN.advertisePath(dir + "z"), encoding: .utf8) == "node7.example\n")
        #expect(try TunnelConfig(contentsOf: VPN.hubPath(dir + "z")).interface.listenPort == nil)
        let numbered = try run(wgnsBinary, ["vpn", "new", dir + "z", "--peers", "2", "--endpoint", "node7.example:4000", "--force"])
        #expect(numbered.status == 0)
        #expect(!FileManager.default.fileExists(atPath: VPN.advertisePath(dir + "z")))
        #expect(try TunnelConfig(contentsOf: VPN.peerPath(dir + "z", 1)).peers.first?.endpoint == Endpoint(host: "node7.example", port: 4000))
    }

    @Test func withoutEndpointNothingNamesAPort() throws {
        let vpn = try VPN.generate(peerCount: 3, subnets: [IPPrefix("10.97.0.0/24")!], endpoint: nil, presharedKeys: false)
        #expect(vpn.hub.interface.listenPort == nil)
        #expect(vpn.hub.namespace.forwardUDP.isEmpty)
        #expect(vpn.hub.namespace.carrier == .pasta)
        #expect(vpn.peers.allSatisfy { $0.peers.first?.endpoint == nil && $0.namespace.hostLoopback == nil })
        #expect(vpn.peers.allSatisfy { $0.peers.first?.persistentKeepalive == VPN.keepalive })
    }

    @Test func hostsNameEveryMemberInBothFamilies() {
        let text = VPN.hostsEntries(subnets: [IPPrefix("10.97.0.0/24")!, IPPrefix("fd97::/64")!], peerCount: 2)
        let lines = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(lines == ["10.97.0.1 hub.vpn hub", "fd97::1 hub.vpn hub",
                          "10.97.0.2 peer-1.vpn peer-1", "fd97::2 peer-1.vpn peer-1",
                          "10.97.0.3 peer-2.vpn peer-2", "fd97::3 peer-2.vpn peer-2"])
        // The members come first, the host's own file after them.
        let file = VPN.hostsFile(adding: text)
        #expect(file.hasPrefix(text))
        #expect(file.hasSuffix(try! String(contentsOfFile: "/etc/hosts", encoding: .utf8)))
    }

    @Test func endpointFileRoundTripsAndItsLivenessIsJudged() throws {
        let me = HubEndpoint.ofThisProcess(Endpoint(host: "node1", port: 4242))
        #expect(me.text.hasPrefix("node1:4242\nhub \(HubEndpoint.nodeName()) "))
        #expect(HubEndpoint(text: me.text) == me)
        #expect(HubEndpoint(text: "node1:4242\n") == nil)
        #expect(HubEndpoint(text: "node1\nhub a b 1 2\n") == nil)
        let dir = tempDir()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(HubEndpoint.read(dir) == .absent)
        // This process on this node: live. The same pid with another start
        // time (a reused pid), or a pid that is gone: stale.
        let fd = try me.publish(in: dir)
        #expect(HubEndpoint.read(dir) == .live(me))
        let mode = (try FileManager.default.attributesOfItem(atPath: VPN.endpointPath(dir))[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        HubEndpoint.unpublish(in: dir, fd: fd)
        #expect(HubEndpoint.read(dir) == .absent)
        var reused = me
        reused.startTime += 1
        try Data(reused.text.utf8).write(to: URL(fileURLWithPath: VPN.endpointPath(dir)))
        #expect(HubEndpoint.read(dir) == .stale(reused))
        // Another node: no lock held on the file, so its hub is gone.
        var elsewhere = me
        elsewhere.node = "some-other-node"
        try Data(elsewhere.text.utf8).write(to: URL(fileURLWithPath: VPN.endpointPath(dir)))
        #expect(HubEndpoint.read(dir) == .stale(elsewhere))
        try Data("garbage\n".utf8).write(to: URL(fileURLWithPath: VPN.endpointPath(dir)))
        #expect(HubEndpoint.read(dir) == .malformed)
        #expect(throws: TunnelError.self) { try HubEndpoint.wait(dir, seconds: 0.1) }
    }

    /// The race between picking the hub's port and pasta binding it, with
    /// real sockets: a port taken after the pick fails the reservation; a
    /// socket that joins the reservation, or a pasta that bound nothing, fails
    /// the check after pasta is up. Each is the EADDRINUSE that makes the
    /// hub try another port.
    @Test func pickedPortRaceIsDetected() throws {
        func hubPlan() -> UpPlan {
            var plan = UpPlan()
            var c = TunnelConfig()
            c.interface.addresses = [IPPrefix("10.97.0.1/24")!]
            plan.interfaces = [.init(name: "wg0", config: c, mtu: 1420)]
            plan.hub = HubState(readyMessage: "up", peerCount: 1, picksPort: true)
            return plan
        }
        func udp(_ port: UInt16, reuse: Bool) -> Int32 {
            let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var one: Int32 = 1
            if reuse { setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) }
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            let ok = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
            if !ok { close(s); return -1 }
            return s
        }
        // Taken between the pick and the reservation.
        var plan = hubPlan()
        try Hub.pickPort(&plan)
        let port = plan.hub!.port
        #expect(plan.forwardUDP == [PortForward(hostPort: port, namespacePort: port)])
        #expect(plan.interfaces[0].config.interface.listenPort == port)
        let thief = udp(port, reuse: false)
        #expect(thief >= 0)
        #expect(Hub.reserve(&plan)?.errno == .addressInUse)
        close(thief)

        // Reserved: a plain bind cannot join; nobody else bound: "pasta did not bind".
        plan = hubPlan()
        try Hub.pickPort(&plan)
        #expect(Hub.reserve(&plan) == nil)
        let p2 = plan.hub!.port
        #expect(udp(p2, reuse: false) == -1)
        #expect(Hub.confirm(plan)?.message == "pasta did not bind the picked UDP port \(p2) on the host")
        // The reservation is gone after the check.
        let after = udp(p2, reuse: false)
        #expect(after >= 0)
        close(after)

        // One socket beside the reservation, as pasta's: accepted. Two: refused.
        plan = hubPlan()
        try Hub.pickPort(&plan)
        #expect(Hub.reserve(&plan) == nil)
        let p3 = plan.hub!.port
        let pasta = udp(p3, reuse: true)
        #expect(pasta >= 0)
        #expect(Hub.confirm(plan) == nil)
        close(pasta)
        plan = hubPlan()
        try Hub.pickPort(&plan)
        #expect(Hub.reserve(&plan) == nil)
        let p4 = plan.hub!.port
        let a = udp(p4, reuse: true), b = udp(p4, reuse: true)
        #expect(a >= 0 && b >= 0)
        #expect(Hub.confirm(plan)?.message == "another socket took the picked UDP port \(p4) on the host while pasta started")
        close(a); close(b)
    }
}
