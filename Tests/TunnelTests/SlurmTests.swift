import Foundation
import Testing
import TestSupport
import Tunnel

/// A real Slurm cluster whose nodes are test hosts (scripts/slurm/cluster.sh
/// on scripts/testnet/cluster.sh: network + UTS namespaces on a private
/// bridge): munged and slurmctld on h1, the controller and login host, one
/// slurmd inside each of h2 and h3 with NodeAddr its own address. Every job
/// is submitted from h1 as the unprivileged test user; each step runs on a
/// host of its own and reaches the others only across the bridge, with no
/// `--host-loopback` anywhere. All traffic stays on the bridge and in the
/// namespaces the cluster made. Needs root (namespaces; slurmd starts tasks as
/// their user), iproute2, python3 and Debian's slurmctld, slurmd,
/// slurm-client and munge.
@Suite(.serialized) struct SlurmTests {
    static let canRun = getuid() == 0 && which("slurmctld") != nil && which("srun") != nil && which("munged") != nil
        && which("ip") != nil && which("python3") != nil && testUser != nil
    static let script = "\(packageRoot)/scripts/slurm/cluster.sh"

    /// A cluster (made and removed by cluster.sh) and a folder of the test
    /// user's (TestSupport's one fixture: wgns and jobs/), both gone at deinit.
    final class Cluster {
        let folder: TestFolder
        var work: String { folder.path }
        let dir: String
        let start: RunResult

        init(nodes: Int = 2) throws {
            folder = try TestFolder("slurm")
            dir = "\(folder.path).slurm"
            start = try shell("bash '\(SlurmTests.script)' start '\(dir)' \(nodes)")
        }

        /// Runs a bash script on HOST (default h1, the login host) as the
        /// test user in the work folder, with SLURM_CONF set and W the wgns
        /// binary. The script first closes every inherited descriptor above 2,
        /// so that nothing it leaves in the background keeps the test waiting.
        func sh(_ script: String, on host: String = "h1", environment: [String: String] = [:]) throws -> RunResult {
            var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            env["TESTNET_USER"] = folder.user
            return try run("/bin/bash", [SlurmTests.script, "exec", dir, host, "/bin/bash", "-c", """
                for n in $(cd /proc/$$/fd && echo *); do [ "$n" -gt 2 ] && eval "exec $n>&-"; done
                cd '\(work)' || exit 99
                W='\(work)/wgns'
                \(script)
                """], environment: env)
        }

        /// Runs Tests/scripts/NAME as `sh` does (read here: the test user may
        /// not read the checkout), with `environment` added.
        func script(_ name: String, environment: [String: String] = [:]) throws -> RunResult {
            try sh(try String(contentsOfFile: "\(scriptsFolder)/\(name)", encoding: .utf8), environment: environment)
        }

        func stop() throws -> RunResult { try shell("bash '\(SlurmTests.script)' stop '\(dir)'") }

        deinit { _ = try? stop() }
    }

    /// A started cluster, or nil with the failure recorded.
    static func started(_ sourceLocation: SourceLocation = #_sourceLocation) throws -> Cluster? {
        let c = try Cluster()
        #expect(c.start.status == 0, "\(c.start.stdout)\(c.start.stderr)", sourceLocation: sourceLocation)
        return c.start.status == 0 ? c : nil
    }

    /// Every live process (pid and command line) that carries `token` in its environment.
    static func carrying(_ token: String) throws -> String {
        try shell("grep -lsa '\(token)' /proc/[0-9]*/environ | cut -d/ -f3 | while read p; do [ \"$(awk '{print $3}' /proc/$p/stat 2>/dev/null)\" = Z ] || ps -o pid=,args= -p $p; done").stdout
    }

