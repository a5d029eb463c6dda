import BuiltinWireGuard
import CWGShim
import KeyStore
import POSIX
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// Pid 1 of the job's namespaces: builds the network, runs the job, reaps,
/// and ends everything when the job ends.
struct NamespaceInit {
    let control: Int32
    let status: Int32

    func run() -> Never {
        // It reads the keys: nobody may ptrace it or read its memory.
        _ = CWGShim_set_undumpable()
        var sigs = sigset_t()
        sigemptyset(&sigs)
        sigaddset(&sigs, SIGCHLD)
        sigprocmask(SIG_BLOCK, &sigs, nil)
        // Forked with default handlers: a log line to a stderr whose reader
        // is gone (`wgns up -v ... 2>&1 | head`) must not end the tunnel.
        signal(SIGPIPE, SIG_IGN)
        let plan: UpPlan
        do {
            plan = try UpPlan.read(from: Descriptor(owning: dup(control)))
        } catch {
            fail("\(error)")
        }
        var log = StepLog(enabled: plan.verbose, start: plan.startTime)
        var controlReader = ControlReader(fd: control)
        var daemons: [WireGuardGo] = []
        do {
            try Namespace.prepareMounts()
            let run = Namespace.runtimeDirectory()
            try Namespace.overlayRuntimeDirectory(run)
            var routes: RouteNetlink
            do { routes = try RouteNetlink() } catch { throw TunnelError(.setup, wrapping: error) }
            // An exec'd holder made the carrier's tap0 before anyone read
            // the plan; with no carrier it goes, so that the namespace holds
            // only lo and the tunnel (a forked holder made none).
            if plan.carrier == .noCarrier, (try? routes.link("tap0")) != nil {
                do { try routes.deleteLink("tap0") } catch { throw TunnelError(.setup, "remove the unused tap0", wrapping: error) }
            }
            func dnsAndLoopback() throws(TunnelError) {
                var servers = plan.interfaces.flatMap { $0.config.interface.dnsServers.map(\.description) }
                let search = plan.interfaces.flatMap { $0.config.interface.dnsSearch }
                // A split tunnel may use the carrier's resolver; a full tunnel
                // never: its DNS goes through the tunnel or nowhere.
                if servers.isEmpty && !plan.fullTunnel { servers = ["10.0.2.3"] }
                try Namespace.installResolvConf(servers: servers, search: search, in: "\(run)/\(Namespace.generatedFolder)")
                if let h = plan.hosts { try Namespace.installEtcFile("hosts", VPN.hostsFile(adding: h), from: "\(run)/\(Namespace.generatedFolder)") }
                log.step("mounts: /proc, private \(run), read-only resolv.conf (" + (servers.isEmpty
                    ? "no DNS server: a full tunnel never uses the carrier's; add DNS = ... to [Interface]" : servers.joined(separator: ", ")) + ")")

                do { try routes.setLink("lo", up: true) } catch { throw TunnelError(.setup, wrapping: error) }
                Namespace.openNetworkToJob()
                log.step("lo up")
            }
            // PreUp runs before the devices exist, with DNS and lo as the job will see them.
            let preUp = Hooks.any(.preUp, plan)
            var jobNetwork: Int32 = -1
            if preUp { try dnsAndLoopback(); jobNetwork = try Hooks.runPreUp(plan, log: &log) }
            // Devices: the kernel's when it has WireGuard, else wireguard-go,
            // started first so that its start-up (3-5 ms) overlaps the rest.
            var userspace: [String] = []
            var builtin: [String] = []
            for i in plan.interfaces {
                if plan.backend == .builtin {
                    try Self.handOverTUN(i.name, status: status)
                    builtin.append(i.name)
                    continue
                }
                var useKernel = plan.backend == .auto || plan.backend == .kernel
                if useKernel {
                    do {
                        try routes.createLink(name: i.name, kind: "wireguard")
                    } catch where error.code == .noWireGuardModule && plan.backend == .auto {
                        useKernel = false
                    } catch {
                        throw TunnelError(error.code == .noWireGuardModule ? .noWireGuard : .setup, wrapping: error)
                    }
                }
                if !useKernel {
                    guard let wgGo = plan.wireguardGo else {
                        throw TunnelError(.noWireGuard, "the kernel has no WireGuard and wireguard-go is not installed (apt-get install wireguard-go)")
                    }
                    daemons.append(try WireGuardGo.start(wgGo, name: i.name))
                    userspace.append(i.name)
                }
            }
            log.step("devices created" + (userspace.isEmpty ? "" : ", wireguard-go starting for \(userspace.joined(separator: ", "))")
                     + (builtin.isEmpty ? "" : ", TUN devices \(builtin.joined(separator: ", ")) handed to the supervisor's data plane"))
            if !preUp { try dnsAndLoopback() }
            if plan.forwarding {
                try Hub.enableForwarding()
                log.step("forwarding on (hub)")
            }

            for k in daemons.indices { try daemons[k].waitReady() }
            // The namespace where tap0 and WireGuard's UDP socket are.
            let carrierSide = routes
            if plan.isolate {
                routes = try Isolation.enterOwnNamespace(moving: plan.interfaces.map(\.name), from: carrierSide, existing: jobNetwork)
                log.step("isolated: \(plan.interfaces.map(\.name).joined(separator: ", ")) moved into the job's own network namespace")
            }
            if plan.verbose {
                let kinds = plan.interfaces.map { "\($0.name): " + (userspace.contains($0.name) ? "userspace (wireguard-go)" : builtin.contains($0.name) ? "builtin (TUN here, UDP on the host)" : "kernel") }
                log.step("backend \(kinds.joined(separator: ", "))")
            }
            var controls: [String: any WireGuardControl] = [:]
            for i in plan.interfaces where !builtin.contains(i.name) {
                if userspace.contains(i.name) {
                    var uapi = UserspaceWireGuard(socketDirectory: "\(run)/\(Namespace.socketFolder)")
                    uapi.drain = daemons.map(\.log)
                    controls[i.name] = uapi
                } else {
                    do { controls[i.name] = try KernelWireGuard() } catch { throw TunnelError(.noWireGuard, wrapping: error) }
                }
            }

            // Interface keys first; peers only once the carrier is ready, so
            // that the first handshake is not lost to a missing route.
            let mark = plan.interfaces.compactMap { $0.config.interface.firewallMark }.first { $0 != 0 } ?? Holder.table
            for i in plan.interfaces {
                let c = i.config.interface
                var dc = DeviceConfig()
                do { dc.privateKey = try c.privateKey?.load() } catch { throw TunnelError(.config, "\(i.name)", wrapping: error) }
                dc.listenPort = c.listenPort
                dc.firewallMark = mark
                // A builtin interface's keys stay with the supervisor's data plane.
                if let control = controls[i.name] {
                    do { try control.configure(i.name, dc) } catch { throw TunnelError(.setup, wrapping: error) }
                }
                do {
                    for a in c.addresses { try routes.addAddress(a, to: i.name) }
                    try routes.setLink(i.name, up: true, mtu: i.mtu)
                } catch { throw TunnelError(.setup, wrapping: error) }
            }
            log.step("interfaces keyed, addressed, MTU set, up")
            try TunnelRoutes.install(plan.interfaces, routes: routes, mark: mark)
            log.step("routes and rules")

            // Wait for the carrier.
            switch controlReader.next() {
            case .carrierReady: break
            case .signal(let s): killAllAndExit(128 + s)
            case nil: killAllAndExit(1)  // the supervisor is gone
            }
            log.mark()
            if plan.carrier == .slirp4netns && plan.hasIPv6Endpoint {
                try Self.addCarrierIPv6(carrierSide)
                log.step("tap0: \(Self.slirpAddress6), default route via \(Self.slirpGateway6)")
            }
            if plan.isolate { carrierSide.close() }
            for i in plan.interfaces where !builtin.contains(i.name) {
                var dc = DeviceConfig(replacePeers: true)
                do {
                    dc.peers = try i.config.peers.map { p throws(KeyStoreError) in
                        PeerConfig(publicKey: p.publicKey, presharedKey: try p.presharedKey?.load(),
                                   endpoint: p.endpoint.flatMap { e in e.address.map { SocketAddress(address: $0, port: e.port) } },
                                   persistentKeepaliveInterval: p.persistentKeepalive,
                                   replaceAllowedIPs: true, allowedIPs: p.allowedIPs)
                    }
                } catch { throw TunnelError(.config, "\(i.name)", wrapping: error) }
                do { try controls[i.name]!.configure(i.name, dc) } catch { throw TunnelError(.setup, wrapping: error) }
            }
            log.step("peers configured")
            routes.close()
            try Hooks.run(.postUp, plan, log: &log)
            Hooks.keepForDown(plan)
        } catch {
            fail("\(error)")
        }

        // The job, in its sandbox (JobSandbox); with no command, an idle
        // sandbox that `wgns exec` enters.
        var opts = SpawnOptions()
        opts.deathSignal = SIGKILL
        opts.newProcessGroup = true
        if plan.jobControl { opts.foregroundTTY = 0 }
        let run = Namespace.runtimeDirectory()
        var sandbox = JobSandbox()
        sandbox.ownUserNamespace = !plan.netAdmin
        sandbox.uid = plan.mapUID
        sandbox.gid = plan.mapGID
        sandbox.detach = ["\(run)/\(Namespace.generatedFolder)"]
        // A job with network administration may manage its tunnel: it keeps
        // wireguard-go's sockets.
        if !plan.netAdmin { sandbox.detach.append("\(run)/\(Namespace.socketFolder)") }
        sandbox.channel = status
        sandbox.channelText = HolderStatus.namespaces(.job).line
        if CWGShim_send_own_namespaces(status, HolderStatus.namespaces(.admin).line) != 0 {
            fail("cannot pass the tunnel's namespaces to the supervisor: \(String(cString: strerror(errno)))")
        }
        opts.environment = plan.jobEnvironment()
        let job: ChildProcess
        do {
            job = try sandbox.start(plan.command.isEmpty ? nil : plan.command, opts)
        } catch {
            let name = plan.command.first ?? ""
            if error.isExec {
                let code: Int32 = error.errno == .noSuchFileOrDirectory ? 127 : 126
                let why = error.errno == .noSuchFileOrDirectory ? "command not found" : "\(error.errno)"
                HolderStatus.commandFailed(code, "\(name): \(why)").send(on: status)
            } else {
                HolderStatus.commandFailed(126, "cannot start the job's sandbox for \(name): \("\(error.errno)")").send(on: status)
            }
            killAllAndExit(1)
        }
        log.step(plan.command.isEmpty ? "tunnel up, no job (an idle sandbox for wgns exec)" : "job started: \(plan.command.first ?? "")")
        HolderStatus.jobStarted.send(on: status)
        superviseJob(job, daemons: &daemons, control: &controlReader)
    }

