import CWGShim
import KeyStore
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// What `wgns up` was asked to do; nil fields fall back to the configs'
/// `[Namespace]` sections, then to defaults.
public struct UpOptions: Sendable {
    /// Config files, one WireGuard interface each (wg0, wg1, ...).
    public var configFiles: [String] = []
    /// `--carrier`.
    public var carrier: CarrierKind?
    /// `--backend`.
    public var backend: BackendKind?
    /// `--map-uid`, `--map-gid`.
    public var mapUID: UInt32?
    public var mapGID: UInt32?
    /// `--host-loopback`.
    public var hostLoopback: Bool?
    /// `-v`.
    public var verbose = false
    /// The job; empty runs the user's shell.
    public var command: [String] = []
    /// `--name`: a long-lived tunnel others can `exec` into, `down` and `list`.
    public var name: String?
    /// `wgns hub`: forwarding on inside, no job, up until signalled.
    public var hub = false
    /// `--isolate` / `--no-isolate`: the job sees only `lo` and the
    /// WireGuard interfaces (default: only for a full tunnel).
    public var isolate: Bool?
    /// `--net-admin`: the job runs as root of the tunnel's own user namespace
    /// and can change and leave its tunnel.
    public var netAdmin: Bool?
    /// Lines added to the job's /etc/hosts (a VPN's members), environment
    /// entries for the job, and an endpoint for the peers that have none
    /// (the hub's published one): `wgns up DIR`.
    public var hosts: String?
    public var environment: [String] = []
    public var peerEndpoint: Endpoint?
    /// How to start the holder: a program and arguments that end up calling
    /// `Holder.run()` (e.g. the wgns binary with a hidden subcommand).
    public var holderCommand: [String] = []

    /// Empty options.
    public init() {}
}

/// The supervisor side of `wgns up`: validates, starts the holder and the
/// carrier, passes signals, and cleans up. See ARCHITECTURE.md, "Process model".
///
/// If the carrier dies while the job runs, the job gets SIGTERM and wgns
/// exits non-zero (the job's status, or 1 if the job exited 0): a tunnel
/// without a carrier carries nothing, and restarting it would change the
/// namespace under a running job.
public enum Session {
    /// True when this process has one thread (/proc/self/task has one entry).
    static func isSingleThreaded() -> Bool {
        guard let d = opendir("/proc/self/task") else { return false }
        defer { closedir(d) }
        var n = 0
        while let e = readdir(d) {
            if e.pointee.d_name.0 != 46 { n += 1 }  // skip "." and ".."
        }
        return n == 1
    }

