import Foundation
import Testing
import TestSupport

/// `wgns genkey/pubkey/genpsk` against `wg` (wireguard-tools) as the oracle.
@Suite struct KeyCommands {
    @Test func genkeyPubkeyMatchesWg() throws {
        let wg = try #require(which("wg"), "wireguard-tools is not installed")
        let key = try run(wgnsBinary, ["genkey"])
        #expect(key.status == 0)
        #expect(key.stdout.count == 45)
        let ours = try run(wgnsBinary, ["pubkey"], stdin: key.stdout)
        let theirs = try run(wg, ["pubkey"], stdin: key.stdout)
        #expect(ours.status == 0 && theirs.status == 0)
        #expect(ours.stdout == theirs.stdout)
    }

    /// 1,000 random 32-byte strings (unclamped, as any key file may hold):
    /// `wgns pubkey` prints exactly what `wg pubkey` prints.
    @Test func thousandRandomKeysAgreeWithWg() async throws {
        let wg = try #require(which("wg"), "wireguard-tools is not installed")
        let count = Int(ProcessInfo.processInfo.environment["WGNS_PUBKEY_CHECKS"] ?? "") ?? 1000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    for i in stride(from: worker, to: count, by: 4) {
                        var bytes = [UInt8](repeating: 0, count: 32)
                        for j in 0..<32 { bytes[j] = UInt8.random(in: 0...255) }
                        if i == 0 { bytes = [UInt8](repeating: 0, count: 32) }
                        if i == 1 { bytes = [UInt8](repeating: 0xff, count: 32) }
                        let b64 = Data(bytes).base64EncodedString() + "\n"
                        let ours = try run(wgnsBinary, ["pubkey"], stdin: b64)
                        let theirs = try run(wg, ["pubkey"], stdin: b64)
                        #expect(ours.status == 0)
                        #expect(ours.stdout == theirs.stdout, "key #\(i)")
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    static let good = "YNqHbfBQKaGvzefSSqBIY0E2tm0v5kyaTb6hZrP1Xm0="
    static let malformed: [String] = [
        "", "\n", String(good.dropLast(2)) + "=\n", "A" + good + "\n",
        String(good.dropLast()) + "A\n", "*" + good.dropFirst() + "\n",
        String(good.dropLast(2)) + "n=\n", good + "junk\n", " " + good + "\n",
    ]

    /// Every malformed form is refused with one line on stderr and status 1,
    /// exactly where `wg pubkey` refuses it too.
    @Test(arguments: malformed)
    func malformedInputRejectedLikeWg(input: String) throws {
        let ours = try run(wgnsBinary, ["pubkey"], stdin: input)
        #expect(ours.status == 1)
        #expect(ours.stdout.isEmpty)
        #expect(ours.stderr.hasPrefix("wgns: "))
        #expect(ours.stderr.filter { $0 == "\n" }.count == 1)
        if let wg = which("wg") {
            #expect(try run(wg, ["pubkey"], stdin: input).status == 1)
        }
    }

    @Test func genpskIsRandomAndWellFormed() throws {
        let a = try run(wgnsBinary, ["genpsk"]).stdout
        let b = try run(wgnsBinary, ["genpsk"]).stdout
        #expect(a != b)
        #expect(Data(base64Encoded: String(a.dropLast()))?.count == 32)
    }

    @Test func versionAndHelp() throws {
        #expect(try run(wgnsBinary, ["version"]).stdout.hasPrefix("wgns "))
        let help = try run(wgnsBinary, ["--help"])
        #expect(help.status == 0)
        for cmd in ["genkey", "pubkey", "genpsk", "check", "strip"] { #expect(help.stdout.contains(cmd)) }
    }
}
