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
    /// Checks a hub's config and turns the plan into a hub's plan. Without a
    /// ListenPort the hub picks a host port before each attempt
    /// (`pickPort`) and listens on the same one inside.
    static func check(_ configs: [TunnelConfig], files: [String], plan: inout UpPlan) throws(TunnelError) {
        guard configs.count == 1, let c = configs.first, let i = plan.interfaces.first else {
            throw TunnelError(.config, "a hub takes exactly one config")
        }
        let file = files[0]
        let port = c.interface.listenPort ?? 0
        if !c.namespace.forwardTCP.isEmpty || c.namespace.forwardUDP.contains(where: { $0.hostPort != port || $0.namespacePort != port }) {
            let hint = port == 0 ? "a hub without ListenPort forwards only the port it picks" : "a hub forwards only its ListenPort \(port)"
            throw TunnelError(.config, "\(file): \(hint); remove the other ForwardTCP/ForwardUDP entries")
        }
        // The builtin backend's data plane listens on the host port itself:
        // no carrier (a config's Carrier = pasta, as `vpn new` writes it for
        // the other backends, has nothing to forward then).
        let builtin = plan.backend == .builtin
        if builtin {
            plan.carrier = .noCarrier
        } else {
            if c.namespace.carrier == .slirp4netns || plan.carrier == .noCarrier {
                throw TunnelError(.config, "\(file): a hub on the \(plan.backend.rawValue) backend needs Carrier = pasta (slirp4netns cannot forward a UDP port to it; none forwards nothing)")
            }
            guard findExecutable("pasta") != nil else {
                throw TunnelError(.noCarrier, "a hub needs pasta (apt-get install passt), or the builtin backend (--backend builtin)")
            }
            plan.carrier = .pasta
        }
        plan.forwardTCP = []
        plan.hostLoopback = false
        plan.forwarding = true
        plan.isolate = false
        plan.command = []
        plan.hosts = hostsEntries(c)
        let addresses = c.interface.addresses.map(\.description).joined(separator: ", ")
        let up = "wgns hub: up, \(i.name) \(addresses.isEmpty ? "(no address)" : addresses)"
        if port == 0 {
            plan.forwardUDP = []
            plan.hub = HubState(readyMessage: up, peerCount: c.peers.count, picksPort: true, onHost: builtin)
        } else {
            plan.forwardUDP = builtin ? [] : [PortForward(hostPort: port, namespacePort: port)]
            plan.readyMessage = "\(up), UDP port \(port) \(builtin ? "on the host" : "forwarded from the host"), \(c.peers.count) peers"
            plan.hub = HubState(readyMessage: up, peerCount: c.peers.count, picksPort: false, onHost: builtin)
            plan.hub?.port = port
        }
    }

    /// The members' /etc/hosts lines when the hub's peers follow `wgns vpn
    /// new`'s address rule (peer K at host K+1 of the hub's subnets); nil
    /// for a hub whose peers are numbered otherwise.
    static func hostsEntries(_ c: TunnelConfig) -> String? {
        let subnets = c.interface.addresses.map(\.network)
        guard !subnets.isEmpty, c.interface.addresses.allSatisfy({ $0 == VPN.address(in: $0.network, host: 1) }) else { return nil }
        for (k, p) in c.peers.enumerated() {
            let want = subnets.map { VPN.address(in: $0, host: UInt64(k + 2)).address }
            guard p.allowedIPs.map(\.address) == want else { return nil }
        }
        return VPN.hostsEntries(subnets: subnets, peerCount: c.peers.count)
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
