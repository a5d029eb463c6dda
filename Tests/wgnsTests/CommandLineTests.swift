import Foundation
import Testing
import TestSupport

/// wgns's own command-line parser, through the real binary: option forms,
/// `--` passthrough, usage errors (one line naming the mistake, exit 64,
/// nothing on stdout) and help.
@Suite struct CommandLineTests {
    func tempDir() -> String { NSTemporaryDirectory() + "wgns-cli-\(UUID().uuidString)" }

    /// A usage error: status 64, nothing on stdout, one `wgns: ` line on stderr containing `needle`.
    func expectUsageError(_ args: [String], _ needle: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try run(wgnsBinary, args)
        #expect(r.status == 64, "\(args): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stdout.isEmpty, "\(args)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("wgns: "), "\(args): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.filter { $0 == "\n" }.count == 1, "\(args): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(needle), "\(args): \(r.stderr)", sourceLocation: sourceLocation)
    }

    /// `--opt value` and `--opt=value` give the same result; repeated
    /// options add up; options may come before or after the argument.
    @Test func bothOptionFormsAndRepeats() throws {
        let a = tempDir(), b = tempDir()
        defer { try? FileManager.default.removeItem(atPath: a); try? FileManager.default.removeItem(atPath: b) }
        let spaced = try run(wgnsBinary, ["vpn", "new", a, "--peers", "2", "--subnet", "10.96.0.0/24",
                                          "--subnet", "fd96::/64", "--endpoint", "127.0.0.1:5000", "--psk"])
        let joined = try run(wgnsBinary, ["vpn", "new", "--peers=2", "--subnet=10.96.0.0/24", "--subnet=fd96::/64",
                                          "--endpoint=127.0.0.1:5000", "--psk", b])
        #expect(spaced.status == 0, "\(spaced.stderr)")
        #expect(joined.status == 0, "\(joined.stderr)")
        for dir in [a, b] {
            let peer = try String(contentsOfFile: dir + "/peer-2.conf", encoding: .utf8)
            #expect(peer.contains("Address = 10.96.0.3/24, fd96::3/64"), "\(peer)")
            #expect(peer.contains("Endpoint = 10.0.2.2:5000"), "\(peer)")
            #expect(peer.contains("PresharedKey"))
        }
        // The default subnet when none is given.
        let c = tempDir()
        defer { try? FileManager.default.removeItem(atPath: c) }
        #expect(try run(wgnsBinary, ["vpn", "new", c, "--peers", "1", "--endpoint", "h:1"]).status == 0)
        #expect(try String(contentsOfFile: c + "/peer-1.conf", encoding: .utf8).contains("Address = 10.97.0.2/24"))
    }