    /// The nodes are the test hosts: each slurmd runs in its host's network
    /// namespace and is known by that host's name and address, the
    /// controller and munge run on h1, and a step's tasks land one per host,
    /// as the test user. Stopping the cluster while a job still runs (a test
    /// that failed halfway) leaves nothing: no process of the job (its
    /// steps, wgns, the carriers, the tasks), no daemon, no process in any
    /// host's namespace, no link, no keeper, no file, and the machine's mount
    /// table as it was. Bad arguments are one line and exit 64; a start
    /// that fails halfway (before the daemons, or after some) removes what
    /// it made.
    @Test(.enabled(if: canRun, "needs root, WGNS_TEST_USER, iproute2, python3 and Slurm (scripts/deps.sh installs it)"))
    func nodesAreTestHostsAndStopLeavesNothing() throws {
        let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n").count
        guard let c = try Self.started() else { return }
        #expect(c.start.stdout.contains("slurm: controller on h1, nodes h2 h3 (h1 h2 h3 on the test bridge)"), "\(c.start.stdout)")
        let net = "\(c.dir)/net"
        let testnet = "\(packageRoot)/scripts/testnet/cluster.sh"
        let placed = try shell("""
            for h in h1 h2 h3; do echo "$h $(bash '\(testnet)' ns '\(net)' $h)"; done > '\(c.work)/ns'
            for d in munged slurmctld slurmd-h2 slurmd-h3; do
              p=$(cat '\(c.dir)'/run/$d.pid); n=$(readlink /proc/$p/ns/net)
              echo "$d $(cat /proc/$p/comm) on $(awk -v n="$n" '$2 == n { print $1 }' '\(c.work)/ns')"
            done
            """)
        for line in ["munged munged on h1", "slurmctld slurmctld on h1", "slurmd-h2 slurmd on h2", "slurmd-h3 slurmd on h3"] {
            #expect(placed.stdout.contains(line + "\n"), "\(placed.stdout)\(placed.stderr)")
        }
        let token = UUID().uuidString
        let r = try c.script("slurm-nodes.sh", environment: ["WGNS_SLURM_TEST": token])
        #expect(r.stdout.contains("h2 10.231.0.2 h2 idle\nh3 10.231.0.3 h3 idle\n"), "\(r.stdout)\(r.stderr)")
        let user = c.folder.user ?? "?"
        #expect(r.stdout.contains("task 0 on h2: h2 \(user) 10.231.0.2/24\ntask 1 on h3: h3 \(user) 10.231.0.3/24\n"), "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("up 4\n"), "\(r.stdout)\(r.stderr)")
        let running = try Self.carrying("WGNS_SLURM_TEST=\(token)")
        #expect(!running.isEmpty)

        let stop = try c.stop()
        #expect(stop.status == 0, "\(stop.stderr)")
        let tag = try shell("printf %s '\(net)' | sha1sum | cut -c1-6").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let left = try run("/bin/bash", ["\(scriptsFolder)/slurm-left.sh"], environment: ProcessInfo.processInfo.environment
            .merging(["NSFILE": "\(c.work)/ns", "DIR": c.dir, "TAG": tag]) { $1 })
        #expect(left.stdout.isEmpty, "left behind:\n\(left.stdout)")
        let remains = try Self.carrying("WGNS_SLURM_TEST=\(token)")
        #expect(remains.isEmpty, "left behind: \(remains)")
        let after = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n").count
        #expect(after == mounts)

        // Bad input: one line, exit 64, nothing made; a start that fails
        // halfway (a host's link name taken) removes what it made.
        let bad = try shell("bash '\(Self.script)' start '\(c.dir)' x")
        #expect(bad.status == 64 && bad.stderr == "cluster.sh: NODES must be a number from 1 to 100, not 'x'\n", "\(bad.stderr)")
        let usage = try shell("bash '\(Self.script)' srun '\(c.dir)'")
        #expect(usage.status == 64 && usage.stderr.hasPrefix("usage: cluster.sh start DIR [NODES]"), "\(usage.stderr)")
        func failedStart(_ how: String) throws -> RunResult {
            try run("/bin/bash", ["\(scriptsFolder)/slurm-failed-start.sh"], environment: ProcessInfo.processInfo.environment.merging(
                ["HOW": how, "SLURM_CLUSTER": Self.script, "DIR": c.dir, "TAG": tag, "BIN": "\(c.work)/bin"]) { $1 })
        }
        let half = try failedStart("link")
        #expect(half.stdout == "status 1\n", "\(half.stdout)\(half.stderr)")
        // A slurmd that does not start, after munged and slurmctld did: they
        // go too, and so does everything else start made.
        let late = try failedStart("slurmd")
        #expect(late.stdout == "status 1\n", "\(late.stdout)\(late.stderr)")
        #expect(late.stderr.hasPrefix("cluster.sh: slurmd on h2 did not start\n"), "\(late.stderr)")
        #expect(late.stderr.contains("== \(c.dir)/log/slurmctld.log\n"), "\(late.stderr)")
    }

