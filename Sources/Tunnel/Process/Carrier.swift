import CWGShim
import POSIX
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Finds an executable in PATH (or takes a path with a `/` as is).
public func findExecutable(_ name: String) -> String? {
    if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
    let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    for dir in path.split(separator: ":") where !dir.isEmpty {
        let candidate = "\(dir)/\(name)"
        if access(candidate, X_OK) == 0 { return candidate }
    }
    return nil
}

/// The user-mode network stack that carries WireGuard's UDP out of the
/// namespace, started by the supervisor on the holder's pid.
///
/// Both carriers get the same addressing inside: `tap0` with 10.0.2.100/24
/// (slirp4netns's is 10.0.2.100 too), gateway 10.0.2.2, resolver 10.0.2.3,
/// MTU 65520. With `hostLoopback`, 10.0.2.2 is the host's loopback;
/// without it, the host's loopback is unreachable.
final class Carrier {
    /// Which program.
    let kind: CarrierKind
    /// Its process (our child, in its own process group, killed if we die).
    let process: ChildProcess
    /// Becomes readable when the carrier is ready (data) or failed (EOF).
    let ready: Descriptor
    /// slirp4netns's `--exit-fd`: closing it stops slirp4netns.
    var exitFD: Descriptor?
    /// The carrier's stdout and stderr (non-blocking), captured so that its
    /// chatter ("sent tapfd=...", seccomp warnings) stays out of the user's
    /// terminal; with `-v` (`relay`) `drain` passes it on to wgns's stderr.
    let output: Int32
    /// `-v`: what the carrier says goes on to our stderr as it comes (by
    /// us, so that a stderr whose reader is gone fails our write with EPIPE
    /// instead of killing the carrier with SIGPIPE).
    let relay: Bool
    /// The last bytes the carrier wrote on `output`.
    private var said: [UInt8] = []
    /// Whether `stop()` already ran.
    private var stopped = false
    /// pasta's pid-file FIFO and its private folder, removed once pasta is
    /// ready or stopped.
    private var pidFIFO: PidFIFO?

    init(kind: CarrierKind, process: ChildProcess, ready: consuming Descriptor, exitFD: consuming Descriptor?,
         output: Int32, relay: Bool, pidFIFO: PidFIFO? = nil) {
        self.kind = kind
        self.process = process
        self.ready = ready
        self.exitFD = exitFD
        self.output = output
        self.relay = relay
        self.pidFIFO = pidFIFO
    }

    /// Call once `ready` said the carrier is ready: drops its start-up
    /// chatter (`forget`) and removes what it needed only to start.
    func started() {
        forget()
        pidFIFO?.remove()
        pidFIFO = nil
    }

