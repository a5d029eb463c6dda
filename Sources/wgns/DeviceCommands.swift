import ArgumentParser
import KeyStore
import Tunnel
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// `wgns _rtnl STEP...`: hidden, for tests. Runs rtnetlink steps in this
/// process's namespace, one per argument, printing one line per query:
///   `create NAME KIND`, `veth NAME PEER`, `delete NAME`, `up NAME`, `down NAME`,
///   `mtu NAME N`, `addr-add NAME PREFIX`, `addr-del NAME PREFIX`,
///   `route-add PREFIX DEV [TABLE]`, `route-del PREFIX DEV [TABLE]`,
///   `rule-add not-fwmark MARK TABLE v4|v6`, `rule-add suppress TABLE v4|v6` (and `rule-del`),
///   `links`, `index NAME`, `route-get ADDR`, `move NAME NETNS-PATH`.
struct RouteNetlinkSteps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_rtnl", abstract: "Run rtnetlink steps (for tests).", shouldDisplay: false)

    @Argument(help: "Steps, each one argument with space-separated words.")
    var steps: [String]

    func run() throws {
        do { try runSteps() } catch let e as NetlinkError { throw CLIError(e.message) }
    }

    private func runSteps() throws {
        let rt = try RouteNetlink()
        for step in steps {
            let w = step.split(separator: " ").map(String.init)
            func prefix(_ s: String) throws -> IPPrefix {
                guard let p = IPPrefix(s) else { throw CLIError("step \"\(step)\": bad prefix \(s)") }
                return p
            }
            func rule(_ w: ArraySlice<String>) throws -> RoutingRule {
                let a = Array(w)
                switch a.first {
                case "not-fwmark" where a.count == 4:
                    return .notMarked(UInt32(a[1])!, table: UInt32(a[2])!, isV6: a[3] == "v6")
                case "suppress" where a.count == 3:
                    var r = RoutingRule.mainWithoutDefault(isV6: a[2] == "v6")
                    r.table = UInt32(a[1])!
                    return r
                default: throw CLIError("step \"\(step)\": bad rule")
                }
            }
            switch (w.first ?? "", w.count) {
            case ("create", 3): try rt.createLink(name: w[1], kind: w[2])
            case ("veth", 3): try rt.createVeth(name: w[1], peer: w[2])
            case ("delete", 2): try rt.deleteLink(w[1])
            case ("up", 2): try rt.setLink(w[1], up: true)
            case ("down", 2): try rt.setLink(w[1], up: false)
            case ("mtu", 3): try rt.setLink(w[1], mtu: UInt32(w[2])!)
            case ("addr-add", 3): try rt.addAddress(prefix(w[2]), to: w[1])
            case ("addr-del", 3): try rt.removeAddress(prefix(w[2]), from: w[1])
            case ("route-add", 3), ("route-add", 4):
                try rt.addRoute(prefix(w[1]), device: w[2], table: w.count == 4 ? UInt32(w[3])! : nil)
            case ("route-del", 3), ("route-del", 4):
                try rt.removeRoute(prefix(w[1]), device: w[2], table: w.count == 4 ? UInt32(w[3])! : nil)
            case ("rule-add", _): try rt.addRule(rule(w.dropFirst()))
            case ("rule-del", _): try rt.removeRule(rule(w.dropFirst()))
            case ("links", 1):
                for l in try rt.links() {
                    print("\(l.index) \(l.name) \(l.kind ?? "-") \(l.mtu) \(l.isUp ? "up" : "down")")
                }
            case ("index", 2): print(try rt.linkIndex(w[1]).map { "\($0)" } ?? "none")
            case ("route-get", 2):
                guard let a = IPAddress(w[1]) else { throw CLIError("step \"\(step)\": bad address") }
                let r = try rt.routeGet(a)
                print("dev \(r.device) via \(r.gateway.map { "\($0)" } ?? "-") src \(r.preferredSource.map { "\($0)" } ?? "-") mtu \(r.mtu)")
            case ("move", 3):
                let fd = open(w[2], O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw CLIError("cannot open \(w[2]): \(String(cString: strerror(errno)))") }
                defer { close(fd) }
                try rt.moveLink(w[1], toNetnsFD: fd)
            default:
                throw CLIError("unknown step \"\(step)\"")
            }
        }
    }
}
