import KeyStore
import POSIX
#if canImport(Glibc)
import Glibc
#endif

/// Everything the holder needs to build the namespace, decided by the
/// supervisor before anything is created. Sent to the holder over a pipe
/// (it holds private keys: never argv, environment or a file).
public struct UpPlan: Sendable {
    /// One WireGuard interface to create inside.
    public struct Interface: Sendable {
        /// `wg0`, `wg1`, ...
        public var name: String
        /// The config, endpoints already resolved to addresses.
        public var config: TunnelConfig
        /// The MTU to set.
        public var mtu: UInt32
        /// The config file as the user named it, for hook errors (`FILE:LINE`).
        public var source: String = ""
    }

    /// The interfaces, one per CONFIG.
    public var interfaces: [Interface] = []
    /// Some peer's endpoint is an IPv6 address (so the carrier must carry IPv6).
    var hasIPv6Endpoint: Bool {
        interfaces.contains { $0.config.peers.contains { $0.endpoint?.address?.isV6 == true } }
    }
    /// slirp4netns, pasta, or none.
    public var carrier: CarrierKind = .slirp4netns
    /// auto (the kernel's, falling back to wireguard-go), kernel, builtin or wireguard-go.
    public var backend: BackendKind = .auto
    /// The job's uid and gid inside.
    public var mapUID: UInt32 = 0
    /// The job's gid inside.
    public var mapGID: UInt32 = 0
    /// The carrier lets the namespace reach the host's loopback at 10.0.2.2.
    public var hostLoopback = false
    /// Host ports pasta forwards into the namespace (TCP, UDP).
    public var forwardTCP: [PortForward] = []
    public var forwardUDP: [PortForward] = []
    /// The host interface pasta takes as its template (`-i`), set only when
    /// the host has no IPv4 default route (a node on a cluster fabric only),
    /// where pasta finds none by itself; only the supervisor uses it.
    public var pastaInterface: String?
    /// Path of wireguard-go, when the userspace backend may be needed.
    public var wireguardGo: String?
    /// The tunnel's name (`--name`); only the supervisor uses it.
    public var name: String?
    /// A mesh VPN member's peers and folder; only the supervisor (and the
    /// data plane it forks) uses it.
    public var mesh: VPN.Mesh?
    /// The job: program and arguments; empty for a named tunnel without a job.
    public var command: [String] = []
    /// Verbose timing lines.
    public var verbose = false
    /// Terminal job control: stdin is wgns's controlling terminal and wgns
    /// is in its foreground process group, so the job is made the
    /// terminal's foreground group. Otherwise (no terminal, a terminal that
    /// is not the controlling one, or wgns in the background) the
    /// descriptors are only passed through. Set by `Supervisor.run`.
    public var jobControl = false
    /// A hub: IPv4 and IPv6 forwarding on inside, no job.
    public var forwarding = false
    /// Isolation: the job gets a network namespace of its own holding only
    /// `lo` and the WireGuard interfaces (moved there from the carrier's).
    public var isolate = false
    /// The job runs in the tunnel's own user namespace as its root (NetAdmin):
    /// it can change and leave its tunnel.
    public var netAdmin = false
    /// Some interface's AllowedIPs cover all of IPv4 or of IPv6.
    var fullTunnel: Bool {
        interfaces.contains { Containment.isFullTunnel($0.config.peers.flatMap(\.allowedIPs)) }
    }
    /// Printed on stdout (one line) once the tunnel is up; the hub's "up" line.
    public var readyMessage: String?
    /// When `wgns up` started (CLOCK_MONOTONIC ns), for timing lines.
    public var startTime: UInt64 = 0
    /// The job's /etc/hosts entries beyond the host's (the per-job VPN's
    /// members), mounted read-only in the namespace; nil leaves /etc/hosts alone.
    public var hosts: String?
    /// `NAME=VALUE` entries added to the job's environment (WGNS_ADDRESS, ...).
    public var environment: [String] = []
    /// A hub's port, endpoint file and liveness lock; only the supervisor uses it.
    public var hub: HubState?
    /// A VPN member's watch on its hub's endpoint file; only the supervisor uses it.
    public var follower: HubFollower?
    /// Absolute paths hidden from the job (`JobSandbox.mask`): the config
    /// files and key files the tunnel was built from, and a VPN folder.
    public var masked: [String] = []
    /// The job reaches no unix socket of the host's /tmp, /var/tmp and
    /// /dev/shm either (isolated, or a full tunnel): `JobSandbox.maskHostSockets`.
    public var maskHostSockets = false

