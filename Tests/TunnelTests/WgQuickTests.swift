import Foundation
import Testing
import TestSupport

/// wg-quick's own settings under `wgns up`, on the host (userspace backend,
/// real namespaces, run as the unprivileged test user): Table, the four
/// hooks, and configs found by name. The routes and rules expected are what
/// wg-quick's script adds for the same config (its add_route/add_default);
/// scripts/vm/tests/50-wg-quick.sh compares with wg-quick itself.
@Suite(.serialized) struct WgQuickSettings {
    /// A config of the fixture's job with `extra` lines in [Interface] and
    /// these AllowedIPs.
    static func config(_ f: UpFixture, _ extra: String, allowed: String = "10.99.0.0/24, 10.50.0.0/16, 10.99.0.7/32, 0.0.0.0/0, fd98::/64, ::/0") -> String {
        """
        [Interface]
        PrivateKey = \(f.jobKey.base64Secret())
        Address = 10.99.0.2/24, fd99::2/64
        \(extra)

        [Peer]
        PublicKey = \(f.peerKey.publicKey.base64)
        AllowedIPs = \(allowed)
        Endpoint = 127.0.0.1:\(f.port)

        """
    }

    /// What the job sees: the routes of wg0 that are not the kernel's own
    /// (those come from the addresses, with or without wg-quick), sorted,
    /// then `ip rule` and `ip -6 rule`.
    static let show = #"sh -c '{ ip -4 route show table all; ip -6 route show table all; } | grep "dev wg0" | grep -v "proto kernel" | sort; echo rules; ip rule; ip -6 rule'"#

    static let defaultRules = """
        0:\tfrom all lookup local
        32766:\tfrom all lookup main
        32767:\tfrom all lookup default
        0:\tfrom all lookup local
        32766:\tfrom all lookup main

        """

