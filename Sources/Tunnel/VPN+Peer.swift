#if canImport(Glibc)
import Glibc
#endif

extension VPN {
    /// True when `path` is a directory.
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
    }

    /// How many peers the VPN in `dir` has (peer-1.conf, peer-2.conf, ... without a gap).
    public static func peerCount(_ dir: String) -> Int {
        var n = 0
        while access(peerPath(dir, n + 1), F_OK) == 0 { n += 1 }
        return n
    }

    /// The config of one peer of the VPN in `dir` (`wgns up DIR --peer K`):
    /// peer `peer` when given; otherwise, inside a Slurm step, the task's rank
    /// plus one (`SLURM_PROCID` 0 is peer-1), so that `srun wgns up DIR -- CMD`
    /// gives every task its own identity.
    public static func peerConfigPath(in dir: String, peer: Int?, slurmProcID: String?) throws(TunnelError) -> String {
        let count = peerCount(dir)
        guard count > 0 else {
            throw TunnelError(.config, "\(dir) holds no VPN (no \(peerPath(dir, 1)); make one with `wgns vpn new \(dir) --peers N ...`)")
        }
        let k: Int
        if let peer {
            k = peer
        } else if let rank = slurmProcID {
            guard let r = Int(rank), r >= 0 else {
                throw TunnelError(.config, "SLURM_PROCID '\(rank)' is not a task rank; give --peer K")
            }
            k = r + 1
            guard k <= count else {
                throw TunnelError(.config, "SLURM_PROCID \(r) needs peer-\(k).conf but \(dir) has peers 1 to \(count) (make the VPN with --peers \(k) or more)")
            }
        } else {
            throw TunnelError(.config, "\(dir) is a VPN of \(count) peers: give --peer K (1 to \(count)), or run inside a Slurm step (SLURM_PROCID)")
        }
        guard k >= 1 && k <= count else {
            throw TunnelError(.config, "--peer \(k) is out of range: \(dir) has peers 1 to \(count)")
        }
        return peerPath(dir, k)
    }
}