    /// The builtin backend's device: a TUN named `name`, made here (where
    /// pid 1 has CAP_NET_ADMIN over the tunnel's network namespace) with
    /// vnet headers and offloads, and its descriptor sent to the supervisor
    /// (`T NAME OFFLOADS`), whose data plane serves it from the host's
    /// namespaces. Persistent: it goes with the namespace.
    static func handOverTUN(_ name: String, status: Int32) throws(TunnelError) {
        let tun: TUNDevice
        do { tun = try TUNDevice.open(name: name, offloads: true) } catch {
            throw TunnelError(.setup, "\(name): \(error.message)", errno: error.errno)
        }
        let offloads = tun.offloads.rawValue
        let fd = tun.release()
        defer { close(fd) }
        // Persistent, as wireguard-go's: the data plane's exit then does not
        // wait for the device's removal (RCU grace periods); the device goes
        // with the namespace.
        if CWGShim_tun_set_persist(fd, 1) != 0 {
            throw TunnelError(.setup, "TUNSETPERSIST on \(name)", errno: currentErrno)
        }
        var fds = [fd]
        if CWGShim_send_fds(status, HolderStatus.tunDevice(name, offloads).line, &fds, 1) != 0 {
            throw TunnelError(.setup, "cannot pass TUN device \(name) to the supervisor", errno: currentErrno)
        }
    }

