import Foundation
import KeyStore
import Testing
import TestSupport
@testable import WGNetlink

/// A folder for one test's files, owned by the user the namespace scripts
/// run as, mode 0700; removed by `cleanup()`.
struct TestFolder {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "wgns-netlink-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try chownToTestUser(path)
    }

    /// Writes `text` to `name` (mode 0600) and returns its path.
    func write(_ name: String, _ text: String) throws -> String {
        let p = "\(path)/\(name)"
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        chmod(p, 0o600)
        try chownToTestUser(p)
        return p
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }

    private func chownToTestUser(_ p: String) throws {
        guard getuid() == 0, let user = testUser, let pw = getpwnam(user) else { return }
        chown(p, pw.pointee.pw_uid, pw.pointee.pw_gid)
    }
}

/// A config in exactly the form `wg showconf` prints, so that read-backs can
/// be compared byte for byte.
func showconfText(privateKey: PrivateKey?, listenPort: UInt16 = 0, fwmark: UInt32 = 0, peers: [String]) -> String {
    var s = "[Interface]\n"
    if listenPort != 0 { s += "ListenPort = \(listenPort)\n" }
    if fwmark != 0 { s += "FwMark = 0x\(String(fwmark, radix: 16))\n" }
    if let k = privateKey { s += "PrivateKey = \(k.base64Secret())\n" }
    s += "\n" + peers.joined(separator: "\n")
    return s
}

/// One `[Peer]` block as `wg showconf` prints it.
func peerText(_ key: PublicKey, psk: PresharedKey? = nil, allowedIPs: [String] = [], endpoint: String? = nil,
              keepalive: UInt16 = 0) -> String {
    var s = "[Peer]\nPublicKey = \(key.base64)\n"
    if let psk { s += "PresharedKey = \(psk.base64Secret())\n" }
    if !allowedIPs.isEmpty { s += "AllowedIPs = \(allowedIPs.joined(separator: ", "))\n" }
    if let endpoint { s += "Endpoint = \(endpoint)\n" }
    if keepalive != 0 { s += "PersistentKeepalive = \(keepalive)\n" }
    return s
}

/// Runs `body` (shell) in a fresh user + network + mount + pid namespace
/// with a private /run and a wireguard-go device `wgtest0` in it. The daemon
/// is stopped by the script's exit trap and, should the shell end without
/// running it, killed by the kernel with the pid namespace;
/// `inFreshNamespace` checks that nothing is left.
func withWireGuardGo(_ body: String) throws -> RunResult {
    try inFreshNamespace("""
        mount -t tmpfs -o mode=0755 tmpfs /run
        mkdir -p /run/wireguard
        WG_PROCESS_FOREGROUND=1 wireguard-go -f wgtest0 >/dev/null 2>&1 &
        wgpid=$!
        trap 'kill $wgpid; wait $wgpid 2>/dev/null || true' EXIT
        while [ ! -S /run/wireguard/wgtest0.sock ]; do sleep 0.01; done
        \(body)
        """, mount: true, pidNamespace: true)
}

/// A showconf text with its peer blocks sorted: wireguard-go keeps peers in
/// a hash map, so the order it lists them in is not the order they were set.
func peersSorted(_ text: String) -> String {
    var blocks = text.components(separatedBy: "\n\n")
    guard blocks.count > 2 else { return text }
    for i in blocks.indices where !blocks[i].hasSuffix("\n") { blocks[i] += "\n" }
    return ([blocks[0]] + blocks.dropFirst().sorted()).joined(separator: "\n")
}

/// The part of `text` between `--- NAME` and the next `--- ` line.
func section(_ text: String, _ name: String) -> String {
    guard let start = text.range(of: "--- \(name)\n") else { return "<missing \(name)>" }
    let rest = text[start.upperBound...]
    let end = rest.range(of: "\n--- ")?.lowerBound ?? rest.endIndex
    var s = String(rest[..<end])
    if rest.range(of: "\n--- ") != nil { s += "\n" }
    return s
}

@Suite(.serialized, .enabled(if: which("wireguard-go") != nil && which("wg") != nil))
struct UserspaceWireGuardTests {
    let folder: TestFolder
    init() throws { folder = try TestFolder() }

