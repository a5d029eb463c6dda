import Tunnel
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

enum VPNCommand {
    static let command = Command(
        name: "vpn",
        abstract: "Per-job private VPNs: a hub and N peers.",
        subcommands: [VPNNew.command, VPNStatus.command])
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
        options: [peers, subnet, endpoint, psk, topology, ports, force],
        arguments: [Argument("DIR", "Folder to write into (created mode 0700).")],
        run: start)

    static let peers = Option.option("peers", "N", "Number of peers.", required: true)
    static let subnet = Option.option("subnet", "CIDR", "Subnet CIDR; give one IPv4 and optionally one IPv6 subnet, each with its own --subnet (default: 10.97.0.0/24).")
    static let endpoint = Option.option("endpoint", "HOST[:PORT]", "Where peers reach the hub: HOST:PORT or [v6]:PORT; HOST alone lets the hub pick the port (default: the hub publishes its node's name and a port it picks).")
    static let psk = Option.flag("psk", "Give every peer a preshared key with the hub.")
    static let force = Option.flag("force", "Replace a VPN already in DIR.")
    static let ports = Option.option("ports", "LO-HI", "With --topology mesh: every member's data plane binds its UDP port inside this range (the ports a site's firewall opens between nodes); written to DIR/members.")
    static let topology = Option.option("topology", "star|mesh", "star (default): members talk through the hub. mesh: on the builtin backend each member publishes its own endpoint (DIR/peer-K.endpoint) and goes direct to every member it can reach, the hub relaying only until then (and where no direct path works). Written to DIR/members with every peer's public key.")

    var dir: String
    var peers: Int
    var subnets: [String]
    var endpoint: String?
    var psk = false
    var force = false
    var topology: VPN.Topology = .star
    var ports: ClosedRange<UInt16>?
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
        topology = try a.choice(Self.topology) ?? .star
        ports = try portRange(a.value(Self.ports))
        if ports != nil && topology != .mesh { throw CLIError.usage("--ports is for the members of a mesh: give --topology mesh (a hub takes its own `wgns hub --ports`)") }
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
        vpn?.topology = topology
        vpn?.memberPorts = ports
    }

    func run() throws {
        try vpn!.write(to: dir, overwrite: force)
        try Output.write("wrote \(VPN.hubPath(dir)) and \(peers) peer configs (peer-1.conf ... peer-\(peers).conf)\n")
    }
}

struct VPNStatus: Invocation {
    static let command = Command(
        name: "status",
        abstract: "One line per member of the VPN in DIR: published or not, where, direct or relayed.",
        discussion: """
        For each peer: whether its DIR/peer-K.endpoint is live, stale (its wgns was \
        killed: another process or boot) or absent (never joined, or stopped); the node, \
        HOST:PORT and fabric address it published; how many of the other members it \
        reaches directly (its data plane's own view, DIR/paths/peer-K, rewritten on every \
        change and every 10 s); and, from each member running on this node, whether it \
        reaches that peer directly or through the hub, with the last handshake and the \
        bytes of the direct path. Exits 1 when some member is not live, so that a job's \
        script can tell which one never joined. Mesh VPNs on the builtin backend publish \
        endpoints; a star VPN's members publish nothing.
        """,
        options: [json],
        arguments: [Argument("DIR", "The VPN folder (`wgns vpn new`).")],
        run: start)

    static let json = Option.flag("json", "JSON: an array with one object per member.")

    var dir: String
    var json = false

    init(_ a: Parsed) throws {
        dir = a.positionals[0]
        json = a.flag(Self.json)
    }

    mutating func validate() throws {
        guard VPN.isDirectory(dir), VPN.peerCount(dir) > 0 else {
            throw CLIError.usage("\(dir) holds no VPN (no \(VPN.peerPath(dir, 1)))")
        }
    }

    func run() throws {
        let rows = VPN.status(dir)
        let now = Int64(time(nil))
        func ago(_ t: Int64) -> String { t == 0 ? "never" : "\(max(0, now - t)) s ago" }
        var out = ""
        if json {
            out = "[\n"
            for (n, r) in rows.enumerated() {
                func str(_ s: String?) -> String { s.map { "\"\(jsonEscaped($0))\"" } ?? "null" }
                let seen = r.seenFromHere.map { p in
                    "{\"from\": \"peer-\(p.from)\", \"state\": \"\(p.state)\", \"endpoint\": \(str(p.endpoint == "-" ? nil : p.endpoint)), \"lastHandshake\": \(p.lastHandshake), \"receiveBytes\": \(p.receiveBytes), \"transmitBytes\": \(p.transmitBytes), \"reason\": \(str(p.reason))}"
                }.joined(separator: ", ")
                out += "  {\"peer\": \(r.peer), \"name\": \"peer-\(r.peer)\", \"published\": \"\(r.published)\", \"node\": \(str(r.node)), \"endpoint\": \(str(r.endpoint)), \"address\": \(str(r.address)), "
                out += "\"direct\": \(r.directCount.map(String.init) ?? "null"), \"others\": \(r.otherCount.map(String.init) ?? "null"), \"seenFromHere\": [\(seen)]}"
                out += n == rows.count - 1 ? "\n" : ",\n"
            }
            out += "]\n"
        } else {
            for r in rows {
                var line = "peer-\(r.peer) \(r.published)"
                if let node = r.node { line += " on \(node) at \(r.endpoint ?? "-")" + (r.address.map { " (\($0))" } ?? "") }
                if let d = r.directCount, let o = r.otherCount { line += ", direct to \(d) of \(o)" }
                for p in r.seenFromHere {
                    line += "; from peer-\(p.from): \(p.state)"
                    if p.state == "direct" || p.lastHandshake > 0 {
                        line += " via \(p.endpoint), handshake \(ago(p.lastHandshake)), \(p.receiveBytes) B received, \(p.transmitBytes) B sent"
                    }
                }
                out += line + "\n"
            }
        }
        try Output.write(out)
        if rows.contains(where: { $0.published != "live" }) { Glibc.exit(1) }
    }
}