    /// slirp4netns's IPv6 network: it answers as the gateway (and the host,
    /// with host loopback) at fd00::2.
    static let slirpAddress6 = IPPrefix(address: IPAddress("fd00::100")!, prefixLength: 64)!
    static let slirpGateway6 = IPAddress("fd00::2")!

    /// slirp4netns configures only IPv4 on tap0; IPv6 would wait for its
    /// router advertisement and duplicate address detection (about 3 s, so
    /// that the first handshake to an IPv6 endpoint is lost and the next
    /// comes 5 s later). A fixed address without DAD and a default route are
    /// usable at once.
    static func addCarrierIPv6(_ routes: RouteNetlink) throws(TunnelError) {
        do {
            try routes.addAddress(slirpAddress6, to: "tap0", noDAD: true)
            try routes.addRoute(IPPrefix(address: IPAddress("::")!, prefixLength: 0)!, device: "tap0", gateway: slirpGateway6)
        } catch { throw TunnelError(.setup, "carrier IPv6", wrapping: error) }
    }

    /// Waits for the job, passing signals on and draining daemon logs; ends
    /// everything when the job ends. When wireguard-go dies, the job gets
    /// SIGTERM, and SIGKILL `Supervisor.stopGrace` seconds later if it is
    /// still there; its status is then never 0.
    func superviseJob(_ job: ChildProcess, daemons: inout [WireGuardGo], control reader: inout ControlReader) -> Never {
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGCHLD)
        let sfd = CWGShim_signalfd(&mask)
        var jobStatus: Termination?
        var scratch = [UInt8](repeating: 0, count: 4096)
        var killAt: UInt64?
        while jobStatus == nil {
            // Reap first: SIGCHLD may have arrived before the signalfd existed.
            while true {
                var st: Int32 = 0
                let pid = waitpid(-1, &st, WNOHANG)
                if pid <= 0 { break }
                if pid == job.pid { jobStatus = Termination(waitStatus: st) }
                if let k = daemons.firstIndex(where: { $0.process.pid == pid }) {
                    let d = daemons.remove(at: k)
                    writeStderr("wgns: wireguard-go for \(d.name) exited (\(Termination(waitStatus: st))); ending the job\n")
                    job.kill(SIGTERM)
                    if killAt == nil { killAt = monotonicNanos() + UInt64(Supervisor.stopGrace * 1e9) }
                }
            }
            if jobStatus != nil { break }
            var fds = [pollfd(fd: control, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: sfd, events: Int16(POLLIN), revents: 0)]
            for d in daemons { fds.append(pollfd(fd: d.log, events: Int16(POLLIN), revents: 0)) }
            var timeout: Int32 = -1
            if let t = killAt {
                let now = monotonicNanos()
                if now >= t {
                    writeStderr("wgns: the job did not end within \(Supervisor.seconds(Supervisor.stopGrace)) of SIGTERM; killed it\n")
                    job.kill(SIGKILL)
                    killAt = UInt64.max
                } else if t != UInt64.max {
                    timeout = Int32((t - now) / 1_000_000 + 1)
                }
            }
            if poll(&fds, nfds_t(fds.count), timeout) < 0 { continue }
            if fds[0].revents != 0 {
                guard var message = reader.next() else { killAllAndExit(1) }  // the supervisor is gone
                while true {
                    if case .signal(let s) = message { job.kill(s) }
                    guard let more = HolderControl.take(from: &reader.buffer) else { break }
                    message = more
                }
            }
            if fds[1].revents != 0 { _ = read(sfd, &scratch, scratch.count) }
            for k in 2..<fds.count where fds[k].revents != 0 {
                _ = read(fds[k].fd, &scratch, scratch.count)
            }
        }
        Hooks.runDownHooks()
        // Everything else in here is killed before the supervisor hears the
        // status, so that their exits overlap the carrier's stop. (The
        // longest is wireguard-go's: closing its inotify watch on the UAPI
        // socket waits for an SRCU grace period, 2-20 ms here.)
        _ = kill(-1, SIGKILL)
        let shellStatus = jobStatus!.shellStatus
        HolderStatus.jobExited(killAt != nil && shellStatus == 0 ? 1 : shellStatus).send(on: status)
        killAllAndExit(0)
    }

    /// As pid 1: kills every other process in the namespace, reaps them, exits.
    func killAllAndExit(_ code: Int32) -> Never {
        _ = kill(-1, SIGKILL)
        var st: Int32 = 0
        while waitpid(-1, &st, 0) > 0 || errno == EINTR {}
        _exit(code)
    }

    func fail(_ message: String) -> Never {
        HolderStatus.setupFailed(message).send(on: status)
        killAllAndExit(1)
    }
}
