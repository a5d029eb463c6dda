import POSIX
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// `DIR/hub.endpoint`: where a running hub can be reached, and how to tell
/// that the hub which wrote it is still alive.
///
/// ```
/// node1.cluster:43817
/// hub node1.cluster 6f1c...-boot-id 12345 987654
/// ```
///
/// The first line is `HOST:PORT`; the second names the node, its boot id,
/// and the pid and start time (clock ticks since boot, /proc/PID/stat field
/// 22) of the `wgns hub` that wrote it. That process also holds an
/// open-file-description lock on the file for as long as it lives. A reader
/// on the same node (same boot id) trusts only a live pid of the same start
/// time; a reader on another node trusts only a held lock (the kernel or the
/// shared file system drops it when the hub dies), unless the file system
/// has no locks at all. A file left by a killed hub is therefore stale, not
/// an endpoint.
public struct HubEndpoint: Sendable, Hashable {
    /// Where peers send to.
    public var endpoint: Endpoint
    /// The writer's node name, boot id, pid and start time.
    public var node: String
    public var bootID: String
    public var pid: Int32
    public var startTime: UInt64

    /// Creates the record of this process, reachable at `endpoint`.
    public static func ofThisProcess(_ endpoint: Endpoint) -> HubEndpoint {
        HubEndpoint(endpoint: endpoint, node: nodeName(), bootID: bootID(), pid: getpid(),
                    startTime: startTime(of: getpid()) ?? 0)
    }

    /// The file's text.
    public var text: String { "\(endpoint)\nhub \(node) \(bootID) \(pid) \(startTime)\n" }

    /// Parses the file's text; nil when it is not one.
    public init?(text: String) {
        let lines = text.split(separator: "\n")
        guard lines.count >= 2, let e = Endpoint(lines[0]) else { return nil }
        let f = lines[1].split(separator: " ")
        guard f.count == 5, f[0] == "hub", let pid = Int32(f[3]), let t = UInt64(f[4]) else { return nil }
        self.init(endpoint: e, node: String(f[1]), bootID: String(f[2]), pid: pid, startTime: t)
    }

    init(endpoint: Endpoint, node: String, bootID: String, pid: Int32, startTime: UInt64) {
        self.endpoint = endpoint
        self.node = node
        self.bootID = bootID
        self.pid = pid
        self.startTime = startTime
    }

    /// This node's name (gethostname).
    public static func nodeName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// The kernel's boot id (changes at every boot: a pid from before a reboot means nothing).
    static func bootID() -> String {
        let text = (try? readSmallFile("/proc/sys/kernel/random/boot_id")) ?? ""
        let id = text.filter { !$0.isWhitespace }
        return id.isEmpty ? "-" : id
    }

    /// Field 22 of /proc/PID/stat; nil when there is no such process.
    static func startTime(of pid: Int32) -> UInt64? {
        guard let text = try? readSmallFile("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces): state is field 3.
        let rest = text[text.index(after: close)...].split(separator: " ")
        guard rest.count > 19 else { return nil }
        return UInt64(rest[19])
    }

    /// Whether the hub that wrote this record still runs, judged on this node:
    /// true or false when it can be told, nil when it cannot (another node,
    /// no locks on the file system).
    func isAlive(lockHeld: Bool?) -> Bool? {
        if bootID == HubEndpoint.bootID() && node == HubEndpoint.nodeName() {
            return HubEndpoint.startTime(of: pid) == startTime
        }
        return lockHeld
    }

    /// What `read(dir)` found.
    public enum State: Sendable, Hashable {
        /// No file (or an empty one being written).
        case absent
        /// A file whose hub is gone.
        case stale(HubEndpoint)
        /// A file whose hub is up (or cannot be told otherwise).
        case live(HubEndpoint)
        /// A file that is not an endpoint file.
        case malformed
    }

    /// Reads `DIR/hub.endpoint` and judges its hub's liveness.
    public static func read(_ dir: String) -> State {
        let path = VPN.endpointPath(dir)
        guard let file = try? Descriptor.open(path, O_RDONLY) else { return .absent }
        let fd = file.raw
        let bytes = (try? file.readAll()) ?? []
        guard let record = HubEndpoint(text: String(decoding: bytes, as: UTF8.self)) else { return .malformed }
        let held = PublishedFile.lockHeld(fd)
        return record.isAlive(lockHeld: held) == false ? .stale(record) : .live(record)
    }

    /// Waits up to `seconds` for a live endpoint in `dir`; a stale file is
    /// waited past (a new hub replaces it). Throws one line naming `dir`.
    public static func wait(_ dir: String, seconds: Double) throws(TunnelError) -> HubEndpoint {
        let deadline = monotonicNanos() + UInt64(max(0, seconds) * 1e9)
        var pause: UInt32 = 10_000
        var last = State.absent
        while true {
            last = read(dir)
            if case .live(let e) = last { return e }
            if monotonicNanos() >= deadline { break }
            // A shared file system shows a new file only when it looks again:
            // there is nothing to wait on but time.
            usleep(pause)
            pause = min(pause * 2, 200_000)
        }
        let waited = seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
        switch last {
        case .stale(let e):
            throw TunnelError(.config, "\(VPN.endpointPath(dir)) is stale: its hub (pid \(e.pid) on \(e.node)) is gone and no hub replaced it within \(waited); start `wgns hub \(dir)`")
        case .malformed:
            throw TunnelError(.config, "\(VPN.endpointPath(dir)) is not a hub endpoint file (expected HOST:PORT and a hub line); start `wgns hub \(dir)`")
        default:
            throw TunnelError(.config, "\(dir): no hub published its endpoint (\(VPN.endpointPath(dir))) within \(waited); start `wgns hub \(dir)`, or give the hub's HOST:PORT with `wgns vpn new --endpoint`")
        }
    }

    /// Writes this record to `DIR/hub.endpoint` atomically (mode 0600) and
    /// keeps an open-file-description lock on it; returns the descriptor
    /// that holds the lock (close it, or exit, to drop it).
    func publish(in dir: String) throws(TunnelError) -> Int32 {
        try PublishedFile.publish(text, at: VPN.endpointPath(dir), through: "\(dir)/.hub.endpoint.\(getpid())")
    }

    /// Removes `DIR/hub.endpoint` if it is still the file behind `fd` (a
    /// newer hub's file stays), and closes `fd`.
    static func unpublish(in dir: String, fd: Int32) {
        PublishedFile.unpublish(VPN.endpointPath(dir), fd: fd)
    }
}
