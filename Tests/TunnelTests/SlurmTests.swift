import Foundation
import Testing
import TestSupport

/// A real Slurm cluster on this host (scripts/slurm/cluster.sh: munged,
/// slurmctld and two slurmd as two logical nodes), and a per-job VPN across
/// its tasks: `srun -N2 -n4 wgns up DIR -- ...` as an unprivileged user, every
/// task taking its identity from its rank, every task reaching every other
/// through the hub. Needs root (slurmd starts tasks as their user) and
/// Debian's slurmctld, slurmd, slurm-client and munge.
@Suite(.serialized) struct SlurmTests {
    static let canRun = getuid() == 0 && which("slurmctld") != nil && which("srun") != nil && which("munged") != nil

    /// Starts a two-node cluster whose state lives outside the fixture
    /// (whose folder goes away as soon as the fixture does); nil, with the
    /// failure recorded, when it does not start.
    static func startCluster(_ f: UpFixture) throws -> String? {
        let cluster = "/tmp/wgns-slurm-\(f.port)"
        let start = try shell("bash '\(packageRoot)/scripts/slurm/cluster.sh' start '\(cluster)' 2")
        #expect(start.status == 0, "\(start.stderr)")
        if start.status != 0 { stopCluster(cluster); return nil }
        return cluster
    }

    static func stopCluster(_ cluster: String) {
        _ = try? shell("bash '\(packageRoot)/scripts/slurm/cluster.sh' stop '\(cluster)'; rm -rf '\(cluster)'")
    }