    /// The srun scenario: the hub on h1 (`wgns hub`, its port picked and
    /// published as h1:PORT), and `srun -N2 -n4 wgns up DIR` from h1, two
    /// tasks on each of h2 and h3, each its own peer by rank. Every task
    /// reaches the hub and every other task by name, a file crosses from h3
    /// to h2 over TCP with its sha256 intact, the tunnel MTU is the fabric's
    /// minus 80 with host loopback off, and the hub sees each peer at its
    /// host's fabric address. Nothing of the job is left afterwards. On the
    /// builtin backend also as a mesh: every task then goes direct to every
    /// other, and the rest holds the same.
    @Test(.enabled(if: canRun, "needs root, WGNS_TEST_USER, iproute2, python3 and Slurm (scripts/deps.sh installs it)"),
          arguments: [("wireguard-go", "star"), ("builtin", "star"), ("builtin", "mesh")])
    func srunTasksOnTheirOwnHostsReachEachOther(backend: String, topology: String) throws {
        guard let c = try Self.started() else { return }
        let hub = "slurm-hub-\(UInt16.random(in: 1000...60000))"
        // Every process this test starts, through srun or not, inherits this
        // token: what is left of the job afterwards is found by it, whatever
        // other tests run as the same user meanwhile.
        let token = UUID().uuidString
        let r = try c.script("slurm-srun.sh", environment: ["WGNS_SLURM_TEST": token, "HUB": hub, "BACKEND": backend, "TOPOLOGY": topology])
        let out = r.stdout
        #expect(out.contains("wgns hub: up, wg0 10.97.0.1/24, UDP port "), "\(out)\n\(r.stderr)")
        #expect(out.contains("published h1\n"), "\(out)")
        #expect(out.contains("srun status 0\n"), "\(out)\n\(r.stderr)")
        // Block distribution: ranks 0 and 1 on h2, 2 and 3 on h3.
        for (k, host) in [(1, "h2"), (2, "h2"), (3, "h3"), (4, "h3")] {
            #expect(out.contains("peer-\(k) is task \(k - 1) on \(host)\n"), "\(out)")
            #expect(out.contains("peer-\(k) on \(host)\n"), "\(out)")
            #expect(out.contains("peer-\(k) env peer-\(k) \(k)/4 10.97.0.\(k + 1) hub 10.97.0.1\n"), "\(out)")
            #expect(out.contains("peer-\(k) reaches hub\n"), "\(out)")
            for j in 1...4 where j != k { #expect(out.contains("peer-\(k) reaches peer-\(j)\n"), "\(out)") }
            #expect(out.split(separator: "\n").contains { $0.contains("task \(k - 1): wgns: ") && $0.contains("endpoints resolved, MTU wg0 1420 ") }, "\(out)")
        }
        #expect(!out.contains("cannot reach"), "\(out)")
        #expect(out.split(separator: "\n").filter { $0.hasPrefix("task ") && $0.contains("containment:") && $0.contains("host loopback off") }.count == 4, "\(out)")
        let sent = out.split(separator: "\n").first { $0.hasPrefix("sent ") }.map { String($0.dropFirst(5)) } ?? "?"
        #expect(out.contains("received 8388608 \(sent) from 10.97.0.5\n"), "\(out)")
        // The peers came in over the bridge, from their hosts' addresses.
        let seen = out.split(separator: "\n").filter { $0.hasPrefix("hub sees ") }.map { $0.dropFirst(9).split(separator: ":")[0] }
        #expect(seen.count == 4 && seen.filter { $0 == "10.231.0.2" }.count == 2 && seen.filter { $0 == "10.231.0.3" }.count == 2, "\(out)")
        #expect(out.contains("hub status 0"), "\(out)")
        // A mesh: every task went direct to the three others (two of them
        // on its own host, through its node's fabric address).
        #expect(out.contains("mesh direct lines \(topology == "mesh" ? 12 : 0)\n"), "\(out)")
        let remains = try Self.carrying("WGNS_SLURM_TEST=\(token)")
        #expect(remains.isEmpty, "left behind: \(remains)")
    }

    /// The batch script of examples/ as it is, submitted twice at once from
    /// h1 with `sbatch --wait` by one user: in each job `wgns hub` runs on
    /// the batch node (h2), picks its own free port there, and lives as long
    /// as `srun wgns up` over four tasks on h2 and h3, every task reaching
    /// every other (and the hub) by name: those on h3 across the bridge,
    /// those on h2 through the hub's port on their own host; the
    /// last task (h3) sends the first (h2) a MiB over TCP, which arrives with
    /// its sha256. Both jobs succeed on different ports, and nothing of
    /// either is left: no process, no VPN folder, no endpoint file.
    @Test(.enabled(if: canRun, "needs root, WGNS_TEST_USER, iproute2, python3 and Slurm (scripts/deps.sh installs it)"))
    func exampleBatchJobsRunTogetherEachWithItsOwnVPN() throws {
        guard let c = try Self.started() else { return }
        let example = try String(contentsOfFile: "\(packageRoot)/examples/slurm-vpn.sbatch", encoding: .utf8)
        try Data(example.utf8).write(to: URL(fileURLWithPath: "\(c.work)/slurm-vpn.sbatch"))
        chmod("\(c.work)/slurm-vpn.sbatch", 0o755)
        let token = UUID().uuidString
        let r = try c.script("slurm-example.sh", environment: ["WGNS_SLURM_TEST": token])
        let out = r.stdout
        #expect(out.contains("both running\n"), "\(out)\n\(r.stderr)")
        #expect(out.contains("job 1 status 0\n") && out.contains("job 2 status 0\n"), "\(out)\n\(r.stderr)")
        let jobs = out.components(separatedBy: "== job ").dropFirst().map { $0.components(separatedBy: "== left")[0] }
        #expect(jobs.count == 2, "\(out)")
        var ports: [String] = []
        for job in jobs {
            let lines = job.split(separator: "\n").map(String.init)
            // The example runs on the default backend: builtin here unless the
            // kernel has WireGuard (then pasta forwards the hub's port).
            let how = Doctor.kernelWireGuard().available ? "forwarded from the host" : "on the host"
            let up = lines.first { $0.hasPrefix("wgns hub: up, wg0 10.97.0.1/24, UDP port ") && $0.hasSuffix(" (picked) \(how), 4 peers") }
            #expect(up != nil, "\(job)")
            ports.append(up?.split(separator: " ")[7].description ?? "")
            for (k, host) in [(1, "h2"), (2, "h2"), (3, "h3"), (4, "h3")] {
                #expect(lines.contains("peer-\(k) is task \(k - 1) on \(host) at 10.97.0.\(k + 1), hub at 10.97.0.1"), "\(job)")
                for j in 1...4 where j != k { #expect(lines.contains("peer-\(k) reached peer-\(j)"), "\(job)") }
                #expect(lines.contains("peer-\(k) reached hub"), "\(job)")
            }
            // A MiB from h3 to h2 over TCP, by name, whole.
            let sent = lines.first { $0.hasPrefix("peer-4 sends 1048576 bytes, sha256 ") }?.split(separator: " ").last
            #expect(sent != nil && lines.contains("peer-1 received 1048576 bytes, sha256 \(sent ?? "?"), from 10.97.0.5"), "\(job)")
            #expect(!job.contains("FAILED"), "\(job)")
        }
        #expect(ports.count == 2 && !ports[0].isEmpty && ports[0] != ports[1], "\(ports)")
        // Nothing left: no VPN folder (keys), no process with the token.
        let left = out.components(separatedBy: "== left\n").last ?? ""
        #expect(left.split(separator: " ").allSatisfy { !$0.hasPrefix("wgns-vpn-") || $0.hasSuffix(".out") }, "\(left)")
        let remains = try Self.carrying("WGNS_SLURM_TEST=\(token)")
        #expect(remains.isEmpty, "left behind: \(remains)")
    }
}
