#if canImport(Glibc)
import Glibc
#endif

/// `wgns hub HUB.conf`: the hub of a per-job VPN in a rootless namespace of
/// its own. pasta forwards the hub's UDP ListenPort from the host (and
/// nothing else), IPv4 and IPv6 forwarding are on inside, and the peers'
/// traffic to each other is routed back out of the same WireGuard interface
/// by the AllowedIPs of each peer. There is no job: the hub stays up until
/// SIGINT, SIGTERM or SIGHUP (or `wgns down NAME`).
public enum Hub {
    /// Checks a hub's config and turns the plan into a hub's plan.
    static func check(_ configs: [TunnelConfig], files: [String], plan: inout UpPlan) throws(TunnelError) {
        guard configs.count == 1, let c = configs.first, let i = plan.interfaces.first else {
            throw TunnelError(.config, "a hub takes exactly one config")
        }
        let file = files[0]
        guard let port = c.interface.listenPort, port != 0 else {
            throw TunnelError(.config, "\(file): a hub needs ListenPort in [Interface] (the port pasta forwards from the host)")
        }
        if !c.namespace.forwardTCP.isEmpty || c.namespace.forwardUDP.contains(where: { $0.hostPort != port || $0.namespacePort != port }) {
            throw TunnelError(.config, "\(file): a hub forwards only its ListenPort \(port); remove the other ForwardTCP/ForwardUDP entries")
        }
        if c.namespace.carrier == .slirp4netns {
            throw TunnelError(.config, "\(file): a hub needs Carrier = pasta (slirp4netns cannot forward a UDP port to it)")
        }
        guard findExecutable("pasta") != nil else {
            throw TunnelError(.noCarrier, "a hub needs pasta (apt-get install passt)")
        }
        plan.carrier = .pasta
        plan.forwardUDP = [PortForward(hostPort: port, namespacePort: port)]
        plan.forwardTCP = []
        plan.hostLoopback = false
        plan.forwarding = true
        plan.isolate = false
        plan.command = []
        let addresses = c.interface.addresses.map(\.description).joined(separator: ", ")
        plan.readyMessage = "wgns hub: up, \(i.name) \(addresses.isEmpty ? "(no address)" : addresses), UDP port \(port) forwarded from the host, \(c.peers.count) peers"
    }

    /// Turns on IPv4 and IPv6 forwarding in the calling process's network
    /// namespace (per-namespace sysctls; root of the owning user namespace may write them).
    static func enableForwarding() throws(TunnelError) {
        try Namespace.writeFile("/proc/sys/net/ipv4/ip_forward", "1")
        // Peer-to-peer packets go back out of the interface they came in by:
        // that is the hub's job, not a reason for ICMP redirects (before the
        // interface exists, so that `default` applies to it).
        try Namespace.writeFile("/proc/sys/net/ipv4/conf/all/send_redirects", "0")
        try Namespace.writeFile("/proc/sys/net/ipv4/conf/default/send_redirects", "0")
        // IPv6 may be disabled on the host; then there is nothing to forward.
        if access("/proc/sys/net/ipv6/conf/all/forwarding", F_OK) == 0 {
            try Namespace.writeFile("/proc/sys/net/ipv6/conf/all/forwarding", "1")
        }
    }
}
