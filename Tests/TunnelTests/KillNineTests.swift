import Foundation
import Testing
import TestSupport

/// Issue 19 (Tests): the kill -9 matrix, one pass. scripts/bench/kill9.sh
/// with one run per process of a running `wgns up` (supervisor, holder,
/// NamespaceInit, the sandbox's pid 1, the job, the carrier, wireguard-go,
/// and the builtin backend's data plane), on wireguard-go under slirp4netns
/// and on auto's backend, a full tunnel whose job keeps sending marked
/// datagrams to this machine outside the tunnel: after each SIGKILL no
/// process of the run may live on, no namespace of the run may be held,
/// nothing may be left in its runtime and temporary folders, and no marked
/// datagram may arrive in the clear. (`make bench` runs the same 100 times
/// per process, under both carriers.)
@Suite struct KillNineTests {
    static let canRun = which("python3") != nil && which("slirp4netns") != nil && which("ip") != nil
        && which("wireguard-go") != nil

    @Test(.enabled(if: canRun)) func killNineOfAnyProcessLeavesNothingAndNeverFailsOpen() throws {
        let r = try shell("""
            BENCH_KILL9_RUNS=1 BENCH_KILL9_MODES='wireguard-go:slirp4netns default:default' WGNS_BIN='\(wgnsBinary)' \
            bash '\(packageRoot)/scripts/bench/kill9.sh'
            """)
        let all = "\(r.stdout)\n\(r.stderr)"
        #expect(r.status == 0, "\(all)")
        // backend carrier victim runs absent left ns files open stuck median
        let rows = r.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            .filter { $0.count >= 10 && ["wireguard-go", "default"].contains($0[0]) }
        let victims = ["supervisor", "holder", "init", "sandbox", "job", "carrier", "wireguard-go", "dataplane"]
        #expect(rows.map { $0[2] } == victims + victims, "\(all)")
        for row in rows {
            let n = row[3...9].map { Int($0) ?? -1 }
            // Each process that the run has is killed once: every one on
            // wireguard-go but a data plane; the five of every backend.
            let there = row[0] == "wireguard-go" ? row[2] != "dataplane" : victims.prefix(5).contains(row[2])
            if there { #expect(n[0] == 1, "\(row[0]) \(row[2]) was not killed: \(all)") }
            #expect(n[0] + n[1] == 1, "\(all)")
            #expect(n[2...6].allSatisfy { $0 == 0 }, "after kill -9 of \(row[2]) (\(row[0])): left ns files open stuck = \(n[2...6]): \(all)")
        }
    }
}
