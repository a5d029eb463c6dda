import CWGShim
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// One `PreUp`, `PostUp`, `PreDown` or `PostDown` command of a config.
struct Hook {
    /// When a hook runs, in wg-quick's order.
    enum Phase: String, CaseIterable {
        /// Before the interfaces are created.
        case preUp = "PreUp"
        /// Once the interfaces are up, routed and have their peers, before the job.
        case postUp = "PostUp"
        /// When the job has ended, while the interfaces still exist.
        case preDown = "PreDown"
        /// After the interfaces are deleted, before the namespace ends.
        case postDown = "PostDown"

        /// The config field that holds this phase's commands.
        var keyPath: WritableKeyPath<InterfaceSettings, [SourcedText]> {
            switch self {
            case .preUp: return \.preUp
            case .postUp: return \.postUp
            case .preDown: return \.preDown
            case .postDown: return \.postDown
            }
        }
    }

    var phase: Phase
    var command: SourcedText

    /// Every hook of `settings`, phase by phase, each phase in file order.
    static func all(in settings: InterfaceSettings) -> [Hook] {
        Phase.allCases.flatMap { p in settings[keyPath: p.keyPath].map { Hook(phase: p, command: $0) } }
    }
}

/// Runs hooks as wg-quick does (`bash -c`, `%i` replaced by the interface's
/// name), inside the namespace as its pid 1's child: root of the tunnel's
/// user namespace, so `ip`, `iptables` and `nft` work and reach only this
/// namespace. The job is not a child of a hook and gets none of this.
///
/// A hook's output (stdout and stderr) goes to wgns's stderr, each line
/// prefixed with `wgns: PHASE: `. A hook that runs longer than the timeout
/// (`WGNS_HOOK_TIMEOUT` seconds, default 60) is killed with its process group.
enum Hooks {
    /// Seconds a hook may run.
    static let defaultTimeout = 60

    /// True when some interface has a hook of `phase` (no work otherwise).
    static func any(_ phase: Hook.Phase, _ plan: UpPlan) -> Bool {
        plan.interfaces.contains { !$0.config.interface[keyPath: phase.keyPath].isEmpty }
    }

    /// Runs every hook of `phase`, interface by interface; the first one
    /// that fails (non-zero exit, killed, timed out, cannot start) throws an
    /// error naming it and its `FILE:LINE`.
    static func run(_ phase: Hook.Phase, _ plan: UpPlan, log: inout StepLog) throws(TunnelError) {
        try each(phase, plan, log: &log) { (place, how) throws(TunnelError) in
            guard how == .exited(0) else {
                throw TunnelError(.setup, "\(place): \(phase.rawValue) failed (\(how)); nothing was left up")
            }
        }
    }

    /// Runs the down hooks of `phase`; a failure is reported on stderr and
    /// the rest still run (the tunnel goes down anyway).
    static func runDown(_ phase: Hook.Phase, _ plan: UpPlan, log: inout StepLog) {
        do {
            try each(phase, plan, log: &log, failed: { writeStderr("wgns: \($0)\n") }) { place, how in
                if how != .exited(0) { writeStderr("wgns: \(place): \(phase.rawValue) failed (\(how))\n") }
            }
        } catch {
            writeStderr("wgns: \(error)\n")
        }
    }

    /// Runs each hook of `phase` (`%i` replaced by the interface's name),
    /// logs it with its duration, and hands its place and end to `ended`.
    /// A hook that cannot start goes to `failed` when given, else throws.
    private static func each(_ phase: Hook.Phase, _ plan: UpPlan, log: inout StepLog,
                             failed: ((TunnelError) -> Void)? = nil,
                             _ ended: (String, Termination) throws(TunnelError) -> Void) throws(TunnelError) {
        guard any(phase, plan) else { return }
        let timeout = timeoutSeconds()
        for i in plan.interfaces {
            for c in i.config.interface[keyPath: phase.keyPath] {
                let place = "\(i.source.isEmpty ? i.name : i.source):\(c.line)"
                log.mark()
                let how: Termination
                do { how = try runOne(c.text.replacing("%i", with: i.name), phase: phase, timeout: timeout, place: place,
                                                maskHostSockets: plan.maskHostSockets) } catch {
                    guard let failed else { throw error }
                    failed(error)
                    continue
                }
                log.step("\(phase.rawValue) \(place) (\(how))")
                try ended(place, how)
            }
        }
    }

