import Tunnel
import WGNetlink

enum VPNCommand {
    static let command = Command(
        name: "vpn",
        abstract: "Per-job private VPNs: a hub and N peers.",
        subcommands: [VPNNew.command])
}

struct VPNNew {
    static let command = Command(
        name: "new",
        abstract: "Write DIR/hub.conf and DIR/peer-1.conf ... DIR/peer-N.conf with fresh keys.",
        discussion: """
        In subnet 10.97.0.0/24 the hub is 10.97.0.1 and peer K is 10.97.0.(K+1). Every peer \
        keeps the path to the hub open (PersistentKeepalive = 25). Without --endpoint, \
        `wgns hub DIR` picks a free port when it starts and publishes HOST:PORT in \
        DIR/hub.endpoint, where `wgns up DIR` reads it: nothing needs to be known in \
        advance. With --endpoint HOST:PORT every peer points there and the hub listens \
        on PORT; an endpoint on the host's loopback is written as 10.0.2.2 with \
        HostLoopback = true, the address at which a namespace reaches the host. With \
        --endpoint HOST (no port), the hub picks the port and publishes HOST with it.
        """,
        options: [
            .option("peers", "N", "Number of peers.", required: true),
            .option("subnet", "CIDR", "Subnet CIDR; give one IPv4 and optionally one IPv6 subnet, each with its own --subnet (default: 10.97.0.0/24)."),
            .option("endpoint", "HOST[:PORT]", "Where peers reach the hub: HOST:PORT or [v6]:PORT; HOST alone lets the hub pick the port (default: the hub publishes its node's name and a port it picks)."),
            .flag("psk", "Give every peer a preshared key with the hub."),
            .flag("force", "Replace a VPN already in DIR."),
        ],
        arguments: [Argument("DIR", "Folder to write into (created mode 0700).")]
    ) { a in
        let subnets = a.values("subnet")
        try VPNNew(dir: a.positionals[0], peers: a.number("peers")!, subnet: subnets.isEmpty ? ["10.97.0.0/24"] : subnets,
                   endpoint: a.value("endpoint"), psk: a.flag("psk"), force: a.flag("force")).run()
    }

    var dir: String
    var peers: Int
    var subnet: [String]
    var endpoint: String?
    var psk = false
    var force = false

    func run() throws {
        var subnets: [IPPrefix] = []
        for s in subnet {
            guard s.contains("/"), let p = IPPrefix(s) else {
                throw CLIError("--subnet '\(s)': expected a CIDR such as 10.97.0.0/24 or fd97::/64")
            }
            subnets.append(p)
        }
        var ep: Endpoint?
        var advertise: String?
        if let endpoint {
            // A bare name or IPv4 address (no colon), or a bracketed IPv6 address without a port.
            let bare = endpoint.hasPrefix("[") && endpoint.hasSuffix("]") ? String(endpoint.dropFirst().dropLast()) : endpoint
            if !bare.isEmpty && !endpoint.contains("]:") && (bare != endpoint || !bare.contains(":")),
               Endpoint("\(bare.contains(":") ? "[\(bare)]" : bare):1") != nil {
                advertise = bare
            } else if let e = Endpoint(endpoint) {
                ep = e
            } else {
                throw CLIError("--endpoint '\(endpoint)': expected HOST, HOST:PORT, 1.2.3.4:PORT or [v6]:PORT")
            }
        }
        do {
            var vpn = try VPN.generate(peerCount: peers, subnets: subnets, endpoint: ep, presharedKeys: psk)
            vpn.advertise = advertise
            try vpn.write(to: dir, overwrite: force)
        } catch {
            throw CLIError("\(error)")
        }
        try Output.write("wrote \(VPN.hubPath(dir)) and \(peers) peer configs (peer-1.conf ... peer-\(peers).conf)\n")
    }
}
