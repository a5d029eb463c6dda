import Foundation
import Testing
import TestSupport
import KeyStore

/// `wgns up` on the host, rootless, with the userspace backend (this kernel
/// has no WireGuard): real namespaces, real slirp4netns and pasta, real
/// wireguard-go. When the tests run as root, every wgns runs as the
/// unprivileged WGNS_TEST_USER (pasta refuses root, and rootless is the point).
final class UpFixture {
    let dir: String
    let uid: uid_t
    let gid: gid_t
    let user: String?
    let jobKey = PrivateKey.generate()
    let peerKey = PrivateKey.generate()
    /// A UDP port for the peer, random so that parallel runs on this host do not meet.
    let port = UInt16.random(in: 40000...59000)

    init() throws {
        dir = "/tmp/wgns-up-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        if getuid() == 0, let name = ProcessInfo.processInfo.environment["WGNS_TEST_USER"], !name.isEmpty,
           let pw = getpwnam(name) {
            user = name
            uid = pw.pointee.pw_uid
            gid = pw.pointee.pw_gid
        } else {
            user = nil
            uid = getuid()
            gid = getgid()
        }
        chmod(dir, 0o755)
        chown(dir, uid, gid)
        // The checkout may be under /root: the test user needs its own copy.
        try FileManager.default.copyItem(atPath: wgnsBinary, toPath: "\(dir)/wgns")
        chmod("\(dir)/wgns", 0o755)
        try write("server.py", Self.server, mode: 0o644)
        try write("client.py", Self.client, mode: 0o644)
        try write("job.conf", """
            [Interface]
            PrivateKey = \(jobKey.base64Secret())
            Address = 10.99.0.2/24

            [Peer]
            PublicKey = \(peerKey.publicKey.base64)
            AllowedIPs = 10.99.0.0/24
            Endpoint = 10.0.2.2:\(port)
            PersistentKeepalive = 25

            """)
        try write("peer.conf", """
            [Interface]
            PrivateKey = \(peerKey.base64Secret())
            ListenPort = \(port)
            Address = 10.99.0.1/24

            [Peer]
            PublicKey = \(jobKey.publicKey.base64)
            AllowedIPs = 10.99.0.2/32

            [Namespace]
            Carrier = pasta
            ForwardUDP = \(port)

            """)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    /// Writes a file in the fixture folder, owned by the user wgns runs as.
    func write(_ name: String, _ text: String, mode: mode_t = 0o600) throws {
        let path = "\(dir)/\(name)"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode)
        chown(path, uid, gid)
    }

    /// Runs `script` with bash in the fixture folder as the test user. The
    /// script first closes every inherited descriptor above 2, so that a
    /// wgns it leaves in the background does not keep the test waiting.
    func sh(_ script: String) throws -> RunResult {
        var argv: [String] = []
        if let user { argv = ["setpriv", "--reuid", user, "--regid", user, "--clear-groups"] }
        argv += ["env", "-i", "HOME=\(dir)", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "W=\(dir)/wgns",
                 "/bin/bash", "-c", "for n in $(cd /proc/$$/fd && echo *); do [ \"$n\" -gt 2 ] && eval \"exec $n>&-\"; done\ncd \(dir) || exit 99\n" + script]
        return try run("/usr/bin/env", argv)
    }

    /// The hostile neighbour: another uid on this node (WGNS_NEIGHBOUR_USER,
    /// made by scripts/host-setup.sh), when the tests run as root and the
    /// test user is not root.
    static var neighbour: String? {
        guard getuid() == 0, let n = ProcessInfo.processInfo.environment["WGNS_NEIGHBOUR_USER"], !n.isEmpty,
              getpwnam(n) != nil, ProcessInfo.processInfo.environment["WGNS_TEST_USER"].map({ !$0.isEmpty }) == true else { return nil }
        return n
    }

    /// Runs `script` with bash as the neighbour, in /tmp (the fixture folder
    /// is readable to it, not writable), with `D` = the fixture folder.
    func neighbourSh(_ script: String) throws -> RunResult {
        let n = Self.neighbour ?? "nobody"
        return try run("/usr/bin/env", ["setpriv", "--reuid", n, "--regid", n, "--clear-groups",
                                        "env", "-i", "HOME=/tmp", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "D=\(dir)", "W=\(dir)/wgns",
                                        "/bin/bash", "-c", "for n in $(cd /proc/$$/fd && echo *); do [ \"$n\" -gt 2 ] && eval \"exec $n>&-\"; done\ncd /tmp || exit 99\n" + script])
    }