    /// Validates everything and builds the plan; creates nothing.
    public static func prepare(_ options: UpOptions) throws(TunnelError) -> UpPlan {
        // The keys are read below: no process of this user may ptrace us or
        // read our memory (the carriers never need our /proc entries).
        _ = CWGShim_set_undumpable()
        var log = StepLog(enabled: options.verbose, start: monotonicNanos())
        var plan = UpPlan()
        plan.startTime = log.start
        plan.verbose = options.verbose
        if options.configFiles.isEmpty { throw TunnelError(.config, "give at least one config file") }
        var configs: [TunnelConfig] = []
        for file in options.configFiles {
            var c: TunnelConfig
            do { c = try TunnelConfig(contentsOf: file); try c.validateForUp(file: file) } catch { throw TunnelError(.config, "\(error)") }
            if let w = c.exposureWarning(file: file) { writeStderr("wgns: \(w)\n") }
            guard let key = c.interface.privateKey else {
                throw TunnelError(.config, "\(file): [Interface] has no PrivateKey or PrivateKeyFile")
            }
            // Key files are read here, once, and travel inline in the plan.
            do {
                c.interface.privateKey = .inline(try key.load())
                for k in c.peers.indices {
                    if let psk = c.peers[k].presharedKey { c.peers[k].presharedKey = .inline(try psk.load()) }
                }
            } catch { throw TunnelError(.config, "\(file): \(error)") }
            if let e = options.peerEndpoint { for k in c.peers.indices where c.peers[k].endpoint == nil { c.peers[k].endpoint = e } }
            configs.append(c)
        }
        func setting<T>(_ flag: T?, _ get: (NamespaceSettings) -> T?) -> T? {
            if let flag { return flag }
            for c in configs { if let v = get(c.namespace) { return v } }
            return nil
        }
        let forwardTCP = configs.flatMap(\.namespace.forwardTCP)
        let forwardUDP = configs.flatMap(\.namespace.forwardUDP)
        plan.forwardTCP = forwardTCP
        plan.forwardUDP = forwardUDP
        plan.hostLoopback = setting(options.hostLoopback, \.hostLoopback) ?? false
        plan.netAdmin = setting(options.netAdmin, \.netAdmin) ?? false
        // The tunnel's user namespace maps one id, its root: a job with
        // network administration runs there, so as uid 0.
        let defaultUID = plan.netAdmin ? 0 : getuid(), defaultGID = plan.netAdmin ? 0 : getgid()
        plan.mapUID = setting(options.mapUID, \.mapUID) ?? defaultUID
        plan.mapGID = setting(options.mapGID, \.mapGID) ?? defaultGID
        if plan.netAdmin && (plan.mapUID != 0 || plan.mapGID != 0) {
            throw TunnelError(.config, "NetAdmin (--net-admin) runs the job as root of the tunnel's user namespace: MapUID and MapGID must be 0 or unset (got \(plan.mapUID):\(plan.mapGID))")
        }

        // Carrier.
        if let c = setting(options.carrier, \.carrier) {
            guard findExecutable(c.rawValue) != nil else {
                throw TunnelError(.noCarrier, "carrier \(c.rawValue) is not installed (apt-get install \(c == .pasta ? "passt" : "slirp4netns"))")
            }
            plan.carrier = c
        } else if !forwardTCP.isEmpty || !forwardUDP.isEmpty, findExecutable("pasta") != nil {
            plan.carrier = .pasta
        } else if findExecutable("slirp4netns") != nil {
            plan.carrier = .slirp4netns
        } else if findExecutable("pasta") != nil {
            plan.carrier = .pasta
        } else {
            throw TunnelError(.noCarrier, "no carrier: neither slirp4netns nor pasta is installed (apt-get install slirp4netns)")
        }

        // Backend.
        plan.backend = setting(options.backend, \.backend) ?? .auto
        plan.wireguardGo = findExecutable("wireguard-go")
        if let r = Doctor.tunRefusal() { throw TunnelError(.setup, "\(r)") }
        // Loaded, or a module that creating the link loads.
        let kernelLoaded = Doctor.kernelWireGuard().available
        switch plan.backend {
        case .userspace where plan.wireguardGo == nil:
            throw TunnelError(.noWireGuard, "wireguard-go is not installed (apt-get install wireguard-go)")
        case .auto where plan.wireguardGo == nil && !kernelLoaded:
            throw TunnelError(.noWireGuard, "no WireGuard: the kernel has no wireguard module and wireguard-go is not installed (apt-get install wireguard-go)")
        default: break
        }
        if plan.carrier == .slirp4netns && (!forwardTCP.isEmpty || !forwardUDP.isEmpty) {
            throw TunnelError(.config, "ForwardTCP/ForwardUDP need the pasta carrier (--carrier pasta)")
        }
        log.step("configs valid, carrier \(plan.carrier.rawValue), backend \(plan.backend.rawValue)")

        // Endpoints and MTUs, on the host.
        let routes = try? RouteNetlink()
        defer { routes?.close() }
        for (n, var c) in configs.enumerated() {
            var resolved: [SocketAddress] = []
            for k in c.peers.indices {
                guard let e = c.peers[k].endpoint else { continue }
                let a = try Resolver.resolve(e, prefer: .ipv4, context: options.configFiles[n])
                resolved.append(a)
                c.peers[k].endpoint = Endpoint(host: a.address.description, port: a.port)
            }
            // 10.0.2.2 is the carrier's way to the host's loopback.
            let lookup = resolved.map { $0.address == IPAddress("10.0.2.2") && plan.hostLoopback ? SocketAddress(address: IPAddress("127.0.0.1")!, port: $0.port) : $0 }
            let mtu = c.interface.mtu ?? (options.hub && lookup.isEmpty ? Self.hubMTU(routes: routes) : Resolver.mtu(toward: lookup, routes: routes))
            plan.interfaces.append(.init(name: "wg\(n)", config: c, mtu: mtu, source: options.configFiles[n]))
        }
        log.step("endpoints resolved, MTU \(plan.interfaces.map { "\($0.name) \($0.mtu)" }.joined(separator: ", "))")
        plan.pastaInterface = Self.pastaInterface(toward: plan.interfaces.flatMap { $0.config.peers.compactMap { $0.endpoint?.address } },
                                                  routes: routes)

        if let name = options.name {
            try NamedTunnel.validate(name)
            plan.name = name
        }
        // A full tunnel is a kill switch unless asked otherwise.
        plan.isolate = setting(options.isolate, \.isolate) ?? plan.fullTunnel
        log.step(containment(plan))
        (plan.hosts, plan.environment) = (options.hosts, options.environment)
        if options.hub {
            try Hub.check(configs, files: options.configFiles, plan: &plan)
        } else if options.command.isEmpty && options.name != nil {
            plan.command = []  // no job: the tunnel stays up until `wgns down` or a signal
        } else if options.command.isEmpty {
            plan.command = [getenv("SHELL").map { String(cString: $0) } ?? "/bin/sh"]
        } else {
            plan.command = options.command
        }
        return plan
    }