    /// Runs the PreUp hooks where the job's interfaces will be. Under
    /// isolation that is the job's own network namespace, which is made
    /// now (with `lo` up) and returned open, the caller staying in the
    /// carrier's namespace where the devices are born; else -1.
    static func runPreUp(_ plan: UpPlan, log: inout StepLog) throws(TunnelError) -> Int32 {
        guard plan.isolate else {
            try run(.preUp, plan, log: &log)
            return -1
        }
        let outer = try sys("open the carrier's network namespace", code: .setup) { open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC) }
        defer { close(outer) }
        try sys("unshare a network namespace for the job", code: .setup) { CWGShim_unshare(CWGShim_CLONE_NEWNET) }
        let inner = try sys("open the job's network namespace", code: .setup) { open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC) }
        do throws(TunnelError) {
            do {
                let rt = try RouteNetlink()
                defer { rt.close() }
                try rt.setLink("lo", up: true)
            } catch { throw TunnelError(.setup, "isolation", wrapping: error) }
            try run(.preUp, plan, log: &log)
            try sys("return to the carrier's network namespace", code: .setup) { CWGShim_setns(outer, CWGShim_CLONE_NEWNET) }
        } catch {
            close(inner)
            throw error
        }
        return inner
    }

    /// The plan whose PreDown/PostDown hooks run when the job ends; nil
    /// when there are none. Set once by the namespace's pid 1, which is
    /// single-threaded.
    nonisolated(unsafe) static var down: UpPlan?

    /// Keeps `plan` for `runDownHooks` when it has down hooks.
    static func keepForDown(_ plan: UpPlan) {
        if any(.preDown, plan) || any(.postDown, plan) { down = plan }
    }

    /// When the job has ended: PreDown, then (as wg-quick) the interfaces
    /// are deleted, then PostDown. Nothing when there are no down hooks.
    static func runDownHooks() {
        guard let plan = down else { return }
        down = nil
        var log = StepLog(enabled: plan.verbose, start: plan.startTime)
        runDown(.preDown, plan, log: &log)
        if any(.postDown, plan) {
            if let rt = try? RouteNetlink() {
                for i in plan.interfaces { try? rt.deleteLink(i.name) }
                rt.close()
            }
            log.step("interfaces deleted")
            runDown(.postDown, plan, log: &log)
        }
    }

    /// `WGNS_HOOK_TIMEOUT` when it is a positive number of seconds, else the default.
    static func timeoutSeconds() -> Int {
        if let v = getenv("WGNS_HOOK_TIMEOUT").map({ String(cString: $0) }), let n = Int(v), n > 0 { return n }
        return defaultTimeout
    }

    /// The shell wg-quick uses (bash), or `/bin/sh` where there is none.
    static let shell = access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh"

    /// Runs one command and relays its output; returns how it ended.
    /// `maskHostSockets`: the hook, as the job, reaches none of the host's
    /// unix sockets in /tmp and the like (isolated, or a full tunnel).
    static func runOne(_ command: String, phase: Hook.Phase, timeout: Int, place: String,
                       maskHostSockets: Bool = false) throws(TunnelError) -> Termination {
        let out = try Pipe()
        let devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if devnull >= 0 { close(devnull) } }
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGCHLD)
        // SIGCHLD is blocked in the namespace's pid 1: its exit arrives here.
        let sfd = try sys("signalfd", code: .setup) { CWGShim_signalfd(&mask) }
        defer { close(sfd) }
        var opts = SpawnOptions()
        opts.fds = [devnull, out.write.raw, out.write.raw]
        opts.deathSignal = SIGKILL
        opts.newProcessGroup = true
        // A hook is root of the tunnel's user namespace, and whatever it
        // runs (files and PATH the job can write) must not enter the
        // carrier's network namespace nor reach a process that holds keys.
        // So: a pid and mount namespace of its own, whose /proc shows no
        // wgns process, wireguard-go or carrier; and no CAP_SYS_ADMIN (no
        // setns, no unmounting that /proc to find the host's beneath it) nor
        // CAP_SYS_PTRACE. Its background processes end with it.
        opts.dropAdminCapabilities = true
        var sandbox = JobSandbox()
        sandbox.ownUserNamespace = false
        sandbox.channel = -1
        sandbox.maskHostSockets = maskHostSockets
        let child: ChildProcess
        do { child = try sandbox.start([shell, "-c", command], opts) } catch {
            throw TunnelError(.setup, "\(place): cannot start \(phase.rawValue) with \(shell)", errno: error.errno)
        }
        out.write.close()
        let fd = out.read.raw
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var reader = LineReader()
        var open = true
        let prefix = "wgns: \(phase.rawValue): "
        func relay(final: Bool) {
            while open {
                let more: Bool
                do { more = try reader.fill(from: fd) } catch { break }  // EAGAIN: nothing now
                if !more { open = false }
            }
            var text = ""
            while let line = reader.nextLine() { text += prefix + line + "\n" }
            if (final || !open) && !reader.buffer.isEmpty {
                text += prefix + String(decoding: reader.buffer, as: UTF8.self) + "\n"
                reader.buffer.removeAll()
            }
            if !text.isEmpty { writeStderr(text) }
        }
        let deadline = monotonicNanos() + UInt64(timeout) * 1_000_000_000
        var scratch = [UInt8](repeating: 0, count: 512)
        while true {
            if let t = child.poll() {
                // What it wrote before it ended; a background process it left
                // keeps its own copy of the pipe and is not waited for.
                relay(final: true)
                return t
            }
            let now = monotonicNanos()
            if now >= deadline {
                child.kill(SIGKILL)  // the sandbox's pid 1: everything in it goes
                _ = child.wait()
                relay(final: true)
                throw TunnelError(.setup, "\(place): \(phase.rawValue) did not finish within \(timeout) s and was killed (WGNS_HOOK_TIMEOUT sets the limit in seconds)")
            }
            var fds = [pollfd(fd: sfd, events: Int16(POLLIN), revents: 0)]
            if open { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            let ms = Int32(min((deadline - now) / 1_000_000 + 1, 60_000))
            if poll(&fds, nfds_t(fds.count), ms) < 0 { continue }
            if fds[0].revents != 0 { _ = read(sfd, &scratch, scratch.count) }
            if fds.count > 1 && fds[1].revents != 0 { relay(final: false) }
        }
    }
}