    /// Runs the peer (`wgns up peer.conf` with a TCP checksum server) in the
    /// background of a script, then `body`, then waits for the peer.
    func withPeer(_ body: String) -> String {
        """
        rm -f ready; mkfifo ready
        "$W" up --backend wireguard-go peer.conf -- python3 server.py 10.99.0.1 ready > peer.out 2>&1 &
        PEER=$!
        read x < ready
        \(body)
        wait $PEER; echo "peer status $?"
        cat peer.out
        """
    }

    static let server = """
        import socket, hashlib, struct, sys
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((sys.argv[1], 5000)); s.listen(1)
        open(sys.argv[2], "w").write("ready\\n")
        # A client that never comes (a test failing) must not hang the test.
        s.settimeout(30)
        c, _ = s.accept(); c.settimeout(None); h = hashlib.sha256(); n = 0
        while True:
            b = c.recv(65536)
            if not b: break
            h.update(b); n += len(b)
        c.sendall(("%d %s\\n" % (n, h.hexdigest())).encode())
        # This job may end (and the tunnel with it) only once the reply has
        # reached the client. A read cannot tell: the client has shut its
        # side already, so recv returns at once, and under load the tunnel
        # went down with the reply still queued (the client timed out).
        # Lingering, close sends the FIN and returns once the client's
        # kernel has acknowledged it, and so all of the reply (30 s at most).
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 30)); c.close()
        print("server got", n, h.hexdigest(), flush=True)
        """

    static let client = """
        import socket, hashlib, os, sys
        data = os.urandom(int(sys.argv[2]))
        c = socket.create_connection((sys.argv[1], 5000), timeout=30)
        c.sendall(data); c.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            b = c.recv(4096)
            if not b: break
            reply += b
        mine = "%d %s" % (len(data), hashlib.sha256(data).hexdigest())
        print("checksum", "match" if reply.decode().strip() == mine else "MISMATCH", mine, flush=True)
        sys.exit(0 if reply.decode().strip() == mine else 1)
        """

    /// Pids of every process on the host whose network namespace is `netns` (`net:[N]`).
    static func processes(inNetns netns: String) -> [Int32] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
        return pids.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\($0)/ns/net")) == netns }
    }

    /// Waits (up to `seconds`) until `condition` holds; returns whether it did.
    static func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }
}

@Suite(.serialized) struct UpTests {
    @Test(arguments: ["slirp4netns", "pasta"])
    func pingAndTransferThroughTheTunnel(carrier: String) throws {
        let f = try UpFixture()
        let r = try f.sh(f.withPeer("""
            "$W" up --backend wireguard-go --carrier \(carrier) --host-loopback job.conf -- sh -c 'ping -c 2 -W 5 10.99.0.1 && python3 client.py 10.99.0.1 4000000'
            echo "job status $?"
            """))
        #expect(r.stdout.contains("2 received"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("checksum match"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("job status 0"))
        #expect(r.stdout.contains("peer status 0"))
        #expect(r.stdout.contains("server got 4000000"))
    }

    /// A peer at an IPv6 endpoint through slirp4netns: fd00::2 is the host's
    /// ::1 with host loopback, where pasta forwards the peer's port. The
    /// first ping must get through: slirp4netns's own IPv6 set-up (router
    /// advertisement, DAD) takes seconds and would lose the first handshake.
    @Test(arguments: [false, true])
    func ipv6EndpointOverSlirp4netns(isolate: Bool) throws {
        let f = try UpFixture()
        let job = try String(contentsOfFile: "\(f.dir)/job.conf", encoding: .utf8)
        try f.write("job6.conf", job.replacingOccurrences(of: "Endpoint = 10.0.2.2:", with: "Endpoint = [fd00::2]:"))
        let r = try f.sh(f.withPeer("""
            "$W" up --backend wireguard-go --carrier slirp4netns --host-loopback \(isolate ? "--isolate " : "")job6.conf -- sh -c 'ping -c 1 -W 2 10.99.0.1 && python3 client.py 10.99.0.1 100000'
            echo "job status $?"
            """))
        #expect(r.stdout.contains("1 received"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("checksum match"), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("job status 0"))
        #expect(r.stdout.contains("peer status 0"))
    }

