import Foundation
import Testing
import TestSupport

/// The containment promise: a job cannot read or change its own tunnel, and
/// an isolated job has no way out but WireGuard. Tests/containment/attack.sh
/// runs as the job in every mode (MapUid default and 0; split, split with
/// --isolate, full tunnel) on the wireguard-go and builtin backends (the VM
/// runs it on the kernel's, scripts/vm/tests/35-containment.sh); each attack is its own
/// expectation. --net-admin and --host-loopback are the controls that show
/// the attacks do detect an open way.
@Suite(.serialized) struct ContainmentTests {
    enum Tunnel: String, CaseIterable { case split, isolated, full }

    /// A tunnel mode on a backend: the suite's second argument.
    struct Mode: CustomTestStringConvertible, Sendable {
        var tunnel: Tunnel
        var backend: String
        var testDescription: String { "\(tunnel) on \(backend)" }
        static let all = ["wireguard-go", "builtin"].flatMap { b in Tunnel.allCases.map { Mode(tunnel: $0, backend: b) } }
    }

    static let attack = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../containment/attack.sh").standardized.path

    /// Attack name → "blocked" or "OPEN ...", and the INFO lines.
    struct Report {
        var attacks: [String: String] = [:]
        var info: [String] = []
        var raw = ""
        func info(_ key: String) -> String? {
            info.first { $0.hasPrefix(key + " ") }.map { String($0.dropFirst(key.count + 1)) }
        }
    }

    /// Brings up `conf` with `flags` and runs the attack script as the job;
    /// a TCP listener on the host's 127.0.0.1 stands for "the host".
    static func attack(_ f: UpFixture, _ conf: String, _ flags: String, backend: String = "wireguard-go") throws -> Report {
        try f.write("attack.sh", try String(contentsOfFile: attack, encoding: .utf8), mode: 0o755)
        let hostPort = Int.random(in: 20000...39999)
        let r = try f.sh("""
            python3 -c 'import socket,sys,time
            s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
            s.settimeout(60)
            try:
              while True: s.accept()[0].close()
            except Exception: pass' \(hostPort) &
            L=$!
            "$W" up --backend \(backend) \(flags) \(conf) -- sh ./attack.sh \(hostPort)
            echo "status $?"
            kill $L
            """)
        var rep = Report()
        rep.raw = r.stdout + r.stderr
        for line in r.stdout.split(separator: "\n") {
            let w = line.split(separator: " ", maxSplits: 2).map(String.init)
            if w.first == "ATTACK", w.count >= 3 { rep.attacks[w[1]] = w[2] }
            if w.first == "INFO", w.count >= 2 { rep.info.append(w.dropFirst().joined(separator: " ")) }
        }
        #expect(r.stdout.contains("DONE\nstatus 0\n"), "\(rep.raw)")
        return rep
    }

    static func fullConfig(_ f: UpFixture) throws {
        try f.write("full.conf", """
            [Interface]
            PrivateKey = \(f.jobKey.base64Secret())
            Address = 10.99.0.2/24

            [Peer]
            PublicKey = \(f.peerKey.publicKey.base64)
            AllowedIPs = 0.0.0.0/1, 128.0.0.0/1, ::/0
            Endpoint = 10.0.2.2:\(f.port)

            """)
    }