    /// wgns setconf, then `wg showconf` (the oracle) and `wgns showconf` both print the file back.
    @Test(arguments: [0, 1, 1000])
    func setconfReadsBackAsWritten(peerCount: Int) throws {
        defer { folder.cleanup() }
        var peers: [String] = []
        for i in 0..<peerCount {
            let a = i % 250 + 1, b = i / 250
            peers.append(peerText(PrivateKey.generate().publicKey,
                                  psk: i % 3 == 0 ? PresharedKey.generate() : nil,
                                  allowedIPs: ["10.\(b).\(a).0/24", IPPrefix("fd00::\(String(i, radix: 16)):0/112")!.description],
                                  endpoint: i % 2 == 0 ? "127.0.0.1:\(20000 + i)" : "[::1]:\(20000 + i)",
                                  keepalive: i % 5 == 0 ? 25 : 0))
        }
        let want = showconfText(privateKey: .generate(), listenPort: 51820, fwmark: 0xca6c, peers: peers)
        let file = try folder.write("want.conf", want)
        let r = try withWireGuardGo("""
            "$WGNS" setconf wgtest0 \(file)
            echo "--- wg"; wg showconf wgtest0
            echo "--- wgns"; "$WGNS" showconf wgtest0
            echo "--- end"
            """)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(peersSorted(section(r.stdout, "wg")) == peersSorted(want))
        #expect(peersSorted(section(r.stdout, "wgns")) == peersSorted(want))
    }

    /// What `wg setconf` sets, wgns reads the same: showconf byte for byte,
    /// `show --json` field for field against `wg show dump`.
    @Test func wgSetsWgnsReads() throws {
        defer { folder.cleanup() }
        let psk = PresharedKey.generate()
        let peers = [
            peerText(PrivateKey.generate().publicKey, psk: psk, allowedIPs: ["10.0.0.2/32", "fd00::2/128"],
                     endpoint: "[fd00::1]:51821", keepalive: 25),
            peerText(PrivateKey.generate().publicKey, allowedIPs: ["0.0.0.0/0"], endpoint: "192.0.2.1:1"),
            peerText(PrivateKey.generate().publicKey),
        ]
        let want = showconfText(privateKey: .generate(), listenPort: 4500, peers: peers)
        let file = try folder.write("want.conf", want)
        let r = try withWireGuardGo("""
            wg setconf wgtest0 \(file)
            echo "--- wgns"; "$WGNS" showconf wgtest0
            echo "--- json"; "$WGNS" show wgtest0 --json
            echo "--- dump"; wg show wgtest0 dump
            echo "--- pretty"; "$WGNS" show wgtest0
            echo "--- names"; "$WGNS" show interfaces; wg show interfaces
            echo "--- end"
            """)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(peersSorted(section(r.stdout, "wgns")) == peersSorted(want))
        let dump = section(r.stdout, "dump").split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        let json = try JSONSerialization.jsonObject(with: Data(section(r.stdout, "json").utf8)) as? [String: Any]
        #expect(json?["interface"] as? String == "wgtest0")
        #expect(json?["publicKey"] as? String == dump.first?[1])
        #expect(json?["listenPort"] as? Int == 4500)
        #expect(json?["privateKey"] == nil)
        let jpeers = json?["peers"] as? [[String: Any]] ?? []
        #expect(jpeers.count == 3)
        // Matched by key: wireguard-go lists peers in hash-map order.
        let dumpByKey = Dictionary(dump.dropFirst().map { ($0[0], $0) }, uniquingKeysWith: { a, _ in a })
        #expect(Set(jpeers.compactMap { $0["publicKey"] as? String }) == Set(dumpByKey.keys))
        for j in jpeers {
            guard let d = dumpByKey[j["publicKey"] as? String ?? ""] else { continue }
            #expect(j["publicKey"] as? String == d[0])
            #expect((j["hasPresharedKey"] as? Bool) == (d[1] != "(none)"))
            #expect((j["endpoint"] as? String ?? "(none)") == d[2])
            let ips = (j["allowedIPs"] as? [String] ?? []).joined(separator: ",")
            #expect((ips.isEmpty ? "(none)" : ips) == d[3])
            #expect("\(j["latestHandshake"] as? Int ?? -1)" == d[4])
            #expect("\(j["transferRx"] as? Int ?? -1)" == d[5])
            #expect("\(j["transferTx"] as? Int ?? -1)" == d[6])
            let k = j["persistentKeepalive"] as? Int ?? -1
            #expect((k == 0 ? "off" : "\(k)") == d[7])
        }
        #expect(section(r.stdout, "names") == "wgtest0\nwgtest0\n")
        // Secrets stay out of `show`.
        let pretty = section(r.stdout, "pretty")
        #expect(pretty.contains("private key: (hidden)"))
        #expect(pretty.contains("preshared key: (hidden)"))
        #expect(!pretty.contains(psk.base64Secret()))
        #expect(!section(r.stdout, "json").contains(psk.base64Secret()))
    }

