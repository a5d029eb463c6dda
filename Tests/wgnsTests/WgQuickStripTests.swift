import Foundation
import Testing
import TestSupport

/// `wgns strip` against `wg-quick strip` itself, byte for byte, on configs
/// written as wgns writes them and full of wg-quick's own keys (Table, the
/// four hooks with `%i` and `#`, SaveConfig, DNS, MTU, Address), which
/// both must drop; and `wgns check` reports those keys as accepted.
@Suite struct WgQuickStrip {
    @Test func stripMatchesWgQuickStrip() throws {
        guard which("wg-quick") != nil, getuid() == 0 else {
            Issue.record("wg-quick strip runs as root (it asks sudo otherwise), and wireguard-tools must be installed")
            return
        }
        let dir = NSTemporaryDirectory() + "wgns-wgq-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func key() throws -> String { try shell("'\(wgnsBinary)' genkey").stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
        func pub() throws -> String { try shell("'\(wgnsBinary)' genkey | '\(wgnsBinary)' pubkey").stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
        let configs = [
            """
            [Interface]
            PrivateKey = \(try key())
            ListenPort = 51820
            FwMark = 0x10
            Address = 10.99.0.2/24, fd99::2/64
            DNS = 10.99.0.53, corp.example
            MTU = 1400
            Table = 1234
            PreUp = echo pre
            PostUp = iptables -A FORWARD -i %i -j ACCEPT; echo "a=b"
            PostUp = nft add table inet wgq
            PreDown = echo down
            PostDown = nft delete table inet wgq
            SaveConfig = false

            [Peer]
            PublicKey = \(try pub())
            PresharedKey = \(try key())
            AllowedIPs = 10.99.0.0/24, fd98::/64
            Endpoint = 127.0.0.1:51999
            PersistentKeepalive = 25

            [Peer]
            PublicKey = \(try pub())
            AllowedIPs = 0.0.0.0/0
            """,
            """
            [Interface]
            PrivateKey = \(try key())
            Table = off
            SaveConfig = true
            PostUp = echo up

            [Peer]
            PublicKey = \(try pub())
            AllowedIPs = 10.1.0.0/16
            """,
        ]
        for (n, text) in configs.enumerated() {
            let path = "\(dir)/wgq\(n).conf"
            try (text + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o600)
            let ours = try run(wgnsBinary, ["strip", path])
            let theirs = try run(which("wg-quick")!, ["strip", path])
            #expect(ours.status == 0 && theirs.status == 0, "\(ours.stderr) \(theirs.stderr)")
            #expect(ours.stdout == theirs.stdout, "\(path)\nours:\n\(ours.stdout)\ntheirs:\n\(theirs.stdout)")
            #expect(!ours.stdout.contains("PostUp") && !ours.stdout.contains("Table"))
        }
        // check: every wg-quick key accepted, with its line.
        let check = try run(wgnsBinary, ["check", "\(dir)/wgq0.conf"])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("\(dir)/wgq0.conf:8: Table = 1234 accepted: routes into table 1234, no rules\n"))
        #expect(check.stdout.contains("\(dir)/wgq0.conf:10: PostUp accepted"))
        #expect(check.stdout.contains("\(dir)/wgq0.conf:13: PostDown accepted"))
        #expect(check.stdout.contains("SaveConfig = false accepted"))
        // SaveConfig = true: wgns up refuses it, and check says so.
        let refused = try run(wgnsBinary, ["check", "\(dir)/wgq1.conf"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("SaveConfig = true is refused"))
    }
}
