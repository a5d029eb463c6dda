import Foundation
import Testing
import TestSupport
import KeyStore
import WGNetlink
@testable import Tunnel

let configsDir = packageRoot + "/configs"
let exampleConfigs: [String] = (try? FileManager.default.contentsOfDirectory(atPath: configsDir))?
    .filter { $0.hasSuffix(".conf") }.sorted() ?? []

@Suite struct ConfigRoundTrip {
    @Test func examplesExist() { #expect(exampleConfigs.count >= 5) }

    /// parse → write → parse gives the same model, for every example.
    @Test(arguments: exampleConfigs)
    func roundTrip(name: String) throws {
        let first = try TunnelConfig(contentsOf: "\(configsDir)/\(name)")
        let text = try first.rendered()
        let second = try TunnelConfig(parsing: text, file: "rendered \(name)")
        #expect(first == second)
        #expect(try second.rendered() == text)
    }

    @Test func wgQuickLiberties() throws {
        let c = try TunnelConfig(contentsOf: "\(configsDir)/wg-quick-all.conf")
        #expect(c.interface.listenPort == 51821)
        #expect(c.interface.firewallMark == 0x1234)
        #expect(c.interface.addresses.map(\.description) == ["10.98.0.1/24", "fd98::1/64", "192.168.77.1/24"])
        #expect(c.interface.dnsServers.map(\.description) == ["1.1.1.1"])
        #expect(c.interface.dnsSearch == ["search.example"])
        #expect(c.interface.mtu == 1380)
        #expect(c.interface.table == "off")
        #expect(c.interface.preUp == ["echo pre-up"])
        #expect(c.interface.saveConfig == false)
        #expect(c.peers.count == 2)
        #expect(c.peers[0].allowedIPs.map(\.description) == ["10.98.0.2/32", "fd98::2/128", "10.99.0.0/16"])
        #expect(c.peers[0].persistentKeepalive == 0)
        #expect(c.peers[1].endpoint == Endpoint(host: "fd00::1", port: 443))
        #expect(c.peers[1].allowedIPs.map(\.description) == ["fd00::/8"])
        #expect(c.namespace.isEmpty)
    }

    @Test func namespaceSection() throws {
        let c = try TunnelConfig(contentsOf: "\(configsDir)/client.conf")
        #expect(c.namespace.carrier == .pasta)
        #expect(c.namespace.mapUID == 0)
        #expect(c.namespace.isolate == true)
        #expect(c.namespace.hostLoopback == true)
        #expect(c.namespace.forwardTCP == [PortForward(hostPort: 8080, namespacePort: 8080), PortForward(hostPort: 2222, namespacePort: 22)])
        #expect(c.interface.dnsServers.count == 2)
        #expect(c.interface.dnsSearch == ["cluster.internal", "example.org"])
    }

    @Test func bareAllowedIPsMeanHostRoutes() throws {
        let c = try TunnelConfig(parsing: "[Peer]\nPublicKey = \(PrivateKey.generate().publicKey)\nAllowedIPs = 10.1.2.3, fd00::7\n", file: "t")
        #expect(c.peers[0].allowedIPs.map(\.description) == ["10.1.2.3/32", "fd00::7/128"])
    }

    @Test func keyFilesResolveNextToTheConfig() throws {
        let dir = NSTemporaryDirectory() + "wgns-cfg-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/keys", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: "\(configsDir)/keyfile.conf", toPath: dir + "/keyfile.conf")
        let key = PrivateKey.generate()
        try KeyFile.write(key, to: dir + "/keys/keyfile.key")
        try KeyFile.write(PresharedKey.generate(), to: dir + "/keys/keyfile.psk")
        let c = try TunnelConfig(contentsOf: dir + "/keyfile.conf")
        #expect(try c.interface.privateKey?.load() == key)
        try c.validateKeyFiles(file: "keyfile.conf")
        chmod(dir + "/keys/keyfile.key", 0o640)
        #expect(throws: ConfigError.self) { try c.validateKeyFiles(file: "keyfile.conf") }
    }
}

