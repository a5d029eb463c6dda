import Foundation
import Testing
import TestSupport

/// A cluster of test hosts (scripts/testnet/cluster.sh: network namespaces on
/// a private bridge, each with its own address and name) with a per-job VPN
/// across it and no `--host-loopback` anywhere: the hub (`wgns hub`, pasta)
/// on h1, reached by name, and a peer on each other host under slirp4netns or
/// pasta, userspace backend, every wgns as the unprivileged test user. All
/// traffic stays on the bridge and in the namespaces the cluster made.
/// Needs root (`ip netns add`).
@Suite(.serialized) struct ClusterTests {
    static let canRun = getuid() == 0 && testUser != nil && which("ip") != nil && which("pasta") != nil
        && which("slirp4netns") != nil && which("python3") != nil
    static let clusterScript = "\(packageRoot)/scripts/testnet/cluster.sh"

    /// A cluster and a work folder for the test user, both gone at deinit.
    final class Fixture {
        /// The work folder (TestSupport's one fixture: wgns and jobs/, the test user's).
        let folder: TestFolder
        var work: String { folder.path }
        /// The cluster's folder (cluster.sh's, root's).
        let net: String
        let port = UInt16.random(in: 40000...59000)
        let hosts: Int
        let start: RunResult

        init(hosts: Int = 3, mtu: Int = 1500, delayMS: Int = 0, lossPercent: Double = 0) throws {
            self.hosts = hosts
            folder = try TestFolder("cluster")
            net = "\(folder.path).net"
            start = try shell("""
                TESTNET_MTU=\(mtu) TESTNET_DELAY_MS=\(delayMS) TESTNET_LOSS_PCT=\(lossPercent) \
                bash '\(ClusterTests.clusterScript)' start '\(net)' \(hosts)
                """)
        }

        /// Runs a bash script as root in the work folder, with C (cluster.sh),
        /// D (the cluster), W (the work folder), PORT, `environment`, and
        /// `on HOST CMD...` (CMD on HOST as the test user) and `onroot HOST CMD...`.
        func sh(_ script: String, environment: [String: String] = [:]) throws -> RunResult {
            var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            env["C"] = ClusterTests.clusterScript
            env["D"] = net
            env["W"] = work
            env["PORT"] = "\(port)"
            env["TESTNET_USER"] = folder.user
            return try run("/bin/bash", ["-c", """
                cd "$W"
                on() { bash "$C" exec "$D" "$@"; }
                onroot() { bash "$C" root "$D" "$@"; }
                \(script)
                """], environment: env)
        }

        /// Runs Tests/scripts/NAME as `sh` does.
        func script(_ name: String, environment: [String: String] = [:]) throws -> RunResult {
            try sh(". '\(scriptsFolder)/\(name)'", environment: environment)
        }

        deinit {
            _ = try? shell("bash '\(ClusterTests.clusterScript)' stop '\(net)'; rm -rf '\(net)'")
        }
    }

    /// The hub on h1 and a peer on every other host (Tests/scripts/cluster-vpn.sh,
    /// each peer's job Tests/jobs/member.sh); prints each peer's output, the
    /// bring-up time and the fragmentation counters before and after.
    /// `carrier` "builtin": hub and peers on the builtin backend, no carrier
    /// anywhere; otherwise wireguard-go behind that carrier.
    static func hubAndPeers(_ f: Fixture, carrier: String) throws -> RunResult {
        let builtin = carrier == "builtin"
        return try f.script("cluster-vpn.sh", environment: ["PEERS": "\(f.hosts - 1)", "CARRIER": builtin ? "none" : carrier,
                                                          "WGNS_OPTS": builtin ? "--backend builtin" : "--backend wireguard-go"])
    }

