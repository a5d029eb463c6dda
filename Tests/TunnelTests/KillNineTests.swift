import Foundation
import Testing
import TestSupport

/// Issue 19 (Tests): the kill -9 matrix, one pass. scripts/bench/kill9.sh
/// with one run per process of a running `wgns up` (supervisor, holder,
/// NamespaceInit, the sandbox's pid 1, the job, the carrier, wireguard-go,
/// and a backend's data-plane process where there is one), slirp4netns, a
/// full tunnel whose job keeps sending marked datagrams to this machine
/// outside the tunnel: after each SIGKILL no process of the run may live on,
/// no namespace of the run may be held, nothing may be left in its runtime
/// and temporary folders, and no marked datagram may arrive in the clear.
/// (`make bench` runs the same 100 times per process under both carriers.)
@Suite struct KillNineTests {
    static let canRun = which("python3") != nil && which("slirp4netns") != nil && which("ip") != nil

    @Test(.enabled(if: canRun)) func killNineOfAnyProcessLeavesNothingAndNeverFailsOpen() throws {
        let r = try shell("""
            BENCH_KILL9_RUNS=1 BENCH_KILL9_CARRIERS=slirp4netns WGNS_BIN='\(wgnsBinary)' \
            bash '\(packageRoot)/scripts/bench/kill9.sh'
            """)
        let all = "\(r.stdout)\n\(r.stderr)"
        #expect(r.status == 0, "\(all)")
        // carrier victim runs absent left ns files open stuck median
        let rows = r.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            .filter { $0.count >= 9 && $0[0] == "slirp4netns" }
        let victims = rows.map { $0[1] }
        #expect(victims == ["supervisor", "holder", "init", "sandbox", "job", "carrier", "wireguard-go", "dataplane"], "\(all)")
        for row in rows {
            let n = row[2...8].map { Int($0) ?? -1 }
            // Every process but a backend's data plane is there to be killed.
            if row[1] != "dataplane" { #expect(n[0] == 1, "\(row[1]) was not killed: \(all)") }
            #expect(n[0] + n[1] == 1, "\(all)")
            #expect(n[2...6].allSatisfy { $0 == 0 }, "after kill -9 of \(row[1]): left ns files open stuck = \(n[2...6]): \(all)")
        }
    }
}