    /// `wgns show IFACE FIELD` prints what `wg show IFACE FIELD` prints, for
    /// every field, for one device and for `all` (lines compared sorted:
    /// wireguard-go lists peers in hash-map order).
    @Test func everyFieldAsWgPrintsIt() throws {
        defer { folder.cleanup() }
        let peers = [
            peerText(PrivateKey.generate().publicKey, psk: .generate(), allowedIPs: ["10.0.0.2/32", "fd00::2/128"],
                     endpoint: "[fd00::1]:51821", keepalive: 25),
            peerText(PrivateKey.generate().publicKey, allowedIPs: ["0.0.0.0/0"], endpoint: "192.0.2.1:1"),
            peerText(PrivateKey.generate().publicKey),
        ]
        let file = try folder.write("want.conf", showconfText(privateKey: .generate(), listenPort: 4500, fwmark: 0x1234, peers: peers))
        let fields = ["public-key", "private-key", "listen-port", "fwmark", "peers", "preshared-keys", "endpoints",
                      "allowed-ips", "latest-handshakes", "transfer", "persistent-keepalive", "dump"]
        var script = "wg setconf wgtest0 \(file)\n"
        for f in fields {
            for i in ["wgtest0", "all"] {
                script += "echo '--- wg \(i) \(f)'; wg show \(i) \(f)\necho '--- wgns \(i) \(f)'; \"$WGNS\" show \(i) \(f)\n"
            }
        }
        script += "echo '--- bad'; \"$WGNS\" show wgtest0 bogus || echo \"status $?\"\necho '--- end'\n"
        let r = try withWireGuardGo(script)
        #expect(r.status == 0, "\(r.stderr)")
        func lines(_ s: String) -> [String] { s.split(separator: "\n").map(String.init).sorted() }
        for f in fields {
            for i in ["wgtest0", "all"] {
                var want = lines(section(r.stdout, "wg \(i) \(f)"))
                // Debian 12's wg (1.0.20210914) names the interface only on the
                // first line of `wg show all endpoints`; later wg, and wgns,
                // on every line.
                if i == "all" && f == "endpoints" { want = want.map { $0.hasPrefix("wgtest0\t") ? $0 : "wgtest0\t" + $0 }.sorted() }
                #expect(lines(section(r.stdout, "wgns \(i) \(f)")) == want, "\(i) \(f)")
                #expect(!want.isEmpty, "\(i) \(f)")
            }
        }
        #expect(section(r.stdout, "bad").hasSuffix("status 64\n"))
        #expect(r.stderr.contains("wgns: unknown field 'bogus'"))
    }

