import CWGShim
import POSIX
import SystemPackage
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

extension Hub {
    /// What `wgns hub` was asked beyond what `wgns up` takes.
    public struct ServeOptions: Sendable {
        /// The VPN directory: `DIR/hub.endpoint` is published there.
        public var directory: String?
        /// `--advertise HOST`: the name peers reach this node by.
        public var advertise: String?
        /// `--ports LO-HI`: pick the host port from this range only.
        public var portRange: ClosedRange<UInt16>?
        /// `-- COMMAND ARGS...`: run on the host once the hub is up; the hub
        /// lives as long as it and `serve` returns its status.
        public var command: [String] = []
        /// How to start the holder (as `Supervisor.run` takes it).
        public var holderCommand: [String] = []
        /// Empty options.
        public init() {}
    }

    /// Runs a hub: validates, picks and publishes its endpoint, retries
    /// with another host port when pasta could not bind the picked one, and
    /// returns the status (the hub's, or COMMAND's).
    public static func serve(_ options: UpOptions, _ serve: ServeOptions) throws(TunnelError) -> Int32 {
        // Before the config is read: a foreign VPN folder gets one line.
        if let dir = serve.directory, let file = options.configFiles.first { try Ownership.checkVPN(dir, file: file) }
        var plan = try UpPlan.prepare(options)
        guard let h = plan.hub else { throw TunnelError(.config, "not a hub") }
        let file = options.configFiles.first ?? ""
        if let r = serve.portRange {
            guard h.picksPort else { throw TunnelError(.usage, "\(file): --ports needs a hub without ListenPort (it listens on \(h.port))") }
            h.portRange = r
        }
        // A hub that picks its port must say where: next to its config.
        let dir = serve.directory ?? (h.picksPort ? (file.contains("/") ? String(file[..<file.lastIndex(of: "/")!]) : ".") : nil)
        if let dir {
            if case .live(let other) = HubEndpoint.read(dir) {
                throw TunnelError(.config, "\(dir) already has a running hub (pid \(other.pid) on \(other.node), \(other.endpoint)); stop it first")
            }
            do {
                h.advertise = try advertisedHost(serve.advertise, dir: dir)
                h.directory = dir
            } catch where !h.picksPort && serve.advertise == nil {
                // A hub with its own ListenPort whose peers already know
                // its endpoint (vpn new --endpoint HOST:PORT) needs no
                // published one: a node name that does not resolve (a VM
                // named "(none)") is no reason to fail.
            }
            // A hub only this node can reach (its name is a loopback
            // address here) carries its peers' loopback-sized packets.
            if plan.interfaces[0].config.interface.mtu == nil,
               let a = try? Resolver.resolve(Endpoint(host: h.advertise, port: 1), prefer: .ipv4, policy: .init(retries: 0), notice: { _ in }),
               VPN.isLoopback(a.address.description) {
                plan.interfaces[0].mtu = Resolver.carrierMTU - Resolver.overhead
            }
        }
        if serve.command.isEmpty { return try runAttempts(plan, holderCommand: serve.holderCommand) }
        return try runAlongside(plan, command: serve.command, holderCommand: serve.holderCommand)
    }

    /// `--advertise`, else `DIR/hub.advertise` (from `wgns vpn new --endpoint
    /// HOST`), else this node's canonical name; it must resolve here.
    static func advertisedHost(_ flag: String?, dir: String) throws(TunnelError) -> String {
        let chosen = (try? readSmallFile(VPN.advertisePath(dir)))?.split(separator: "\n").first.map(String.init)
        let host = flag ?? chosen ?? canonicalNodeName()
        let what = flag != nil ? "--advertise '\(host)'" : chosen != nil ? "\(VPN.advertisePath(dir)): '\(host)'" : "this node's name '\(host)'"
        if host.isEmpty || host.contains(where: { $0 == " " || $0 == "/" || $0 == "\n" }) || Endpoint("\(host.contains(":") ? "[\(host)]" : host):1") == nil {
            throw TunnelError(.config, "\(what) is not a host name or address")
        }
        var quick = Resolver.RetryPolicy(retries: 2)
        quick.firstPause = 200_000
        do { _ = try Resolver.resolve(Endpoint(host: host, port: 1), prefer: .ipv4, policy: quick) } catch {
            let hint = flag != nil ? "give a name other nodes resolve" : "give --advertise HOST"
            throw TunnelError(.resolve, "\(what) does not resolve (\(error.message.split(separator: ":").last.map { $0.drop { $0 == " " } } ?? "")); \(hint)")
        }
        return host
    }

