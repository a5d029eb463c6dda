import Foundation
import Testing
import TestSupport

/// Mistakes around secrets: errors never echo key material, and key files
/// that are not plainly the user's own are refused at once.
@Suite struct SecretInputTests {
    static func tempDir() throws -> String {
        let dir = NSTemporaryDirectory() + "wgns-secret-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// `PrivateKey: KEY`, `PrivateKey KEY`, a bare key line, a key as a key
    /// name: one line naming file and line, and no part of the key beyond
    /// 12 characters.
    @Test(arguments: ["PrivateKey: %K", "PrivateKey %K", "%K", "%K = 1", "[%K]"])
    func typosNeverEchoTheKey(_ form: String) throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try run(wgnsBinary, ["genkey"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let conf = "\(dir)/typo.conf"
        try "[Interface]\n\(form.replacingOccurrences(of: "%K", with: key))\n".write(toFile: conf, atomically: true, encoding: .utf8)
        chmod(conf, 0o600)
        let r = try run(wgnsBinary, ["check", conf])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("wgns: \(conf):2: "), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        // No 13-character run of the key appears anywhere.
        let k = Array(key)
        let leaked = (0...(k.count - 13)).contains { r.stderr.contains(String(k[$0..<($0 + 13)])) }
        #expect(!leaked, "key material in: \(r.stderr)")
    }

    func config(_ dir: String, keyFile: String) throws -> String {
        let conf = "\(dir)/kf.conf"
        try "[Interface]\nPrivateKeyFile = \(keyFile)\nAddress = 10.9.0.2/32\n".write(toFile: conf, atomically: true, encoding: .utf8)
        chmod(conf, 0o600)
        return conf
    }

    /// A FIFO as the key file: one line at once, no hang waiting for a writer.
    @Test func fifoKeyFileIsRefusedAtOnce() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkfifo("\(dir)/key", 0o600) == 0)
        let r = try shell("timeout 10 '\(wgnsBinary)' check '\(try config(dir, keyFile: "key"))'")
        #expect(r.status == 1, "status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("key file \(dir)/key is a FIFO, not a regular file"), "\(r.stderr)")
        let d = try shell("'\(wgnsBinary)' check '\(try config(dir, keyFile: dir))'")
        #expect(d.status == 1 && d.stderr.contains("is a directory, not a regular file"), "\(d.stderr)")
    }

    /// A key file that belongs to another user is not ours to use.
    @Test func foreignKeyFileIsRefused() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var path = "/etc/hostname"  // not ours unless we are root
        if getuid() == 0 {
            path = "\(dir)/other.key"
            _ = try shell("umask 077; '\(wgnsBinary)' genkey > '\(path)'")
            #expect(chown(path, 65534, 65534) == 0)
        }
        let r = try run(wgnsBinary, ["check", try config(dir, keyFile: path)])
        #expect(r.status == 1)
        #expect(r.stderr.contains("key file \(path) belongs to uid "), "\(r.stderr)")
    }

    /// An inline key in a config others can read: one warning, as wg-quick gives.
    @Test func readableInlineKeyWarns() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try run(wgnsBinary, ["genkey"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let conf = "\(dir)/open.conf"
        try "[Interface]\nPrivateKey = \(key)\n".write(toFile: conf, atomically: true, encoding: .utf8)
        chmod(conf, 0o644)
        let r = try run(wgnsBinary, ["check", conf])
        #expect(r.status == 0)
        #expect(r.stderr == "wgns: warning: \(conf) holds a key and is readable by others (mode 644); run: chmod 600 \(conf)\n")
        chmod(conf, 0o600)
        #expect(try run(wgnsBinary, ["check", conf]).stderr.isEmpty)
    }
}
