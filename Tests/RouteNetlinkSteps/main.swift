// wgns-rtnl STEP...: a test helper, not part of the product. Runs rtnetlink
// steps through WGNetlink in this process's network namespace, one per
// argument, and prints one line per query, so that the tests can compare
// WGNetlink with iproute2 inside a fresh `unshare -Urn`:
//   create NAME KIND, veth NAME PEER, delete NAME, up NAME, down NAME,
//   mtu NAME N, addr-add NAME PREFIX, addr-del NAME PREFIX,
//   route-add PREFIX DEV [TABLE], route-del PREFIX DEV [TABLE],
//   rule-add not-fwmark MARK TABLE v4|v6, rule-add suppress TABLE v4|v6 (and rule-del),
//   links, index NAME, route-get ADDR, move NAME NETNS-PATH.
// A bad step is one line on stderr and exit 2; a netlink error, exit 1.
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

struct StepError: Error { var message: String }

func say(_ text: String, to fd: Int32 = STDOUT_FILENO) {
    let b = Array(text.utf8)
    var off = 0
    while off < b.count {
        let n = b.withUnsafeBytes { write(fd, $0.baseAddress! + off, b.count - off) }
        if n <= 0 { if errno == EINTR { continue }; return }
        off += n
    }
}

func number(_ s: String, _ step: String) throws -> UInt32 {
    guard let n = UInt32(s) else { throw StepError(message: "step \"\(step)\": '\(s)' is not a number") }
    return n
}

func prefix(_ s: String, _ step: String) throws -> IPPrefix {
    guard let p = IPPrefix(s) else { throw StepError(message: "step \"\(step)\": bad prefix \(s)") }
    return p
}

func rule(_ w: [String], _ step: String) throws -> RoutingRule {
    switch w.first {
    case "not-fwmark" where w.count == 4:
        return .notMarked(try number(w[1], step), table: try number(w[2], step), isV6: w[3] == "v6")
    case "suppress" where w.count == 3:
        var r = RoutingRule.mainWithoutDefault(isV6: w[2] == "v6")
        r.table = try number(w[1], step)
        return r
    default: throw StepError(message: "step \"\(step)\": bad rule")
    }
}

func run(_ steps: [String]) throws {
    let rt = try RouteNetlink()
    for step in steps {
        let w = step.split(separator: " ").map(String.init)
        switch (w.first ?? "", w.count) {
        case ("create", 3): try rt.createLink(name: w[1], kind: w[2])
        case ("veth", 3): try rt.createVeth(name: w[1], peer: w[2])
        case ("delete", 2): try rt.deleteLink(w[1])
        case ("up", 2): try rt.setLink(w[1], up: true)
        case ("down", 2): try rt.setLink(w[1], up: false)
        case ("mtu", 3): try rt.setLink(w[1], mtu: try number(w[2], step))
        case ("addr-add", 3): try rt.addAddress(try prefix(w[2], step), to: w[1])
        case ("addr-del", 3): try rt.removeAddress(try prefix(w[2], step), from: w[1])
        case ("route-add", 3), ("route-add", 4):
            try rt.addRoute(try prefix(w[1], step), device: w[2], table: w.count == 4 ? try number(w[3], step) : nil)
        case ("route-del", 3), ("route-del", 4):
            try rt.removeRoute(try prefix(w[1], step), device: w[2], table: w.count == 4 ? try number(w[3], step) : nil)
        case ("rule-add", _): try rt.addRule(try rule(Array(w.dropFirst()), step))
        case ("rule-del", _): try rt.removeRule(try rule(Array(w.dropFirst()), step))
        case ("links", 1):
            for l in try rt.links() { say("\(l.index) \(l.name) \(l.kind ?? "-") \(l.mtu) \(l.isUp ? "up" : "down")\n") }
        case ("index", 2): say((try rt.linkIndex(w[1]).map { "\($0)" } ?? "none") + "\n")
        case ("route-get", 2):
            guard let a = IPAddress(w[1]) else { throw StepError(message: "step \"\(step)\": bad address") }
            let r = try rt.routeGet(a)
            say("dev \(r.device) via \(r.gateway.map { "\($0)" } ?? "-") src \(r.preferredSource.map { "\($0)" } ?? "-") mtu \(r.mtu)\n")
        case ("move", 3):
            let fd = open(w[2], O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw StepError(message: "cannot open \(w[2]): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            try rt.moveLink(w[1], toNetnsFD: fd)
        default:
            throw StepError(message: "unknown step \"\(step)\"")
        }
    }
}

let steps = Array(CommandLine.arguments.dropFirst())
if steps.isEmpty { say("usage: wgns-rtnl STEP...\n", to: STDERR_FILENO); exit(2) }
do { try run(steps) } catch let e as StepError {
    say("wgns-rtnl: \(e.message)\n", to: STDERR_FILENO); exit(2)
} catch let e as NetlinkError {
    say("wgns-rtnl: \(e.message)\n", to: STDERR_FILENO); exit(1)
} catch {
    say("wgns-rtnl: \(error)\n", to: STDERR_FILENO); exit(1)
}
