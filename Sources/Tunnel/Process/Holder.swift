import CWGShim
import KeyStore
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// The holder: the process that makes the namespaces and holds them for the
/// job. `wgns up` (the supervisor) forks it (or, when the supervisor has
/// threads, starts it as `wgns _holder`) with descriptor 3 = control pipe
/// (the plan, then `HolderControl` messages) and 4 = status channel (a
/// SOCK_SEQPACKET socket carrying `HolderStatus` lines, some with
/// descriptors): see HolderProtocol.swift. SIGUSR1 from the supervisor, once
/// the carrier has opened the holder's namespaces, makes the holder
/// undumpable (its memory is a copy of the supervisor's, keys included).
/// Its only child is pid 1 of the new pid namespace, `NamespaceInit`.
public enum Holder {
    /// The routing table and firewall mark of tunnel routes (as wg-quick: 51820).
    static let table: UInt32 = 51820

    /// Runs the holder; never returns. Call first thing in a synchronous
    /// command: the unshare needs a single-threaded process.
    /// `makeTap`: make the carrier's tap0 (false when the supervisor, which
    /// forked this holder, knows there is no carrier; an exec'd holder
    /// cannot know, and pid 1 removes an unused tap0).
    public static func run(control: Int32 = 3, status: Int32 = 4, makeTap: Bool = true) -> Never {
        let statusFD = status
        // Forked or exec'd, the holder starts with default handlers and an
        // empty mask. SIGUSR1 (below) and SIGCHLD are taken with sigwaitinfo;
        // write errors come back as EPIPE, not as a signal. The signals the
        // supervisor passes on to the job are blocked: a batch system that
        // signals every process of the job (scancel) reaches the job through
        // the supervisor and directly, and the holder, which only holds the
        // namespaces, ends when the supervisor closes the control pipe.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGUSR1)
        sigaddset(&set, SIGCHLD)
        var passedOn = set
        for s in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] { sigaddset(&passedOn, s) }
        sigprocmask(SIG_BLOCK, &passedOn, nil)
        signal(SIGPIPE, SIG_IGN)
        // The supervisor is undumpable, and so is its fork: but writing our
        // own uid_map needs /proc/self to be ours (undumpable makes it
        // root's). Undumpable again on SIGUSR1, once the carrier is in.
        _ = CWGShim_set_dumpable(1)
        do {
            try Namespace.enter()
        } catch {
            HolderStatus.setupFailed("\(error)").send(on: statusFD)
            _exit(1)
        }
        // The carrier's tap0, made persistent here so that the carrier's exit
        // does not wait for the device's removal (about 20 ms of RCU grace
        // periods): the device goes with the namespace, asynchronously.
        if makeTap {
            let tap = CWGShim_tun_open("tap0", 1, 1)
            if tap >= 0 { close(tap) }
        }
        HolderStatus.namespacesCreated.send(on: statusFD)
        // The first child is pid 1 of the new pid namespace: when it ends,
        // the kernel kills everything else in there.
        let pid = CWGShim_fork_with_pdeathsig(SIGKILL)
        if pid < 0 {
            HolderStatus.setupFailed("cannot fork: \(String(cString: strerror(errno)))").send(on: statusFD)
            _exit(1)
        }
        if pid == 0 { NamespaceInit(control: control, status: statusFD).run() }
        // Wait for pid 1; on SIGUSR1, become undumpable.
        while true {
            var st: Int32 = 0
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid { _exit(Termination(waitStatus: st).shellStatus) }
            if r < 0 && errno != EINTR { _exit(1) }
            if sigwaitinfo(&set, nil) == SIGUSR1 { _ = CWGShim_set_undumpable() }
        }
    }
}