    /// The containment in effect, in one line (`wgns up -v`).
    static func containment(_ plan: UpPlan) -> String {
        var parts: [String] = []
        if plan.isolate {
            parts.append("isolated (the job sees only lo and the tunnel\(plan.fullTunnel ? ", full tunnel" : ""))")
        } else {
            parts.append("not isolated (split tunnel: the job also reaches the network through the carrier)")
        }
        parts.append("host loopback \(plan.hostLoopback ? "on (10.0.2.2 is the host's 127.0.0.1)" : "off")")
        parts.append("job uid \(plan.mapUID) gid \(plan.mapGID)")
        parts.append(plan.netAdmin ? "network admin: YES (the job can change and leave its tunnel)"
                                   : "network admin: none (own user namespace)")
        return "containment: " + parts.joined(separator: ", ")
    }

    /// Runs a prepared plan to the end; returns the exit status for wgns
    /// (the job's, as a shell reports it). Everything started is gone when
    /// it returns.
    public static func run(_ plan: UpPlan, holderCommand: [String]) throws(TunnelError) -> Int32 {
        var log = StepLog(enabled: plan.verbose, start: plan.startTime)
        var sigs = sigset_t()
        sigemptyset(&sigs)
        // SIGUSR1 too: the holder inherits it blocked and takes it with
        // sigwaitinfo (its "become undumpable").
        for s in [SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGTTOU, SIGTTIN, SIGQUIT, SIGUSR1] { sigaddset(&sigs, s) }
        sigprocmask(SIG_BLOCK, &sigs, nil)
        signal(SIGPIPE, SIG_IGN)
        let sfd = try sys("signalfd") { CWGShim_signalfd(&sigs) }
        defer { close(sfd) }
        // Job control only on our own controlling terminal, in the
        // foreground: tcgetpgrp fails (ENOTTY) on any other terminal, such
        // as a serial console that is not the session's.
        let tty = isatty(0) == 1 && tcgetpgrp(0) == getpgrp()
        var plan = plan
        plan.jobControl = tty
        defer { if tty { _ = tcsetpgrp(0, getpgrp()) } }

        let listenFD = try plan.name.map { (n: String) throws(TunnelError) in try NamedTunnel.listen(n) } ?? -1
        defer { if listenFD >= 0 { close(listenFD) } }
        let ctl = try Pipe()
        let st = try Pipe.messageChannel()
        var opts = SpawnOptions()
        opts.fds = [0, 1, 2, ctl.read.raw, st.write.raw]
        opts.deathSignal = SIGKILL
        opts.newProcessGroup = true
        let holder: ChildProcess
        if holderCommand.isEmpty || isSingleThreaded() {
            // A plain fork of this single-threaded process is a fresh
            // single-threaded process too (unshare(CLONE_NEWUSER) works there),
            // and saves loading the binary again (about 8 ms).
            let pid = CWGShim_fork_with_pdeathsig(SIGKILL)
            if pid < 0 { throw TunnelError(.setup, "cannot fork the holder", errno: errno) }
            if pid == 0 {
                setpgid(0, 0)
                close(ctl.write.raw)
                close(st.read.raw)
                close(sfd)
                if listenFD >= 0 { close(listenFD) }
                Holder.run(control: ctl.read.raw, status: st.write.raw)
            }
            holder = ChildProcess(pid: pid)
        } else {
            do { holder = try ChildProcess.spawn(holderCommand, opts) } catch {
                throw TunnelError(.setup, "cannot start the holder \(holderCommand.first ?? "")", errno: error.errno)
            }
        }
        ctl.read.close()
        st.write.close()
        var ctlFD = ctl.write.release()
        func send(_ bytes: [UInt8]) {
            guard ctlFD >= 0 else { return }
            _ = bytes.withUnsafeBytes { write(ctlFD, $0.baseAddress, $0.count) }
        }
        var holderEnded: Termination?
        var carrier: Carrier?
        var carrierEnded: Termination?
        // Closing the control pipe makes the namespace's pid 1 kill everything
        // in there and exit, then the holder exits: nothing is orphaned.
        func cleanup() {
            if ctlFD >= 0 { close(ctlFD); ctlFD = -1 }
            if let c = carrier.take() { carrierEnded = carrierEnded ?? c.stop() }
            if holderEnded == nil { holderEnded = holder.wait() }
        }
        do {
            var bytes = try plan.encoded()
            defer { KeyStore.wipe(&bytes) }
            try Descriptor(owning: dup(ctlFD)).writeAll(bytes)
        } catch {
            cleanup()
            // A holder that failed before reading the plan (no user
            // namespaces, say) said why on the status pipe: that, not EPIPE.
            var r = LineReader()
            _ = try? r.fill(from: st.read.raw)
            while let line = r.nextLine() {
                if line.hasPrefix("E ") { throw TunnelError(.setup, String(line.dropFirst(2))) }
            }
            throw error
        }
        log.step("holder started (pid \(holder.pid))")

        /// What a failed carrier said, for the end of the error line (with
        /// -v it is already on stderr).
        func said(_ c: Carrier) -> String {
            let words = c.lastWords()
            return words.isEmpty ? "" : ": \(words)"
        }
        var reader = LineReader()
        var server = NamedTunnel.Server()
        server.namespaces.uid = plan.mapUID
        server.namespaces.gid = plan.mapGID
        defer { server.close() }
        var jobRunning = false
        // A signal that arrives after the holder was told to start the job
        // but before it says the job runs (the job may already be running:
        // it starts before the holder's "R" line is read) is passed on then.
        var pendingSignal: Int32?
        var carrierReady = false
        var carrierFailed = false
        var pendingError: TunnelError?
        var exitStatus: Int32?
        var scratch = [UInt8](repeating: 0, count: 256)

        loop: while exitStatus == nil && pendingError == nil {
            var fds = [pollfd(fd: st.read.raw, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: sfd, events: Int16(POLLIN), revents: 0)]
            var readyIndex = -1
            if let c = carrier, !carrierReady {
                readyIndex = fds.count
                fds.append(pollfd(fd: c.ready.raw, events: Int16(POLLIN), revents: 0))
            }
            // The carrier's captured chatter, drained so that it never blocks on it.
            if let c = carrier, c.output >= 0 { fds.append(pollfd(fd: c.output, events: Int16(POLLIN), revents: 0)) }
            // Served from the start (admin/exec answer "not ready" until the
            // holder has passed the namespaces), so that a client never waits
            // on a full backlog.
            if listenFD >= 0 { fds.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 { continue }
            if let c = carrier, c.output >= 0, fds.contains(where: { $0.fd == c.output && $0.revents != 0 }) { c.drain() }
            if let k = fds.firstIndex(where: { $0.fd == listenFD && $0.revents != 0 }), k >= 2 {
                if server.serve(listenFD) == .down {
                    send([UInt8(ascii: "S"), UInt8(SIGTERM)])
                }
            }

            if readyIndex >= 0 && fds[readyIndex].revents != 0 {
                let n = read(fds[readyIndex].fd, &scratch, scratch.count)
                if n > 0 {
                    if let e = Hub.confirm(plan) { pendingError = e; continue loop }
                    carrierReady = true
                    carrier?.started()
                    // The carrier has opened the holder's namespaces: from
                    // now on nobody needs its /proc entries.
                    holder.kill(SIGUSR1)
                    log.step("carrier \(plan.carrier.rawValue) ready")
                    send([UInt8(ascii: "G")])
                } else {
                    let c = carrier.take()!
                    let how = c.stop()
                    carrierEnded = how
                    pendingError = TunnelError(.carrier, "carrier \(plan.carrier.rawValue) failed to start (\(how))" + said(c))
                    continue loop
                }
            }
            if fds[1].revents != 0 {
                var info = signalfd_siginfo()
                while read(sfd, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {
                    let signo = Int32(info.ssi_signo)
                    switch signo {
                    case SIGCHLD:
                        if holderEnded == nil, let t = holder.poll() { holderEnded = t }
                        if carrierEnded == nil, let c = carrier, let t = c.process.poll() {
                            carrierEnded = t
                            _ = carrier.take()
                            if jobRunning {
                                writeStderr("wgns: carrier \(plan.carrier.rawValue) exited (\(t)) during the job; ending the job\(said(c))\n")
                                carrierFailed = true
                                send([UInt8(ascii: "S"), UInt8(SIGTERM)])
                            } else if !carrierReady {
                                pendingError = TunnelError(.carrier, "carrier \(plan.carrier.rawValue) failed to start (\(t))" + said(c))
                            }
                        }
                    case SIGINT, SIGTERM, SIGHUP, SIGQUIT:
                        if jobRunning {
                            send([UInt8(ascii: "S"), UInt8(signo)])
                        } else if carrierReady && pendingError == nil {
                            pendingSignal = signo
                        } else {
                            cleanup()
                            return 128 + signo
                        }
                    default: break
                    }
                }
            }
            if fds[0].revents != 0 {
                var passed: [Int32]?
                do { passed = try reader.receive(from: st.read.raw) } catch { passed = nil }
                let more = passed != nil
                while let line = reader.nextLine() {
                    let kind = line.first
                    let rest = String(line.dropFirst(min(2, line.count)))
                    switch kind {
                    case "N":
                        log.step("namespaces created")
                        guard let path = findExecutable(plan.carrier.rawValue) else {
                            pendingError = TunnelError(.noCarrier, "carrier \(plan.carrier.rawValue) is not installed")
                            break
                        }
                        if let e = Hub.reserve(&plan) { pendingError = e; break }
                        do {
                            carrier = try Carrier.start(plan.carrier, path: path, pid: holder.pid, hostLoopback: plan.hostLoopback,
                                                        ipv6: plan.hasIPv6Endpoint, interface: plan.pastaInterface,
                                                        forwardTCP: plan.forwardTCP, forwardUDP: plan.forwardUDP, verbose: plan.verbose)
                        } catch { pendingError = error }
                    case "R":
                        jobRunning = true
                        if let signo = pendingSignal {
                            pendingSignal = nil
                            send([UInt8(ascii: "S"), UInt8(signo)])
                        }
                        if let e = Hub.published(plan) { pendingError = e }
                        if let m = plan.readyMessage { writeStdout(m + "\n") }
                        log.step("job running")
                    case "X":
                        var s = Int32(rest) ?? 1
                        if carrierFailed && s == 0 { s = 1 }
                        exitStatus = s
                    case "C":
                        let parts = rest.split(separator: " ", maxSplits: 1)
                        writeStderr("wgns: \(parts.count > 1 ? String(parts[1]) : rest)\n")
                        exitStatus = Int32(parts.first ?? "127") ?? 127
                    case "E":
                        pendingError = TunnelError(.setup, rest)
                    case "F":
                        server.take(rest, passed ?? [])
                        passed = nil
                    default: break
                    }
                }
                for fd in passed ?? [] { close(fd) }
                if !more && exitStatus == nil && pendingError == nil {
                    let t = holderEnded ?? holder.wait()
                    holderEnded = t
                    pendingError = TunnelError(.setup, "the namespace holder ended unexpectedly (\(t))")
                }
            }
        }
        log.mark()
        if ctlFD >= 0 { close(ctlFD); ctlFD = -1 }
        if let c = carrier.take() { carrierEnded = carrierEnded ?? c.stop() }
        log.step("carrier stopped")
        if holderEnded == nil { holderEnded = holder.wait() }
        log.step("namespaces ended")
        if let e = pendingError { throw e }
        return exitStatus ?? 1
    }
}

extension Session {
    /// pasta copies its template interface from the host's default route and
    /// fails without one ("External interface not usable"), as on a node
    /// whose only network is a cluster fabric. Then this names the interface
    /// of the route toward the first endpoint, or (a hub has none) the first
    /// non-loopback interface that is up; nil when there is a default route.
    static func pastaInterface(toward endpoints: [IPAddress], routes: RouteNetlink?) -> String? {
        guard let routes else { return nil }
        // A lookup only (RTM_GETROUTE), nothing is sent: 192.0.2.1 is TEST-NET-1.
        if (try? routes.routeGet(IPAddress("192.0.2.1")!)) != nil { return nil }
        for e in endpoints where !e.isV6 {
            if let r = try? routes.routeGet(e) { return r.device }
        }
        return (try? routes.links())?.first { $0.isUp && $0.name != "lo" }?.name
    }

    /// A hub has no endpoint to measure a path by: its peers come in through
    /// the host's interface, so it takes that one's MTU minus 80 (the
    /// interface of the default route, else the first non-loopback one that
    /// is up; 1420 if none). With 1420 on a 9000 fabric the hub would drop
    /// the peers' full-size packets to each other.
    static func hubMTU(routes: RouteNetlink?) -> UInt32 {
        guard let routes else { return 1420 }
        let m: UInt32
        if let r = try? routes.routeGet(IPAddress("192.0.2.1")!) {
            m = r.mtu
        } else if let l = (try? routes.links())?.first(where: { $0.isUp && $0.name != "lo" }) {
            m = l.mtu
        } else {
            return 1420
        }
        return max(min(m, Resolver.carrierMTU), 1280 + Resolver.overhead) - Resolver.overhead
    }
}
