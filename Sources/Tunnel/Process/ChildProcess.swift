import CWGShim
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// How a child ended.
public enum Termination: Sendable, Hashable, CustomStringConvertible {
    /// `exit(code)`.
    case exited(Int32)
    /// Killed by a signal.
    case signaled(Int32)

    /// Decodes a `waitpid` status (WIFEXITED and friends are macros Swift cannot import).
    init(waitStatus s: Int32) {
        if s & 0x7f == 0 { self = .exited((s >> 8) & 0xff) } else { self = .signaled(s & 0x7f) }
    }

    /// The status a shell would report: the code, or 128 + the signal.
    public var shellStatus: Int32 {
        switch self {
        case .exited(let c): return c
        case .signaled(let s): return 128 + s
        }
    }

    public var description: String {
        switch self {
        case .exited(let c): return "exit status \(c)"
        case .signaled(let s): return "signal \(s)"
        }
    }
}

/// Options for starting a child (see `CWGShim_spawn`).
struct SpawnOptions {
    /// Child fd i gets `fds[i]` (-1 closes it); every other descriptor closes on exec.
    var fds: [Int32] = [0, 1, 2]
    /// Signal the child gets when its parent dies (PR_SET_PDEATHSIG).
    var deathSignal: Int32 = SIGKILL
    /// Put the child in its own process group.
    var newProcessGroup = false
    /// Make the child's group the foreground of this terminal.
    var foregroundTTY: Int32? = nil
    /// Run the child in a new user namespace mapping these ids to the current ones.
    var userNamespaceIDs: (uid: UInt32, gid: UInt32)? = nil
    /// Environment; nil inherits.
    var environment: [String]? = nil
    /// No new privileges, and ioctl(TIOCSTI/TIOCLINUX) fails with EPERM for
    /// the child and all it starts (`CWGShim_deny_tty_injection`): a job
    /// cannot type into the terminal it shares with the user's shell.
    var denyTerminalInjection = false
    /// CAP_SYS_ADMIN and CAP_SYS_PTRACE leave the child's bounding set
    /// (root of a user namespace keeps every other capability there).
    var dropAdminCapabilities = false
}

/// A started child process, by pid. Whoever holds it waits for it.
struct ChildProcess {
    let pid: pid_t

    /// Why a spawn failed: which step, which errno.
    struct Failure: Error, Sendable, CustomStringConvertible {
        var stage: Int32
        var errno: Errno
        var description: String { String(cString: strerror(errno.rawValue)) }
        /// True when the program itself could not be found or run.
        var isExec: Bool { stage == Int32(CWGShim_STAGE_EXEC) }
    }

    /// Starts `arguments[0]` (searched in PATH when it has no `/`).
    static func spawn(_ arguments: [String], _ options: SpawnOptions = .init()) throws(Failure) -> ChildProcess {
        var stage: Int32 = 0
        var err: Int32 = 0
        let pid = withSpawnAttributes(arguments, options) { CWGShim_spawn($0, &stage, &err) }
        if pid < 0 { throw Failure(stage: stage, errno: Errno(rawValue: err)) }
        return ChildProcess(pid: pid)
    }

    /// Calls `body` with C spawn attributes for `arguments` and `options`,
    /// valid only during the call.
    static func withSpawnAttributes(_ arguments: [String], _ options: SpawnOptions,
                                    _ body: (UnsafePointer<CWGShim_spawn_attr>) -> pid_t) -> pid_t {
        var cargs: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var cenv: [UnsafeMutablePointer<CChar>?]? = options.environment.map { $0.map { strdup($0) } + [nil] }
        defer {
            for p in cargs { free(p) }
            if let e = cenv { for p in e { free(p) } }
        }
        let fds = options.fds
        return fds.withUnsafeBufferPointer { fdp in
            cargs.withUnsafeMutableBufferPointer { argp in
                func go(_ envp: UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> pid_t {
                    var attr = CWGShim_spawn_attr()
                    attr.path = UnsafePointer(argp[0])
                    attr.argv = UnsafePointer(argp.baseAddress)
                    attr.envp = envp
                    attr.fd_map = fdp.baseAddress
                    attr.fd_count = Int32(fdp.count)
                    attr.pdeathsig = options.deathSignal
                    attr.new_pgroup = options.newProcessGroup ? 1 : 0
                    attr.tty_fd = options.foregroundTTY ?? -1
                    if let ids = options.userNamespaceIDs {
                        attr.new_userns = 1
                        attr.inner_uid = ids.uid
                        attr.inner_gid = ids.gid
                    }
                    attr.cwd = nil
                    attr.deny_tty_injection = options.denyTerminalInjection ? 1 : 0
                    attr.drop_admin_caps = options.dropAdminCapabilities ? 1 : 0
                    return body(&attr)
                }
                if cenv != nil {
                    return cenv!.withUnsafeMutableBufferPointer { ep in go(UnsafePointer(ep.baseAddress)) }
                }
                return go(nil)
            }
        }
    }

    /// Sends `signal`; ignores a child that is already gone.
    func kill(_ signal: Int32) { _ = Glibc.kill(pid, signal) }

    /// Waits for the child to end (blocking).
    func wait() -> Termination {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .exited(255) }
        }
        return Termination(waitStatus: status)
    }

    /// The termination if the child has ended, else nil (WNOHANG).
    func poll() -> Termination? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        return r == pid ? Termination(waitStatus: status) : nil
    }
}
