import Foundation
import Testing
import TestSupport

private let configsDir = packageRoot + "/configs"

/// A temporary folder holding copies of every example config (as short
/// names wg-quick accepts) and the key files keyfile.conf refers to.
private func stageConfigs() throws -> (dir: String, files: [String]) {
    let dir = NSTemporaryDirectory() + "wgns-strip-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir + "/keys", withIntermediateDirectories: true)
    _ = try shell("umask 077; '\(wgnsBinary)' genkey > '\(dir)/keys/keyfile.key'; '\(wgnsBinary)' genpsk > '\(dir)/keys/keyfile.psk'")
    var files: [String] = []
    for (i, name) in try FileManager.default.contentsOfDirectory(atPath: configsDir).filter({ $0.hasSuffix(".conf") }).sorted().enumerated() {
        let target = "\(dir)/wgt\(i).conf"
        try FileManager.default.copyItem(atPath: "\(configsDir)/\(name)", toPath: target)
        chmod(target, 0o600)
        files.append(target)
    }
    return (dir, files)
}

@Suite(.serialized) struct ConfigCommands {
    @Test func checkAcceptsEveryExample() throws {
        let (dir, files) = try stageConfigs()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run(wgnsBinary, ["check"] + files)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.isEmpty)
    }

    @Test func checkReportsOneLinePerError() throws {
        let dir = NSTemporaryDirectory() + "wgns-check-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "[Interface]\nListenPort = 99999\n".write(toFile: dir + "/a.conf", atomically: true, encoding: .utf8)
        try "[Peer]\nPublicKey = nope\n".write(toFile: dir + "/b.conf", atomically: true, encoding: .utf8)
        // A good config holding a key, kept as a user keeps it (0600: no warning).
        try FileManager.default.copyItem(atPath: "\(configsDir)/minimal.conf", toPath: dir + "/minimal.conf")
        chmod(dir + "/minimal.conf", 0o600)
        let r = try run(wgnsBinary, ["check", dir + "/a.conf", dir + "/minimal.conf", dir + "/b.conf", dir + "/missing.conf"])
        #expect(r.status == 1)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.first?.hasPrefix("wgns: \(dir)/a.conf:2: ListenPort '99999'") == true)
        #expect(lines.dropFirst().first?.hasPrefix("wgns: \(dir)/b.conf:2: PublicKey") == true)
        #expect(lines.last?.contains("missing.conf") == true)
    }

    /// `wgns strip` prints what `wg setconf` accepts. With a real device
    /// (wireguard-go in a throwaway namespace) as the judge: our output is
    /// always accepted, and wherever `wg-quick strip`'s output is accepted
    /// too, both configure the device identically (`wg showconf`).
    @Test func stripIsAcceptedByWg() throws {
        guard let wg = which("wg"), which("wg-quick") != nil, let wggo = which("wireguard-go"), let unshare = which("unshare") else {
            Issue.record("wireguard-tools, wireguard-go and util-linux are needed (scripts/deps.sh installs them)")
            return
        }
        let (dir, files) = try stageConfigs()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try run(unshare, ["-r", "-n", "-m", "/bin/sh", "\(scriptsFolder)/strip-compare.sh", wgnsBinary, wg, wggo] + files)
        #expect(!r.stdout.contains("STRIPFAIL"), "\(r.stdout)")
        #expect(!r.stdout.contains("OURS-REJECTED"), "\(r.stdout) \(r.stderr)")
        // wg-quick strip handles the plain wg-quick files, so those must match
        // (peer blocks compared as a set: wireguard-go lists peers in map order).
        let compared = r.stdout.split(separator: "\n").filter { $0.hasPrefix("COMPARE ") }.map { String($0.dropFirst(8)) }
        #expect(compared.count >= 2, "\(r.stdout) \(r.stderr)")
        // Without a ListenPort the device picks a random one; leave it out.
        func blocks(_ path: String) -> Set<String> {
            Set(((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").components(separatedBy: "\n\n")
                .map { $0.split(separator: "\n").filter { !$0.hasPrefix("ListenPort = ") }.joined(separator: "\n") })
        }
        for f in compared {
            #expect(blocks(f + ".ours.show") == blocks(f + ".theirs.show"), "\(f)")
            #expect(blocks(f + ".ours.show").count > 1)
        }
        let hub = try #require(files.first { (try? String(contentsOfFile: $0, encoding: .utf8))?.contains("ListenPort = 51820") == true })
        #expect(try String(contentsOfFile: hub + ".ours.show", encoding: .utf8).contains("ListenPort = 51820\n"))
        // And the device really holds the keys: showconf is not empty.
        for f in files {
            let shown = (try? String(contentsOfFile: f + ".ours.show", encoding: .utf8)) ?? ""
            #expect(shown.contains("[Interface]"), "\(f)")
        }
    }
}