    /// After `--`, nothing is parsed: option-looking words reach the command
    /// as given. `wgns up` with a bad config fails on the config, which shows
    /// that every option before it, in either form, and after it, was taken.
    @Test func dashDashPassesEverythingOn() throws {
        let r = try run(wgnsBinary, ["up", "--name=x", "-v", "--map-uid", "0", "--isolate", "/nonexistent/job.conf",
                                     "--backend=userspace", "--", "--foo", "-h", "--help", "--name"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("wgns: /nonexistent/job.conf"), "\(r.stderr)")
        // Without `--` the same words are wgns's own.
        try expectUsageError(["up", "/nonexistent/job.conf", "--foo"], "unknown option --foo")
        // exec: everything after NAME is the command, with or without `--`.
        for args in [["exec", "nosuch-tunnel", "--", "--foo", "--help"], ["exec", "nosuch-tunnel", "--foo", "--help"]] {
            let e = try run(wgnsBinary, args)
            #expect(e.status == 1, "\(e.stderr)")
            #expect(e.stderr.contains("no tunnel named nosuch-tunnel"), "\(e.stderr)")
        }
        // A command without passthrough: `--` makes what follows arguments even if they start with -.
        let check = try run(wgnsBinary, ["check", "--", "--not-an-option.conf"])
        #expect(check.status == 1)
        #expect(check.stderr.contains("--not-an-option.conf"), "\(check.stderr)")
    }

    @Test func usageErrorsNameTheMistake() throws {
        try expectUsageError(["up", "--foo", "job.conf"], "unknown option --foo")
        try expectUsageError(["up", "--name"], "--name needs a value")
        try expectUsageError(["up", "--name", "--isolate", "job.conf"], "--name needs a value")
        try expectUsageError(["up", "--map-uid", "abc", "job.conf"], "invalid value 'abc' for --map-uid")
        try expectUsageError(["up", "--map-uid=-1", "job.conf"], "invalid value '-1' for --map-uid")
        try expectUsageError(["up", "--backend", "nope", "job.conf"], "expected one of auto, kernel, builtin, wireguard-go")
        try expectUsageError(["up", "--carrier=nope", "job.conf"], "expected one of slirp4netns, pasta")
        try expectUsageError(["up", "job.conf", "--peer", "x", "--", "true"], "invalid value 'x' for --peer")
        try expectUsageError(["nosuch"], "unknown command 'nosuch'")
        try expectUsageError(["--nosuch"], "unknown option --nosuch")
        try expectUsageError(["vpn", "nosuch"], "unknown command 'nosuch'")
        try expectUsageError(["down"], "missing NAME")
        try expectUsageError(["exec"], "missing NAME")
        try expectUsageError(["check"], "missing CONFIG")
        try expectUsageError(["setconf", "wg0"], "missing FILE")
        try expectUsageError(["show", "a", "dump", "c"], "unexpected argument 'c'")
        try expectUsageError(["show", "a", "b"], "unknown field 'b'")
        try expectUsageError(["show", "a", "dump", "--json"], "--json cannot be combined with a field")
        try expectUsageError(["show", "--json=yes"], "--json takes no value")
        try expectUsageError(["version", "extra"], "unexpected argument 'extra'")
        try expectUsageError(["vpn", "new", "d"], "missing --peers")
        try expectUsageError(["hub", "d", "--ports", "0-9", "--", "true"], "--ports '0-9'")
        try expectUsageError(["up", "d", "--wait", "later", "--", "true"], "--wait 'later'")
        try expectUsageError(["vpn", "new", "d", "--peers", "two", "--endpoint", "h:1"], "invalid value 'two' for --peers")
        try expectUsageError(["help", "nosuch"], "nosuch")
    }

    /// Mistakes that only show once the options are read together, or
    /// against what a CONFIG is: still exit 64 with one line naming the
    /// flag, found before anything is waited for or made.
    @Test func usageErrorsFoundAfterParsingExit64() throws {
        let job = "/nonexistent/job.conf"
        try expectUsageError(["up", "--peer", "2", job, "--", "true"], "--peer needs a VPN directory")
        try expectUsageError(["up", "--wait", "5", job, "--", "true"], "--wait needs a VPN directory")
        try expectUsageError(["up", "--", "true"], "give at least one config file")
        try expectUsageError(["up", "--net-admin", "--map-uid", "5", job, "--", "true"], "MapUID and MapGID must be 0 or unset (got --map-uid 5)")
        try expectUsageError(["up", "--net-admin", "--map-gid=7", job, "--", "true"], "(got --map-gid 7)")
        try expectUsageError(["up", "--name", "a/b", job, "--", "true"], "--name: tunnel name 'a/b'")
        try expectUsageError(["hub", "--name=", job], "--name: tunnel name ''")
        try expectUsageError(["down", "a/b"], "tunnel name 'a/b'")
        try expectUsageError(["exec", "a/b", "true"], "tunnel name 'a/b'")
        // A VPN whose hub publishes its endpoint: a contradiction is reported
        // at once, not after waiting for the hub (which --wait 0 would end
        // with a different error).
        let vpn = tempDir()
        defer { try? FileManager.default.removeItem(atPath: vpn) }
        #expect(try run(wgnsBinary, ["vpn", "new", vpn, "--peers", "2"]).status == 0)
        try expectUsageError(["up", "--isolate", "--no-isolate", "--wait", "0", "--peer", "1", vpn, "--", "true"],
                             "--isolate and --no-isolate contradict")
        try expectUsageError(["up", "--peer", "3", "--wait", "0", vpn, "--", "true"], "--peer 3 is out of range")
        try expectUsageError(["up", "--peer", "0", "--wait", "0", vpn, "--", "true"], "--peer 0 is out of range")
        #expect(!FileManager.default.fileExists(atPath: vpn + "/hub.endpoint"))
        // vpn new: a value the VPN cannot be made from leaves DIR unmade.
        let dir = tempDir()
        for (args, needle) in [(["--peers", "2", "--subnet", "10.0.0.0"], "--subnet '10.0.0.0'"),
                               (["--peers", "300"], "--subnet 10.97.0.0/24 has room for 253 peers"),
                               (["--peers", "0"], "--peers must be at least 1"),
                               (["--peers", "1", "--subnet", "10.1.0.0/24", "--subnet", "10.2.0.0/24"], "--subnet"),
                               (["--peers", "1", "--endpoint", "127.0.0.1:0"], "--endpoint needs a port"),
                               (["--peers", "1", "--endpoint", "a b:1:2"], "--endpoint 'a b:1:2'")] {
            try expectUsageError(["vpn", "new", dir] + args, needle)
            #expect(!FileManager.default.fileExists(atPath: dir), "\(args)")
        }
    }

    /// A flag that contradicts the config is the command line's mistake
    /// (exit 64); the same contradiction written in the config alone is the
    /// config's (exit 1).
    @Test func flagAgainstConfigIsAUsageError() throws {
        let dir = tempDir()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try run(wgnsBinary, ["genkey"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let peer = try run(wgnsBinary, ["pubkey"], stdin: key + "\n").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        func conf(_ name: String, _ namespace: String) throws -> String {
            let path = "\(dir)/\(name).conf"
            try "[Interface]\nPrivateKey = \(key)\nAddress = 10.9.0.2/24\n\n[Peer]\nPublicKey = \(peer)\nAllowedIPs = 10.9.0.0/24\nEndpoint = 127.0.0.1:51820\n\n[Namespace]\n\(namespace)\n"
                .write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o600)
            return path
        }
        let admin = try conf("admin", "NetAdmin = true")
        try expectUsageError(["up", "--map-uid", "5", admin, "--", "true"], "MapUID and MapGID must be 0 or unset")
        let forward = try conf("forward", "ForwardUDP = 5353")
        try expectUsageError(["up", "--carrier", "slirp4netns", forward, "--", "true"], "need the pasta carrier")
        let both = try conf("both", "NetAdmin = true\nMapUID = 5")
        let r = try run(wgnsBinary, ["up", both, "--", "true"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("MapUID and MapGID must be 0 or unset"), "\(r.stderr)")
        // No carrier is the builtin backend's alone: wireguard-go's UDP
        // leaves through one (the flag's mistake: 64; the config's own: 1).
        let plain = try conf("plain", "HostLoopback = false")
        try expectUsageError(["up", "--backend", "wireguard-go", "--carrier", "none", plain, "--", "true"], "needs the builtin backend")
        let none = try conf("none", "Carrier = none\nBackend = userspace")
        let n = try run(wgnsBinary, ["up", none, "--", "true"])
        #expect(n.status == 1, "\(n.stderr)")
        #expect(n.stderr.hasPrefix("wgns: \(none): Carrier = none needs the builtin backend"), "\(n.stderr)")
    }

    /// No command, or a group without its command: the usage on stderr, exit 64.
    @Test func noCommandPrintsUsage() throws {
        for args in [[], ["vpn"]] {
            let r = try run(wgnsBinary, args)
            #expect(r.status == 64)
            #expect(r.stdout.isEmpty)
            #expect(r.stderr.hasPrefix("Usage: wgns"), "\(r.stderr)")
        }
    }

    @Test func rootHelpListsCommandsButNotHiddenOnes() throws {
        for args in [["--help"], ["-h"], ["help"]] {
            let r = try run(wgnsBinary, args)
            #expect(r.status == 0)
            #expect(r.stderr.isEmpty)
            #expect(r.stdout.hasPrefix("Usage: wgns COMMAND"))
            let listed = r.stdout.split(separator: "\n").filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") && !$0.hasPrefix("  -") }
                .map { String($0.split(separator: " ")[0]) }
            #expect(listed == ["genkey", "pubkey", "genpsk", "check", "strip", "up", "down", "exec", "list", "status",
                               "vpn", "hub", "doctor", "version", "show", "showconf", "setconf", "addconf", "syncconf", "help"],
                    "\(listed)")
            for hidden in ["_holder", "_probe-userns", "_man", "_completions"] { #expect(!r.stdout.contains(hidden)) }
            #expect(r.stdout.contains("\n  --version "))
        }
    }

    @Test func commandHelp() throws {
        let up = try run(wgnsBinary, ["up", "--help"])
        #expect(up.status == 0)
        #expect(up.stdout.hasPrefix("Usage: wgns up [OPTIONS] [CONFIG...] [-- COMMAND [ARGS...]]\n"), "\(up.stdout)")
        for option in ["--name NAME", "--carrier slirp4netns|pasta|none", "--backend auto|kernel|builtin|wireguard-go", "--map-uid UID",
                       "--map-gid GID", "--host-loopback", "--peer K", "--isolate", "-v, --verbose", "-h, --help"] {
            // A long one has its help on the next line.
            #expect(up.stdout.contains("\n  \(option) ") || up.stdout.contains("\n  \(option)\n"), "\(option)")
        }
        // -h, `help CMD`, and help asked for among the configs all print the same.
        #expect(try run(wgnsBinary, ["up", "-h"]).stdout == up.stdout)
        #expect(try run(wgnsBinary, ["help", "up"]).stdout == up.stdout)
        #expect(try run(wgnsBinary, ["up", "job.conf", "--help", "--", "true"]).stdout == up.stdout)
        let new = try run(wgnsBinary, ["help", "vpn", "new"])
        #expect(new.status == 0)
        #expect(new.stdout.hasPrefix("Usage: wgns vpn new [OPTIONS] --peers N DIR\n"), "\(new.stdout)")
        #expect(new.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ").contains("(default: 10.97.0.0/24)"))
        #expect(try run(wgnsBinary, ["vpn", "new", "--help"]).stdout == new.stdout)
        let vpn = try run(wgnsBinary, ["vpn", "--help"])
        #expect(vpn.stdout.contains("\n  new "))
        // Every help line fits in 80 columns, except an option whose name is longer than its column.
        for args in [["--help"], ["up", "--help"], ["vpn", "new", "--help"], ["show", "--help"], ["hub", "--help"]] {
            let text = try run(wgnsBinary, args).stdout
            #expect(text.split(separator: "\n").allSatisfy { $0.count <= 80 || $0.hasPrefix("Usage:") }, "\(args)")
        }
        // Hidden commands still run and have help.
        #expect(try run(wgnsBinary, ["_holder", "--help"]).stdout.hasPrefix("Usage: wgns _holder"))
        // The rtnetlink test steps are a test helper, not in the product.
        #expect(try run(wgnsBinary, ["_rtnl", "links"]).status == 64)
    }

    @Test func shortFlag() throws {
        let long = try run(wgnsBinary, ["hub", "--verbose", "/nonexistent/hub.conf"])
        let short = try run(wgnsBinary, ["hub", "-v", "/nonexistent/hub.conf"])
        #expect(long.status == 1 && short.status == 1)
        #expect(long.stderr == short.stderr)
        try expectUsageError(["hub", "-x", "/nonexistent/hub.conf"], "unknown option -x")
    }
}
