import Foundation
import Testing
import TestSupport

/// A per-job VPN on the host, rootless (as WGNS_TEST_USER when run as root),
/// with wireguard-go: `wgns vpn new`, `wgns hub`, `wgns up DIR --peer K`,
/// isolation and the Slurm rank. All traffic stays on loopback and in the
/// tests' own namespaces.
@Suite(.serialized) struct VPNHubTests {
    /// The peer-side script: says it is up, waits for the others, pings every
    /// other peer's VPN address (a few tries: a peer the hub has not heard
    /// from yet is not routable), then waits until every peer is done.
    static let peerScript = """
        k=$1; n=$2
        touch up.$k
        all() { for j in $(seq 1 $n); do [ -e $1.$j ] || return 1; done; }
        i=0; until all up; do i=$((i+1)); [ $i -gt 600 ] && { echo "peer $k: the others never came up"; exit 2; }; sleep 0.05; done
        for j in $(seq 1 $n); do
          [ $j = $k ] && continue
          ok=no
          for t in 1 2 3 4 5; do ping -c1 -W2 10.97.0.$((j+1)) > /dev/null 2>&1 && { ok=yes; break; }; done
          if [ $ok = yes ]; then echo "peer $k reaches peer $j"; else echo "peer $k cannot reach peer $j"; fi
        done
        touch done.$k
        i=0; until all done; do i=$((i+1)); [ $i -gt 600 ] && exit 3; sleep 0.05; done
        """

    /// Starts a hub (`wgns hub`, named when `name` is given) in the background
    /// of a script and waits for its "up" line.
    static func startHub(_ name: String? = nil) -> String {
        """
        "$W" hub \(name.map { "--name \($0) " } ?? "")v > hub.out 2> hub.err &
        H=$!
        for i in $(seq 1 200); do grep -q '^wgns hub: up' hub.out && break; kill -0 $H 2>/dev/null || break; sleep 0.05; done
        """
    }

    /// Every process whose command line or working directory is in `dir`.
    static func processes(under dir: String) -> [String] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
        return pids.compactMap { pid in
            guard pid != getpid() else { return nil }
            let cmd = ((try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data())
                .map { $0 == 0 ? " " : String(UnicodeScalar($0)) }.joined()
            let cwd = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")) ?? ""
            return cmd.contains(dir) || cwd.hasPrefix(dir) ? "\(pid) \(cmd)" : nil
        }
    }

    /// Expects that every process of the run in `dir` is gone (they may take
    /// a moment after the script ends); names those left if not.
    static func expectNothingRunning(under dir: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(UpFixture.eventually { processes(under: dir).isEmpty }, "\(processes(under: dir))", sourceLocation: sourceLocation)
    }

    /// A shell command that prints the job's network interfaces, sorted, on
    /// one line ("interfaces lo wg0 ").
    static let listInterfaces = #"echo "interfaces $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort | tr "\n" " ")""#

    @Test func hubAndThreePeersReachEachOther() throws {
        let f = try UpFixture()
        try f.write("peer.sh", Self.peerScript, mode: 0o644)
        let name = "hub\(f.port)"
        let mountsBefore = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n").count
        let r = try f.sh("""
            "$W" vpn new v --peers 3 --subnet 10.97.0.0/24 --endpoint 127.0.0.1:\(f.port) > /dev/null || exit 9
            \(Self.startHub(name))
            "$W" list | grep -x \(name) && echo "hub listed"
            for k in 1 2 3; do "$W" up v --peer $k -- sh peer.sh $k 3 > job.$k.out 2>&1 & eval J$k=\\$!; done
            wait $J1; echo "job 1 status $?"; wait $J2; echo "job 2 status $?"; wait $J3; echo "job 3 status $?"
            cat job.1.out job.2.out job.3.out
            "$W" show \(name) > show.out; echo "show status $?"
            "$W" status \(name) | grep -c '^peer: ' | sed 's/^/status peers /'
            kill -INT $H; wait $H; echo "hub status $?"
            cat hub.out
            "$W" list | grep -x \(name) || echo "hub gone"
            rm -f up.* done.* job.*.out
            """)
        let out = r.stdout
        #expect(out.contains("hub listed\n"), "\(out)\n\(r.stderr)")
        #expect(out.contains("wgns hub: up, wg0 10.97.0.1/24, UDP port \(f.port) forwarded from the host, 3 peers\n"))
        for k in 1...3 {
            #expect(out.contains("job \(k) status 0"))
            for j in 1...3 where j != k {
                #expect(out.contains("peer \(k) reaches peer \(j)\n"), "\(out)")
            }
        }
        #expect(!out.contains("cannot reach"))
        #expect(out.contains("show status 0"))
        #expect(out.contains("status peers 3\n"))
        // The hub saw every peer, read from outside by name.
        let show = try String(contentsOfFile: "\(f.dir)/show.out", encoding: .utf8)
        #expect(show.components(separatedBy: "latest handshake:").count == 4, "\(show)")
        #expect(show.contains("listening port: \(f.port)\n"))
        #expect(out.contains("hub status 0"))
        #expect(out.contains("hub gone"))
        // Nothing left: no process, mount or file of the run.
        Self.expectNothingRunning(under: f.dir)
        let mountsAfter = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n").count
        #expect(mountsAfter == mountsBefore)
        let files = try FileManager.default.contentsOfDirectory(atPath: f.dir).sorted()
        #expect(files == ["client.py", "hub.err", "hub.out", "job.conf", "peer.conf", "peer.sh", "server.py", "show.out", "v", "wgns"], "\(files)")
        let vpn = try FileManager.default.contentsOfDirectory(atPath: "\(f.dir)/v").sorted()
        #expect(vpn == ["hub.conf", "peer-1.conf", "peer-2.conf", "peer-3.conf"])
    }