    @Test(arguments: ["wireguard-go", "builtin"])
    func jobRunsAsMappedIDs(backend: String) throws {
        let f = try UpFixture()
        let mine = try f.sh(#""$W" up --backend \#(backend) job.conf -- sh -c 'echo "$(id -u) $(id -g)"; ip link set wg0 down 2>/dev/null && echo changed || echo refused'"#)
        #expect(mine.status == 0, "\(mine.stderr)")
        #expect(mine.stdout == "\(f.uid) \(f.gid)\nrefused\n")
        // Root inside is root of the job's own user namespace: no power over wg0.
        let root = try f.sh(#""$W" up --backend \#(backend) --map-uid 0 --map-gid 0 job.conf -- sh -c 'echo "$(id -u) $(id -g)"; ip link set wg0 down 2>/dev/null && echo changed || echo refused'"#)
        #expect(root.status == 0, "\(root.stderr)")
        #expect(root.stdout == "0 0\nrefused\n")
        // Only when asked for in so many words.
        let admin = try f.sh(#""$W" up --backend \#(backend) --net-admin job.conf -- sh -c 'echo "$(id -u) $(id -g)"; ip link set wg0 down && echo changed'"#)
        #expect(admin.status == 0, "\(admin.stderr)")
        #expect(admin.stdout == "0 0\nchanged\n")
        let other = try f.sh(#""$W" up --backend \#(backend) --map-uid 1234 --map-gid 4321 job.conf -- sh -c 'echo "$(id -u) $(id -g)"'"#)
        #expect(other.stdout == "1234 4321\n", "\(other.stderr)")
    }

    @Test(arguments: ["wireguard-go", "builtin"])
    func namespaceHasTunnelRoutesAndDNS(backend: String) throws {
        let f = try UpFixture()
        try f.write("dns.conf", """
            [Interface]
            PrivateKey = \(f.jobKey.base64Secret())
            Address = 10.99.0.2/24, fd99::2/64
            DNS = 10.99.0.53, fd99::53, corp.example, lab.example
            MTU = 1400

            [Peer]
            PublicKey = \(f.peerKey.publicKey.base64)
            AllowedIPs = 0.0.0.0/0, ::/0
            Endpoint = 127.0.0.1:\(f.port)

            """)
        // A full tunnel is isolated by default: only lo and wg0.
        let iso = try f.sh(#""$W" up --backend \#(backend) dns.conf -- sh -c 'ip -o link show | cut -d: -f2 | tr -d " " | tr "\n" " "; ip route get 10.0.2.3'"#)
        #expect(iso.status == 0, "\(iso.stderr)")
        #expect(iso.stdout.hasPrefix("lo wg0 10.0.2.3 dev wg0"), "\(iso.stdout)")
        let r = try f.sh(#""$W" up --backend \#(backend) --no-isolate dns.conf -- sh -c 'cat /etc/resolv.conf; ip -o link show wg0; ip route show table 51820; ip -6 route show table 51820; ip route get 1.1.1.1; ip route get 10.0.2.3'"#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("nameserver 10.99.0.53\nnameserver fd99::53\nsearch corp.example lab.example\n"))
        #expect(r.stdout.contains("mtu 1400"))
        #expect(r.stdout.contains("default dev wg0"))
        #expect(r.stdout.contains("1.1.1.1 dev wg0"))
        // The carrier's own subnet (its resolver) stays reachable directly.
        #expect(r.stdout.contains("10.0.2.3 dev tap0"))
        // The host's resolv.conf is untouched.
        #expect(!((try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? "").contains("10.99.0.53"))
    }

    @Test(arguments: ["wireguard-go", "builtin"])
    func exitStatusAndSignalsPass(backend: String) throws {
        let f = try UpFixture()
        let seven = try f.sh(#""$W" up --backend \#(backend) job.conf -- sh -c 'exit 7'"#)
        #expect(seven.status == 7)
        for (sig, expected) in [("TERM", "42"), ("HUP", "43"), ("INT", "44")] {
            let r = try f.sh("""
                rm -f up; mkfifo up
                "$W" up --backend \(backend) job.conf -- sh -c 'trap "exit 42" TERM; trap "exit 43" HUP; trap "exit 44" INT; echo go > up; while :; do sleep 0.05; done' &
                P=$!
                read x < up
                kill -\(sig) $P
                wait $P; echo "status $?"
                """)
            #expect(r.stdout.contains("status \(expected)"), "\(sig): \(r.stdout) \(r.stderr)")
        }
        // A job killed by a signal: wgns exits 128 + the signal, as a shell.
        let killed = try f.sh(#""$W" up --backend \#(backend) job.conf -- sh -c 'kill -KILL $$'"#)
        #expect(killed.status == 137)
    }

    @Test(arguments: ["wireguard-go", "builtin"])
    func missingCommandIs127(backend: String) throws {
        let f = try UpFixture()
        let r = try f.sh(#""$W" up --backend \#(backend) job.conf -- no-such-command-here"#)
        #expect(r.status == 127)
        #expect(r.stderr == "wgns: no-such-command-here: command not found\n")
    }

    @Test func sigkillLeavesNothing() throws {
        let f = try UpFixture()
        let mountsBefore = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n").count
        _ = try f.sh("""
            rm -f up; mkfifo up
            "$W" up --backend wireguard-go job.conf -- sh -c 'readlink /proc/self/ns/net > up; exec sleep 1000' > /dev/null 2>&1 &
            P=$!
            read ns < up
            echo "$ns" > netns
            pgrep -P $P > children
            echo $P > wgns.pid
            """)
        let netns = try String(contentsOfFile: "\(f.dir)/netns", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let wgnsPid = Int32(try String(contentsOfFile: "\(f.dir)/wgns.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        let children = try String(contentsOfFile: "\(f.dir)/children", encoding: .utf8).split(separator: "\n").compactMap { Int32($0) }
        #expect(netns.hasPrefix("net:["))
        #expect(children.count == 2, "holder and carrier")
        #expect(!UpFixture.processes(inNetns: netns).isEmpty)
        kill(wgnsPid, SIGKILL)
        let gone = UpFixture.eventually {
            UpFixture.processes(inNetns: netns).isEmpty
                && children.allSatisfy { kill($0, 0) != 0 || (try? String(contentsOfFile: "/proc/\($0)/stat", encoding: .utf8))?.contains(") Z ") == true }
        }
        #expect(gone, "processes left in \(netns): \(UpFixture.processes(inNetns: netns))")
        let mountsAfter = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n").count
        #expect(mountsAfter == mountsBefore)
        let files = try FileManager.default.contentsOfDirectory(atPath: f.dir).sorted()
        #expect(files == ["children", "client.py", "job.conf", "netns", "peer.conf", "server.py", "up", "wgns", "wgns.pid"])
        #expect(!FileManager.default.fileExists(atPath: "/run/wireguard/wg0.sock"))
    }

    @Test(arguments: ["wireguard-go", "builtin"])
    func keyNeverInArgvOrEnvironment(backend: String) throws {
        let f = try UpFixture()
        let secret = f.jobKey.base64Secret()
        let hex = f.jobKey.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
        _ = try f.sh("""
            rm -f up; mkfifo up
            "$W" up --backend \(backend) job.conf -- sh -c 'echo go > up; exec sleep 1000' > /dev/null 2>&1 &
            echo $! > wgns.pid
            read x < up
            """)
        let wgnsPid = Int32(try String(contentsOfFile: "\(f.dir)/wgns.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        defer { kill(wgnsPid, SIGTERM) }
        var scanned = 0
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") where Int32(entry) != nil {
            for file in ["cmdline", "environ"] {
                guard let data = FileManager.default.contents(atPath: "/proc/\(entry)/\(file)") else { continue }
                scanned += 1
                let text = String(decoding: data, as: UTF8.self)
                #expect(!text.contains(secret) && !text.contains(hex), "key found in /proc/\(entry)/\(file)")
            }
        }
        #expect(scanned > 10)
    }

    @Test func twentyNeighboursWithTheSamePortAndAddresses() throws {
        let f = try UpFixture()
        try f.write("same.conf", """
            [Interface]
            PrivateKey = \(f.jobKey.base64Secret())
            ListenPort = 51820
            Address = 10.99.0.2/24

            [Peer]
            PublicKey = \(f.peerKey.publicKey.base64)
            AllowedIPs = 10.99.0.0/24
            Endpoint = 10.0.2.2:\(f.port)

            """)
        let r = try f.sh("""
            for i in $(seq 1 20); do
              "$W" up --backend wireguard-go --net-admin same.conf -- sh -c 'wg show wg0 listen-port && ip -o -4 addr show wg0 | grep -q 10.99.0.2/24 && sleep 1' > out.$i 2> err.$i &
            done
            ok=0
            for j in $(jobs -p); do wait $j && ok=$((ok+1)); done
            echo "ok $ok"
            cat out.* | sort | uniq -c
            cat err.*
            """)
        #expect(r.stdout.contains("ok 20"), "\(r.stdout)")
        #expect(r.stdout.contains("20 51820"), "\(r.stdout)")
    }

    @Test func failuresAreOneLineAndLeaveNothing() throws {
        let f = try UpFixture()
        try f.write("bad.conf", "[Interface]\nPrivateKey = nope\n")
        let bad = try f.sh(#""$W" up --backend wireguard-go job.conf bad.conf -- true"#)
        #expect(bad.status == 1)
        #expect(bad.stderr.hasPrefix("wgns: bad.conf:2:") && bad.stderr.filter { $0 == "\n" }.count == 1, "\(bad.stderr)")

        try f.write("unresolvable.conf", """
            [Interface]
            PrivateKey = \(f.jobKey.base64Secret())
            [Peer]
            PublicKey = \(f.peerKey.publicKey.base64)
            AllowedIPs = 10.99.0.0/24
            Endpoint = no-such-host.invalid:51820

            """)
        let unresolved = try f.sh(#""$W" up --backend wireguard-go unresolvable.conf -- true"#)
        #expect(unresolved.status == 1)
        #expect(unresolved.stderr.hasPrefix("wgns: unresolvable.conf: endpoint no-such-host.invalid:51820 does not resolve"), "\(unresolved.stderr)")

        // A split tunnel needs a carrier for its other traffic, even on the builtin backend.
        let noCarrier = try f.sh(#"PATH=/nonexistent "$W" up --backend builtin job.conf -- true"#)
        #expect(noCarrier.status == 1)
        #expect(noCarrier.stderr.hasPrefix("wgns: no carrier"), "\(noCarrier.stderr)")
        // An isolated one needs none.
        let isolated = try f.sh(#"PATH=/nonexistent "$W" up --backend builtin --isolate job.conf -- /bin/true"#)
        #expect(isolated.status == 0, "\(isolated.stderr)")

        if !FileManager.default.fileExists(atPath: "/sys/module/wireguard") {
            let noWG = try f.sh(#"mkdir -p bin; ln -sf /usr/bin/slirp4netns bin/; PATH=$PWD/bin "$W" up --backend wireguard-go job.conf -- true"#)
            #expect(noWG.status == 1)
            #expect(noWG.stderr.hasPrefix("wgns: wireguard-go is not installed"), "\(noWG.stderr)")
            let kernel = try f.sh(#""$W" up --backend kernel job.conf -- true"#)
            #expect(kernel.status == 1)
            #expect(kernel.stderr.hasPrefix("wgns: ") && kernel.stderr.filter { $0 == "\n" }.count == 1, "\(kernel.stderr)")
        }
        let noCommand = try f.sh(#""$W" up --backend wireguard-go job.conf"#)
        _ = noCommand  // runs $SHELL, which reads the empty stdin and exits
        #expect(noCommand.status == 0, "\(noCommand.stderr)")
    }
}

extension UpTests {
    /// The carrier dying under a running job: the job gets SIGTERM, wgns says
    /// so in one line and exits non-zero (documented in `wgns up --help`).
    @Test(arguments: ["slirp4netns", "pasta"])
    func carrierDeathEndsTheJob(carrier: String) throws {
        let f = try UpFixture()
        let r = try f.sh("""
            rm -f up; mkfifo up
            "$W" up --backend wireguard-go --carrier \(carrier) job.conf -- sh -c 'trap "echo job got TERM; exit 0" TERM; echo go > up; while :; do sleep 0.05; done' &
            P=$!
            read x < up
            # The carrier is wgns's child that is not the holder (pasta may run as passt.avx2).
            for c in $(pgrep -P $P); do [ "$(cat /proc/$c/comm)" = wgns ] || kill -KILL $c; done
            wait $P; echo "status $?"
            """)
        #expect(r.stdout.contains("job got TERM"), "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("status 1"), "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.hasPrefix("wgns: carrier \(carrier) exited (signal 9) during the job; ending the job"), "\(r.stderr)")
    }
}

extension UpTests {
    /// `wgns up --name` stays up without a job; `exec` runs inside it as the
    /// mapped user, `list` shows it, `down` ends it, and nothing is left.
    @Test func namedTunnelExecListDown() throws {
        let f = try UpFixture()
        let name = "t\(f.port)"
        let r = try f.sh("""
            "$W" up --backend wireguard-go --name \(name) job.conf > named.out 2>&1 &
            P=$!
            for i in $(seq 1 100); do "$W" list | grep -qx \(name) && break; sleep 0.05; done
            "$W" list | grep -x \(name) && echo listed
            "$W" up --backend wireguard-go --name \(name) job.conf -- true; echo "second status $?"
            "$W" exec \(name) -- sh -c 'echo "inside $(id -u) $(readlink /proc/self/ns/net)"; ip -o -4 addr show wg0'
            echo "outside x $(readlink /proc/self/ns/net)"
            "$W" exec \(name) -- sh -c 'exit 5'; echo "exec status $?"
            "$W" exec \(name) -- no-such-command-here; echo "missing status $?"
            "$W" status \(name)
            "$W" show \(name) endpoints
            "$W" down \(name); echo "down status $?"
            wait $P; echo "up status $?"
            "$W" list | grep -x \(name) || echo "not listed"
            "$W" down \(name); echo "down again status $?"
            """)
        let out = r.stdout
        #expect(out.contains("listed\n"), "\(out) \(r.stderr)")
        #expect(out.contains("second status 1"))
        #expect(r.stderr.contains("wgns: a tunnel named \(name) is already up\n"))
        #expect(out.contains("inside \(f.uid) net:["))
        #expect(out.contains("10.99.0.2/24"))
        // The exec'd command is in the tunnel's network namespace, not ours.
        let inside = out.split(separator: "\n").first { $0.hasPrefix("inside") }?.split(separator: " ").last
        let outside = out.split(separator: "\n").first { $0.hasPrefix("outside") }?.split(separator: " ").last
        #expect(inside != nil && inside != outside)
        #expect(out.contains("exec status 5"))
        #expect(out.contains("interface: wg0\n  public key: \(f.jobKey.publicKey.base64)\n"))
        #expect(out.contains("peer: \(f.peerKey.publicKey.base64)\n  endpoint: 10.0.2.2:\(f.port)\n  allowed ips: 10.99.0.0/24\n"))
        // One field of the tunnel's devices, named as `wg show all FIELD` names them.
        #expect(out.contains("wg0\t\(f.peerKey.publicKey.base64)\t10.0.2.2:\(f.port)\n"), "\(out)")
        #expect(!out.contains(f.jobKey.base64Secret()))
        #expect(out.contains("missing status 127"))
        #expect(r.stderr.contains("wgns: no-such-command-here: command not found\n"))
        #expect(out.contains("down status 0"))
        #expect(out.contains("up status 0"))
        #expect(out.contains("not listed"))
        #expect(out.contains("down again status 1"))
        #expect(r.stderr.contains("wgns: no tunnel named \(name) is up"))
    }
}

extension UpTests {
    /// User namespaces unavailable (here: a limit of 0 set inside an outer
    /// user namespace, which the host's own sysctl does not feel): one line,
    /// non-zero, nothing started.
    @Test func userNamespacesUnavailable() throws {
        let f = try UpFixture()
        let r = try f.sh("""
            unshare -Ur sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && "$W" up --backend wireguard-go job.conf -- echo job ran'
            echo "status $?"
            """)
        #expect(r.stdout == "status 1\n", "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.hasPrefix("wgns: cannot create a user namespace: user namespaces are disabled on this machine (user.max_user_namespaces = 0) (fix: sudo sysctl -w user.max_user_namespaces=15000)"))
        #expect(r.stderr.filter { $0 == "\n" }.count == 1)
    }
}