    /// syncconf removes peers not in the file and clears what the file
    /// dropped; addconf adds; setconf replaces; result judged by `wg showconf`.
    @Test func syncAddAndReplace() throws {
        defer { folder.cleanup() }
        let key = PrivateKey.generate()
        let k = (0..<4).map { _ in PrivateKey.generate().publicKey }
        let psk = PresharedKey.generate()
        let base = showconfText(privateKey: key, listenPort: 1000, peers: [
            peerText(k[0], psk: psk, allowedIPs: ["10.0.0.1/32"], keepalive: 10),
            peerText(k[1], allowedIPs: ["10.0.0.2/32"]),
            peerText(k[2], allowedIPs: ["10.0.0.3/32"]),
        ])
        let synced = showconfText(privateKey: key, listenPort: 1000, peers: [
            peerText(k[0], allowedIPs: ["10.0.0.1/32", "10.9.0.0/16"]),
            peerText(k[2], allowedIPs: ["10.0.0.3/32"]),
        ])
        let extra = "[Peer]\nPublicKey = \(k[3].base64)\nAllowedIPs = 10.0.0.4/32\n"
        let added = synced + "\n" + peerText(k[3], allowedIPs: ["10.0.0.4/32"])
        let replaced = showconfText(privateKey: nil, listenPort: 2000, peers: [peerText(k[1])])
        let f1 = try folder.write("base.conf", base), f2 = try folder.write("synced.conf", synced)
        let f3 = try folder.write("extra.conf", extra), f4 = try folder.write("replaced.conf", replaced)
        let r = try withWireGuardGo("""
            wg setconf wgtest0 \(f1)
            "$WGNS" syncconf wgtest0 \(f2)
            echo "--- sync"; wg showconf wgtest0
            "$WGNS" addconf wgtest0 \(f3)
            echo "--- add"; wg showconf wgtest0
            "$WGNS" setconf wgtest0 \(f4)
            echo "--- set"; wg showconf wgtest0
            echo "--- end"
            """)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(peersSorted(section(r.stdout, "sync")) == peersSorted(synced))
        #expect(peersSorted(section(r.stdout, "add")) == peersSorted(added))
        #expect(peersSorted(section(r.stdout, "set")) == peersSorted(replaced))
    }

    /// wg-quick keys and the [Namespace] section are accepted and ignored.
    @Test func acceptsWgQuickFiles() throws {
        defer { folder.cleanup() }
        let key = PrivateKey.generate(), peer = PrivateKey.generate().publicKey
        let file = try folder.write("quick.conf", """
            [Interface]
            PrivateKey = \(key.base64Secret())
            ListenPort = 3000
            Address = 10.0.0.2/24, fd00::2/64
            DNS = 10.0.0.1
            MTU = 1420
            [Peer]
            PublicKey = \(peer.base64)
            AllowedIPs = 0.0.0.0/0, ::/0
            Endpoint = localhost:51820
            [Namespace]
            Carrier = pasta
            """)
        let r = try withWireGuardGo("""
            "$WGNS" setconf wgtest0 \(file)
            wg showconf wgtest0
            """)
        #expect(r.status == 0, "\(r.stderr)")
        let want = showconfText(privateKey: key, listenPort: 3000, peers: [
            peerText(peer, allowedIPs: ["0.0.0.0/0", "::/0"], endpoint: r.stdout.contains("[::1]") ? "[::1]:51820" : "127.0.0.1:51820"),
        ])
        #expect(r.stdout == want)
    }

    /// A script that ends without stopping its wireguard-go (trap removed,
    /// as when the shell dies) still leaves no process behind: the daemon
    /// dies with the script's pid namespace. `inFreshNamespace` records an
    /// issue for any process of the run that is still alive.
    @Test func daemonDoesNotOutliveScript() throws {
        defer { folder.cleanup() }
        let r = try withWireGuardGo("""
            kill -0 $wgpid
            echo "running $wgpid"
            trap - EXIT
            """)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("running "))
    }

    /// Errors: one line, naming the device or file, non-zero exit.
    @Test func errors() throws {
        defer { folder.cleanup() }
        let bad = try folder.write("bad.conf", "[Interface]\nListenPort = nope\n")
        let r = try withWireGuardGo("""
            cd \(folder.path)
            for args in "showconf nosuch0" "show nosuch0 --json" "showconf lo" "setconf wgtest0 \(bad)" "setconf wgtest0 \(folder.path)/missing.conf"; do
              if "$WGNS" $args 2>err >/dev/null; then echo "unexpected success: $args"; fi
              echo "$(wc -l <err) $(cat err)"
            done
            """)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        #expect(lines.allSatisfy { $0.hasPrefix("1 wgns: ") })
        #expect(lines[0] == "1 wgns: no such WireGuard device nosuch0")
        #expect(lines[1] == "1 wgns: no such WireGuard device nosuch0")
        #expect(lines[2] == "1 wgns: lo is not a WireGuard device")
        #expect(lines[3].contains("bad.conf:2"))
        #expect(lines[4].contains("missing.conf"))
    }
}
