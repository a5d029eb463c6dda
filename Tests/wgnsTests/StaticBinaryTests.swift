import Foundation
import Testing
import TestSupport

/// Whether `wgnsBinary` is one static executable (`ldd` says so).
let wgnsBinaryIsStatic: Bool = {
    guard let ldd = which("ldd"), let r = try? run(ldd, [wgnsBinary]) else { return false }
    return (r.stdout + r.stderr).contains("not a dynamic executable")
}()

/// The static binary (scripts/build-static.sh, which scripts/test.sh passes
/// in as WGNS_BIN) in a root that holds nothing but it, /proc and a hostile
/// /etc: an nsswitch.conf that names NSS modules that are not there, no
/// passwd entry for the user, no resolv.conf, no network (bubblewrap with a
/// new user and network namespace, as the unprivileged WGNS_TEST_USER when
/// run as root). What a cluster node whose users come from LDAP or sssd
/// looks like to it.
@Suite(.enabled(if: wgnsBinaryIsStatic, "needs the static binary: WGNS_BIN=$(make -s static | tail -n1), as scripts/test.sh sets"))
struct StaticBinaryTests {
    /// A root folder for bwrap: /bin/wgns, an empty /proc mount point, /etc
    /// with `nsswitch` as nsswitch.conf, `hosts` as /etc/hosts, and `files`.
    final class Root {
        let path = "/tmp/wgns-static-\(UUID().uuidString.prefix(8))"

        init(nsswitch: String, hosts: String, files: [String: String] = [:]) throws {
            let fm = FileManager.default
            for d in ["", "/bin", "/proc", "/etc"] {
                try fm.createDirectory(atPath: path + d, withIntermediateDirectories: false)
                chmod(path + d, 0o755)
            }
            // Copied by cp, not FileManager: FileManager opens the copy for
            // writing without O_CLOEXEC, so a child another test starts
            // meanwhile keeps it open, and exec'ing the copy then fails with
            // "Text file busy".
            let cp = try run("/bin/cp", [wgnsBinary, path + "/bin/wgns"])
            try #require(cp.status == 0, "cp: \(cp.stderr)")
            chmod(path + "/bin/wgns", 0o755)
            var all = files
            all["nsswitch.conf"] = nsswitch
            all["hosts"] = hosts
            // Configs hold keys: the user's own, mode 0600 (as a user keeps
            // them; a readable one gets wgns's warning line); the rest 0644.
            var owner = getuid()
            if let user = testUser, let pw = getpwnam(user) {
                owner = pw.pointee.pw_uid
            }
            for (name, text) in all {
                try text.write(toFile: path + "/etc/" + name, atomically: false, encoding: .utf8)
                if name.hasSuffix(".conf") && name != "nsswitch.conf" {
                    chmod(path + "/etc/" + name, 0o600)
                    chown(path + "/etc/" + name, owner, gid_t(UInt32.max))
                } else {
                    chmod(path + "/etc/" + name, 0o644)
                }
            }
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }

        /// The unprivileged user wgns runs as when the tests run as root.
        static let user: String? = testUser

        /// Runs `/bin/wgns ARGS` inside: uid and gid 4242 (no passwd or group
        /// entry anywhere), only `env` in the environment, at most 60 s.
        func wgns(_ args: [String], env: [String: String] = [:], proc: Bool = true) throws -> RunResult {
            var cmd: [String] = []
            if let user = Self.user {
                cmd = ["/usr/bin/setpriv", "--reuid=\(user)", "--regid=\(user)", "--clear-groups"]
            }
            cmd += ["/usr/bin/timeout", "60", "/usr/bin/bwrap", "--bind", path, "/"]
            if proc { cmd += ["--proc", "/proc"] }
            cmd += ["--unshare-user", "--unshare-net", "--uid", "4242", "--gid", "4242", "--clearenv"]
            for (k, v) in env.sorted(by: { $0.key < $1.key }) { cmd += ["--setenv", k, v] }
            cmd += ["/bin/wgns"] + args
            return try run(cmd[0], Array(cmd.dropFirst()))
        }
    }

    /// A config whose one peer's endpoint is `endpoint`.
    static func config(endpoint: String) -> String {
        """
        [Interface]
        PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
        Address = 10.9.0.2/24

        [Peer]
        PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
        AllowedIPs = 10.9.0.0/24
        Endpoint = \(endpoint)

        """
    }

    static let hosts = """
        127.0.0.1 localhost
        127.7.7.7 endpoint.test
        fd00::7 v6only.test
        fd00::8 both.test
        127.8.8.8 both.test

        """

    /// hosts: lines seen on clusters and desktops, each naming modules this
    /// root does not have. The first needs `files` added back (glibc would
    /// otherwise consult only the absent modules and find nothing).
    static let nsswitchLines = [
        "hosts: sss ldap myhostname",
        "hosts: files sss ldap myhostname dns",
        "hosts: sss [NOTFOUND=return] myhostname files mdns4_minimal [NOTFOUND=return] dns",
    ]

    static func nsswitch(hosts line: String) -> String {
        "passwd: sss ldap files systemd\ngroup: sss ldap files systemd\n\(line)\nnetgroup: sss\n"
    }