    /// The job's environment: this process's, with `environment` set over
    /// it; nil (inherit) when there is nothing to add.
    func jobEnvironment() -> [String]? {
        guard !environment.isEmpty else { return nil }
        let keys = Set(environment.map { $0.prefix { $0 != "=" } })
        var env: [String] = []
        var e = environ
        while let p = e.pointee {
            let s = String(cString: p)
            if !keys.contains(s.prefix { $0 != "=" }) { env.append(s) }
            e += 1
        }
        return env + environment
    }

    /// Creates an empty plan.
    public init() {}

    // Wire format: records of `KEY LENGTH\n` followed by LENGTH bytes; the
    // whole plan is prefixed by its own length as `LENGTH\n`.

    /// The plan as bytes (holds secrets: wipe after sending). The configs
    /// are rendered first, so that the one buffer they are copied into is
    /// allocated once at its final size (a growing array would leave
    /// unwiped copies behind), and each rendering is wiped.
    func encoded() throws(TunnelError) -> [UInt8] {
        var configs: [[UInt8]] = []
        defer { for k in configs.indices { KeyStore.wipe(&configs[k]) } }
        // Hooks travel as records of their own, with the line of the user's
        // file they came from (the rendered text has other lines).
        var hooks: [[Hook]] = []
        for i in interfaces {
            var config = i.config
            hooks.append(Hook.all(in: config.interface))
            if !hooks[hooks.count - 1].isEmpty {
                for p in Hook.Phase.allCases { config.interface[keyPath: p.keyPath] = [] }
            }
            do { configs.append(try config.renderedBytes(.full)) } catch {
                throw TunnelError(.config, "\(i.name)", wrapping: error)
            }
        }
        let extra = zip(interfaces, hooks).reduce(0) { n, e in n + e.0.source.utf8.count + 16 + e.1.reduce(0) { $0 + $1.command.text.utf8.count + 32 } }
        var body: [UInt8] = []
        body.reserveCapacity(configs.reduce(0) { $0 + $1.count } + 4096 + extra + command.reduce(0) { $0 + $1.utf8.count + 16 }
                             + masked.reduce(0) { $0 + $1.utf8.count + 16 })
        func put(_ key: String, _ value: String) {
            let v = Array(value.utf8)
            body += Array("\(key) \(v.count)\n".utf8)
            body += v
        }
        put("carrier", carrier.rawValue)
        put("backend", backend.rawValue)
        put("uid", "\(mapUID)")
        put("gid", "\(mapGID)")
        put("loopback", hostLoopback ? "1" : "0")
        if let w = wireguardGo { put("wggo", w) }
        put("verbose", verbose ? "1" : "0")
        if jobControl { put("tty", "1") }
        if forwarding { put("forward", "1") }
        if isolate { put("isolate", "1") }
        if netAdmin { put("netadmin", "1") }
        put("t0", "\(startTime)")
        // Everything without a secret first: if the buffer must grow, it
        // grows before any key is in it.
        if let h = hosts { put("hosts", h) }
        for e in environment { put("env", e) }
        for m in masked { put("mask", m) }
        if maskHostSockets { put("masksockets", "1") }
        for a in command { put("arg", a) }
        body.reserveCapacity(body.count + configs.reduce(0) { $0 + $1.count + 32 } + extra + 64)
        for (k, text) in configs.enumerated() {
            let i = interfaces[k]
            put("if", i.name)
            put("mtu", "\(i.mtu)")
            body += Array("conf \(text.count)\n".utf8)
            body += text
            if !i.source.isEmpty { put("src", i.source) }
            for h in hooks[k] { put("hook", "\(h.phase.rawValue) \(h.command.line) \(h.command.text)") }
        }
        let header = Array("\(body.count)\n".utf8)
        var out = [UInt8]()
        out.reserveCapacity(header.count + body.count)
        out += header
        out += body
        KeyStore.wipe(&body)
        return out
    }