    /// A dual-stack VPN: the hub forwards IPv6 between peers too (one of them isolated).
    @Test func hubForwardsIPv6() throws {
        let f = try UpFixture()
        let r = try f.sh("""
            "$W" vpn new v --peers 2 --subnet 10.97.0.0/24 --subnet fd97::/64 --endpoint 127.0.0.1:\(f.port) > /dev/null || exit 9
            \(Self.startHub())
            rm -f up; mkfifo up
            "$W" up v --peer 1 -- sh -c 'echo > up; sleep 30' > job.1.out 2>&1 &
            J1=$!
            read x < up
            "$W" up v --peer 2 --isolate -- sh -c '
              for t in 1 2 3 4 5; do ping -c1 -W2 fd97::2 > /dev/null 2>&1 && { echo "v6 peer reached"; break; }; done
              ping -c1 -W2 fd97::1 > /dev/null 2>&1 && echo "v6 hub reached"'
            kill -TERM $J1; wait $J1
            kill -HUP $H; wait $H; echo "hub status $?"
            cat hub.out
            rm -f up job.1.out
            """)
        #expect(r.stdout.contains("wgns hub: up, wg0 10.97.0.1/24, fd97::1/64, UDP port \(f.port) forwarded from the host, 2 peers\n"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("v6 peer reached\n"))
        #expect(r.stdout.contains("v6 hub reached\n"))
        #expect(r.stdout.contains("hub status 0"))
        Self.expectNothingRunning(under: f.dir)
    }

    @Test func hubErrorsAreOneLine() throws {
        let f = try UpFixture()
        let r = try f.sh("""
            "$W" hub job.conf; echo "no port status $?"
            sed 's/^ForwardUDP.*/ForwardTCP = 8080/' peer.conf > tcp.conf
            "$W" hub tcp.conf; echo "tcp status $?"
            "$W" hub /nonexistent.conf; echo "missing status $?"
            """)
        #expect(r.stdout.contains("no port status 1"))
        #expect(r.stderr.contains("wgns: job.conf: a hub needs ListenPort in [Interface] (the port pasta forwards from the host)\n"), "\(r.stderr)")
        #expect(r.stdout.contains("tcp status 1"))
        #expect(r.stderr.contains("wgns: tcp.conf: a hub forwards only its ListenPort \(f.port); remove the other ForwardTCP/ForwardUDP entries\n"))
        #expect(r.stdout.contains("missing status 1"))
    }

    /// `--isolate` and `Isolate = true`: the job sees lo and wg0 only, cannot
    /// reach the host's loopback (which the same config without isolation
    /// reaches, as the control) nor anything outside the tunnel, and reaches
    /// its peer and the hub through the tunnel.
    @Test(arguments: ["flag", "config"])
    func isolatedJobReachesOnlyTheTunnel(how: String) throws {
        let f = try UpFixture()
        try f.write("peer.sh", Self.peerScript, mode: 0o644)
        try f.write("probe.py", """
            import socket, sys
            try:
                socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close(); print("connected")
            except OSError as e:
                print("refused:", e.strerror)
            """, mode: 0o644)
        let tcp = f.port &+ 1
        let isolate = how == "flag" ? "--isolate" : ""
        let r = try f.sh("""
            "$W" vpn new v --peers 2 --subnet 10.97.0.0/24 --endpoint 127.0.0.1:\(f.port) > /dev/null || exit 9
            \(how == "config" ? "printf 'Isolate = true\\n' >> v/peer-2.conf" : "")
            python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1", \(tcp))); s.listen(8); time.sleep(60)' &
            L=$!
            \(Self.startHub())
            "$W" up v --peer 1 -- sh peer.sh 1 2 > job.1.out 2>&1 &
            J1=$!
            "$W" up v --peer 2 \(isolate) -- sh -c '
              \(Self.listInterfaces)
              echo "sysfs $(ls /sys/class/net | tr "\\n" " ")"
              echo "host loopback $(python3 probe.py 10.0.2.2 \(tcp))"
              echo "outside $(python3 probe.py 192.0.2.1 80)"
              ping -c1 -W1 10.0.2.2 > /dev/null 2>&1 && echo "ping host loopback works" || echo "ping host loopback fails"
              sh peer.sh 2 2'
            echo "isolated status $?"
            wait $J1; echo "job 1 status $?"
            "$W" up v --peer 1 -- sh -c 'echo "control host loopback $(python3 probe.py 10.0.2.2 \(tcp))"'
            cat job.1.out
            kill -INT $H; wait $H; echo "hub status $?"
            kill -KILL $L; wait $L 2>/dev/null
            rm -f up.* done.* job.*.out
            """)
        let out = r.stdout
        #expect(out.contains("interfaces lo wg0 \n"), "\(out)\n\(r.stderr)")
        #expect(out.contains("sysfs lo wg0 \n"))
        #expect(out.contains("host loopback refused: Network is unreachable\n"))
        #expect(out.contains("outside refused: Network is unreachable\n"))
        #expect(out.contains("ping host loopback fails\n"))
        #expect(out.contains("peer 2 reaches peer 1\n"))
        #expect(out.contains("peer 1 reaches peer 2\n"))
        #expect(out.contains("isolated status 0"))
        // The same peer without isolation does reach the host's loopback.
        #expect(out.contains("control host loopback connected\n"))
        #expect(out.contains("job 1 status 0"))
        #expect(out.contains("hub status 0"))
        Self.expectNothingRunning(under: f.dir)
    }