    @Test func versionWithoutPasswdOrNSSModules() throws {
        let root = try Root(nsswitch: Self.nsswitch(hosts: Self.nsswitchLines[2]), hosts: Self.hosts)
        let r = try root.wgns(["version"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.isEmpty)
        // scripts/build-static.sh passes the commit in: 12 hex digits.
        let commit = r.stdout.split(separator: "(commit ").last.map { $0.prefix { $0 != ")" && $0 != "-" } } ?? ""
        #expect(r.stdout.hasPrefix("wgns ") && commit.count == 12 && commit.allSatisfy(\.isHexDigit), "\(r.stdout)")
        let dashed = try root.wgns(["--version"])
        #expect(dashed.status == 0 && dashed.stdout == r.stdout, "\(dashed.stdout)")
    }

    /// /proc is the one thing it needs: without it the Swift runtime stops
    /// before main (README.md, Install).
    @Test func withoutProcTheRuntimeAborts() throws {
        let root = try Root(nsswitch: "", hosts: Self.hosts)
        let r = try root.wgns(["version"], proc: false)
        #expect(r.status != 0)
        #expect(r.stderr.contains("Unable to obtain Swift runtime path"), "\(r.stderr)")
    }

    /// Names from the root's /etc/hosts resolve to the right address
    /// whatever modules nsswitch.conf names; IPv4 is preferred, as for
    /// `wgns up`, and an IPv6-only name gives its IPv6 address.
    @Test(arguments: nsswitchLines)
    func checkResolvesFromHosts(line: String) throws {
        let root = try Root(nsswitch: Self.nsswitch(hosts: line), hosts: Self.hosts, files: [
            "a.conf": Self.config(endpoint: "endpoint.test:51820"),
            "b.conf": Self.config(endpoint: "v6only.test:1"),
            "c.conf": Self.config(endpoint: "both.test:65535"),
        ])
        let r = try root.wgns(["check", "--resolve", "/etc/a.conf", "/etc/b.conf", "/etc/c.conf"])
        #expect(r.status == 0, "\(line): \(r.stderr)")
        #expect(r.stderr.isEmpty, "\(line): \(r.stderr)")
        #expect(r.stdout == """
            /etc/a.conf: endpoint endpoint.test:51820 is 127.7.7.7:51820
            /etc/b.conf: endpoint v6only.test:1 is [fd00::7]:1
            /etc/c.conf: endpoint both.test:65535 is 127.8.8.8:65535

            """, "\(line)")
    }

    /// A name that is not there: one line naming the file and the endpoint,
    /// exit 1, at once when nothing but /etc/hosts is to be asked.
    @Test func unknownNameIsOneLine() throws {
        let root = try Root(nsswitch: Self.nsswitch(hosts: "hosts: files sss ldap myhostname"), hosts: Self.hosts,
                            files: ["bad.conf": Self.config(endpoint: "nowhere.test:51820")])
        let r = try root.wgns(["check", "--resolve", "/etc/bad.conf"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.hasPrefix("wgns: /etc/bad.conf: endpoint nowhere.test:51820 does not resolve: "), "\(r.stderr)")
        #expect(r.stderr.filter { $0 == "\n" }.count == 1, "\(r.stderr)")
    }

    /// With DNS in the list but no way to reach a server (no network, no
    /// resolv.conf), the failure is temporary: retried as wg does, as many
    /// times as WG_ENDPOINT_RESOLUTION_RETRIES says, one notice per retry,
    /// then one error line; a bad count is one line naming the variable.
    @Test func temporaryFailureIsRetriedAsWgDoes() throws {
        let root = try Root(nsswitch: Self.nsswitch(hosts: Self.nsswitchLines[2]), hosts: Self.hosts,
                            files: ["bad.conf": Self.config(endpoint: "nowhere.test:51820")])
        let none = try root.wgns(["check", "--resolve", "/etc/bad.conf"], env: ["WG_ENDPOINT_RESOLUTION_RETRIES": "0"])
        #expect(none.status == 1, "\(none.stderr)")
        #expect(none.stderr.filter { $0 == "\n" }.count == 1, "\(none.stderr)")
        #expect(none.stderr.hasPrefix("wgns: /etc/bad.conf: endpoint nowhere.test:51820 does not resolve: "), "\(none.stderr)")

        let two = try root.wgns(["check", "--resolve", "/etc/bad.conf"], env: ["WG_ENDPOINT_RESOLUTION_RETRIES": "2"])
        let lines = two.stderr.split(separator: "\n")
        #expect(two.status == 1, "\(two.stderr)")
        #expect(lines.count == 3, "\(two.stderr)")
        if lines.count == 3 {
            #expect(lines[0].hasSuffix("; trying again in 1.00 s"), "\(lines[0])")
            #expect(lines[1].hasSuffix("; trying again in 1.20 s"), "\(lines[1])")
            #expect(lines[2].hasPrefix("wgns: /etc/bad.conf: endpoint nowhere.test:51820 does not resolve: ") && lines[2].hasSuffix("(tried 3 times)"), "\(lines[2])")
        }

        let bad = try root.wgns(["check", "--resolve", "/etc/bad.conf"], env: ["WG_ENDPOINT_RESOLUTION_RETRIES": "many"])
        #expect(bad.status == 1)
        #expect(bad.stderr == "wgns: WG_ENDPOINT_RESOLUTION_RETRIES='many': expected a whole number or 'infinity'\n", "\(bad.stderr)")
    }
}