    /// Reads what the carrier wrote so far (never blocks), keeping the last 4 KiB.
    func drain() {
        let fd = output
        guard fd >= 0 else { return }
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            // Non-blocking: EAGAIN (nothing more for now) ends it like EOF.
            guard let n = try? valueOrErrno({ read(fd, &buf, buf.count) }), n > 0 else { break }
            if relay {
                try? POSIX.writeAll(STDERR_FILENO, Array(buf[..<n]))
                continue
            }
            said += buf[..<n]
            if said.count > 4096 { said.removeFirst(said.count - 4096) }
        }
    }

    /// Drops what the carrier said so far (its start-up chatter, once it is
    /// ready), so that a later failure shows only what came after.
    func forget() {
        drain()
        said = []
    }

    /// The carrier's last few lines of output on one line ("" if none, and
    /// with `-v`, where they are on stderr already), for an error message.
    func lastWords() -> String {
        drain()
        let lines = String(decoding: said, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.drop { $0 == " " || $0 == "\t" } }.filter { !$0.isEmpty }
        let text = lines.suffix(3).joined(separator: "; ")
        return text.count > 400 ? "..." + String(text.suffix(400)) : text
    }

    deinit {
        if !stopped { _ = stop() }
        if output >= 0 { close(output) }
        pidFIFO?.remove()
    }

    /// Starts `kind` for the namespaces of `pid`. Returns at once; readiness
    /// arrives on `ready`.
    static func start(_ kind: CarrierKind, path: String, pid: pid_t, hostLoopback: Bool, ipv6: Bool, interface: String? = nil,
                      forwardTCP: [PortForward], forwardUDP: [PortForward], verbose: Bool) throws(TunnelError) -> Carrier {
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devnull) }
        var opts = SpawnOptions()
        opts.deathSignal = SIGKILL
        opts.newProcessGroup = true
        // The carrier's output goes into a pipe that `drain` empties (and
        // with -v passes on to our stderr; never into the job's stdout).
        var out: [Int32] = [-1, -1]
        try sys("pipe2") { CWGShim_pipe2(&out, O_CLOEXEC) }
        _ = fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK)
        // Our copy of the write end goes once the carrier has its own; the
        // read end goes to the Carrier, or is closed on failure.
        var handedOver = false
        defer {
            if out[1] >= 0 { close(out[1]) }
            if !handedOver && out[0] >= 0 { close(out[0]) }
        }
        let quietErr = out[1]
        switch kind {
        case .noCarrier:
            throw TunnelError(.setup, "no carrier to start (Carrier = none)")
        case .slirp4netns:
            if !forwardTCP.isEmpty || !forwardUDP.isEmpty {
                throw TunnelError(.config, "port forwarding needs the pasta carrier (--carrier pasta)")
            }
            let readyPipe = try Pipe()
            let exitPipe = try Pipe()
            var args = [path, "--configure", "--mtu=\(Resolver.carrierMTU)", "--ready-fd=3", "--exit-fd=4"]
            if !hostLoopback { args.append("--disable-host-loopback") }
            if ipv6 { args.append("--enable-ipv6") }
            args += ["--enable-sandbox", "--enable-seccomp", "\(pid)", "tap0"]
            opts.fds = [devnull, quietErr, quietErr, readyPipe.write.raw, exitPipe.read.raw]
            let p: ChildProcess
            do { p = try ChildProcess.spawn(args, opts) } catch {
                throw TunnelError(.carrier, "cannot start \(path)", errno: error.errno)
            }
            handedOver = true
            return Carrier(kind: kind, process: p, ready: readyPipe.read, exitFD: exitPipe.write, output: out[0], relay: verbose)
        case .pasta:
            // pasta stays in the foreground (so that it dies with us) and
            // writes its pid file once the namespace is configured. The pid
            // file is a FIFO whose read end is `ready`: the pid arriving is
            // the readiness signal, with no polling. It has a real path
            // (pasta of 2025 cannot open /proc/self/fd/N: it makes itself
            // non-dumpable first, which makes its /proc entries root's).
            let fifo = try PidFIFO()
            var args = [path, "--foreground", "--quiet", "--config-net", "--pid", fifo.path,
                        "-a", "10.0.2.100", "-n", "24", "-g", "10.0.2.2", "--ns-ifname", "tap0",
                        "--ns-mac-addr", Self.namespaceMAC,
                        "--mtu", "\(Resolver.carrierMTU)", "--dns-forward", "10.0.2.3"]
            if !hostLoopback { args.append("--no-map-gw") }
            if let interface { args += ["-i", interface] }
            args += ["-t", forwardTCP.isEmpty ? "none" : forwardTCP.map(\.description).joined(separator: ",")]
            args += ["-u", forwardUDP.isEmpty ? "none" : forwardUDP.map(\.description).joined(separator: ",")]
            args += ["-T", "none", "-U", "none"]
            if geteuid() == 0 { args += ["--runas", "0"] }
            args += ["--netns", "/proc/\(pid)/ns/net", "--userns", "/proc/\(pid)/ns/user"]
            opts.fds = [devnull, quietErr, quietErr]
            let p: ChildProcess
            do { p = try ChildProcess.spawn(args, opts) } catch {
                fifo.remove()
                throw TunnelError(.carrier, "cannot start \(path)", errno: error.errno)
            }
            handedOver = true
            let ready = fifo.takeReader()
            return Carrier(kind: kind, process: p, ready: ready, exitFD: nil, output: out[0], relay: verbose, pidFIFO: fifo)
        }
    }

    /// The MAC address pasta gives the namespace's tap0 (a locally
    /// administered one; tap0 talks only to its own pasta). Given, pasta
    /// knows it from the start; otherwise it learns it from the first frame
    /// the namespace sends, and frames it forwards in before that carry
    /// another destination address, which the namespace drops as for
    /// another host: a hub, which only answers, lost its peers' first
    /// handshakes (5 s, WireGuard's retry) in about a quarter of cold
    /// starts, whenever they came before tap0's first IPv6 chatter.
    static let namespaceMAC = "02:77:67:6e:73:01"

    /// Every option `start` gives `kind`, with harmless values, then
    /// `--version`: a carrier that knows them all prints its version and
    /// exits 0; an older one exits non-zero naming the one it does not know
    /// (`wgns doctor`). Kept beside `start` so that the two agree.
    static func optionProbe(_ kind: CarrierKind) -> [String] {
        switch kind {
        case .noCarrier:
            return []
        case .slirp4netns:
            return ["--configure", "--mtu=\(Resolver.carrierMTU)", "--ready-fd=3", "--exit-fd=4", "--disable-host-loopback",
                    "--enable-ipv6", "--enable-sandbox", "--enable-seccomp", "--version"]
        case .pasta:
            return ["--foreground", "--quiet", "--config-net", "-a", "10.0.2.100", "-n", "24", "-g", "10.0.2.2",
                    "--ns-ifname", "tap0", "--ns-mac-addr", namespaceMAC, "--mtu", "\(Resolver.carrierMTU)", "--dns-forward", "10.0.2.3", "--no-map-gw",
                    "-t", "none", "-u", "none", "-T", "none", "-U", "none", "--version"]
        }
    }

    /// Stops the carrier and waits for it.
    func stop() -> Termination {
        stopped = true
        if let e = exitFD.take() { e.close() }
        process.kill(SIGKILL)
        return process.wait()
    }
}

