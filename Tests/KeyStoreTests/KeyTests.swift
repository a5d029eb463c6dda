import Foundation
import Testing
import TestSupport
@testable import KeyStore

/// Hex helpers for known-answer vectors.
func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.makeIterator()
    while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
    return out
}

func hexString<K: WireGuardKey>(_ k: K) -> String {
    k.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
}

@Suite struct KnownAnswers {
    // RFC 7748 section 6.1: Alice's and Bob's X25519 key pairs.
    @Test(arguments: [
        ("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
         "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
        ("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
         "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"),
    ])
    func rfc7748PublicKeys(privateHex: String, publicHex: String) throws {
        let priv = try hex(privateHex).withUnsafeBytes { try PrivateKey(rawBytes: $0) }
        #expect(hexString(priv.publicKey) == publicHex)
    }

    @Test func base64RoundTrip() throws {
        let k = PrivateKey.generate()
        let again = try PrivateKey(base64: k.base64Secret())
        #expect(again == k)
        #expect(k.base64Secret().count == 44)
        #expect(k.base64Secret().hasSuffix("="))
    }

    @Test func generatedKeysAreClamped() {
        for _ in 0..<200 {
            let k = PrivateKey.generate()
            k.withUnsafeBytes { b in
                #expect(b[0] & 7 == 0)
                #expect(b[31] & 0x80 == 0)
                #expect(b[31] & 0x40 == 0x40)
            }
        }
    }

    @Test func secretsAreNotPrinted() {
        let k = PrivateKey.generate()
        let text = "\(k) \(String(reflecting: k)) \(PresharedKey.generate())"
        #expect(!text.contains(k.base64Secret()))
        #expect(!text.contains("="))
    }
}

@Suite struct MalformedKeys {
    static let good = "YNqHbfBQKaGvzefSSqBIY0E2tm0v5kyaTb6hZrP1Xm0="

    /// Forms that `wg` rejects; KeyStore must reject every one.
    static let bad: [(String, String)] = [
        ("empty", ""),
        ("too short", String(good.dropLast(2)) + "="),
        ("too long", "A" + good),
        ("no padding", String(good.dropLast()) + "A"),
        ("bad character", "*" + good.dropFirst()),
        ("url-safe alphabet", "_" + good.dropFirst()),
        ("non-zero padding bits", String(good.dropLast(2)) + "n="),
        ("double padding", String(good.dropLast(2)) + "=="),
        ("inner whitespace", String(good.prefix(10)) + " " + good.dropFirst(11)),
    ]

    @Test(arguments: bad)
    func rejected(name: String, text: String) {
        #expect(throws: KeyStoreError.self, "\(name)") { try PublicKey(base64: text) }
    }

    @Test func goodKeyAccepted() throws {
        _ = try PublicKey(base64: Self.good)
    }

    @Test func stdinParsingLikeWg() throws {
        let good = Array(Self.good.utf8)
        _ = try KeyFile.parse(PrivateKey.self, from: good + Array(" \n\t\n".utf8))
        #expect(throws: KeyStoreError.self) { try KeyFile.parse(PrivateKey.self, from: good + Array("x\n".utf8)) }
        #expect(throws: KeyStoreError.self) { try KeyFile.parse(PrivateKey.self, from: Array(" ".utf8) + good) }
    }
}

@Suite struct KeyFiles {
    func tempDir() throws -> String {
        let d = NSTemporaryDirectory() + "wgns-keys-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test func writeIsPrivateAndAtomic() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/wg.key"
        let k = PrivateKey.generate()
        try KeyFile.write(k, to: path)
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attrs[.posixPermissions] as! NSNumber).intValue == 0o600)
        #expect(try KeyFile.read(PrivateKey.self, path: path) == k)
        // Overwrite in place: the new key replaces the old, no temp files stay.
        let k2 = PrivateKey.generate()
        try KeyFile.write(k2, to: path)
        #expect(try KeyFile.read(PrivateKey.self, path: path) == k2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["wg.key"])
    }

    @Test func worldReadableRefused() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/wg.key"
        try KeyFile.write(PrivateKey.generate(), to: path)
        chmod(path, 0o644)
        do {
            _ = try KeyFile.read(PrivateKey.self, path: path)
            Issue.record("a mode 0644 key file was accepted")
        } catch {
            #expect(error.code == .insecurePermissions)
            #expect(error.message.contains(path))
            #expect(error.message.contains("chmod 600"))
        }
        // A public key file may be readable by anyone.
        _ = try KeyFile.read(PublicKey.self, path: path, secret: false)
    }

    @Test func missingFileNamesThePath() throws {
        do {
            _ = try KeyFile.read(PrivateKey.self, path: "/nonexistent/wgns.key")
            Issue.record("missing file accepted")
        } catch {
            #expect(error.description.contains("/nonexistent/wgns.key"))
            #expect(error.errno == .noSuchFileOrDirectory)
        }
    }
}