    /// Reads a plan written by `encoded()` from `fd`.
    static func read(from fd: borrowing Descriptor) throws(TunnelError) -> UpPlan {
        var header: [UInt8] = []
        while true {
            let b: [UInt8]
            do { b = try fd.read(exactly: 1) } catch { throw TunnelError(.setup, "holder: read the plan", errno: error) }
            guard let c = b.first else { throw TunnelError(.setup, "holder: no plan from supervisor") }
            if c == 10 { break }
            header.append(c)
        }
        guard let length = Int(String(decoding: header, as: UTF8.self)) else {
            throw TunnelError(.setup, "holder: malformed plan")
        }
        // Read in place into one buffer of the final size (it holds keys).
        var body = [UInt8](repeating: 0, count: length)
        defer { KeyStore.wipe(&body) }
        var got = 0
        while got < length {
            let n = try sys("read the plan") { body.withUnsafeMutableBytes { Glibc.read(fd.raw, $0.baseAddress! + got, length - got) } }
            if n == 0 { throw TunnelError(.setup, "holder: truncated plan") }
            got += n
        }
        var plan = UpPlan()
        var pos = 0
        var pendingName = "", pendingMTU: UInt32 = 0
        while pos < body.count {
            guard let sp = body[pos...].firstIndex(of: 32), let nl = body[sp...].firstIndex(of: 10),
                  let n = Int(String(decoding: body[(sp + 1)..<nl], as: UTF8.self)), nl + 1 + n <= body.count
            else { throw TunnelError(.setup, "holder: malformed plan") }
            let key = String(decoding: body[pos..<sp], as: UTF8.self)
            let range = (nl + 1)..<(nl + 1 + n)
            pos = nl + 1 + n
            if key == "conf" {
                // The config holds keys: parsed from the wiped buffer, never
                // copied into a String.
                let config: TunnelConfig
                do {
                    config = try body.withUnsafeBufferPointer { b throws(ConfigError) in
                        try TunnelConfig(parsingUTF8: UnsafeBufferPointer(rebasing: b[range]), file: pendingName)
                    }
                } catch { throw TunnelError(.config, wrapping: error) }
                plan.interfaces.append(Interface(name: pendingName, config: config, mtu: pendingMTU))
                continue
            }
            let value = String(decoding: body[range], as: UTF8.self)
            switch key {
            case "carrier": plan.carrier = CarrierKind(rawValue: value) ?? .slirp4netns
            case "backend": plan.backend = BackendKind(rawValue: value) ?? .auto
            case "uid": plan.mapUID = UInt32(value) ?? 0
            case "gid": plan.mapGID = UInt32(value) ?? 0
            case "loopback": plan.hostLoopback = value == "1"
            case "wggo": plan.wireguardGo = value
            case "verbose": plan.verbose = value == "1"
            case "tty": plan.jobControl = value == "1"
            case "forward": plan.forwarding = value == "1"
            case "isolate": plan.isolate = value == "1"
            case "netadmin": plan.netAdmin = value == "1"
            case "t0": plan.startTime = UInt64(value) ?? 0
            case "if": pendingName = value
            case "mtu": pendingMTU = UInt32(value) ?? 1420
            case "hosts": plan.hosts = value
            case "env": plan.environment.append(value)
            case "mask": plan.masked.append(value)
            case "masksockets": plan.maskHostSockets = value == "1"
            case "src" where !plan.interfaces.isEmpty: plan.interfaces[plan.interfaces.count - 1].source = value
            case "hook" where !plan.interfaces.isEmpty:
                let parts = value.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count == 3, let phase = Hook.Phase(rawValue: String(parts[0])), let line = Int(parts[1]) else {
                    throw TunnelError(.setup, "holder: malformed plan")
                }
                plan.interfaces[plan.interfaces.count - 1].config.interface[keyPath: phase.keyPath].append(SourcedText(String(parts[2]), line: line))
            case "arg": plan.command.append(value)
            default: break
            }
        }
        return plan
    }
}
