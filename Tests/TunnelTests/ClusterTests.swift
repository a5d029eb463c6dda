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
    static let canRun = getuid() == 0 && which("ip") != nil && which("pasta") != nil && which("slirp4netns") != nil
        && which("python3") != nil
    static let clusterScript = "\(packageRoot)/scripts/testnet/cluster.sh"

    /// A cluster and a work folder for the test user, both gone at deinit.
    final class Fixture {
        let dir: String
        var net: String { "\(dir)/net" }
        var work: String { "\(dir)/w" }
        let port = UInt16.random(in: 40000...59000)
        let hosts: Int
        let start: RunResult

        init(hosts: Int = 3, mtu: Int = 1500, delayMS: Int = 0, lossPercent: Double = 0) throws {
            self.hosts = hosts
            dir = "/tmp/wgns-cluster-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: "\(dir)/w", withIntermediateDirectories: true)
            chmod(dir, 0o755)
            let user = ProcessInfo.processInfo.environment["WGNS_TEST_USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "wgns-test"
            if let pw = getpwnam(user) { chown("\(dir)/w", pw.pointee.pw_uid, pw.pointee.pw_gid) }
            chmod("\(dir)/w", 0o755)
            try FileManager.default.copyItem(atPath: wgnsBinary, toPath: "\(dir)/w/wgns")
            chmod("\(dir)/w/wgns", 0o755)
            start = try shell("""
                TESTNET_MTU=\(mtu) TESTNET_DELAY_MS=\(delayMS) TESTNET_LOSS_PCT=\(lossPercent) \
                bash '\(ClusterTests.clusterScript)' start '\(dir)/net' \(hosts)
                """)
        }

        /// Runs a bash script as root in the work folder, with C (cluster.sh),
        /// D (the cluster), W (the work folder), PORT, and `on HOST CMD...`
        /// (CMD on HOST as the test user) and `onroot HOST CMD...`.
        func sh(_ script: String) throws -> RunResult {
            try run("/bin/bash", ["-c", """
                C='\(ClusterTests.clusterScript)'; D='\(net)'; W='\(work)'; PORT=\(port)
                cd "$W"
                on() { bash "$C" exec "$D" "$@"; }
                onroot() { bash "$C" root "$D" "$@"; }
                \(script)
                """])
        }

        deinit {
            _ = try? shell("bash '\(ClusterTests.clusterScript)' stop '\(dir)/net'; rm -rf '\(dir)'")
        }
    }

    /// The peers' job: says its wg0 MTU, waits for every peer, pings the hub
    /// and every other peer (retrying while the hub has not heard from it),
    /// notes when it reached them all, sends a DF ping of exactly the tunnel
    /// MTU and one byte more to every other peer, then peer 1 receives and
    /// peer 2 sends a file over TCP, and everybody waits for everybody.
    static let peerScript = #"""
        k=$1; n=$2
        mtu=$(ip -o link show wg0 | sed "s/.* mtu \([0-9]*\) .*/\1/")
        echo "peer $k wg0 mtu $mtu"
        \#(TestJobs.meet(receiverBind: "10.97.0.2"))
        targets="1"; for j in $(seq 1 $n); do [ $j = $k ] || targets="$targets $((j+1))"; done
        for t in $targets; do
          ok=no
          for try in $(seq 30); do ping -c1 -W1 10.97.0.$t > /dev/null 2>&1 && { ok=yes; break; }; done
          [ $ok = yes ] && echo "peer $k reaches 10.97.0.$t" || echo "peer $k cannot reach 10.97.0.$t"
        done
        date +%s.%N > reached.$k
        for t in $targets; do
          [ $t = 1 ] && continue
          ok=lost
          for try in 1 2 3 4 5; do ping -c1 -W2 -M do -s $((mtu - 28)) 10.97.0.$t > /dev/null 2>&1 && { ok=fits; break; }; done
          echo "peer $k df $mtu to 10.97.0.$t $ok"
          ping -c1 -W1 -M do -s $((mtu - 27)) 10.97.0.$t 2>&1 | grep -q "message too long" && echo "peer $k df $((mtu + 1)) to 10.97.0.$t refused" || echo "peer $k df $((mtu + 1)) to 10.97.0.$t not refused"
        done
        if [ $k = 2 ]; then
          \#(TestJobs.tcpSend(to: "10.97.0.2"))
        fi
        [ $k = 1 ] && { wait $R; cat tcp.recv; }
        touch done.$k
        i=0; until all done; do i=$((i+1)); [ $i -gt 2400 ] && exit 3; sleep 0.05; done
        """#

    /// IP fragmentation counters of every host (/proc/net/snmp, per network
    /// namespace): "frag hK created C reassembled R".
    static let fragCounters = #"""
        for h in $(. "$D/env"; echo $TESTNET_HOSTS); do
          onroot $h awk -v h=$h '/^Ip:/ { if (!n++) { for (i = 1; i <= NF; i++) col[$i] = i } else print "frag " h " created " $col["FragCreates"] " reassembled " $col["ReasmReqds"] }' /proc/net/snmp
        done
        """#

    /// The hub on h1 and a peer on every other host, each peer's job
    /// `peer.sh`; prints each peer's output, the bring-up time and the
    /// fragmentation counters before and after.
    static func hubAndPeers(_ f: Fixture, carrier: String) throws -> RunResult {
        let peers = f.hosts - 1
        // "builtin": hub and peers on the builtin backend, no carrier
        // anywhere; otherwise wireguard-go behind that carrier.
        let hubFlags = carrier == "builtin" ? "--backend builtin" : "--backend wireguard-go"
        let peerFlags = carrier == "builtin" ? "--backend builtin" : "--backend wireguard-go --carrier \(carrier)"
        return try f.sh("""
            head -c 8388608 /dev/urandom > data.bin; chmod 644 data.bin
            echo "sent $(sha256sum < data.bin | cut -d' ' -f1)"
            cat > peer.sh <<'PEER'
            \(peerScript)
            PEER
            on h1 ./wgns vpn new v --peers \(peers) --subnet 10.97.0.0/24 --endpoint h1:$PORT > /dev/null || exit 9
            \(fragCounters.replacingOccurrences(of: "\"frag \"", with: "\"before frag \""))
            t0=$(date +%s.%N)
            on h1 ./wgns hub \(hubFlags) v --name hub$PORT > hub.out 2> hub.err &
            H=$!
            for i in $(seq 200); do grep -q '^wgns hub: up' hub.out && break; kill -0 $H 2>/dev/null || break; sleep 0.05; done
            cat hub.out
            for k in $(seq \(peers)); do
              on h$((k + 1)) ./wgns up \(peerFlags) -v v --peer $k -- sh peer.sh $k \(peers) > job.$k.out 2> job.$k.err &
              eval J$k=\\$!
            done
            for k in $(seq \(peers)); do eval wait \\$J$k; echo "job $k status $?"; done
            for k in $(seq \(peers)); do cat job.$k.out; grep -h "MTU wg0" job.$k.err | sed "s/^/peer $k: /"; done
            last=$(cat reached.* | sort -n | tail -1)
            echo "bring-up $(awk -v a=$t0 -v b=$last 'BEGIN { printf "%.2f", b - a }') s"
            \(fragCounters.replacingOccurrences(of: "\"frag \"", with: "\"after frag \""))
            on h1 ./wgns down hub$PORT; wait $H; echo "hub status $?"
            """)
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
            #expect(out.contains("peer \(k) wg0 mtu \(tunnelMTU)\n"), "\(out)", sourceLocation: sourceLocation)
            #expect(out.split(separator: "\n").contains { $0.hasPrefix("peer \(k): wgns: ") && $0.contains("endpoints resolved, MTU wg0 \(tunnelMTU) ") },
                    "\(out)", sourceLocation: sourceLocation)
            #expect(out.contains("peer \(k) reaches 10.97.0.1\n"), "\(out)", sourceLocation: sourceLocation)
            for j in 1...peers where j != k {
                #expect(out.contains("peer \(k) reaches 10.97.0.\(j + 1)\n"), "\(out)", sourceLocation: sourceLocation)
                #expect(out.contains("peer \(k) df \(tunnelMTU) to 10.97.0.\(j + 1) fits\n"), "\(out)", sourceLocation: sourceLocation)
                #expect(out.contains("peer \(k) df \(tunnelMTU + 1) to 10.97.0.\(j + 1) refused\n"), "\(out)", sourceLocation: sourceLocation)
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

    @Test(.enabled(if: canRun, "needs root, iproute2, pasta, slirp4netns and python3"),
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
    @Test(.enabled(if: canRun, "needs root, iproute2, pasta, slirp4netns and python3"),
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

    /// The peers' job in the fault test: notes that it started, then until
    /// the file `stop` exists pings the hub and every other peer, each
    /// success stamping `ok.K.T` with the time.
    static let proberScript = #"""
        k=$1; n=$2
        echo $$ >> started.$k
        targets="1"; for j in $(seq 1 $n); do [ $j = $k ] || targets="$targets $((j+1))"; done
        while [ ! -e stop ]; do
          for t in $targets; do
            ping -c1 -W1 10.97.0.$t > /dev/null 2>&1 && { date +%s.%N > ok.$k.$t.tmp; mv ok.$k.$t.tmp ok.$k.$t; }
          done
          sleep 0.2
        done
        """#

    /// Faults, one after another on one cluster of 4 hosts (hub on h1, peers
    /// on h2..h4, slirp4netns): the hub host's link down 5 s; the hub killed
    /// (SIGKILL) and started again with the same config; h4 vanishing (every
    /// process in it killed, its namespace deleted). After each, every
    /// surviving tunnel carries traffic again (bounds generous, times
    /// printed), no job restarted, and nothing of h4's peer is left.
    @Test(.enabled(if: canRun, "needs root, iproute2, pasta, slirp4netns and python3"))
    func faults() throws {
        let f = try Fixture(hosts: 4)
        #expect(f.start.status == 0, "\(f.start.stderr)")
        guard f.start.status == 0 else { return }
        let r = try f.sh("""
            cat > prober.sh <<'PROBER'
            \(Self.proberScript)
            PROBER
            now() { date +%s.%N; }
            # recovered SINCE LIMIT PAIRS...: waits until every pair K:T has an
            # ok.K.T newer than SINCE; prints the seconds it took, or "never".
            recovered() {
              since=$1; limit=$2; shift 2
              while :; do
                all=yes
                for p in "$@"; do
                  o=ok.${p%:*}.${p#*:}
                  [ -e $o ] && awk -v a="$(cat $o)" -v b=$since 'BEGIN { exit !(a > b) }' || { all=no; break; }
                done
                [ $all = yes ] && { awk -v a=$since -v b="$(now)" 'BEGIN { printf "%.1f\\n", b - a }'; return 0; }
                awk -v a=$since -v b="$(now)" -v l=$limit 'BEGIN { exit !(b - a > l) }' && { echo never; return 1; }
                sleep 0.1
              done
            }
            pairs() { for k in "$@"; do echo "$k:1"; for j in "$@"; do [ $j = $k ] || echo "$k:$((j + 1))"; done; done; }
            # Started straight from here (cluster.sh execs wgns), so that $H is wgns itself.
            hub() { bash "$C" exec "$D" h1 ./wgns hub --backend wireguard-go v --name hub$PORT >> hub.out 2>> hub.err & H=$!; }
            on h1 ./wgns vpn new v --peers 3 --subnet 10.97.0.0/24 --endpoint h1:$PORT > /dev/null || exit 9
            hub
            for i in $(seq 200); do grep -q '^wgns hub: up' hub.out && break; sleep 0.05; done
            for k in 1 2 3; do bash "$C" exec "$D" h$((k + 1)) ./wgns up --backend wireguard-go v --peer $k -- sh prober.sh $k 3 > job.$k.out 2>&1 & eval J$k=\\$!; done
            t=$(now); echo "first contact $(recovered $t 60 $(pairs 1 2 3)) s"

            onroot h1 ip link set eth0 down; sleep 5; onroot h1 ip link set eth0 up; t=$(now)
            echo "link flap: recovered in $(recovered $t 30 $(pairs 1 2 3)) s"

            kill -KILL $H; wait $H 2>/dev/null
            sleep 1
            on h1 ./wgns list | grep -qx hub$PORT && echo "killed hub still listed"
            hub; t=$(now)
            echo "hub restart: recovered in $(recovered $t 90 $(pairs 1 2 3)) s"

            # h4 (peer 3) vanishes: note its wgns and every descendant first.
            ns=$(bash "$C" ns "$D" h4)
            gone=$(ps -e -o pid=,ppid= | awk -v root=$J3 '{ kids[$2] = kids[$2] " " $1 } END { n = split(root, q, " "); for (i = 1; i <= n; i++) { printf "%s ", q[i]; m = split(kids[q[i]], c, " "); for (j = 1; j <= m; j++) q[++n] = c[j] } }')
            echo "h4 processes $(echo $gone | wc -w)"
            bash "$C" vanish "$D" h4; t=$(now)
            echo "after vanish: recovered in $(recovered $t 30 $(pairs 1 2 | grep -v ':4$')) s"
            sleep 1
            left=""; for p in $gone; do [ -e /proc/$p ] && [ "$(awk '{print $3}' /proc/$p/stat 2>/dev/null)" != Z ] && left="$left $p"; done
            echo "h4 left:${left:- nothing}"
            for p in /proc/[0-9]*; do [ "$(readlink $p/ns/net 2>/dev/null)" = "$ns" ] && { echo "h4 namespace still there"; break; }; done
            on h1 ./wgns list | grep -qx hub$PORT && echo "hub still up"

            touch stop
            wait $J1; echo "job 1 status $?"; wait $J2; echo "job 2 status $?"
            for k in 1 2 3; do echo "job $k started $(wc -l < started.$k) times"; done
            on h1 ./wgns down hub$PORT; wait $H; echo "hub status $?"
            """)
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
    @Test(.enabled(if: canRun, "needs root, iproute2, pasta, slirp4netns and python3"))
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
        let r = try shell("""
            C='\(Self.clusterScript)'; D='\(dir)'
            bash "$C" root "$D" h2 ping -c1 -W2 h1 > /dev/null && echo "h2 reaches h1 by name"
            bash "$C" exec "$D" h1 sh -c 'echo "user $(id -un) on $(cat /etc/hostname)"'
            bash "$C" root "$D" h1 ip route | grep -q default && echo "h1 has a default route"
            bash "$C" root "$D" h1 ip route get 192.0.2.1 2>&1 | grep -q unreachable && echo "h1 reaches nothing else"
            ip -o addr show dev wt\(tag)br | grep -q inet && echo "the bridge has an address"
            bash "$C" exec "$D" h9 true; echo "h9 status $?"
            """)
        #expect(r.stdout.contains("h2 reaches h1 by name\n"), "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("user wgns-test on h1\n"))
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
