import ArgumentParser
import Tunnel
import WGNetlink

struct VPNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpn",
        abstract: "Per-job private VPNs: a hub and N peers.",
        subcommands: [VPNNew.self])
}

struct VPNNew: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Write DIR/hub.conf and DIR/peer-1.conf ... DIR/peer-N.conf with fresh keys.",
        discussion: """
        In subnet 10.97.0.0/24 the hub is 10.97.0.1 and peer K is 10.97.0.(K+1). Every peer \
        points at the hub's --endpoint and keeps the path open (PersistentKeepalive = 25). \
        An endpoint on the host's loopback is written as 10.0.2.2 with HostLoopback = true, \
        the address at which a namespace reaches the host.
        """)

    @Argument(help: "Folder to write into (created mode 0700).")
    var dir: String

    @Option(help: "Number of peers.")
    var peers: Int

    @Option(help: "Subnet CIDR; give one IPv4 and optionally one IPv6 subnet.")
    var subnet: [String] = ["10.97.0.0/24"]

    @Option(help: "Where peers reach the hub: HOST:PORT or [v6]:PORT.")
    var endpoint: String

    @Flag(help: "Give every peer a preshared key with the hub.")
    var psk = false

    @Flag(help: "Replace a VPN already in DIR.")
    var force = false

    func run() throws {
        var subnets: [IPPrefix] = []
        for s in subnet {
            guard s.contains("/"), let p = IPPrefix(s) else {
                throw CLIError("--subnet '\(s)': expected a CIDR such as 10.97.0.0/24 or fd97::/64")
            }
            subnets.append(p)
        }
        guard let ep = Endpoint(endpoint) else {
            throw CLIError("--endpoint '\(endpoint)': expected HOST:PORT, 1.2.3.4:PORT or [v6]:PORT")
        }
        do {
            let vpn = try VPN.generate(peerCount: peers, subnets: subnets, endpoint: ep, presharedKeys: psk)
            try vpn.write(to: dir, overwrite: force)
            print("wrote \(VPN.hubPath(dir)) and \(peers) peer configs (peer-1.conf ... peer-\(peers).conf)")
        } catch {
            throw CLIError("\(error)")
        }
    }
}
