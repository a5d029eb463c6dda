import Tunnel
import WGNetlink

enum VPNCommand {
    static let command = Command(
        name: "vpn",
        abstract: "Per-job private VPNs: a hub and N peers.",
        subcommands: [VPNNew.command])
}

struct VPNNew: Invocation {
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
        options: [peers, subnet, endpoint, psk, force],
        arguments: [Argument("DIR", "Folder to write into (created mode 0700).")],
        run: start)

    static let peers = Option.option("peers", "N", "Number of peers.", required: true)
    static let subnet = Option.option("subnet", "CIDR", "Subnet CIDR; give one IPv4 and optionally one IPv6 subnet, each with its own --subnet (default: 10.97.0.0/24).")
    static let endpoint = Option.option("endpoint", "HOST[:PORT]", "Where peers reach the hub: HOST:PORT or [v6]:PORT; HOST alone lets the hub pick the port (default: the hub publishes its node's name and a port it picks).")
    static let psk = Option.flag("psk", "Give every peer a preshared key with the hub.")
    static let force = Option.flag("force", "Replace a VPN already in DIR.")

    var dir: String
    var peers: Int
    var subnets: [String]
    var endpoint: String?
    var psk = false
    var force = false
    /// The VPN, keys and all, once `validate` has made it.
    var vpn: VPN?

    init(_ a: Parsed) throws {
        dir = a.positionals[0]
        peers = try a.number(Self.peers)!
        let given = a.values(Self.subnet)
        subnets = given.isEmpty ? ["10.97.0.0/24"] : given
        endpoint = a.value(Self.endpoint)
        psk = a.flag(Self.psk)
        force = a.flag(Self.force)
    }

    /// Reads the subnets and the endpoint and generates the VPN in memory:
    /// every mistake in them (a subnet too small for the peers, a port 0) is
    /// found before DIR is touched.
    mutating func validate() throws {
        var prefixes: [IPPrefix] = []
        for s in subnets {
            guard s.contains("/"), let p = IPPrefix(s) else {
                throw CLIError.usage("--subnet '\(s)': expected a CIDR such as 10.97.0.0/24 or fd97::/64")
            }
            prefixes.append(p)
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
                throw CLIError.usage("--endpoint '\(endpoint)': expected HOST, HOST:PORT, 1.2.3.4:PORT or [v6]:PORT")
            }
        }
        do {
            vpn = try VPN.generate(peerCount: peers, subnets: prefixes, endpoint: ep, presharedKeys: psk)
        } catch {
            // What generate refuses is always a flag's value (it names the flag).
            throw CLIError.usage(error.description)
        }
        vpn?.advertise = advertise
    }

    func run() throws {
        try vpn!.write(to: dir, overwrite: force)
        try Output.write("wrote \(VPN.hubPath(dir)) and \(peers) peer configs (peer-1.conf ... peer-\(peers).conf)\n")
    }
}
