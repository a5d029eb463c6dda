import POSIX
import SystemPackage
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// `DIR/peer-K.endpoint`: where member K's data plane listens on its node,
/// and how to tell that the member which wrote it is still alive. The same
/// shape and rules as the hub's `DIR/hub.endpoint` (`HubEndpoint`), with
/// the node's fabric address added so that readers need no name lookup:
///
/// ```
/// h2:40123
/// peer-1 h2 6f1c...-boot-id 12345 987654
/// address 10.231.0.2
/// ```
///
/// Written atomically, mode 0600, by the member's supervisor once its data
/// plane has bound the port; an open-file-description lock is held on it
/// for the member's lifetime; removed when the member stops. A file left by
/// a member killed with SIGKILL is stale (`read`).
public struct MemberEndpoint: Sendable, Hashable {
    /// `HOST:PORT` (HOST: this node's name as other nodes resolve it).
    public var endpoint: Endpoint
    /// The node's address as resolved on the node itself; nil when it
    /// resolved to loopback only (readers then resolve `endpoint`).
    public var address: IPAddress?
    /// Peer K.
    public var peer: Int
    /// The writer's node name, boot id, pid and start time.
    public var node: String
    public var bootID: String
    public var pid: Int32
    public var startTime: UInt64

    /// The record of this process for peer `peer`, reachable on `port`.
    public static func ofThisProcess(peer: Int, port: UInt16) -> MemberEndpoint {
        let host = Hub.canonicalNodeName()
        var address: IPAddress?
        if let a = try? Resolver.resolve(Endpoint(host: host, port: port), prefer: .ipv4,
                                         policy: .init(retries: 0), notice: { _ in }),
           !VPN.isLoopback(a.address.description) {
            address = a.address
        }
        return MemberEndpoint(endpoint: Endpoint(host: host, port: port), address: address, peer: peer,
                              node: HubEndpoint.nodeName(), bootID: HubEndpoint.bootID(), pid: getpid(),
                              startTime: HubEndpoint.startTime(of: getpid()) ?? 0)
    }

    /// The file's text.
    public var text: String {
        "\(endpoint)\npeer-\(peer) \(node) \(bootID) \(pid) \(startTime)\n" + (address.map { "address \($0)\n" } ?? "")
    }

    /// Parses the file's text; nil when it is not one.
    public init?(text: String) {
        let lines = text.split(separator: "\n")
        guard lines.count >= 2, let e = Endpoint(lines[0]) else { return nil }
        let f = lines[1].split(separator: " ")
        guard f.count == 5, f[0].hasPrefix("peer-"), let k = Int(f[0].dropFirst(5)),
              let pid = Int32(f[3]), let t = UInt64(f[4]) else { return nil }
        var address: IPAddress?
        for line in lines.dropFirst(2) where line.hasPrefix("address ") { address = IPAddress(String(line.dropFirst(8))) }
        self.init(endpoint: e, address: address, peer: k, node: String(f[1]), bootID: String(f[2]), pid: pid, startTime: t)
    }

    init(endpoint: Endpoint, address: IPAddress?, peer: Int, node: String, bootID: String, pid: Int32, startTime: UInt64) {
        self.endpoint = endpoint
        self.address = address
        self.peer = peer
        self.node = node
        self.bootID = bootID
        self.pid = pid
        self.startTime = startTime
    }

    /// Where a data plane on this node sends to: the published address,
    /// else the host name resolved here (nil when it does not resolve).
    public func socketAddress() -> SocketAddress? {
        if let address { return SocketAddress(address: address, port: endpoint.port) }
        return try? Resolver.resolve(endpoint, prefer: .ipv4, policy: .init(retries: 0), notice: { _ in })
    }

    /// What `read` found (as `HubEndpoint.State`).
    public enum State: Sendable, Hashable {
        case absent
        case stale(MemberEndpoint)
        case live(MemberEndpoint)
        case malformed
    }

    /// Reads `DIR/peer-K.endpoint` and judges its writer's liveness as
    /// `HubEndpoint.read` does (same node and boot: pid and start time;
    /// another node: the lock).
    public static func read(_ dir: String, peer k: Int) -> State {
        guard let file = try? Descriptor.open(VPN.memberEndpointPath(dir, k), O_RDONLY) else { return .absent }
        let fd = file.raw
        let bytes = (try? file.readAll()) ?? []
        guard let record = MemberEndpoint(text: String(decoding: bytes, as: UTF8.self)) else { return .malformed }
        var alive: Bool?
        if record.bootID == HubEndpoint.bootID() && record.node == HubEndpoint.nodeName() {
            alive = HubEndpoint.startTime(of: record.pid) == record.startTime
        } else {
            alive = PublishedFile.lockHeld(fd)
        }
        return alive == false ? .stale(record) : .live(record)
    }

    /// Writes this record to `DIR/peer-K.endpoint` atomically (mode 0600)
    /// and keeps an open-file-description lock on it; returns the
    /// descriptor that holds the lock (`unpublish` closes it).
    public func publish(in dir: String) throws(TunnelError) -> Int32 {
        try PublishedFile.publish(text, at: VPN.memberEndpointPath(dir, peer), through: "\(dir)/.peer-\(peer).endpoint.\(getpid())")
    }

    /// Removes `DIR/peer-K.endpoint` if it is still the file behind `fd`
    /// (a newer member K's file stays), and closes `fd`.
    public static func unpublish(in dir: String, peer k: Int, fd: Int32) {
        PublishedFile.unpublish(VPN.memberEndpointPath(dir, k), fd: fd)
    }
}