/// A FIFO at a real path, in a folder of its own (mode 0700) under
/// $XDG_RUNTIME_DIR, $TMPDIR or /tmp, opened for reading (non-blocking)
/// before the writer starts: the writer's open then never blocks, and its
/// first write is readable on the reader. Linux reports no hang-up on a
/// FIFO that no writer has opened yet, so a writer that dies before opening
/// it shows up only as the writer's own exit.
final class PidFIFO {
    /// The FIFO's path.
    let path: String
    private let dir: String
    private var reader: Int32
    private var removed = false

    init() throws(TunnelError) {
        var base = "/tmp"
        for name in ["XDG_RUNTIME_DIR", "TMPDIR"] {
            if let v = getenv(name).map({ String(cString: $0) }), v.hasPrefix("/"), access(v, W_OK | X_OK) == 0 {
                base = v
                break
            }
        }
        var template = Array("\(base)/wgns-pasta.XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw TunnelError(.carrier, "cannot make a private folder in \(base) for pasta's pid file", errno: currentErrno)
        }
        dir = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        path = dir + "/pid"
        if mkfifo(path, 0o600) != 0 {
            let e = errno
            rmdir(dir)
            throw TunnelError(.carrier, "cannot make \(path)", errno: Errno(rawValue: e))
        }
        reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if reader < 0 {
            let e = errno
            unlink(path)
            rmdir(dir)
            throw TunnelError(.carrier, "cannot open \(path)", errno: Errno(rawValue: e))
        }
    }

    /// The read end, owned by the caller from now on.
    func takeReader() -> Descriptor {
        let fd = reader
        reader = -1
        return Descriptor(owning: fd)
    }

    /// Removes the FIFO and its folder (once).
    func remove() {
        guard !removed else { return }
        removed = true
        unlink(path)
        rmdir(dir)
    }

    deinit {
        if reader >= 0 { close(reader) }
        remove()
    }
}
