import Foundation
import Testing
import TestSupport
import Tunnel

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
        \(TestJobs.meet())
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
    static func startHub(_ name: String? = nil, backend: String = "wireguard-go") -> String {
        """
        "$W" hub --backend \(backend) \(name.map { "--name \($0) " } ?? "")v > hub.out 2> hub.err &
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

    @Test(arguments: ["wireguard-go", "builtin"])
    func hubAndThreePeersReachEachOther(backend: String) throws {
        let f = try UpFixture()
        try f.write("peer.sh", Self.peerScript, mode: 0o644)
        let name = "hub\(f.port)"
        let mountsBefore = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n").count
        let r = try f.sh("""
            "$W" vpn new v --peers 3 --subnet 10.97.0.0/24 --endpoint 127.0.0.1:\(f.port) > /dev/null || exit 9
            \(Self.startHub(name, backend: backend))
            "$W" list | grep -x \(name) && echo "hub listed"
            for k in 1 2 3; do "$W" up --backend \(backend) v --peer $k -- sh peer.sh $k 3 > job.$k.out 2>&1 & eval J$k=\\$!; done
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
        #expect(out.contains("wgns hub: up, wg0 10.97.0.1/24, UDP port \(f.port) \(backend == "builtin" ? "on the host" : "forwarded from the host"), 3 peers\n"), "\(out)")
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
    @Test(arguments: ["wireguard-go", "builtin"])
    func hubForwardsIPv6(backend: String) throws {
        let f = try UpFixture()
        let r = try f.sh("""
            "$W" vpn new v --peers 2 --subnet 10.97.0.0/24 --subnet fd97::/64 --endpoint 127.0.0.1:\(f.port) > /dev/null || exit 9
            \(Self.startHub(backend: backend))
            rm -f up; mkfifo up
            "$W" up --backend \(backend) v --peer 1 -- sh -c 'echo > up; sleep 30' > job.1.out 2>&1 &
            J1=$!
            read x < up
            "$W" up --backend \(backend) v --peer 2 --isolate -- sh -c '
              for t in 1 2 3 4 5; do ping -c1 -W2 fd97::2 > /dev/null 2>&1 && { echo "v6 peer reached"; break; }; done
              ping -c1 -W2 fd97::1 > /dev/null 2>&1 && echo "v6 hub reached"'
            kill -TERM $J1; wait $J1
            kill -HUP $H; wait $H; echo "hub status $?"
            cat hub.out
            rm -f up job.1.out
            """)
        #expect(r.stdout.contains("wgns hub: up, wg0 10.97.0.1/24, fd97::1/64, UDP port \(f.port) \(backend == "builtin" ? "on the host" : "forwarded from the host"), 2 peers\n"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("v6 peer reached\n"))
        #expect(r.stdout.contains("v6 hub reached\n"))
        #expect(r.stdout.contains("hub status 0"))
        Self.expectNothingRunning(under: f.dir)
    }

    @Test func hubErrorsAreOneLine() throws {
        let f = try UpFixture()
        let r = try f.sh("""
            "$W" hub --backend wireguard-go job.conf job.conf; echo "two configs status $?"
            sed 's/^ForwardUDP.*/ForwardTCP = 8080/' peer.conf > tcp.conf
            "$W" hub --backend wireguard-go tcp.conf; echo "tcp status $?"
            "$W" hub --backend wireguard-go /nonexistent.conf; echo "missing status $?"
            """)
        #expect(r.stdout.contains("two configs status 64"))
        #expect(r.stderr.contains("wgns: hub: one CONFIG only (got 2); put a command after --\n"), "\(r.stderr)")
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
            "$W" up --backend wireguard-go v --peer 1 -- sh peer.sh 1 2 > job.1.out 2>&1 &
            J1=$!
            "$W" up --backend wireguard-go v --peer 2 \(isolate) -- sh -c '
              \(Self.listInterfaces)
              echo "sysfs $(ls /sys/class/net | tr "\\n" " ")"
              echo "host loopback $(python3 probe.py 10.0.2.2 \(tcp))"
              echo "outside $(python3 probe.py 192.0.2.1 80)"
              ping -c1 -W1 10.0.2.2 > /dev/null 2>&1 && echo "ping host loopback works" || echo "ping host loopback fails"
              sh peer.sh 2 2'
            echo "isolated status $?"
            wait $J1; echo "job 1 status $?"
            "$W" up --backend wireguard-go v --peer 1 -- sh -c 'echo "control host loopback $(python3 probe.py 10.0.2.2 \(tcp))"'
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
            "$W" up --backend wireguard-go --name \(name) --isolate v --peer 1 > named.out 2>&1 &
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
            for rank in 0 2; do SLURM_PROCID=$rank "$W" up --backend wireguard-go v -- sh -c "echo rank $rank \\$(ip -o -4 addr show wg0 | tr -s ' ' | cut -d' ' -f4)"; done
            SLURM_PROCID=0 "$W" up --backend wireguard-go v --peer 2 -- sh -c "echo explicit \\$(ip -o -4 addr show wg0 | tr -s ' ' | cut -d' ' -f4)"
            SLURM_PROCID=3 "$W" up --backend wireguard-go v -- true; echo "rank 3 status $?"
            "$W" up --backend wireguard-go v -- true; echo "no rank status $?"
            "$W" up --backend wireguard-go v --peer 0 -- true; echo "peer 0 status $?"
            mkdir empty; "$W" up --backend wireguard-go empty --peer 1 -- true; echo "empty status $?"
            """)
        let out = r.stdout
        #expect(out.contains("rank 0 10.97.0.2/24\n"), "\(out)\n\(r.stderr)")
        #expect(out.contains("rank 2 10.97.0.4/24\n"))
        #expect(out.contains("explicit 10.97.0.3/24\n"))
        #expect(out.contains("rank 3 status 1"))
        #expect(r.stderr.contains("wgns: SLURM_PROCID 3 needs peer-4.conf but v has peers 1 to 3 (make the VPN with --peers 4 or more)\n"))
        #expect(out.contains("no rank status 1"))
        #expect(r.stderr.contains("wgns: v is a VPN of 3 peers: give --peer K (1 to 3), or run inside a Slurm step (SLURM_PROCID)\n"))
        #expect(out.contains("peer 0 status 64"))
        #expect(r.stderr.contains("wgns: --peer 0 is out of range: v has peers 1 to 3\n"))
        #expect(out.contains("empty status 1"))
        #expect(r.stderr.contains("wgns: empty holds no VPN (no empty/peer-1.conf; make one with `wgns vpn new empty --peers N ...`)\n"))
    }

    /// A peer script that reaches every member by name: waits for all, pings
    /// `hub` and every other `peer-J` (and `peer-J.vpn`), checks that its
    /// /etc/hosts is read-only and still has the host's localhost, and
    /// prints its WGNS_* environment.
    static let byNameScript = """
        k=$1; n=$2
        \(TestJobs.meet())
        echo "peer $k env $WGNS_NAME $WGNS_PEER/$WGNS_PEERS $WGNS_ADDRESS hub $WGNS_HUB"
        for t in 1 2 3 4 5; do ping -c1 -W2 hub > /dev/null 2>&1 && { echo "peer $k reaches hub"; break; }; done
        for j in $(seq 1 $n); do
          [ $j = $k ] && continue
          ok=no
          for t in 1 2 3 4 5; do ping -c1 -W2 peer-$j > /dev/null 2>&1 && { ok=yes; break; }; done
          ping -c1 -W2 peer-$j.vpn > /dev/null 2>&1 || ok=no
          if [ $ok = yes ]; then echo "peer $k reaches peer-$j by name"; else echo "peer $k cannot reach peer-$j"; fi
        done
        grep -q '^127.0.0.1[[:space:]].*localhost' /etc/hosts && echo "peer $k keeps localhost"
        ( echo "10.0.0.9 evil" >> /etc/hosts ) 2>/dev/null && echo "peer $k wrote /etc/hosts" || echo "peer $k: /etc/hosts read-only"
        touch done.$k
        i=0; until all done; do i=$((i+1)); [ $i -gt 600 ] && exit 3; sleep 0.05; done
        """

    /// `wgns vpn new` without --endpoint: the hub picks a free port, publishes
    /// `HOST:PORT` (mode 0600) once up, the peers take it from DIR and reach
    /// each other and the hub by name; the file goes with the hub.
    @Test(arguments: ["wireguard-go", "builtin"])
    func hubPicksItsPortAndPeersFindItAndEachOtherByName(backend: String) throws {
        let f = try UpFixture()
        try f.write("peer.sh", Self.byNameScript, mode: 0o644)
        let r = try f.sh("""
            "$W" vpn new v --peers 3 > /dev/null || exit 9
            cat v/hub.conf v/peer-1.conf | grep -ic '^ListenPort\\|^Endpoint' | sed 's/^/ports in configs /'
            \(Self.startHub(backend: backend))
            stat -c 'endpoint file mode %a' v/hub.endpoint
            head -1 v/hub.endpoint | sed 's/^/published /'
            "$W" hub --backend \(backend) v > second.out 2> second.err; echo "second hub status $?"
            for k in 1 2 3; do "$W" up --backend \(backend) v --peer $k -- sh peer.sh $k 3 > job.$k.out 2>&1 & eval J$k=\\$!; done
            wait $J1; echo "job 1 status $?"; wait $J2; echo "job 2 status $?"; wait $J3; echo "job 3 status $?"
            cat job.1.out job.2.out job.3.out second.err
            kill -TERM $H; wait $H; echo "hub status $?"
            cat hub.out
            [ -e v/hub.endpoint ] && echo "endpoint left" || echo "endpoint gone"
            rm -f up.* done.* job.*.out second.*
            """)
        let out = r.stdout
        #expect(out.contains("ports in configs 0\n"), "\(out)\n\(r.stderr)")
        #expect(out.contains("endpoint file mode 600\n"))
        // The "up" line and the file name the same port; the host is this node's name.
        let port = out.split(separator: "\n").first { $0.hasPrefix("wgns hub: up") }
            .flatMap { $0.split(separator: " ").drop { $0 != "port" }.dropFirst().first }.map(String.init)
        #expect(port != nil && UInt16(port!) != nil, "\(out)")
        #expect(out.contains("published \(HubEndpoint.nodeName()):\(port ?? "?")\n"), "\(out)")
        #expect(out.contains("second hub status 1"))
        #expect(out.contains("wgns: v already has a running hub (pid "), "\(out)")
        for k in 1...3 {
            #expect(out.contains("job \(k) status 0"))
            #expect(out.contains("peer \(k) env peer-\(k) \(k)/3 10.97.0.\(k + 1) hub 10.97.0.1\n"), "\(out)")
            #expect(out.contains("peer \(k) reaches hub\n"))
            for j in 1...3 where j != k { #expect(out.contains("peer \(k) reaches peer-\(j) by name\n"), "\(out)") }
            #expect(out.contains("peer \(k) keeps localhost\n"))
            #expect(out.contains("peer \(k): /etc/hosts read-only\n"))
        }
        #expect(out.contains("hub status 0"))
        #expect(out.contains("endpoint gone"))
        Self.expectNothingRunning(under: f.dir)
        let vpn = try FileManager.default.contentsOfDirectory(atPath: "\(f.dir)/v").sorted()
        #expect(vpn == ["hub.conf", "peer-1.conf", "peer-2.conf", "peer-3.conf"], "\(vpn)")
    }

    /// `wgns hub DIR -- COMMAND`: COMMAND runs on the host once the hub is up
    /// (outside its namespace, with WGNS_ENDPOINT), the hub's namespace names
    /// every member too, and wgns exits with COMMAND's status once both are gone.
    /// Two such hubs at once get different ports.
    @Test func hubLivesAsLongAsItsCommand() throws {
        let f = try UpFixture()
        let r = try f.sh("""
            "$W" vpn new a --peers 2 > /dev/null && "$W" vpn new b --peers 2 > /dev/null || exit 9
            cmd='echo "$1 sees $WGNS_ENDPOINT hub $WGNS_HUB peers $WGNS_PEERS netns $(readlink /proc/self/ns/net)"
                 [ "$(head -1 $1/hub.endpoint)" = "$WGNS_ENDPOINT" ] && echo "$1 endpoint published"
                 "$W" exec hub-$1 -- getent hosts peer-2 | tr -s " " | sed "s/^/$1 hub resolves /"
                 "$W" up --backend wireguard-go $1 --peer 1 -- ping -c1 -W5 hub.vpn > /dev/null && echo "$1 peer reaches hub"
                 sleep 1; exit $2'
            "$W" hub --backend wireguard-go a --name hub-a -- sh -c "$cmd" x a 7 > a.out 2>&1 &
            A=$!
            "$W" hub --backend wireguard-go b --name hub-b -- sh -c "$cmd" x b 0 > b.out 2>&1 &
            B=$!
            wait $A; echo "a status $?"; wait $B; echo "b status $?"
            cat a.out b.out
            echo "host netns $(readlink /proc/self/ns/net)"
            ls a b | tr '\\n' ' '; echo
            rm -f a.out b.out
            """)
        let out = r.stdout
        #expect(out.contains("a status 7\n"), "\(out)\n\(r.stderr)")
        #expect(out.contains("b status 0\n"))
        let hostNetns = out.split(separator: "\n").first { $0.hasPrefix("host netns ") }.map { String($0.dropFirst("host netns ".count)) } ?? "?"
        var ports: [String] = []
        for d in ["a", "b"] {
            let line = out.split(separator: "\n").first { $0.hasPrefix("\(d) sees ") }.map(String.init) ?? ""
            #expect(line.hasSuffix("hub 10.97.0.1 peers 2 netns \(hostNetns)"), "\(out)")
            ports.append(line.split(separator: " ").dropFirst(2).first.map { String($0.split(separator: ":").last ?? "") } ?? "")
            #expect(out.contains("\(d) endpoint published\n"))
            #expect(out.contains("\(d) hub resolves 10.97.0.3 peer-2.vpn peer-2\n"), "\(out)")
            #expect(out.contains("\(d) peer reaches hub\n"))
        }
        #expect(ports.count == 2 && ports[0] != ports[1] && !ports[0].isEmpty, "\(ports)")
        #expect(out.contains("a: hub.conf peer-1.conf peer-2.conf  b: hub.conf peer-1.conf peer-2.conf \n"), "\(out)")
        Self.expectNothingRunning(under: f.dir)
    }

    /// Bad input around a published endpoint: one line each, non-zero, nothing left.
    @Test func publishedEndpointBadInput() throws {
        let f = try UpFixture()
        let r = try f.sh("""
            "$W" vpn new v --peers 2 > /dev/null || exit 9
            mkdir plain
            "$W" hub --backend wireguard-go plain; echo "plain hub status $?"
            "$W" up --backend wireguard-go plain -- true; echo "plain up status $?"
            "$W" hub --backend wireguard-go v --advertise no-such-host.invalid -- true; echo "advertise status $?"
            "$W" up --backend wireguard-go v --peer 1 --wait 0.5 -- true; echo "no hub status $?"
            "$W" up --backend wireguard-go v --peer 1 --wait soon -- true; echo "bad wait status $?"
            SLURM_PROCID=2 "$W" up --backend wireguard-go v --wait 1 -- true; echo "rank status $?"
            # A hub killed with SIGKILL leaves its file: it is stale, not an endpoint.
            \(Self.startHub())
            kill -KILL $H; wait $H 2>/dev/null
            for i in $(seq 100); do pgrep -u $(id -u) -f "$PWD/wgns hub" > /dev/null || break; sleep 0.05; done
            [ -e v/hub.endpoint ] && echo "stale file there"
            "$W" up --backend wireguard-go v --peer 1 --wait 0.5 -- true; echo "stale status $?"
            # A new hub replaces it.
            "$W" hub --backend wireguard-go v -- "$W" up --backend wireguard-go v --peer 2 -- ping -c1 -W5 hub > /dev/null; echo "replaced status $?"
            ls v | tr '\\n' ' '; echo
            """)
        let out = r.stdout, err = r.stderr
        #expect(out.contains("plain hub status 1"), "\(out)\n\(err)")
        #expect(err.contains("wgns: plain is not a VPN directory (no plain/hub.conf; make one with `wgns vpn new plain --peers N`)\n"))
        #expect(out.contains("plain up status 1"))
        #expect(err.contains("wgns: plain holds no VPN (no plain/peer-1.conf; make one with `wgns vpn new plain --peers N ...`)\n"))
        #expect(out.contains("advertise status 1"))
        #expect(err.contains("wgns: --advertise 'no-such-host.invalid' does not resolve ("), "\(err)")
        #expect(out.contains("no hub status 1"))
        #expect(err.contains("wgns: v: no hub published its endpoint (v/hub.endpoint) within 0.5 s; start `wgns hub v`"))
        #expect(out.contains("bad wait status 64"))
        #expect(err.contains("wgns: --wait 'soon': expected a number of seconds (0 or more)\n"))
        #expect(out.contains("rank status 1"))
        #expect(err.contains("wgns: SLURM_PROCID 2 needs peer-3.conf but v has peers 1 to 2 (make the VPN with --peers 3 or more)\n"))
        #expect(out.contains("stale file there"))
        #expect(out.contains("stale status 1"))
        #expect(err.contains("wgns: v/hub.endpoint is stale: its hub (pid "), "\(err)")
        #expect(out.contains("replaced status 0"), "\(out)\n\(err)")
        #expect(out.contains("hub.conf peer-1.conf peer-2.conf \n"), "\(out)")
        // Every error is one line: wgns wrote nothing else (no continuation lines).
        #expect(err.split(separator: "\n").filter { !$0.hasPrefix("wgns: ") && !$0.hasPrefix("grep: hub.out") }.isEmpty, "\(err)")
        Self.expectNothingRunning(under: f.dir)
    }

    /// `--ports LO-HI`: the hub never takes a port in the range that
    /// another socket holds (a plain bind, or a bind with SO_REUSEADDR, which
    /// the hub's own reservation must not let in), comes up on the free one,
    /// and says so in one line when none is free.
    @Test(arguments: ["wireguard-go", "builtin"])
    func hubNeverTakesAPortSomeoneHolds(backend: String) throws {
        let f = try UpFixture()
        let p = f.port
        try f.write("hold.py", """
            import os, socket, sys, time
            held = []
            for i, p in enumerate(sys.argv[1:]):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                if i % 2: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", int(p)))
                held.append(s)
            open("held", "w").close()
            end = time.time() + 30
            while os.path.exists("held") and time.time() < end:
                time.sleep(0.05)
            """, mode: 0o644)
        let r = try f.sh("""
            "$W" vpn new v --peers 1 > /dev/null || exit 9
            python3 hold.py \(p) \(p + 1) \(p + 3) & P=$!
            for i in $(seq 200); do [ -e held ] && break; sleep 0.02; done
            for i in 1 2 3; do
              "$W" hub --backend \(backend) v --ports \(p)-\(p + 3) -- sh -c 'echo "hub at $WGNS_ENDPOINT"; "$W" up --backend \(backend) v --peer 1 -- ping -c1 -W5 hub > /dev/null && echo "peer reaches hub"'
            done
            "$W" hub --backend \(backend) v --ports \(p)-\(p + 1) -- true; echo "all taken status $?"
            "$W" hub --backend \(backend) v --ports 9-2 -- true; echo "bad range status $?"
            rm -f held; wait $P
            """)
        let out = r.stdout
        let ats = out.split(separator: "\n").filter { $0.hasPrefix("hub at ") }
        #expect(ats.count == 3, "\(out)\n\(r.stderr)")
        #expect(ats.allSatisfy { $0.hasSuffix(":\(p + 2)") }, "\(out)")
        #expect(out.components(separatedBy: "peer reaches hub\n").count == 4, "\(out)")
        #expect(out.contains("all taken status 1"))
        #expect(r.stderr.contains("wgns: --ports \(p)-\(p + 1): every UDP port in the range is taken on this host: Address already in use\n"), "\(r.stderr)")
        #expect(out.contains("bad range status 64"))
        #expect(r.stderr.contains("wgns: --ports '9-2': expected LO-HI, two UDP ports from 1 to 65535 with LO <= HI\n"))
        Self.expectNothingRunning(under: f.dir)
    }

    /// The neighbour's binds on the hub's port: every address and option
    /// tried; the child that keeps what was bound prints its pid.
    static let neighbourBind = """
        import os, socket, sys, time
        port = int(sys.argv[1]); held = []
        for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::"), (socket.AF_INET6, "::1")):
            for opts in ("REUSEADDR", "REUSEPORT", "REUSEADDR+REUSEPORT"):
                s = socket.socket(fam, socket.SOCK_DGRAM)
                if "REUSEADDR" in opts: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if "REUSEPORT" in opts: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                try:
                    s.bind((addr, port)); held.append(s); print("bound", addr, opts)
                except OSError as e:
                    print("refused", addr, opts, e.errno)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            fd = os.open("/dev/null", os.O_RDWR)
            for k in (0, 1, 2): os.dup2(fd, k)
            time.sleep(30); os._exit(0)
        print("holder", pid, flush=True)
        """

    /// Issue 19, item 7: once a hub is up (port picked, or its ListenPort),
    /// another uid cannot bind its port on any address with SO_REUSEADDR or
    /// SO_REUSEPORT (and so cannot steal the peers' datagrams), and the VPN
    /// keeps working.
    @Test(.enabled(if: UpFixture.neighbour != nil, "needs root and WGNS_NEIGHBOUR_USER (scripts/host-setup.sh)"),
          arguments: ["picked", "fixed"])
    func neighbourCannotTakeTheHubsPort(how: String) throws {
        let f = try UpFixture()
        try f.write("bind.py", Self.neighbourBind, mode: 0o644)
        let up = try f.sh("""
            "$W" vpn new v --peers 1\(how == "fixed" ? " --endpoint 127.0.0.1:\(f.port)" : "") > /dev/null || exit 9
            "$W" hub v > hub.out 2> hub.err &
            echo $! > hub.pid
            for i in $(seq 1 200); do grep -q '^wgns hub: up' hub.out && break; sleep 0.05; done
            cat hub.out
            """)
        let port = up.stdout.split(separator: "\n").first { $0.hasPrefix("wgns hub: up") }
            .flatMap { $0.split(separator: " ").drop { $0 != "port" }.dropFirst().first }.flatMap { UInt16($0) }
        #expect(port != nil, "\(up.stdout)\n\(up.stderr)")
        if how == "fixed" { #expect(port == f.port) }
        let n = try f.neighbourSh("python3 \"$D/bind.py\" \(port ?? 0)")
        let holder = n.stdout.split(separator: "\n").first { $0.hasPrefix("holder ") }.flatMap { Int32($0.dropFirst(7)) }
        #expect(n.stdout.components(separatedBy: "refused ").count == 13, "\(n.stdout)\n\(n.stderr)")
        #expect(!n.stdout.contains("bound "), "\(n.stdout)")
        let r = try f.sh("""
            "$W" up v --peer 1 -- ping -c1 -W5 hub > /dev/null && echo "peer reaches hub"
            kill -TERM $(cat hub.pid)
            for i in $(seq 100); do kill -0 $(cat hub.pid) 2>/dev/null || break; sleep 0.05; done
            cat hub.err
            """)
        if let holder { kill(holder, SIGKILL) }
        #expect(r.stdout.contains("peer reaches hub\n"), "\(r.stdout)\n\(r.stderr)")
        Self.expectNothingRunning(under: f.dir)
    }

    /// Issue 19, item 9: a VPN folder or a config with hooks that another
    /// user owns, or that its group may write, is refused in one line that
    /// names the path and the fix, and nothing runs (no hook, no tunnel).
    @Test(.enabled(if: UpFixture.neighbour != nil, "needs root and WGNS_NEIGHBOUR_USER (scripts/host-setup.sh)"))
    func foreignOrWritableFoldersAndHookConfigsAreRefused() throws {
        let f = try UpFixture()
        let made = try f.sh("""
            "$W" vpn new gw --peers 1 --endpoint 127.0.0.1:\(f.port) > /dev/null || exit 9
            "$W" vpn new theirs --peers 1 --endpoint 127.0.0.1:\(f.port) > /dev/null || exit 9
            sed 's/^\\[Interface\\]/[Interface]\\nPostUp = touch hook-ran/' job.conf > hooks.conf
            cp hooks.conf mine.conf && chmod 600 mine.conf
            mkdir open && cp hooks.conf open/hooks.conf && chmod 775 open
            chmod g+w gw
            """)
        #expect(made.status == 0, "\(made.stderr)")
        // What another user made, readable to the test user (as a swapped-in folder would be).
        let n = UpFixture.neighbour ?? "nobody"
        let chowned = try shell("""
            cd \(f.dir) && chown -R \(n) theirs hooks.conf && chmod 755 theirs && chmod 644 theirs/* hooks.conf
            """)
        #expect(chowned.status == 0, "\(chowned.stderr)")
        let r = try f.sh("""
            "$W" up gw --peer 1 -- true; echo "group-writable up status $?"
            "$W" hub gw -- true; echo "group-writable hub status $?"
            "$W" up theirs --peer 1 -- true; echo "foreign up status $?"
            "$W" hub theirs -- true; echo "foreign hub status $?"
            "$W" up hooks.conf -- true; echo "foreign hooks status $?"
            "$W" up open/hooks.conf -- true; echo "hooks in a group-writable folder status $?"
            [ -e hook-ran ] || [ -e open/hook-ran ] && echo "a hook ran"
            "$W" up mine.conf -- true; echo "own hooks status $?"
            [ -e hook-ran ] && echo "own hook ran"
            """)
        let out = r.stdout, err = r.stderr
        for what in ["group-writable up", "group-writable hub", "foreign up", "foreign hub", "foreign hooks", "hooks in a group-writable folder"] {
            #expect(out.contains("\(what) status 1\n"), "\(out)\n\(err)")
        }
        #expect(err.contains("wgns: gw: this VPN folder is writable by its group, who could change what wgns runs as you; run `chmod go-w gw`\n"), "\(err)")
        #expect(err.contains("wgns: theirs: this VPN folder belongs to \(n), not to you, and wgns would run what it says as you; use one of your own (`wgns vpn new`, or a copy you own)\n"), "\(err)")
        #expect(err.contains("wgns: hooks.conf: this config with hooks belongs to \(n), not to you, and wgns would run what it says as you; use one of your own (a copy you own)\n"), "\(err)")
        #expect(err.contains("wgns: open: this folder of a config with hooks is writable by its group, who could change what wgns runs as you; run `chmod go-w open`\n"), "\(err)")
        #expect(err.split(separator: "\n").count == 6, "\(err)")
        #expect(!out.contains("a hook ran"))
        #expect(out.contains("own hooks status 0\nown hook ran\n"), "\(out)\n\(err)")
        Self.expectNothingRunning(under: f.dir)
    }

    /// Issue 19, item 8: a neighbour floods the named tunnel's abstract
    /// socket with connects (four processes, each keeping 300 open): the
    /// owner's `list`, `exec` and `show` still find the tunnel every time,
    /// and a second `up --name` of the same name is refused.
    @Test(.enabled(if: UpFixture.neighbour != nil, "needs root and WGNS_NEIGHBOUR_USER (scripts/host-setup.sh)"))
    func neighbourFloodingANamedTunnelChangesNothingForItsOwner() throws {
        let f = try UpFixture()
        let name = "t\(f.port)"
        try f.write("flood.py", """
            import os, socket, sys, time
            name = sys.argv[1].encode(); end = time.time() + float(sys.argv[2])
            for _ in range(3):
                if os.fork() == 0: break
            held = []
            while time.time() < end:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.setblocking(False)
                try: s.connect(b"\\0" + name)
                except OSError: pass
                held.append(s)
                if len(held) > 300: held.pop(0).close()
            """, mode: 0o644)
        let up = try f.sh("""
            "$W" up --name \(name) job.conf > up.out 2>&1 &
            for i in $(seq 200); do "$W" list | grep -qx \(name) && break; sleep 0.05; done
            "$W" list | grep -qx \(name) && echo "listed"
            """)
        #expect(up.stdout == "listed\n", "\(up.stdout)\n\(up.stderr)")
        let flood = try f.neighbourSh("setsid python3 \"$D/flood.py\" wgns/\(f.uid)/\(name) 30 > /dev/null 2>&1 & echo $!")
        let floodGroup = Int32(flood.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(floodGroup > 0, "\(flood.stdout)\n\(flood.stderr)")
        let r = try f.sh("""
            sleep 1
            n=0; for i in $(seq 10); do "$W" list | grep -qx \(name) && n=$((n+1)); done; echo "listed $n/10"
            n=0; for i in $(seq 5); do "$W" exec \(name) -- true && n=$((n+1)); done; echo "exec $n/5"
            n=0; for i in $(seq 5); do "$W" show \(name) > /dev/null && n=$((n+1)); done; echo "show $n/5"
            timeout 20 "$W" up --name \(name) job.conf -- echo "a second \(name) ran"; echo "second up status $?"
            """)
        if floodGroup > 0 { kill(-floodGroup, SIGKILL) }
        let down = try f.sh(#""$W" down \#(name); echo "down status $?""#)
        #expect(r.stdout.contains("listed 10/10\n"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("exec 5/5\n"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("show 5/5\n"), "\(r.stdout)\n\(r.stderr)")
        #expect(!r.stdout.contains("a second \(name) ran"), "\(r.stdout)")
        #expect(r.stdout.contains("second up status 1\n"), "\(r.stdout)")
        #expect(r.stderr.contains("wgns: a tunnel named \(name) is already up\n"), "\(r.stderr)")
        #expect(down.stdout == "down status 0\n", "\(down.stdout)\n\(down.stderr)")
        Self.expectNothingRunning(under: f.dir)
    }

    /// Issue 19, item 13: a hub restarted on the same folder (a new picked
    /// port, or the same fixed one with none of the old sessions) is reached
    /// again by a member that keeps running: the member's supervisor sees
    /// the new `hub.endpoint` and handshakes at once. The job counts the
    /// one-second pings until the first answer after the new hub is up
    /// (the aim is 3; 10 only detects a failure).
    @Test(arguments: ["picked", "fixed"])
    func restartedHubIsReachedAgain(how: String) throws {
        let f = try UpFixture()
        let r = try f.sh("""
            "$W" vpn new v --peers 1\(how == "fixed" ? " --endpoint 127.0.0.1:\(f.port)" : "") > /dev/null || exit 9
            \(Self.startHub())
            rm -f first restarted; mkfifo first
            "$W" up v --peer 1 -- sh -c '
              ping -c1 -W5 hub > /dev/null && echo "reached the first hub"
              echo > first
              i=0; until [ -e restarted ]; do i=$((i+1)); [ $i -gt 400 ] && exit 3; sleep 0.05; done
              n=0; until ping -c1 -W1 hub > /dev/null 2>&1; do n=$((n+1)); [ $n -ge 10 ] && { echo "the new hub is not reached"; exit 4; }; done
              echo "reached the new hub after $n lost pings"' > job.out 2>&1 &
            J=$!
            read x < first
            kill -TERM $H; wait $H
            "$W" hub v > hub.out 2> hub.err &
            H=$!
            for i in $(seq 1 200); do grep -q '^wgns hub: up' hub.out && break; kill -0 $H 2>/dev/null || break; sleep 0.05; done
            touch restarted
            wait $J; echo "job status $?"
            kill -TERM $H; wait $H
            cat job.out hub.err
            """)
        #expect(r.stdout.contains("reached the first hub\n"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("reached the new hub after "), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("job status 0\n"), "\(r.stdout)")
        Self.expectNothingRunning(under: f.dir)
    }
}
