import Foundation
import Testing
import TestSupport
import KeyStore

/// The builtin backend against the real wireguard-go, both ways, on the
/// host as the unprivileged test user: the builtin side's UDP socket is on
/// the host, the wireguard-go side is `wgns up --backend wireguard-go` (its
/// port forwarded by pasta, or reaching the host's loopback through
/// slirp4netns). Debian 12's wireguard-go is /usr/bin's; Debian 13's is
/// used where `$WGNS_WIREGUARD_GO_13`, build-cache/wireguard-go-13 or the
/// version matrix's Debian 13 root (matrix-cache/trixie-*) has it.
@Suite(.serialized) struct BuiltinTests {
    /// Debian 13's wireguard-go (0.0.20231211, which says v0.0.20230223), if here.
    static let wireguardGo13: String? = {
        if let p = ProcessInfo.processInfo.environment["WGNS_WIREGUARD_GO_13"], !p.isEmpty { return p }
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<2 { dir = dir.deletingLastPathComponent() }
        // build-cache (where a bench or a hand put it), else the version
        // matrix's Debian 13 root (scripts/matrix/run.sh).
        var candidates = [dir.appendingPathComponent("build-cache/wireguard-go-13/root/usr/bin/wireguard-go").path]
        let matrix = dir.appendingPathComponent("matrix-cache").path
        for root in ((try? FileManager.default.contentsOfDirectory(atPath: matrix)) ?? []).sorted() where root.hasPrefix("trixie-") {
            candidates.append("\(matrix)/\(root)/usr/bin/wireguard-go")
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// The wireguard-go versions to meet: "12" always, "13" where it is here.
    static let versions = ["12"] + (wireguardGo13 == nil ? [] : ["13"])

    /// A fixture whose PATH for the wireguard-go side finds `version`'s
    /// wireguard-go first (`bin/`), and whose configs carry a preshared key
    /// when `psk`.
    static func fixture(_ version: String, psk: Bool) throws -> UpFixture {
        let f = try UpFixture()
        try FileManager.default.createDirectory(atPath: "\(f.dir)/bin", withIntermediateDirectories: true)
        chmod("\(f.dir)/bin", 0o755)
        let source = version == "13" ? wireguardGo13! : "/usr/bin/wireguard-go"
        try FileManager.default.copyItem(atPath: source, toPath: "\(f.dir)/bin/wireguard-go")
        chmod("\(f.dir)/bin/wireguard-go", 0o755)
        guard psk else { return f }
        let key = PresharedKey.generate().base64Secret()
        for name in ["job.conf", "peer.conf"] {
            let text = try String(contentsOfFile: "\(f.dir)/\(name)", encoding: .utf8)
            try f.write(name, text.replacingOccurrences(of: "AllowedIPs = ", with: "PresharedKey = \(key)\nAllowedIPs = "))
        }
        return f
    }

    /// The builtin side initiates: a job on the builtin backend with no
    /// carrier (its namespace holds lo and wg0 only) reaches a wireguard-go
    /// peer at 10.0.2.2 (the host's loopback, where pasta forwards the
    /// peer's port): ping, then 4 MB over TCP, checked end to end (jobs/upload-recv, upload-send).
    @Test(arguments: versions, [false, true])
    func builtinJobToWireGuardGo(version: String, psk: Bool) throws {
        let f = try Self.fixture(version, psk: psk)
        let r = try f.sh("""
            rm -f ready; mkfifo ready
            PATH=$PWD/bin:$PATH "$W" up --backend wireguard-go peer.conf -- bash jobs/upload-recv 5000 ready > peer.out 2>&1 &
            PEER=$!
            read x < ready
            "$W" up --backend builtin --carrier none job.conf -- sh -c 'echo links $(ip -o link show | cut -d: -f2 | tr -d " " | sort | tr "\\n" " "); ping -c 2 -W 5 10.99.0.1 && \(UpFixture.upload(4_000_000))'
            echo "job status $?"
            wait $PEER; echo "peer status $?"
            cat peer.out
            """)
        #expect(r.stdout.contains("links lo wg0\n"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("2 received"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("checksums match: 4000000 "), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("job status 0"))
        #expect(r.stdout.contains("peer status 0"))
        #expect(r.stdout.contains("received 4000000 "), "\(r.stdout)")
    }

    /// wireguard-go initiates: the builtin side is a named tunnel listening
    /// on the host port itself (no pasta), the wireguard-go job reaches it
    /// through slirp4netns at 10.0.2.2. Then `wgns show NAME` (through the
    /// supervisor) prints what `wg show` would: the handshake and transfer.
    @Test(arguments: versions, [false, true])
    func wireGuardGoJobToBuiltin(version: String, psk: Bool) throws {
        let f = try Self.fixture(version, psk: psk)
        let peer = try String(contentsOfFile: "\(f.dir)/peer.conf", encoding: .utf8)
        try f.write("builtin.conf", String(peer[..<peer.range(of: "[Namespace]")!.lowerBound]))
        let name = "bt\(UInt16.random(in: 1000...9999))"
        let r = try f.sh("""
            rm -f ready; mkfifo ready
            "$W" up --backend builtin --name \(name) builtin.conf -- sh -c 'bash jobs/upload-recv 5000 ready; sleep 30' > peer.out 2>&1 &
            PEER=$!
            read x < ready
            PATH=$PWD/bin:$PATH "$W" up --backend wireguard-go --carrier slirp4netns --host-loopback job.conf -- sh -c 'ping -c 2 -W 5 10.99.0.1 && \(UpFixture.upload(4_000_000))'
            echo "job status $?"
            "$W" show \(name)
            "$W" show \(name) dump | sed 's/^/dump /'
            "$W" show \(name) --json | head -c 2000; echo
            "$W" list
            "$W" down \(name)
            wait $PEER; echo "peer status $?"
            cat peer.out
            """)
        #expect(r.stdout.contains("2 received"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("checksums match: 4000000 "), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("job status 0"))
        #expect(r.stdout.contains("received 4000000 "), "\(r.stdout)")
        #expect(r.stdout.contains("listening port: \(f.port)\n"), "\(r.stdout)")
        #expect(r.stdout.contains("peer: \(f.jobKey.publicKey.base64)\n"), "\(r.stdout)")
        #expect(r.stdout.contains("  endpoint: 127.0.0.1:"), "\(r.stdout)")
        #expect(r.stdout.contains("  latest handshake: "), "\(r.stdout)")
        #expect(r.stdout.contains("  preshared key: (hidden)\n") == psk, "\(r.stdout)")
        // wg show all dump's form (a named tunnel is a set of devices): the
        // interface line, then one line per peer whose receive counter
        // holds at least the 4 MB sent.
        let dump = r.stdout.split(separator: "\n").filter { $0.hasPrefix("dump ") }.map { $0.dropFirst(5).split(separator: "\t") }
        #expect(dump.count == 2, "\(r.stdout)")
        if dump.count == 2 {
            #expect(dump[0].count == 5 && dump[0][0] == "wg0" && dump[0][2] == Substring(f.peerKey.publicKey.base64) && dump[0][3] == Substring("\(f.port)"), "\(dump[0])")
            #expect(dump[1].count == 9 && dump[1][1] == Substring(f.jobKey.publicKey.base64), "\(dump[1])")
            #expect((Int(dump[1].count == 9 ? dump[1][5] : "") ?? 0) > 0, "a handshake time: \(dump[1])")
            #expect((Int(dump[1].count == 9 ? dump[1][6] : "") ?? 0) >= 4_000_000, "received bytes: \(dump[1])")
        }
        #expect(r.stdout.contains("\"listenPort\":\(f.port),"), "show --json: \(r.stdout)")
        #expect(r.stdout.contains("\"hasPresharedKey\":\(psk)"), "show --json: \(r.stdout)")
        #expect(r.stdout.contains("\(name)\n"), "wgns list names it: \(r.stdout)")
    }

    /// A wrong public key, or a preshared key the other side does not
    /// have, carries nothing either way: no handshake completes.
    @Test(arguments: ["key", "psk"])
    func wrongKeyFailsClosed(_ what: String) throws {
        let f = try Self.fixture("12", psk: what == "psk")
        var job = try String(contentsOfFile: "\(f.dir)/job.conf", encoding: .utf8)
        if what == "key" {
            job = job.replacingOccurrences(of: f.peerKey.publicKey.base64, with: PrivateKey.generate().publicKey.base64)
        } else {
            let line = job.split(separator: "\n").first { $0.hasPrefix("PresharedKey = ") }!
            job = job.replacingOccurrences(of: String(line), with: "PresharedKey = \(PresharedKey.generate().base64Secret())")
        }
        try f.write("job.conf", job)
        let r = try f.sh("""
            rm -f ready; mkfifo ready
            "$W" up --backend wireguard-go peer.conf -- sh -c 'echo > ready; sleep 8' > peer.out 2>&1 &
            PEER=$!
            read x < ready
            "$W" up --backend builtin --carrier none job.conf -- ping -c 3 -W 2 10.99.0.1
            echo "job status $?"
            wait $PEER
            """)
        #expect(r.stdout.contains(" 0 received"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("job status 1"), "\(r.stdout)\n\(r.stderr)")
    }

    /// Kill -9 of the supervisor of a builtin tunnel: the data plane dies
    /// with it (PR_SET_PDEATHSIG), so does everything in the namespace, and
    /// the host port is free again. No process of the tunnel is dumpable.
    @Test func sigkillLeavesNothing() throws {
        let f = try UpFixture()
        _ = try f.sh("""
            rm -f up; mkfifo up
            "$W" up --backend builtin --carrier none job.conf -- sh -c 'readlink /proc/self/ns/net > up; exec sleep 1000' > /dev/null 2>&1 &
            P=$!
            read ns < up
            echo "$ns" > netns
            pgrep -P $P > children
            for c in $P $(cat children); do grep -h '^Name\\|^State' /proc/$c/status | tr '\\n' ' '; echo; done > states
            echo $P > wgns.pid
            """)
        let netns = try String(contentsOfFile: "\(f.dir)/netns", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let wgnsPid = Int32(try String(contentsOfFile: "\(f.dir)/wgns.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        let children = try String(contentsOfFile: "\(f.dir)/children", encoding: .utf8).split(separator: "\n").compactMap { Int32($0) }
        #expect(children.count == 2, "holder and data plane, no carrier")
        // Undumpable: /proc/PID/mem and ptrace closed to the same user
        // (the files are then owned by root).
        for pid in [wgnsPid] + children {
            var st = stat()
            #expect(stat("/proc/\(pid)/mem", &st) == 0 && st.st_uid == 0, "pid \(pid) is dumpable")
        }
        #expect(!UpFixture.processes(inNetns: netns).isEmpty)
        kill(wgnsPid, SIGKILL)
        let gone = UpFixture.eventually {
            UpFixture.processes(inNetns: netns).isEmpty
                && children.allSatisfy { kill($0, 0) != 0 || (try? String(contentsOfFile: "/proc/\($0)/stat", encoding: .utf8))?.contains(") Z ") == true }
        }
        #expect(gone, "left: \(UpFixture.processes(inNetns: netns)), children \(children)")
    }
}

extension BuiltinTests {
    /// `wgns hub --backend builtin` listens on the host port itself (no
    /// pasta anywhere) and forwards between members of either backend:
    /// peers 1 and 3 on the builtin backend (no carrier), peer 2 on
    /// wireguard-go (slirp4netns to the host's loopback); every member
    /// reaches every other through the hub, and the hub saw all three.
    @Test func builtinHubWithMixedMembers() throws {
        let f = try UpFixture()
        let name = "bthub\(f.port)"
        let r = try f.script("builtin-mixed-hub.sh", environment: ["NAME": name, "PORT": "\(f.port)"])
        let out = r.stdout
        #expect(out.contains("wgns hub: up, wg0 10.97.0.1/24, UDP port \(f.port) on the host, 3 peers\n"), "\(out)\n\(r.stderr)")
        #expect(!out.contains("pasta") && !out.contains("passt"), "no pasta for a builtin hub: \(out)")
        for k in 1...3 {
            #expect(out.contains("job \(k) status 0"), "\(out)")
            for j in 1...3 where j != k {
                #expect(out.contains("peer-\(k) reaches 10.97.0.\(j + 1)\n"), "\(out)")
            }
        }
        #expect(out.contains("show status 0"))
        let show = try String(contentsOfFile: "\(f.dir)/show.out", encoding: .utf8)
        #expect(show.components(separatedBy: "latest handshake:").count == 4, "\(show)")
        #expect(show.contains("listening port: \(f.port)\n"), "\(show)")
        #expect(out.contains("hub status 0"))
        VPNHubTests.expectNothingRunning(under: f.dir)
    }
}

extension BuiltinTests {
    /// The data plane dying under a running job (kill -9 of it alone): the
    /// job gets SIGTERM, wgns says so in one line and exits non-zero even
    /// though the job exits 0, as when a carrier dies.
    @Test func dataPlaneDeathEndsTheJob() throws {
        let f = try UpFixture()
        let r = try f.sh("""
            rm -f up; mkfifo up
            "$W" up --backend builtin --carrier none job.conf -- sh -c 'trap "echo job got TERM; exit 0" TERM; echo go > up; while :; do sleep 0.05; done' &
            P=$!
            read x < up
            # The data plane is wgns's child with no child of its own (the holder has pid 1 inside).
            for c in $(pgrep -P $P); do [ -z "$(pgrep -P $c)" ] && kill -KILL $c; done
            wait $P; echo "status $?"
            """)
        #expect(r.stdout.contains("job got TERM\n"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("status 1\n"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr == "wgns: the data plane of wg0 exited (signal 9) during the job; ending the job\n", "\(r.stderr)")
    }
}

extension BuiltinTests {
    /// A split tunnel on the builtin backend still gets a carrier, for its
    /// traffic outside the tunnel (tap0 is there, and the carrier's resolver
    /// with it), but WireGuard's own UDP never goes through the carrier: the
    /// wireguard-go peer sees the job at the data plane's host port, the one
    /// `-v` names.
    @Test func splitTunnelKeepsACarrierButNotForWireGuard() throws {
        let f = try UpFixture()
        let name = "bts\(UInt16.random(in: 1000...9999))"
        let r = try f.sh("""
            rm -f ready; mkfifo ready
            "$W" up --backend wireguard-go --name \(name) peer.conf -- sh -c 'echo > ready; sleep 30' > peer.out 2>&1 &
            PEER=$!
            read x < ready
            "$W" up -v --backend builtin --host-loopback job.conf -- sh -c 'echo links $(ip -o link show | cut -d: -f2 | tr -d " " | sort | tr "\\n" " "); ping -c 2 -W 5 10.99.0.1 | grep received'
            echo "job status $?"
            "$W" show \(name) endpoints | sed 's/^/peer sees /'
            "$W" down \(name); wait $PEER
            """)
        #expect(r.stdout.contains("links lo tap0 wg0\n"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("2 received"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("job status 0"))
        #expect(r.stderr.contains("carrier slirp4netns ready") || r.stderr.contains("carrier pasta ready"), "\(r.stderr)")
        let port = r.stderr.split(separator: "\n").first { $0.contains("data plane for wg0 started") }?
            .split(separator: " ").drop { $0 != "port" }.dropFirst().first
        #expect(port != nil, "\(r.stderr)")
        #expect(r.stdout.contains("peer sees wg0\t\(f.jobKey.publicKey.base64)\t127.0.0.1:\(port ?? "?")\n"), "\(r.stdout)\n\(r.stderr)")
    }
}

extension BuiltinTests {
    /// A ListenPort another socket holds on the host: one line naming the
    /// interface and the port, exit 1, and nothing left running.
    @Test func listenPortInUseIsOneLine() throws {
        let f = try UpFixture()
        let peer = try String(contentsOfFile: "\(f.dir)/peer.conf", encoding: .utf8)
        try f.write("builtin.conf", String(peer[..<peer.range(of: "[Namespace]")!.lowerBound]))
        let r = try f.sh("""
            python3 -c 'import socket,sys,time
            s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", int(sys.argv[1]))); print("bound", flush=True); time.sleep(5)' \(f.port) > holder.out &
            L=$!
            for i in $(seq 100); do grep -qs bound holder.out && break; sleep 0.05; done
            "$W" up --backend builtin builtin.conf -- true
            echo "status $?"
            kill -KILL $L; wait $L 2>/dev/null
            """)
        #expect(r.stdout.hasSuffix("status 1\n"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.hasPrefix("wgns: wg0: cannot bind the UDP socket to port \(f.port)") && r.stderr.filter { $0 == "\n" }.count == 1, "\(r.stderr)")
        VPNHubTests.expectNothingRunning(under: f.dir)
    }
}

extension BuiltinTests {
    /// PersistentKeepalive on the builtin side: with no traffic of the job
    /// at all, the wireguard-go peer hears from it at once (a handshake, as
    /// `wg set ... persistent-keepalive` makes the kernel's send), so that a
    /// member behind a NAT is reachable.
    @Test func persistentKeepaliveGoesOutAtOnce() throws {
        let f = try UpFixture()
        let name = "btk\(UInt16.random(in: 1000...9999))"
        let r = try f.sh("""
            rm -f ready; mkfifo ready
            "$W" up --backend wireguard-go --name \(name) peer.conf -- sh -c 'echo > ready; sleep 30' > peer.out 2>&1 &
            PEER=$!
            read x < ready
            "$W" up --backend builtin --carrier none job.conf -- sleep 2
            "$W" show \(name) latest-handshakes | sed 's/^/peer saw /'
            "$W" down \(name); wait $PEER
            """)
        let seen = r.stdout.split(separator: "\n").first { $0.hasPrefix("peer saw ") }?.split(separator: "\t").last.flatMap { Int($0) }
        #expect((seen ?? 0) > 0, "\(r.stdout)\n\(r.stderr)")
    }
}
