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

    @Test(.enabled(if: canRun, "needs root and Slurm (scripts/deps.sh installs it)"))
    func srunTasksReachEachOtherThroughTheJobVPN() throws {
        let f = try UpFixture()
        // The cluster's state lives outside the fixture, whose folder goes
        // away as soon as the fixture does.
        let cluster = "/tmp/wgns-slurm-\(f.port)"
        let start = try shell("bash '\(packageRoot)/scripts/slurm/cluster.sh' start '\(cluster)' 2")
        #expect(start.status == 0, "\(start.stderr)")
        defer { _ = try? shell("bash '\(packageRoot)/scripts/slurm/cluster.sh' stop '\(cluster)'; rm -rf '\(cluster)'") }
        guard start.status == 0 else { return }

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
}