    @Test(.enabled(if: canRun, "needs root and Slurm (scripts/deps.sh installs it)"))
    func srunTasksReachEachOtherThroughTheJobVPN() throws {
        let f = try UpFixture()
        guard let cluster = try Self.startCluster(f) else { return }
        defer { Self.stopCluster(cluster) }

        let hubName = "slurm-hub-\(f.port)"
        // Every process this test starts, through srun or not, inherits this
        // token: what is left of the job afterwards is found by it, whatever
        // other tests run as the same user meanwhile.
        let token = "WGNS_SLURM_TEST=\(UUID().uuidString)"
        let r = try f.sh("""
            export SLURM_CONF='\(cluster)/slurm.conf'
            export \(token)
            umask 077
            "$W" vpn new vpn --peers 4 --subnet 10.98.0.0/24 --endpoint 127.0.0.1:\(f.port) > /dev/null || exit 10
            "$W" hub vpn --name \(hubName) > hub.out 2>&1 &
            HUB=$!
            for i in $(seq 200); do grep -q 'up,' hub.out && break; sleep 0.05; done
            mkdir -m 700 barrier
            # Each task: wait for all four, ping the other three, wait for all four again.
            srun -N2 -n4 --chdir='\(f.dir)' "$W" up vpn -- sh -c '
                k=$((SLURM_PROCID + 1))
                me=$(ip -4 -br addr show wg0 | awk "{print \\$3}")
                echo "task $SLURM_PROCID on $SLURMD_NODENAME is peer-$k at $me"
                touch barrier/up.$k; while [ "$(ls barrier | grep -c "^up")" -lt 4 ]; do sleep 0.05; done
                for j in 1 2 3 4; do
                    [ $j = $k ] && continue
                    if ping -c 2 -i 0.2 -W 3 10.98.0.$((j + 1)) > /dev/null; then echo "REACHED $k->$j"; else echo "FAILED $k->$j"; fi
                done
                touch barrier/done.$k; while [ "$(ls barrier | grep -c "^done")" -lt 4 ]; do sleep 0.05; done'
            echo "srun status $?"
            "$W" down \(hubName)
            wait $HUB
            echo "hub status $?"
            cat hub.out
            """)
        let out = r.stdout
        #expect(out.contains("srun status 0"), "\(out)\n\(r.stderr)")
        let reached = out.split(separator: "\n").filter { $0.hasPrefix("REACHED ") }
        #expect(Set(reached).count == 12, "\(out)\n\(r.stderr)")
        #expect(!out.contains("FAILED"), "\(out)")
        // Both logical nodes ran tasks, and every task took its own peer.
        #expect(out.contains("on n1 is peer-") && out.contains("on n2 is peer-"), "\(out)")
        for k in 1...4 { #expect(out.contains("is peer-\(k) at 10.98.0.\(k + 1)/24"), "\(out)") }
        #expect(out.contains("hub status 0"), "\(out)")

        // After the job nothing of it is left: no process carries the token.
        let left = try shell("grep -lsa '\(token)' /proc/[0-9]*/environ | cut -d/ -f3 | while read p; do ps -o pid=,args= -p $p; done")
        #expect(left.stdout.isEmpty, "left behind: \(left.stdout)")
        withExtendedLifetime(f) {}
    }

    /// The batch script of examples/ as it is, submitted twice at once with
    /// `sbatch --wait` by one user: in each job `wgns hub` runs on the batch
    /// node, picks its own free port, and lives as long as `srun wgns up`
    /// over four tasks on two nodes, every task reaching every other (and
    /// the hub) by name. Both jobs succeed on different ports, and nothing
    /// of either is left: no process, no VPN folder, no endpoint file.
    @Test(.enabled(if: canRun, "needs root and Slurm (scripts/deps.sh installs it)"))
    func exampleBatchJobsRunTogetherEachWithItsOwnVPN() throws {
        let f = try UpFixture()
        guard let cluster = try Self.startCluster(f) else { return }
        defer { Self.stopCluster(cluster) }
        // The checkout may be unreadable for the test user: the same bytes, in its folder.
        let example = try String(contentsOfFile: "\(packageRoot)/examples/slurm-vpn.sbatch", encoding: .utf8)
        try f.write("slurm-vpn.sbatch", example, mode: 0o755)
        let token = "WGNS_SLURM_TEST=\(UUID().uuidString)"
        let r = try f.sh("""
            export SLURM_CONF='\(cluster)/slurm.conf'
            export \(token)
            export WGNS="$W"
            # Both jobs need every core of both nodes: --oversubscribe lets them share.
            sbatch --wait --oversubscribe --parsable slurm-vpn.sbatch > job.1 & A=$!
            sbatch --wait --oversubscribe --parsable slurm-vpn.sbatch > job.2 & B=$!
            for i in $(seq 600); do
              [ "$(squeue -h -t R -o %i | wc -l)" = 2 ] && { echo "both running"; break; }
              sleep 0.05
            done
            wait $A; echo "job 1 status $?"; wait $B; echo "job 2 status $?"
            for k in 1 2; do echo "== job $k"; cat wgns-vpn-$(cat job.$k).out; done
            echo "== left"; ls -a | grep -v '^\\.*$' | tr '\\n' ' '; echo
            """)
        let out = r.stdout
        #expect(out.contains("both running\n"), "\(out)\n\(r.stderr)")
        #expect(out.contains("job 1 status 0\n") && out.contains("job 2 status 0\n"), "\(out)\n\(r.stderr)")
        let jobs = out.components(separatedBy: "== job ").dropFirst().map { $0.components(separatedBy: "== left")[0] }
        #expect(jobs.count == 2, "\(out)")
        var ports: [String] = []
        for job in jobs {
            let lines = job.split(separator: "\n").map(String.init)
            let up = lines.first { $0.hasPrefix("wgns hub: up, wg0 10.97.0.1/24, UDP port ") && $0.hasSuffix(" (picked) forwarded from the host, 4 peers") }
            #expect(up != nil, "\(job)")
            ports.append(up?.split(separator: " ")[7].description ?? "")
            for k in 1...4 {
                #expect(lines.contains { $0.hasPrefix("peer-\(k) is task \(k - 1) on n") && $0.hasSuffix(" at 10.97.0.\(k + 1), hub at 10.97.0.1") }, "\(job)")
                for j in 1...4 where j != k { #expect(lines.contains("peer-\(k) reached peer-\(j)"), "\(job)") }
                #expect(lines.contains("peer-\(k) reached hub"), "\(job)")
            }
            #expect(job.contains(" on n1 at ") && job.contains(" on n2 at "), "\(job)")
            #expect(!job.contains("FAILED"), "\(job)")
        }
        #expect(ports.count == 2 && !ports[0].isEmpty && ports[0] != ports[1], "\(ports)")
        // Nothing left: no VPN folder (keys), no process with the token.
        let left = out.components(separatedBy: "== left\n").last ?? ""
        #expect(!left.contains("wgns-vpn-") || left.split(separator: " ").allSatisfy { !$0.hasPrefix("wgns-vpn-") || $0.hasSuffix(".out") }, "\(left)")
        let procs = try shell("grep -lsa '\(token)' /proc/[0-9]*/environ | cut -d/ -f3 | while read p; do ps -o pid=,args= -p $p; done")
        #expect(procs.stdout.isEmpty, "left behind: \(procs.stdout)")
        withExtendedLifetime(f) {}
    }
}