    func routes(_ table: String?, allowed: String? = nil) throws -> String {
        let f = try UpFixture()
        let extra = table.map { "Table = \($0)" } ?? ""
        try f.write("t.conf", allowed.map { Self.config(f, extra, allowed: $0) } ?? Self.config(f, extra))
        let r = try f.sh(#""$W" up --backend wireguard-go t.conf -- "# + Self.show)
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout
    }

    @Test func tableAutoIsWgQuicksDefault() throws {
        // No Table and Table = auto: main-table routes for what the
        // address routes do not cover, a default route per family in
        // table 51820 (the fwmark) with wg-quick's two rules.
        let want = """
            10.50.0.0/16 dev wg0 scope link \n\
            default dev wg0 table 51820 metric 1024 pref medium
            default dev wg0 table 51820 scope link \n\
            fd98::/64 dev wg0 metric 1024 pref medium
            rules
            0:\tfrom all lookup local
            32764:\tfrom all lookup main suppress_prefixlength 0
            32765:\tnot from all fwmark 0xca6c lookup 51820
            32766:\tfrom all lookup main
            32767:\tfrom all lookup default
            0:\tfrom all lookup local
            32764:\tfrom all lookup main suppress_prefixlength 0
            32765:\tnot from all fwmark 0xca6c lookup 51820
            32766:\tfrom all lookup main

            """
        #expect(try routes(nil) == want)
        #expect(try routes("auto") == want)
    }

    @Test func tableOffAddsNothing() throws {
        #expect(try routes("off") == "rules\n" + Self.defaultRules)
    }

    @Test func tableNumberTakesEveryRouteAndNoRule() throws {
        let want = """
            10.50.0.0/16 dev wg0 table 1234 scope link \n\
            10.99.0.0/24 dev wg0 table 1234 scope link \n\
            10.99.0.7 dev wg0 table 1234 scope link \n\
            default dev wg0 table 1234 metric 1024 pref medium
            default dev wg0 table 1234 scope link \n\
            fd98::/64 dev wg0 table 1234 metric 1024 pref medium
            rules

            """ + Self.defaultRules
        #expect(try routes("1234") == want)
        #expect(try routes("0x4d2") == want)
    }

    @Test func tableByName() throws {
        // "main" is iproute2's own name for 254: `ip` shows no "table" then.
        let want = """
            10.50.0.0/16 dev wg0 scope link \n\
            10.99.0.7 dev wg0 scope link \n\
            fd98::/64 dev wg0 metric 1024 pref medium
            rules

            """ + Self.defaultRules
        #expect(try routes("main", allowed: "10.99.0.7/32, 10.50.0.0/16, fd98::/64") == want)
        // A name from rt_tables.d (root only can add one: skipped otherwise).
        guard getuid() == 0 else { return }
        let name = "wgnst\(Int.random(in: 1000...9999))"
        let file = "/etc/iproute2/rt_tables.d/\(name).conf"
        try? FileManager.default.createDirectory(atPath: "/etc/iproute2/rt_tables.d", withIntermediateDirectories: true)
        try "4242 \(name)\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let named = try routes(name, allowed: "10.50.0.0/16")
        #expect(named == "10.50.0.0/16 dev wg0 table \(name) scope link \nrules\n" + Self.defaultRules)
    }

    /// `wgns up` of a config with `line` fails with one line starting with
    /// `error`, and the job never starts.
    static func refusedBeforeStart(_ f: UpFixture, _ line: String, _ error: String) throws {
        try f.write("t.conf", Self.config(f, line))
        let r = try f.sh(#""$W" up --backend wireguard-go t.conf -- touch ran"#)
        #expect(r.status != 0)
        #expect(r.stderr.hasPrefix(error), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(f.dir)/ran"))
    }

    @Test func unknownTableIsOneLineAndNothingStarts() throws {
        try Self.refusedBeforeStart(try UpFixture(), "Table = no-such-table", "wgns: t.conf:4: Table 'no-such-table' is neither")
    }

    @Test func saveConfigTrueIsRefused() throws {
        let f = try UpFixture()
        try Self.refusedBeforeStart(f, "SaveConfig = true", "wgns: t.conf: SaveConfig = true is refused")
        try f.write("f.conf", Self.config(f, "SaveConfig = false"))
        #expect(try f.sh(#""$W" up --backend wireguard-go f.conf -- true"#).status == 0)
    }

    @Test func hooksRunInOrderInsideTheNamespace() throws {
        let f = try UpFixture()
        try f.write("h.conf", Self.config(f, """
            PreUp = ip link show wg0 >/dev/null 2>&1 && echo pre-sees-wg0 >> order || echo pre-no-wg0 >> order
            PreUp = echo second-preup >> order; echo to-stderr >&2
            PostUp = ip -o link show %i | grep -q ',UP' && echo post-sees-%i-up >> order
            PostUp = ip route add 10.77.0.0/16 dev %i && nft add table inet wgnstest && nft list tables
            PreDown = ip -o link show %i >/dev/null && echo predown-sees-%i >> order
            PostDown = ip link show %i >/dev/null 2>&1 && echo postdown-sees-wg0 >> order || echo postdown-no-wg0 >> order
            """))
        let r = try f.sh(#""$W" up --backend wireguard-go -v h.conf -- sh -c 'echo job >> order; ip route show 10.77.0.0/16; cat /proc/self/status | grep CapEff'"#)
        #expect(r.status == 0, "\(r.stderr)")
        let order = try String(contentsOfFile: "\(f.dir)/order", encoding: .utf8)
        #expect(order == "pre-no-wg0\nsecond-preup\npost-sees-wg0-up\njob\npredown-sees-wg0\npostdown-no-wg0\n")
        // Output on stderr, prefixed; the nft table exists in the namespace only.
        #expect(r.stderr.contains("wgns: PreUp: to-stderr\n"))
        #expect(r.stderr.contains("wgns: PostUp: table inet wgnstest\n"), "\(r.stderr)")
        #expect(r.stdout.contains("10.77.0.0/16 dev wg0"))
        // -v: each hook with its place and duration.
        #expect(r.stderr.contains("] PostUp h.conf:6 (exit status 0) ("), "\(r.stderr)")
        #expect(r.stderr.contains("] PostDown h.conf:9 (exit status 0) ("))
        // The job has no capabilities (the hooks had them).
        #expect(r.stdout.contains("CapEff:\t0000000000000000"), "\(r.stdout)")
        if getuid() == 0 {
            let host = try run("/usr/sbin/nft", ["list", "tables"])
            #expect(!host.stdout.contains("wgnstest"))
        }
    }

    @Test func isolatedHooksActWhereTheJobIs() throws {
        let f = try UpFixture()
        try f.write("h.conf", Self.config(f, """
            PreUp = nft add table inet wgnspre; ip -o link show | grep -c tap0 >> order; true
            PostUp = nft list tables >> order; ip -o link show | grep -c tap0 >> order; true
            """))
        let r = try f.sh(#""$W" up --backend wireguard-go --isolate h.conf -- sh -c 'ip -o link show | grep -c tap0 >> order; true'"#)
        #expect(r.status == 0, "\(r.stderr)")
        let order = try String(contentsOfFile: "\(f.dir)/order", encoding: .utf8)
        // Neither hook nor the job sees the carrier's tap0; PreUp's table is
        // in the namespace PostUp (and the job) are in.
        #expect(order == "0\ntable inet wgnspre\n0\n0\n", "\(order)")
    }

    @Test func failingPostUpStopsAndLeavesNothing() throws {
        let f = try UpFixture()
        try f.write("h.conf", Self.config(f, """
            PostUp = echo fine
            PostUp = readlink /proc/self/ns/net > netns; sleep 100 & echo going; exit 3
            """))
        let r = try f.sh(#""$W" up --backend wireguard-go h.conf -- touch ran"#)
        #expect(r.status != 0)
        #expect(r.stderr.contains("wgns: PostUp: going\n"))
        let errors = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("wgns: PostUp: ") }
        #expect(errors == ["wgns: h.conf:5: PostUp failed (exit status 3); nothing was left up"], "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(f.dir)/ran"))
        let netns = try String(contentsOfFile: "\(f.dir)/netns", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(netns.hasPrefix("net:["))
        #expect(UpFixture.eventually { UpFixture.processes(inNetns: netns).isEmpty }, "left in \(netns): \(UpFixture.processes(inNetns: netns))")
    }

    @Test func failingPreUpStopsBeforeAnyDevice() throws {
        let f = try UpFixture()
        try f.write("h.conf", Self.config(f, "PreUp = false"))
        let r = try f.sh(#""$W" up --backend wireguard-go h.conf -- touch ran"#)
        #expect(r.status != 0)
        #expect(r.stderr == "wgns: h.conf:4: PreUp failed (exit status 1); nothing was left up\n", "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(f.dir)/ran"))
    }

    @Test func hangingHookIsBounded() throws {
        let f = try UpFixture()
        // A sleep no other test runs, to find it if it outlived the kill.
        try f.write("h.conf", Self.config(f, "PostUp = echo waiting; sleep 100.37"))
        let r = try f.sh(#"WGNS_HOOK_TIMEOUT=1 "$W" up --backend wireguard-go h.conf -- touch ran"#)
        #expect(r.status != 0)
        #expect(r.stderr.contains("wgns: h.conf:4: PostUp did not finish within 1 s and was killed (WGNS_HOOK_TIMEOUT sets the limit in seconds)"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(f.dir)/ran"))
        #expect(UpFixture.eventually { try! run("/usr/bin/pgrep", ["-f", "sleep 100.37"]).status == 1 }, "the hook outlived its kill")
    }

    @Test func jobCannotUseTheHooksPrivileges() throws {
        let f = try UpFixture()
        try f.write("h.conf", Self.config(f, "PostUp = ip link set %i mtu 1300"))
        let r = try f.sh(#""$W" up --backend wireguard-go h.conf -- sh -c 'ip link set wg0 down && echo took-it-down; ip -o link show wg0'"#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("mtu 1300"))
        #expect(!r.stdout.contains("took-it-down"))
        #expect(r.stdout.contains(",UP"))
    }

    /// Root inside (MapUid 0) is root of the job's own user namespace, not
    /// of the tunnel's where the hooks ran: wg0 stays as PostUp left it.
    @Test func jobAsRootInsideCannotUseTheHooksPrivileges() throws {
        let f = try UpFixture()
        try f.write("h.conf", Self.config(f, "PostUp = ip link set %i mtu 1300 && nft add table inet wgnshook"))
        let r = try f.sh(#""$W" up --backend wireguard-go --map-uid 0 --map-gid 0 h.conf -- sh -c 'id -u; ip link set wg0 down && echo took-it-down; nft delete table inet wgnshook && echo deleted-table; ip -o link show wg0'"#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("0\n"), "\(r.stdout)")
        #expect(r.stdout.contains("mtu 1300"))
        #expect(!r.stdout.contains("took-it-down"), "\(r.stdout)")
        #expect(!r.stdout.contains("deleted-table"), "\(r.stdout)")
        #expect(r.stdout.contains(",UP"))
    }

    @Test func configsByName() throws {
        let f = try UpFixture()
        for (folder, address) in [("cfgdir", "10.98.1.2/24"), ("xdg/wgns", "10.98.2.2/24"), (".config/wgns", "10.98.3.2/24"), (".config/wireguard", "10.98.4.2/24")] {
            try FileManager.default.createDirectory(atPath: "\(f.dir)/\(folder)", withIntermediateDirectories: true)
            var d = folder[...]
            while !d.isEmpty {
                chown("\(f.dir)/\(d)", f.uid, f.gid)
                d = d.lastIndex(of: "/").map { d[..<$0] } ?? ""
            }
            let text = Self.config(f, "").replacingOccurrences(of: "Address = 10.99.0.2/24, fd99::2/64", with: "Address = \(address)")
            try f.write("\(folder)/office.conf", text)
        }
        _ = try f.sh("mkdir -p elsewhere")
        func up(_ env: String) throws -> String {
            let r = try f.sh("cd elsewhere && \(env) \"$W\" up --backend wireguard-go office -- ip -o -4 addr show wg0")
            #expect(r.status == 0, "\(env): \(r.stderr)")
            return r.stdout
        }
        let xdg = "\(f.dir)/xdg"
        #expect(try up("WGNS_CONFIG_DIR=\(f.dir)/cfgdir XDG_CONFIG_HOME=\(xdg)").contains("10.98.1.2/24"))
        #expect(try up("XDG_CONFIG_HOME=\(xdg)").contains("10.98.2.2/24"))
        #expect(try up("").contains("10.98.3.2/24"))
        _ = try f.sh("rm .config/wgns/office.conf")
        #expect(try up("").contains("10.98.4.2/24"))
        // Nowhere: one line naming every place.
        let r = try f.sh("cd elsewhere && WGNS_CONFIG_DIR=/nonexistent XDG_CONFIG_HOME=\(xdg) \"$W\" up --backend wireguard-go nowhere -- true")
        #expect(r.status != 0)
        #expect(r.stderr == "wgns: no config named nowhere: looked for ./nowhere, /nonexistent/nowhere.conf, \(xdg)/wgns/nowhere.conf, \(f.dir)/.config/wireguard/nowhere.conf (set WGNS_CONFIG_DIR, or give a path)\n", "\(r.stderr)")
    }
}
