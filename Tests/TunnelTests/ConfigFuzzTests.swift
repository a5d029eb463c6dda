import Foundation
import Testing
@testable import Tunnel

/// A small, fast, seeded generator (splitmix64) so that a failure can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e3779b97f4a7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58476d1ce4e5b9
        z = (z ^ (z >> 27)) &* 0x94d049bb133111eb
        return z ^ (z >> 31)
    }
}

/// The parser never crashes: every input parses or throws a ConfigError, and
/// whatever parses writes back to text that parses to the same model.
/// `make fuzz` runs 1,000,000 inputs (WGNS_FUZZ_ITERATIONS); `make test` fewer.
@Suite struct ConfigFuzz {
    static let seeds: [String] = exampleConfigs.compactMap {
        try? String(contentsOfFile: "\(configsDir)/\($0)", encoding: .utf8)
    }
    static let tokens = ["[Interface]", "[Peer]", "[Namespace]", "=", "#", ",", "\n", " ", "/", ":", "[", "]",
                        "PrivateKey", "PublicKey", "AllowedIPs", "Endpoint", "Address", "DNS", "MTU", "ListenPort",
                        "0", "65535", "99999", "::", "::1", "10.0.0.1", "/0", "/128", "off", "0x", "\u{0}", "é", "\r"]

    @Test func randomAndMutatedInputs() throws {
        let iterations = Int(ProcessInfo.processInfo.environment["WGNS_FUZZ_ITERATIONS"] ?? "") ?? 20_000
        var rng = SplitMix(state: UInt64(ProcessInfo.processInfo.environment["WGNS_FUZZ_SEED"] ?? "") ?? 0x5eed)
        var parsed = 0, rejected = 0
        for i in 0..<iterations {
            let input = Self.makeInput(i, &rng)
            do {
                let config = try TunnelConfig(parsing: input, file: "fuzz")
                parsed += 1
                let again = try TunnelConfig(parsing: try config.rendered(), file: "fuzz-rendered")
                if again != config {
                    Issue.record("round trip changed the model for input #\(i): \(input.debugDescription)")
                    return
                }
            } catch is ConfigError {
                rejected += 1
            }
        }
        #expect(parsed + rejected == iterations)
        #expect(parsed > 0 && rejected > 0)
        print("fuzz: \(iterations) inputs, \(parsed) parsed, \(rejected) rejected")
    }

    static func makeInput(_ i: Int, _ rng: inout SplitMix) -> String {
        switch i % 3 {
        case 0:
            // Random bytes, decoded leniently (invalid UTF-8 becomes U+FFFD).
            let n = Int.random(in: 0..<200, using: &rng)
            return String(decoding: (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }, as: UTF8.self)
        case 1:
            // Random token soup.
            let n = Int.random(in: 0..<40, using: &rng)
            return (0..<n).map { _ in tokens.randomElement(using: &rng)! }.joined()
        default:
            // A real config with a few bytes changed, deleted or duplicated.
            guard var bytes = seeds.randomElement(using: &rng).map({ Array($0.utf8) }), !bytes.isEmpty else { return "" }
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                if bytes.isEmpty { break }
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(contentsOf: Array(tokens.randomElement(using: &rng)!.utf8), at: at)
                default: bytes[at] = [UInt8(ascii: "="), UInt8(ascii: ","), UInt8(ascii: "\n"), UInt8(ascii: "/")].randomElement(using: &rng)!
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