    /// Checks what `hubAndPeers` printed: every peer reached the hub and
    /// every other peer, the file arrived whole, the tunnel MTU is the
    /// fabric's minus 80, a DF packet of the tunnel MTU crossed and one byte
    /// more did not, and no host fragmented or reassembled a packet.
    static func expectAllToAll(_ r: RunResult, _ f: Fixture, fabricMTU: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        let out = r.stdout
        let peers = f.hosts - 1
        let tunnelMTU = fabricMTU - 80
        #expect(out.contains("wgns hub: up, wg0 10.97.0.1/24"), "\(out)\n\(r.stderr)", sourceLocation: sourceLocation)
        for k in 1...peers {
            #expect(out.contains("job \(k) status 0"), "\(out)", sourceLocation: sourceLocation)
            #expect(out.contains("peer-\(k) wg0 mtu \(tunnelMTU)\n"), "\(out)", sourceLocation: sourceLocation)
            #expect(out.split(separator: "\n").contains { $0.hasPrefix("peer \(k): wgns: ") && $0.contains("endpoints resolved, MTU wg0 \(tunnelMTU) ") },
                    "\(out)", sourceLocation: sourceLocation)
            #expect(out.contains("peer-\(k) reaches 10.97.0.1\n"), "\(out)", sourceLocation: sourceLocation)
            for j in 1...peers where j != k {
                #expect(out.contains("peer-\(k) reaches 10.97.0.\(j + 1)\n"), "\(out)", sourceLocation: sourceLocation)
                #expect(out.contains("peer-\(k) df \(tunnelMTU) to 10.97.0.\(j + 1) fits\n"), "\(out)", sourceLocation: sourceLocation)
                #expect(out.contains("peer-\(k) df \(tunnelMTU + 1) to 10.97.0.\(j + 1) refused\n"), "\(out)", sourceLocation: sourceLocation)
            }
        }
        #expect(!out.contains("cannot reach"), sourceLocation: sourceLocation)
        let sent = out.split(separator: "\n").first { $0.hasPrefix("sent ") }.map { String($0.dropFirst(5)) } ?? "?"
        #expect(out.contains("received 8388608 \(sent) from "), "\(out)", sourceLocation: sourceLocation)
        // Nothing fragmented: the counters did not move on any host.
        for h in 1...f.hosts {
            let before = out.split(separator: "\n").first { $0.hasPrefix("before frag h\(h) ") }?.dropFirst(7)
            let after = out.split(separator: "\n").first { $0.hasPrefix("after frag h\(h) ") }?.dropFirst(6)
            #expect(before != nil && before == after, "h\(h): \(before ?? "?") then \(after ?? "?")", sourceLocation: sourceLocation)
        }
        #expect(out.contains("hub status 0"), "\(out)", sourceLocation: sourceLocation)
    }

    @Test(.enabled(if: canRun, "needs root, WGNS_TEST_USER, iproute2, pasta, slirp4netns and python3"),
          arguments: [("slirp4netns", 1500), ("pasta", 1500), ("builtin", 1500), ("slirp4netns", 9000), ("pasta", 9000), ("builtin", 9000), ("pasta", 2044)])
    func hubAndPeersAcrossTheFabric(carrier: String, mtu: Int) throws {
        let f = try Fixture(mtu: mtu)
        #expect(f.start.status == 0, "\(f.start.stderr)")
        guard f.start.status == 0 else { return }
        let r = try Self.hubAndPeers(f, carrier: carrier)
        Self.expectAllToAll(r, f, fabricMTU: mtu)
        print("cluster \(carrier) MTU \(mtu): \(r.stdout.split(separator: "\n").first { $0.hasPrefix("bring-up") } ?? "")")
    }

    /// 1% loss and 5 ms delay on every host's way out (a lossy, slow fabric):
    /// everything still completes. Bring-up time is printed, not asserted.
    @Test(.enabled(if: canRun, "needs root, WGNS_TEST_USER, iproute2, pasta, slirp4netns and python3"),
          arguments: ["slirp4netns", "pasta", "builtin"])
    func lossAndDelay(carrier: String) throws {
        let f = try Fixture(delayMS: 5, lossPercent: 1)
        #expect(f.start.status == 0, "\(f.start.stderr)")
        guard f.start.status == 0 else { return }
        let r = try Self.hubAndPeers(f, carrier: carrier)
        Self.expectAllToAll(r, f, fabricMTU: 1500)
        let rtt = try f.sh("onroot h2 ping -c 5 -i 0.2 h3 | tail -1")
        print("cluster \(carrier) 1% loss, 5 ms: \(r.stdout.split(separator: "\n").first { $0.hasPrefix("bring-up") } ?? ""), fabric \(rtt.stdout)")
    }

    /// Faults, one after another on one cluster of 4 hosts (hub on h1, peers
    /// on h2..h4, slirp4netns): the hub host's link down 5 s; the hub killed
    /// (SIGKILL) and started again with the same config; h4 vanishing (every
    /// process in it killed, its namespace deleted). After each, every
    /// surviving tunnel carries traffic again (bounds generous, times
    /// printed), no job restarted, and nothing of h4's peer is left.
    @Test(.enabled(if: canRun, "needs root, WGNS_TEST_USER, iproute2, pasta, slirp4netns and python3"))
    func faults() throws {
        let f = try Fixture(hosts: 4)
        #expect(f.start.status == 0, "\(f.start.stderr)")
        guard f.start.status == 0 else { return }
        let r = try f.script("cluster-faults.sh")
        let out = r.stdout
        print(out.split(separator: "\n").filter { $0.contains("recovered") || $0.hasPrefix("first contact") }.map { "cluster faults: \($0)" }.joined(separator: "\n"))
        #expect(!out.contains("never"), "\(out)\n\(r.stderr)")
        #expect(out.contains("link flap: recovered in "), "\(out)")
        #expect(out.contains("hub restart: recovered in "), "\(out)")
        #expect(out.contains("after vanish: recovered in "), "\(out)")
        #expect(!out.contains("killed hub still listed"))
        #expect(out.contains("h4 left: nothing\n"), "\(out)")
        #expect(!out.contains("h4 processes 0\n") && out.contains("h4 processes "), "\(out)")
        #expect(!out.contains("h4 namespace still there"))
        #expect(out.contains("hub still up\n"))
        #expect(out.contains("job 1 status 0") && out.contains("job 2 status 0"), "\(out)")
        for k in 1...3 { #expect(out.contains("job \(k) started 1 times"), "\(out)") }
        #expect(out.contains("hub status 0"), "\(out)")
    }

    /// What the machine holds of a cluster: its hosts' keepers, its links,
    /// its relays, and the lines of our mount table.
    static func machineState(tag: String) throws -> String {
        try shell("pgrep -fc '^wgns-\(tag)-h'; ip -o link | grep -c ' wt\(tag)'; ps -e -o args= | grep -c '[r]elay[.]py wt\(tag)'; wc -l < /proc/\(getpid())/mountinfo").stdout
    }

    /// cluster.sh itself: the hosts reach each other by name and nothing
    /// else (no default route, no address on the bridge); stop removes
    /// everything start made, relays included; bad knobs are usage errors
    /// that make nothing; a start that fails halfway removes what it made.
    @Test(.enabled(if: canRun, "needs root, WGNS_TEST_USER, iproute2, pasta, slirp4netns and python3"))
    func clusterScript() throws {
        let dir = "/tmp/wgns-cluster-\(UUID().uuidString.prefix(8))"
        defer { _ = try? shell("bash '\(Self.clusterScript)' stop '\(dir)'; rm -rf '\(dir)'") }
        let tag = try shell("printf %s '\(dir)' | sha1sum | cut -c1-6").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // The machine's mount table never changes: the hosts are held by processes, not mounts.
        let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n").count
        let start = try shell("mkdir -p '\(dir)'; TESTNET_DELAY_MS=1 TESTNET_LOSS_PCT=0.5 bash '\(Self.clusterScript)' start '\(dir)' 2")
        #expect(start.status == 0, "\(start.stderr)")
        #expect(start.stdout.contains("cluster: 2 hosts (h1..h2, 10.231.0.1-2/24), MTU 1500, delay 1 ms, loss 0.5% each way"), "\(start.stdout)")
        do { let state = try Self.machineState(tag: tag); #expect(state == "2\n7\n2\n\(mounts)\n", "\(state)") }
        let r = try run("/bin/bash", ["\(scriptsFolder)/cluster-hosts.sh"], environment: ProcessInfo.processInfo.environment.merging(
            ["C": Self.clusterScript, "D": dir, "TAG": tag, "TESTNET_USER": testUser ?? ""]) { $1 })
        #expect(r.stdout.contains("h2 reaches h1 by name\n"), "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("user \(testUser ?? "?") on h1\n"), "\(r.stdout)")
        #expect(r.stdout.contains("h1 reaches nothing else\n"))
        #expect(!r.stdout.contains("default route") && !r.stdout.contains("bridge has an address"))
        #expect(r.stdout.contains("h9 status 1") && r.stderr.contains("cluster.sh: no host h9 in \(dir)\n"))
        let stop = try shell("bash '\(Self.clusterScript)' stop '\(dir)'; ls '\(dir)'")
        #expect(stop.status == 0 && stop.stdout.isEmpty, "\(stop.stdout)")
        do { let state = try Self.machineState(tag: tag); #expect(state == "0\n0\n0\n\(mounts)\n", "\(state)") }

        // Usage errors: one line, exit 64, nothing made.
        for (env, message) in [("TESTNET_MTU=70000", "TESTNET_MTU must be from 1280 to 65535, not 70000"),
                               ("TESTNET_LOSS_PCT=x", "TESTNET_LOSS_PCT must be a percentage, not 'x'")] {
            let bad = try shell("\(env) bash '\(Self.clusterScript)' start '\(dir)' 2")
            #expect(bad.status == 64 && bad.stderr == "cluster.sh: \(message)\n", "\(bad.stderr)")
        }
        let badN = try shell("bash '\(Self.clusterScript)' start '\(dir)' x")
        #expect(badN.status == 64 && badN.stderr.contains("N must be a number"))
        do { let state = try Self.machineState(tag: tag); #expect(state == "0\n0\n0\n\(mounts)\n", "\(state)") }

        // h2's link name taken: start fails at h2 and removes h1 and the bridge.
        let half = try shell("ip link add wt\(tag)2h type veth peer name wt\(tag)2x; bash '\(Self.clusterScript)' start '\(dir)' 3; echo \"status $?\"; ip link del wt\(tag)2h")
        #expect(half.stdout.contains("status 1") || half.stdout.contains("status 2"), "\(half.stdout)\(half.stderr)")
        do { let state = try Self.machineState(tag: tag); #expect(state == "0\n0\n0\n\(mounts)\n", "\(state)") }
    }
}