    /// A named isolated tunnel: `wgns exec` lands in the job's own network
    /// namespace (lo and wg0 only), and `wgns status` still reads the device.
    @Test func namedIsolatedTunnelExecSeesOnlyTheTunnel() throws {
        let f = try UpFixture()
        let name = "iso\(f.port)"
        let r = try f.sh("""
            "$W" vpn new v --peers 1 --subnet 10.97.0.0/24 --endpoint 127.0.0.1:\(f.port) > /dev/null || exit 9
            "$W" up --name \(name) --isolate v --peer 1 > named.out 2>&1 &
            P=$!
            for i in $(seq 1 200); do "$W" list | grep -qx \(name) && "$W" exec \(name) -- true 2>/dev/null && break; sleep 0.05; done
            "$W" exec \(name) -- sh -c '\(Self.listInterfaces)'
            "$W" status \(name) | head -1
            "$W" down \(name); wait $P; echo "up status $?"
            """)
        #expect(r.stdout.contains("interfaces lo wg0 \n"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("interface: wg0\n"))
        #expect(r.stdout.contains("up status 0"))
        Self.expectNothingRunning(under: f.dir)
    }

    /// Inside a Slurm step without --peer, task rank R is peer R+1.
    @Test func slurmRankPicksThePeer() throws {
        let f = try UpFixture()
        let r = try f.sh("""
            "$W" vpn new v --peers 3 --subnet 10.97.0.0/24 --endpoint 127.0.0.1:\(f.port) > /dev/null || exit 9
            for rank in 0 2; do SLURM_PROCID=$rank "$W" up v -- sh -c "echo rank $rank \\$(ip -o -4 addr show wg0 | tr -s ' ' | cut -d' ' -f4)"; done
            SLURM_PROCID=0 "$W" up v --peer 2 -- sh -c "echo explicit \\$(ip -o -4 addr show wg0 | tr -s ' ' | cut -d' ' -f4)"
            SLURM_PROCID=3 "$W" up v -- true; echo "rank 3 status $?"
            "$W" up v -- true; echo "no rank status $?"
            "$W" up v --peer 0 -- true; echo "peer 0 status $?"
            mkdir empty; "$W" up empty --peer 1 -- true; echo "empty status $?"
            """)
        let out = r.stdout
        #expect(out.contains("rank 0 10.97.0.2/24\n"), "\(out)\n\(r.stderr)")
        #expect(out.contains("rank 2 10.97.0.4/24\n"))
        #expect(out.contains("explicit 10.97.0.3/24\n"))
        #expect(out.contains("rank 3 status 1"))
        #expect(r.stderr.contains("wgns: SLURM_PROCID 3 needs peer-4.conf but v has peers 1 to 3 (make the VPN with --peers 4 or more)\n"))
        #expect(out.contains("no rank status 1"))
        #expect(r.stderr.contains("wgns: v is a VPN of 3 peers: give --peer K (1 to 3), or run inside a Slurm step (SLURM_PROCID)\n"))
        #expect(out.contains("peer 0 status 1"))
        #expect(r.stderr.contains("wgns: --peer 0 is out of range: v has peers 1 to 3\n"))
        #expect(out.contains("empty status 1"))
        #expect(r.stderr.contains("wgns: empty holds no VPN (no empty/peer-1.conf; make one with `wgns vpn new empty --peers N ...`)\n"))
    }
}