@Suite struct MalformedConfigs {
    static let pub = "YNqHbfBQKaGvzefSSqBIY0E2tm0v5kyaTb6hZrP1Xm0="

    /// (config text, line of the error, words the message must contain).
    static let cases: [(String, Int, String)] = [
        ("[Interface]\nPrivateKey = abc\n", 2, "PrivateKey is not a valid key"),
        ("[Interface]\nListenPort = 70000\n", 2, "ListenPort '70000'"),
        ("[Interface]\nListenPort = -1\n", 2, "ListenPort"),
        ("[Interface]\nFwMark = banana\n", 2, "FwMark 'banana'"),
        ("[Interface]\nAddress = 10.0.0.1/33\n", 2, "Address '10.0.0.1/33'"),
        ("[Interface]\nAddress = 10.0.0.1,,10.0.0.2\n", 2, "empty item"),
        ("[Interface]\nAddress = 300.1.1.1\n", 2, "Address '300.1.1.1'"),
        ("[Interface]\nDNS = 1.2.3.999\n", 2, "DNS '1.2.3.999'"),
        ("[Interface]\nDNS = bad/domain\n", 2, "search domain"),
        ("[Interface]\nMTU = 9\n", 2, "MTU '9'"),
        ("[Interface]\nSaveConfig = maybe\n", 2, "SaveConfig 'maybe'"),
        ("[Interface]\nColour = blue\n", 2, "unknown key 'Colour' in [Interface]"),
        ("[Interface]\nPrivateKey\n", 2, "expected 'Key = Value'"),
        ("PrivateKey = x\n", 1, "outside any section"),
        ("[Interfaces]\n", 1, "unknown section '[Interfaces]'"),
        ("[Interface]\n\n[Peer]\nAllowedIPs = 10.0.0.0/8\n", 3, "[Peer] has no PublicKey"),
        ("[Peer]\nPublicKey = \(pub)\nEndpoint = 1.2.3.4\n", 3, "Endpoint '1.2.3.4'"),
        ("[Peer]\nPublicKey = \(pub)\nEndpoint = fd00::1:51820\n", 3, "Endpoint"),
        ("[Peer]\nPublicKey = \(pub)\nEndpoint = [fd00::1]:99999\n", 3, "Endpoint"),
        ("[Peer]\nPublicKey = \(pub)\nAllowedIPs = 10.0.0.0/8, nonsense\n", 3, "AllowedIPs 'nonsense'"),
        ("[Peer]\nPublicKey = \(pub)\nPersistentKeepalive = 1e3\n", 3, "PersistentKeepalive '1e3'"),
        ("[Peer]\nPublicKey = \(pub)x\n", 2, "PublicKey is not a valid key"),
        ("[Peer]\nPublicKey = \(pub)\nPresharedKey = short\n", 3, "PresharedKey is not a valid key"),
        ("[Peer]\nPublicKey = \(pub)\nName = x\n", 3, "unknown key 'Name' in [Peer]"),
        ("[Namespace]\nCarrier = docker\n", 2, "Carrier 'docker'"),
        ("[Namespace]\nBackend = fast\n", 2, "Backend 'fast'"),
        ("[Namespace]\nMapUID = root\n", 2, "MapUID 'root'"),
        ("[Namespace]\nForwardTCP = 0\n", 2, "ForwardTCP '0'"),
        ("[Namespace]\nIsolate = sometimes\n", 2, "Isolate 'sometimes'"),
    ]