    /// This node's name as other nodes resolve it: the canonical name of
    /// gethostname() (the FQDN when the resolver knows one), else the name itself.
    static func canonicalNodeName() -> String {
        let name = HubEndpoint.nodeName()
        var hints = addrinfo()
        hints.ai_flags = AI_CANONNAME
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &res) == 0, let r = res else { return name }
        defer { freeaddrinfo(res) }
        if let c = r.pointee.ai_canonname, c.pointee != 0 { return String(cString: c) }
        return name
    }

    /// Runs the hub session, each attempt on a newly picked port while
    /// pasta could not bind the last one; the endpoint file goes with it.
    static func runAttempts(_ plan: UpPlan, holderCommand: [String]) throws(TunnelError) -> Int32 {
        let h = plan.hub
        defer { h?.release(); h?.unpublish() }
        var last: TunnelError?
        var plan = plan
        for _ in 0..<(h?.picksPort == true ? portAttempts : 1) {
            do {
                try pickPort(&plan)
                return try Supervisor.run(plan, holderCommand: holderCommand)
            } catch where (error.code == .carrier || (error.code == .setup && h?.onHost == true)) && error.errno == .addressInUse && h?.picksPort == true {
                // pasta (a carrier error) or the builtin data plane (a setup
                // error) found the picked port taken since: another one.
                if plan.verbose { writeStderr("wgns: \(error); picking another\n") }
                last = error
            }
        }
        throw TunnelError(.carrier, "\(last?.message ?? "pasta did not bind the picked port") (\(portAttempts) ports tried)", errno: .addressInUse)
    }

    /// `wgns hub DIR -- COMMAND`: the hub's supervisor runs in a child
    /// process of its own group (a ^C meant for COMMAND must not stop the
    /// VPN under it); COMMAND starts on the host once the hub has published
    /// its endpoint, gets this process's signals, and when it ends the hub
    /// stops. If the hub ends first, COMMAND gets SIGTERM and the status
    /// is non-zero.
    static func runAlongside(_ plan: UpPlan, command: [String], holderCommand: [String]) throws(TunnelError) -> Int32 {
        guard let h = plan.hub else { throw TunnelError(.config, "not a hub") }
        var sigs = sigset_t()
        sigemptyset(&sigs)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD] { sigaddset(&sigs, s) }
        sigprocmask(SIG_BLOCK, &sigs, nil)
        let sfd = try sys("signalfd") { CWGShim_signalfd(&sigs) }
        defer { close(sfd) }
        let ready = try Pipe()
        let hub = CWGShim_fork_with_pdeathsig(SIGKILL)
        if hub < 0 { throw TunnelError(.setup, "cannot fork the hub", errno: currentErrno) }
        if hub == 0 {
            setpgid(0, 0)
            close(sfd)
            close(ready.read.raw)
            h.readyFD = ready.write.raw
            do { _exit(try runAttempts(plan, holderCommand: holderCommand)) } catch {
                writeStderr("wgns: \(error)\n")
                _exit(1)
            }
        }
        ready.write.close()
        let hubProcess = ChildProcess(pid: hub)
        var hubEnded: Termination?
        var job: ChildProcess?
        var jobEnded: Termination?
        var reader = LineReader()
        var readyOpen = true
        var stopSignal: Int32?
        while jobEnded == nil && !(job == nil && hubEnded != nil) {
            var fds = [pollfd(fd: sfd, events: Int16(POLLIN), revents: 0)]
            if readyOpen { fds.append(pollfd(fd: ready.read.raw, events: Int16(POLLIN), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 { continue }
            if readyOpen && fds[1].revents != 0 {
                let more = (try? reader.fill(from: ready.read.raw)) ?? false
                if let line = reader.nextLine(), job == nil, stopSignal == nil {
                    var opts = SpawnOptions()
                    opts.deathSignal = SIGKILL
                    var env = plan.jobEnvironment() ?? currentEnvironment()
                    env += ["WGNS_ENDPOINT=\(line)", "WGNS_PEERS=\(h.peerCount)"]
                    if let a = plan.interfaces.first?.config.interface.addresses.first { env.append("WGNS_HUB=\(a.address)") }
                    opts.environment = env
                    do { job = try ChildProcess.spawn(command, opts) } catch {
                        let why = error.isExec && error.errno == .noSuchFileOrDirectory ? "command not found" : "\(error.errno)"
                        writeStderr("wgns: \(command[0]): \(why)\n")
                        hubProcess.kill(SIGTERM)
                        _ = hubProcess.wait()
                        return error.isExec && error.errno == .noSuchFileOrDirectory ? 127 : 126
                    }
                }
                if !more { readyOpen = false }
            }
            guard fds[0].revents != 0 else { continue }
            var info = signalfd_siginfo()
            while read(sfd, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {
                let signo = Int32(info.ssi_signo)
                if signo == SIGCHLD {
                    if hubEnded == nil, let t = hubProcess.poll() {
                        hubEnded = t
                        if let job, jobEnded == nil {
                            writeStderr("wgns: the hub ended (\(t)) while \(command[0]) ran; ending it\n")
                            job.kill(SIGTERM)
                        }
                    }
                    if let j = job, jobEnded == nil, let t = j.poll() { jobEnded = t }
                } else if let job {
                    job.kill(signo)
                } else {
                    // Not up yet: stop the hub; nothing else runs.
                    stopSignal = signo
                    hubProcess.kill(SIGTERM)
                }
            }
        }
        if hubEnded == nil {
            hubProcess.kill(SIGTERM)
            hubEnded = hubProcess.wait()
        }
        if let s = stopSignal { return 128 + s }
        guard let jobEnded else {
            // The hub never came up; it said why.
            let s = hubEnded!.shellStatus
            return s == 0 ? 1 : s
        }
        let s = jobEnded.shellStatus
        if case .exited(let c) = hubEnded!, c == 0 || c == 128 + SIGTERM { return s }
        return s == 0 ? 1 : s
    }
}

/// This process's environment as `NAME=VALUE` strings.
func currentEnvironment() -> [String] {
    var env: [String] = []
    var e = environ
    while let p = e.pointee {
        env.append(String(cString: p))
        e += 1
    }
    return env
}
