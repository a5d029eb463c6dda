import Foundation
import Testing
@testable import Tunnel

/// What wgns reads off the parts it drives, judged on the real ones.
@Suite struct CompatTests {
    /// Debian 12's wireguard-go (0.0.20220316) wants a TUN without
    /// IFF_NO_PI; Debian 13's (0.0.20231211, which says v0.0.20230223)
    /// wants one with it and with IFF_VNET_HDR offloads, when
    /// scripts/matrix/run.sh has made that root (or build-cache has it).
    @Test func wireguardGoTUNFlavour() throws {
        #expect(WireGuardGoTUN.of("/usr/bin/wireguard-go") == .packetInformation)
        #expect(WireGuardGoTUN.of("/bin/true") == .ownDevice)
        #expect(WireGuardGoTUN.of("/nonexistent") == .ownDevice)
        let cache = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../matrix-cache").standardized.path
        for root in (try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? [] where root.hasPrefix("trixie-") {
            #expect(WireGuardGoTUN.of("\(cache)/\(root)/usr/bin/wireguard-go") == .offloads)
        }
        // Debian 13's, wherever the tests find it: TUN offloads as it makes
        // its own TUN with them.
        if let go13 = BuiltinTests.wireguardGo13 { #expect(WireGuardGoTUN.of(go13) == .offloads) }
    }

    @Test func wireguardModuleInModulesDep() {
        let dep = """
            kernel/net/ipv4/udp_tunnel.ko:
            kernel/drivers/net/wireguard/wireguard.ko.xz: kernel/net/ipv4/udp_tunnel.ko kernel/net/ipv6/ip6_udp_tunnel.ko
            kernel/drivers/net/tun.ko:
            """
        #expect(Doctor.wireguardModule(inModulesDep: Array(dep.utf8)) == "kernel/drivers/net/wireguard/wireguard.ko.xz")
        #expect(Doctor.wireguardModule(inModulesDep: Array("extra/wireguard.ko:\n".utf8)) == "extra/wireguard.ko")
        #expect(Doctor.wireguardModule(inModulesDep: Array("kernel/net/foo/notwireguard.ko:\nkernel/x/wireguard.ko.bak:\n".utf8)) == nil)
    }

    /// The carriers here accept every option wgns gives them.
    @Test func carriersKnowTheOptions() {
        for kind in CarrierKind.allCases where kind.program.map({ findExecutable($0) != nil }) == true {
            guard case .usable = Doctor.carrier(kind) else {
                Issue.record("\(kind.rawValue): \(Doctor.carrier(kind))")
                continue
            }
        }
    }
}
