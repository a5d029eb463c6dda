import CWGShim
import KeyStore
import POSIX
import SystemPackage
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// The supervisor side of `wgns up` (ARCHITECTURE.md, "Process model"):
/// starts the holder and sends it the plan, starts the carrier when the
/// namespaces exist (if there is one), starts a builtin interface's data
/// plane when its TUN arrives, passes signals on, serves a named tunnel's
/// clients, and cleans up. One method per event; `run` is the loop.
///
/// If the carrier dies while the job runs, the job gets SIGTERM and wgns
/// exits non-zero (the job's status, or 1 if the job exited 0): a tunnel
/// without a carrier carries nothing, and restarting it would change the
/// namespace under a running job. A job still running `stopGrace` seconds
/// later is killed (SIGKILL), and wgns exits 1.
///
/// A signal during bring-up (before the job runs) ends the run at once,
/// whatever step the namespace's pid 1 is in: if the job has not started
/// within `signalGrace`, the holder is killed, and pid 1 and everything in
/// its namespaces with it.
public struct Supervisor {
    /// Seconds a job has to end after SIGTERM when its tunnel broke.
    public static let stopGrace: Double = 3
    /// Seconds a signal during bring-up waits for the job to start (it may
    /// be starting: it then gets the signal) before the run is ended.
    static let signalGrace: Double = 0.5

    var plan: UpPlan
    var log: StepLog
    let holder: ChildProcess
    /// The control pipe to the holder; -1 once closed. Closing it makes the
    /// namespace's pid 1 kill everything in there and exit, then the holder
    /// exits: nothing is orphaned.
    var control: Int32
    /// The holder's status channel, the signalfd and a named tunnel's
    /// listening socket (-1 without a name); owned by `run`.
    let status: Int32
    let signals: Int32
    let listener: Int32
    var reader = LineReader()
    var server = NamedTunnel.Server()
    var carrier: Carrier?
    /// The builtin backend's data planes, one per interface.
    var dataPlanes: [DataPlane] = []
    var holderEnded: Termination?

    var carrierReady = false
    var jobRunning = false
    /// The carrier died under the job: a job that then exits 0 still fails.
    var carrierFailed = false
    /// A signal that arrives after the holder was told to start the job
    /// but before it says the job runs (the job may already be running: it
    /// starts before the holder's line is read) is passed on then.
    var pendingSignal: Int32?
    /// A signal before the job was asked for ends the run with 128 + it.
    var interruptedBy: Int32?
    var pendingError: TunnelError?
    var exitStatus: Int32?
    /// When set (monotonic ns): the moment the run ends if the job is still
    /// not started (a signal in bring-up) or still running (a broken tunnel).
    var deadline: UInt64?

    var running: Bool { exitStatus == nil && pendingError == nil && interruptedBy == nil }