    @Test(arguments: cases)
    func rejected(text: String, line: Int, message: String) {
        do {
            _ = try TunnelConfig(parsing: text, file: "bad.conf")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.file == "bad.conf")
            #expect(error.line == line)
            #expect(error.message.contains(message), "\(error.message)")
            #expect(!error.description.contains("\n"))
        }
    }

    /// A line that lost its newline glues the next key onto a value
    /// (`AllowedIPs = 10.0.0.0/8 PresharedKey = KEY`): whatever the field,
    /// the error quotes at most 12 characters of it, never the key.
    static let glued = [
        ("[Interface]\nAddress = 10.0.0.2/24 PrivateKey = ", 2, "Address"),
        ("[Interface]\nDNS = 10.0.0.1 PrivateKey = ", 2, "DNS"),
        ("[Interface]\nDNS = vpn.example PrivateKey = ", 2, "DNS"),
        ("[Interface]\nMTU = 1420 PrivateKey = ", 2, "MTU"),
        ("[Interface]\nListenPort = 51820 PrivateKey = ", 2, "ListenPort"),
        ("[Peer]\nPublicKey = \(pub)\nAllowedIPs = 10.0.0.0/8 PresharedKey = ", 3, "AllowedIPs"),
        ("[Peer]\nPublicKey = \(pub)\nAllowedIPs = 10.0.0.0/8, PresharedKey = ", 3, "AllowedIPs"),
        ("[Peer]\nPublicKey = \(pub)\nEndpoint = 1.2.3.4:51820 PresharedKey = ", 3, "Endpoint"),
        ("[Peer]\nPublicKey = \(pub)\nEndpoint = vpn.example.org PresharedKey = ", 3, "Endpoint"),
        ("[Peer]\nPublicKey = \(pub)\nPersistentKeepalive = 25 PresharedKey = ", 3, "PersistentKeepalive"),
    ]

    @Test(arguments: glued)
    func gluedKeyIsNotQuoted(prefix: String, line: Int, field: String) {
        let key = PresharedKey.generate().base64Secret()
        do {
            _ = try TunnelConfig(parsing: prefix + key + "\n", file: "glued.conf")
            Issue.record("accepted: \(prefix)")
        } catch {
            #expect(error.line == line)
            #expect(error.message.hasPrefix("\(field) '"), "\(error.message)")
            let quoted = error.message.split(separator: "'", maxSplits: 2)[1]
            #expect(quoted.replacing("...", with: "").count <= 12, "\(error.message)")
            for n in stride(from: 0, to: key.count - 4, by: 4) {
                let piece = key.dropFirst(n).prefix(5)
                #expect(!error.description.contains(piece), "\(piece) of the key in: \(error.message)")
            }
        }
    }

    /// A mistyped secret is never echoed back in the error.
    @Test func secretsNotEchoed() {
        let almost = String(PrivateKey.generate().base64Secret().dropLast(2)) + "=="
        do {
            _ = try TunnelConfig(parsing: "[Interface]\nPrivateKey = \(almost)\n", file: "f")
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains(almost.prefix(20)))
        }
    }
}

@Suite struct EndpointParsing {
    /// What `Endpoint = ...` accepts: host or IPv4 with a port, or a
    /// bracketed IPv6 address (with an optional zone); ports 0 to 65535.
    @Test(arguments: [
        ("vpn.example.org:51820", "vpn.example.org", 51820), ("1.2.3.4:1", "1.2.3.4", 1), ("h:0", "h", 0),
        ("h:65535", "h", 65535), ("[fd00::1]:443", "fd00::1", 443), ("[fe80::1%eth0]:5", "fe80::1%eth0", 5),
        ("[::ffff:1.2.3.4]:7", "::ffff:1.2.3.4", 7), ("h:00080", "h", 80),
    ])
    func accepted(text: String, host: String, port: Int) {
        let e = Endpoint(text)
        #expect(e?.host == host && e.map { Int($0.port) } == port, "\(text)")
    }

    @Test(arguments: ["fd00::1:51820", "[fd00::1]:99999", "h:65536", "h:123456", "[]:5", "[1.2.3.4]:5", ":5", "h:",
                      "h:+1", "h:-1", "[fd00::1]5", "[fd00::1", "[fd00::1]:", "a:b:c", "h", "", "[%eth0]:5", "h:1 "])
    func refused(text: String) { #expect(Endpoint(text) == nil, "\(text)") }
}