    @Test(arguments: [false, true], Mode.all)
    func noJobTouchesItsTunnel(root: Bool, mode m: Mode) throws {
        let tunnel = m.tunnel
        let f = try UpFixture()
        try Self.fullConfig(f)
        var flags = root ? "--map-uid 0 --map-gid 0" : ""
        if tunnel == .isolated { flags += " --isolate" }
        let rep = try Self.attack(f, tunnel == .full ? "full.conf" : "job.conf", flags, backend: m.backend)
        let mode = "root \(root), \(m.testDescription)"
        for name in ["uapi", "wg-showconf", "wg-set", "ip-link", "ip-addr", "ip-route", "resolv-write",
                     "resolv-remount", "resolv-umount", "setns", "processes", "memory", "host-loopback"] {
            #expect(rep.attacks[name] == "blocked", "\(mode): \(name): \(rep.attacks[name] ?? "not run")\n\(rep.raw)")
        }
        // Only a split tunnel that was not asked to be isolated keeps tap0.
        if tunnel == .split {
            #expect(rep.attacks["bind-tap0"] == "OPEN", "\(mode)\n\(rep.raw)")
        } else {
            #expect(rep.attacks["bind-tap0"] == "blocked", "\(mode)\n\(rep.raw)")
            #expect(rep.info("links") == "lo wg0 ", "\(mode)\n\(rep.raw)")
        }
        // A full tunnel never falls back to the carrier's resolver.
        if tunnel == .full { #expect(rep.info("resolv") == "0 ", "\(mode)\n\(rep.raw)") }
        #expect(rep.info("uid") == (root ? "0 gid 0" : "\(f.uid) gid \(f.gid)"), "\(mode)\n\(rep.raw)")
        // Root of its own user namespace is still root for what is its own.
        #expect(rep.info("ping") == "ok", "\(mode)\n\(rep.raw)")
        if root {
            #expect(rep.info("low-port") == "ok", "\(mode)\n\(rep.raw)")
            #expect(rep.info("chown") == "ok", "\(mode)\n\(rep.raw)")
        }
    }

    /// The controls: a job given network administration reaches its tunnel,
    /// and --host-loopback opens the host's loopback; so the attacks above
    /// would have seen an open way.
    @Test func theAttacksSeeAnOpenWay() throws {
        let f = try UpFixture()
        let admin = try Self.attack(f, "job.conf", "--net-admin --host-loopback")
        for name in ["uapi", "wg-showconf", "wg-set", "ip-link", "ip-addr", "ip-route", "resolv-remount", "host-loopback"] {
            #expect(admin.attacks[name]?.hasPrefix("OPEN") == true, "\(name): \(admin.attacks[name] ?? "not run")\n\(admin.raw)")
        }
    }

    /// `wgns exec` into a named tunnel is contained as its job is: the job
    /// sandbox's namespaces (isolated: only lo and wg0), its uid, no power
    /// over wg0 and no wireguard-go socket; `show NAME` still reads the device.
    @Test(arguments: ["wireguard-go", "builtin"])
    func execIsContainedAsTheJob(backend: String) throws {
        let f = try UpFixture()
        let name = "ex\(UInt16.random(in: 1000...9999))"
        let r = try f.sh("""
            "$W" up --backend \(backend) --isolate --name \(name) job.conf > up.out 2>&1 &
            UP=$!
            for i in $(seq 100); do "$W" list | grep -qx \(name) && break; sleep 0.05; done
            "$W" exec \(name) -- sh -c 'echo "links $(ip -o link show | cut -d: -f2 | tr -d " " | tr "\n" " ")"; echo "uid $(id -u)"; ip link set wg0 down 2>/dev/null && echo changed || echo refused; ls /run/wireguard 2>/dev/null | wc -l'
            "$W" show \(name) public-key | wc -l
            "$W" down \(name); wait $UP; echo "up $?"
            """)
        #expect(r.stdout.contains("links lo wg0 \nuid \(f.uid)\nrefused\n0\n1\nup 0\n"), "\(r.stdout)\(r.stderr)")
    }

    /// `wgns up -v` says what containment is in effect, and the command line
    /// overrides the config both ways.
    @Test func containmentLineAndOverrides() throws {
        let f = try UpFixture()
        try Self.fullConfig(f)
        let full = try f.sh(#""$W" up --backend wireguard-go -v full.conf -- true"#)
        #expect(full.stderr.contains("containment: isolated (the job sees only lo and the tunnel, full tunnel), host loopback off, job uid \(f.uid) gid \(f.gid), network admin: none"), "\(full.stderr)")
        #expect(full.stderr.contains("no DNS server"), "\(full.stderr)")
        let open = try f.sh(#""$W" up --backend wireguard-go -v --no-isolate full.conf -- sh -c 'ip -o link show | grep -c tap0'"#)
        #expect(open.stdout == "1\n", "\(open.stderr)")
        #expect(open.stderr.contains("containment: not isolated"), "\(open.stderr)")
        try f.write("loop.conf", (try String(contentsOfFile: "\(f.dir)/job.conf", encoding: .utf8)) + "\n[Namespace]\nHostLoopback = true\nIsolate = true\n")
        let r = try f.sh(#""$W" up --backend wireguard-go -v --no-host-loopback --no-isolate loop.conf -- true"#)
        #expect(r.stderr.contains("containment: not isolated") && r.stderr.contains("host loopback off"), "\(r.stderr)")
        let both = try f.sh(#""$W" up --backend wireguard-go --isolate --no-isolate job.conf -- true"#)
        #expect(both.status == 64 && both.stderr == "wgns: --isolate and --no-isolate contradict each other: give one\n", "\(both.stderr)")
        let bad = try f.sh(#""$W" up --backend wireguard-go --net-admin --map-uid 5 job.conf -- true"#)
        #expect(bad.status != 0 && bad.stderr.contains("MapUID and MapGID must be 0"), "\(bad.stderr)")
    }
}

/// Named tunnels: another user who binds a tunnel's abstract name first
/// gets nothing: `up --name` still works, and list, exec and down reach
/// only the tunnel that answers as us.
@Suite(.serialized) struct NameSquattingTests {
    @Test func anotherUserCannotSquatAName() throws {
        let f = try UpFixture()
        guard f.user != nil else { return }  // needs a second user: run as root
        let name = "sq\(UInt16.random(in: 1000...9999))"
        // Root (another user, for the test user) squats wgns/UID/NAME.
        let squatter = Process()
        squatter.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        squatter.arguments = ["-c", """
            import socket, time
            s = socket.socket(socket.AF_UNIX); s.bind("\\0wgns/\(f.uid)/\(name)"); s.listen(8)
            s.settimeout(30)
            try:
                while True: s.accept()[0].close()
            except Exception: pass
            """]
        try squatter.run()
        defer { kill(squatter.processIdentifier, SIGKILL); squatter.waitUntilExit() }
        usleep(300_000)
        let r = try f.sh("""
            "$W" up --backend wireguard-go --name \(name) job.conf > up.out 2>&1 &
            UP=$!
            for i in $(seq 100); do "$W" list | grep -qx \(name) && break; sleep 0.05; done
            echo "list: $("$W" list | grep -c -x \(name))"
            "$W" exec \(name) -- sh -c 'echo exec-uid $(id -u); ip -o link show wg0 >/dev/null && echo exec-wg0'
            "$W" down \(name); echo "down $?"
            wait $UP; echo "up $?"; cat up.out
            """)
        #expect(r.stdout.contains("list: 1\n"), "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("exec-uid \(f.uid)\nexec-wg0\n"), "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("down 0\n"), "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("up 0\n"), "\(r.stdout)\(r.stderr)")
    }
}