    /// Runs a prepared plan to the end; returns the exit status for wgns
    /// (the job's, as a shell reports it). Everything started is gone when
    /// it returns.
    public static func run(_ plan: UpPlan, holderCommand: [String]) throws(TunnelError) -> Int32 {
        var sigs = sigset_t()
        sigemptyset(&sigs)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGTTOU, SIGTTIN, SIGQUIT] { sigaddset(&sigs, s) }
        sigprocmask(SIG_BLOCK, &sigs, nil)
        // SIGPIPE is ignored since UpPlan.prepare.
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
        let holder = try startHolder(holderCommand, control: ctl.read.raw, status: st.write.raw, closeInChild: [ctl.write.raw, st.read.raw, sfd, listenFD],
                                     makeTap: plan.carrier != .noCarrier)
        ctl.read.close()
        st.write.close()
        var s = Supervisor(plan: plan, log: StepLog(enabled: plan.verbose, start: plan.startTime), holder: holder,
                           control: ctl.write.release(), status: st.read.raw, signals: sfd, listener: listenFD)
        s.server.namespaces.uid = plan.mapUID
        s.server.namespaces.gid = plan.mapGID
        defer { s.server.close() }
        try s.sendPlan()
        while s.running { s.waitForEvents() }
        return try s.finish()
    }

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

    /// Starts the holder with the control pipe as its fd 3 and the status
    /// channel as its fd 4.
    static func startHolder(_ holderCommand: [String], control: Int32, status: Int32,
                            closeInChild: [Int32], makeTap: Bool = true) throws(TunnelError) -> ChildProcess {
        if holderCommand.isEmpty || isSingleThreaded() {
            // A plain fork of this single-threaded process is a fresh
            // single-threaded process too (unshare(CLONE_NEWUSER) works there),
            // and saves loading the binary again (about 8 ms).
            let pid = CWGShim_fork_with_pdeathsig(SIGKILL)
            if pid < 0 { throw TunnelError(.setup, "cannot fork the holder", errno: currentErrno) }
            if pid == 0 {
                setpgid(0, 0)
                for fd in closeInChild where fd >= 0 { close(fd) }
                Holder.run(control: control, status: status, makeTap: makeTap)
            }
            return ChildProcess(pid: pid)
        }
        var opts = SpawnOptions()
        opts.fds = [0, 1, 2, control, status]
        opts.deathSignal = SIGKILL
        opts.newProcessGroup = true
        do { return try ChildProcess.spawn(holderCommand, opts) } catch {
            throw TunnelError(.setup, "cannot start the holder \(holderCommand.first ?? "")", errno: error.errno)
        }
    }

    /// Sends the plan (it holds the keys: encoded into one wiped buffer).
    mutating func sendPlan() throws(TunnelError) {
        do throws(TunnelError) {
            var bytes = try plan.encoded()
            defer { KeyStore.wipe(&bytes) }
            do { try Descriptor(owning: dup(control)).writeAll(bytes) } catch {
                throw TunnelError(.setup, "send the plan to the holder", errno: error)
            }
        } catch {
            stopEverything()
            // A holder that failed before reading the plan (no user
            // namespaces, say) said why on the status channel: that, not EPIPE.
            var r = LineReader()
            _ = try? r.fill(from: status)
            while let line = r.nextLine() {
                if case .setupFailed(let m) = HolderStatus(line: line) { throw TunnelError(.setup, m) }
            }
            throw error
        }
        log.step("holder started (pid \(holder.pid))")
    }

    /// Waits for the next events and handles them.
    mutating func waitForEvents() {
        var fds = [pollfd(fd: status, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: signals, events: Int16(POLLIN), revents: 0)]
        var readyIndex = -1
        if let c = carrier, !carrierReady {
            readyIndex = fds.count
            fds.append(pollfd(fd: c.ready.raw, events: Int16(POLLIN), revents: 0))
        }
        // The carrier's captured chatter, drained so that it never blocks on it.
        if let c = carrier, c.output >= 0 { fds.append(pollfd(fd: c.output, events: Int16(POLLIN), revents: 0)) }
        // Served from the start (admin/exec answer "not ready" until the
        // holder has passed the namespaces), so that a client never waits on
        // a full backlog.
        if listener >= 0 { fds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0)) }
        var timeout: Int32 = -1
        if let d = deadline {
            let now = monotonicNanos()
            guard d > now else { deadlinePassed(); return }
            timeout = Int32(min((d - now) / 1_000_000 + 1, 60_000))
        }
        if let w = followerWake {
            let now = monotonicNanos()
            let ms = Int32(min(w > now ? (w - now) / 1_000_000 + 1 : 0, 60_000))
            timeout = timeout < 0 ? ms : min(timeout, ms)
        }
        let n = poll(&fds, nfds_t(fds.count), timeout)
        followHub()
        if n < 0 { return }
        if let c = carrier, c.output >= 0, fds.contains(where: { $0.fd == c.output && $0.revents != 0 }) { c.drain() }
        if let k = fds.firstIndex(where: { $0.fd == listener && $0.revents != 0 }), k >= 2 { namedClientArrived() }
        if readyIndex >= 0 && fds[readyIndex].revents != 0 {
            carrierAnswered()
            guard running else { return }
        }
        if fds[1].revents != 0 {
            signalsArrived()
            guard interruptedBy == nil else { return }
        }
        if fds[0].revents != 0 { statusArrived() }
    }

    /// The deadline passed: a signal in bring-up whose job never started
    /// ends the run; a job that outlived its broken tunnel by `stopGrace`
    /// is killed with everything else.
    mutating func deadlinePassed() {
        deadline = nil
        if let signo = pendingSignal, !jobRunning {
            pendingSignal = nil
            interruptedBy = signo
        } else if carrierFailed {
            pendingError = TunnelError(.carrier, "the job did not end within \(Self.seconds(Self.stopGrace)) of SIGTERM after its tunnel broke (the carrier or the data plane exited); killed it")
        }
    }

    static func seconds(_ s: Double) -> String { s == s.rounded() ? "\(Int(s)) s" : "\(s) s" }

    /// A client of a named tunnel (`wgns show/exec/down NAME`).
    mutating func namedClientArrived() {
        let served = server.serve(listener)
        for conn in served.devices { answerDevices(conn) }
        if served.down { send(.signal(SIGTERM)) }
    }

    /// `devices`: `ok N`, then each builtin interface's device as
    /// `NAME LENGTH` and its UAPI text (keys included: the client is of our
    /// uid, and `wgns show` hides them unless asked), then the connection closes.
    func answerDevices(_ conn: Int32) {
        let answered = Descriptor(owning: conn)
        var out = Array("ok \(dataPlanes.count)\n".utf8)
        defer { KeyStore.wipe(&out) }
        for d in dataPlanes {
            guard var device = d.device()?.uapiText() else { continue }
            out += Array("\(d.name) \(device.count)\n".utf8)
            out += device
            KeyStore.wipe(&device)
        }
        try? answered.writeAll(out)
    }

    /// The carrier's ready descriptor: data when it is ready, EOF when it failed.
    mutating func carrierAnswered() {
        guard let c = carrier else { return }
        var scratch = [UInt8](repeating: 0, count: 256)
        if read(c.ready.raw, &scratch, scratch.count) > 0 {
            if let e = Hub.confirm(plan) { pendingError = e; return }
            carrierReady = true
            c.started()
            // The carrier has opened the holder's namespaces: from now on
            // nobody needs its /proc entries.
            holder.kill(SIGUSR1)
            log.step("carrier \(plan.carrier.rawValue) ready")
            send(.carrierReady)
        } else {
            carrier = nil
            let how = c.stop()
            pendingError = TunnelError(.carrier, "carrier \(plan.carrier.rawValue) failed to start (\(how))" + Self.said(c))
        }
    }

    mutating func signalsArrived() {
        var info = signalfd_siginfo()
        while read(signals, &info, MemoryLayout<signalfd_siginfo>.size) > 0 {
            let signo = Int32(info.ssi_signo)
            switch signo {
            case SIGCHLD: childrenChanged()
            case SIGINT, SIGTERM, SIGHUP, SIGQUIT:
                if jobRunning {
                    send(.signal(signo))
                } else if carrierReady && pendingError == nil {
                    pendingSignal = signo
                    if deadline == nil { deadline = monotonicNanos() + UInt64(Self.signalGrace * 1e9) }
                } else {
                    interruptedBy = signo
                    return
                }
            default: break
            }
        }
    }

    /// SIGCHLD: the holder or the carrier may have ended.
    mutating func childrenChanged() {
        if holderEnded == nil, let t = holder.poll() { holderEnded = t }
        for k in dataPlanes.indices.reversed() {
            guard let t = dataPlanes[k].process.poll() else { continue }
            let d = dataPlanes.remove(at: k)
            // Exit status 0: its TUN went with the namespace (the job's end
            // under way), not a failure.
            if t == .exited(0) { continue }
            if jobRunning {
                writeStderr("wgns: the data plane of \(d.name) exited (\(t)) during the job; ending the job\n")
                carrierFailed = true
                send(.signal(SIGTERM))
                deadline = monotonicNanos() + UInt64(Self.stopGrace * 1e9)
            } else if pendingError == nil && exitStatus == nil {
                pendingError = TunnelError(.setup, "the data plane of \(d.name) failed (\(t))")
            }
        }
        guard let c = carrier, let t = c.process.poll() else { return }
        carrier = nil
        if jobRunning {
            writeStderr("wgns: carrier \(plan.carrier.rawValue) exited (\(t)) during the job; ending the job\(Self.said(c))\n")
            carrierFailed = true
            send(.signal(SIGTERM))
            deadline = monotonicNanos() + UInt64(Self.stopGrace * 1e9)
        } else if !carrierReady {
            pendingError = TunnelError(.carrier, "carrier \(plan.carrier.rawValue) failed to start (\(t))" + Self.said(c))
        } else {
            // Ready, then gone before the job started: no job runs on a dead carrier.
            pendingError = TunnelError(.carrier, "carrier \(plan.carrier.rawValue) exited (\(t)) before the job started" + Self.said(c))
        }
    }

    /// Messages on the status channel; its end without the job's status
    /// means the holder died.
    mutating func statusArrived() {
        var passed: [Int32]?
        do { passed = try reader.receive(from: status) } catch { passed = nil }
        let more = passed != nil
        while let line = reader.nextLine() {
            guard let message = HolderStatus(line: line) else { continue }
            if case .namespaces(let group) = message {
                server.take(group, passed ?? [])
                passed = nil
            } else if case .tunDevice(let name, let offloads) = message {
                startDataPlane(name, tun: passed ?? [], offloads: offloads)
                passed = nil
            } else {
                handle(message)
            }
        }
        for fd in passed ?? [] { close(fd) }
        if !more && exitStatus == nil && pendingError == nil {
            let t = holderEnded ?? holder.wait()
            holderEnded = t
            pendingError = TunnelError(.setup, "the namespace holder ended unexpectedly (\(t))")
        }
    }

    mutating func handle(_ message: HolderStatus) {
        switch message {
        case .namespacesCreated:
            log.step("namespaces created")
            startCarrier()
        case .jobStarted:
            jobRunning = true
            if let signo = pendingSignal {
                pendingSignal = nil
                deadline = nil
                send(.signal(signo))
            }
            if let e = Hub.published(plan) { pendingError = e }
            if let m = plan.readyMessage { writeStdout(m + "\n") }
            log.step("job running")
        case .jobExited(let s):
            exitStatus = carrierFailed && s == 0 ? 1 : s
        case .commandFailed(let s, let m):
            writeStderr("wgns: \(m)\n")
            exitStatus = s
        case .setupFailed(let m):
            pendingError = TunnelError(.setup, m)
        case .namespaces, .tunDevice:
            break
        }
    }

    /// The namespaces exist: the carrier attaches to the holder's.
    mutating func startCarrier() {
        if plan.carrier == .noCarrier {
            // Nothing to attach: the holder may go on at once.
            carrierReady = true
            holder.kill(SIGUSR1)
            send(.carrierReady)
            return
        }
        guard let path = findExecutable(plan.carrier.rawValue) else {
            pendingError = TunnelError(.noCarrier, "carrier \(plan.carrier.rawValue) is not installed")
            return
        }
        if let e = Hub.reserve(&plan) { pendingError = e; return }
        do {
            carrier = try Carrier.start(plan.carrier, path: path, pid: holder.pid, hostLoopback: plan.hostLoopback,
                                        ipv6: plan.hasIPv6Endpoint, interface: plan.pastaInterface,
                                        forwardTCP: plan.forwardTCP, forwardUDP: plan.forwardUDP, verbose: plan.verbose)
        } catch { pendingError = error }
    }

    /// A builtin interface's TUN arrived from inside: its data plane starts
    /// (the UDP socket bound on the host, the keys from the plan).
    mutating func startDataPlane(_ name: String, tun fds: [Int32], offloads: UInt32) {
        guard fds.count == 1, let i = plan.interfaces.first(where: { $0.name == name }) else {
            fds.forEach { close($0) }
            pendingError = TunnelError(.setup, "the holder passed \(fds.count) descriptors for TUN device \(name)")
            return
        }
        do {
            let d = try DataPlane.start(i, tun: fds[0], offloads: offloads)
            log.step("data plane for \(name) started (pid \(d.process.pid)), UDP port \(d.port) on the host")
            dataPlanes.append(d)
        } catch { pendingError = error }
    }

    func send(_ message: HolderControl) {
        guard control >= 0 else { return }
        _ = message.bytes.withUnsafeBytes { write(control, $0.baseAddress, $0.count) }
    }

    /// Closes the control pipe (pid 1 inside then ends everything there),
    /// stops the carrier and waits for the holder. A run that ends before
    /// its job's status (a signal, an error) gives the holder `signalGrace`
    /// and then kills it: pid 1 inside may be in a step that does not read
    /// the control pipe (configuring 50,000 AllowedIPs), and dies with it.
    mutating func stopEverything() {
        log.mark()
        if control >= 0 { close(control); control = -1 }
        if let c = carrier.take() { _ = c.stop() }
        for k in dataPlanes.indices { _ = dataPlanes[k].stop() }
        dataPlanes = []
        log.step(plan.carrier == .noCarrier ? "data plane stopped" : "carrier stopped")
        if holderEnded == nil && exitStatus == nil {
            let end = monotonicNanos() + UInt64(Self.signalGrace * 1e9)
            var info = signalfd_siginfo()
            while holderEnded == nil {
                if let t = holder.poll() { holderEnded = t; break }
                let now = monotonicNanos()
                if now >= end { holder.kill(SIGKILL); break }
                var p = pollfd(fd: signals, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, Int32((end - now) / 1_000_000 + 1)) > 0 {
                    _ = read(signals, &info, MemoryLayout<signalfd_siginfo>.size)
                }
            }
        }
        if holderEnded == nil { holderEnded = holder.wait() }
        log.step("namespaces ended")
    }

    /// Ends the run: everything stopped, then the status or the error.
    mutating func finish() throws(TunnelError) -> Int32 {
        stopEverything()
        if let signo = interruptedBy { return 128 + signo }
        if let e = pendingError { throw e }
        return exitStatus ?? 1
    }

    /// What a failed carrier said, for the end of the error line (with -v it
    /// is already on stderr).
    static func said(_ c: Carrier) -> String {
        let words = c.lastWords()
        return words.isEmpty ? "" : ": \(words)"
    }
}
