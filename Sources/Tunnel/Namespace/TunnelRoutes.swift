import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// Where an interface's AllowedIPs routes go: wg-quick's `Table =`.
public enum RouteTable: Sendable, Hashable, CustomStringConvertible {
    /// `Table = off`: no routes and no rules.
    case off
    /// No `Table`, or `Table = auto`: routes in the main table; a default
    /// route goes into the firewall-mark table with two rules.
    case auto
    /// `Table = NUMBER` or a name from iproute2's rt_tables: every route
    /// into that table, and no rules (wg-quick adds none then either).
    case number(UInt32)

    /// The files iproute2 reads table names from, in its order.
    static let nameFiles = ["/usr/share/iproute2/rt_tables", "/etc/iproute2/rt_tables"]
    /// The folder of extra name files (`*.conf`).
    static let nameFolder = "/etc/iproute2/rt_tables.d"

    /// The `Table` setting of `settings`, names resolved the way `ip` does;
    /// errors name `file` and the line.
    public init(_ settings: InterfaceSettings, file: String) throws(ConfigError) {
        guard let t = settings.table else { self = .auto; return }
        switch t.text.lowercased() {
        case "off": self = .off
        case "auto": self = .auto
        default:
            if let n = Self.number(t.text) {
                guard n != 0 else { throw ConfigError(file: file, line: t.line, "Table '0' is not a routing table (expected off, auto, 1 to 4294967295 or a name from /etc/iproute2/rt_tables)") }
                self = .number(n)
            } else if let n = Self.named(t.text) {
                self = .number(n)
            } else {
                throw ConfigError(file: file, line: t.line, "Table '\(t.text)' is neither off, auto, a number nor a table name in \(Self.nameFiles.joined(separator: ", ")) or \(Self.nameFolder)/*.conf")
            }
        }
    }

    /// A number as `ip` reads one: decimal or 0x hexadecimal.
    static func number(_ s: String) -> UInt32? {
        if s.hasPrefix("0x") || s.hasPrefix("0X") { return UInt32(s.dropFirst(2), radix: 16) }
        return s.allSatisfy(\.isASCII) ? UInt32(s) : nil
    }

    /// A table name: iproute2's built-in ones, then its files (`NUMBER NAME`
    /// lines, `#` comments), the later ones winning as in `ip`.
    static func named(_ name: String) -> UInt32? {
        var found: UInt32? = ["default": 253, "main": 254, "local": 255][name]
        var files = nameFiles
        if let d = opendir(nameFolder) {
            var extra: [String] = []
            while let e = readdir(d) {
                let n = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if n.hasSuffix(".conf") { extra.append("\(nameFolder)/\(n)") }
            }
            closedir(d)
            files += extra.sorted()
        }
        for f in files {
            guard let bytes = try? FileIO.readAll(f) else { continue }
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                let words = line.prefix { $0 != "#" }.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if words.count >= 2, words[1] == name, let n = number(String(words[0])) { found = n }
            }
        }
        return found
    }

    public var description: String {
        switch self {
        case .off: return "off"
        case .auto: return "auto"
        case .number(let n): return "\(n)"
        }
    }
}

/// The routes and rules wg-quick adds for an interface's AllowedIPs, made
/// here over rtnetlink with the same outcome (`ip route show table all` and
/// `ip rule` read the same):
///
/// - `Table = off`: nothing.
/// - `Table = N`: `ip route add PREFIX dev IF table N` for every entry, the
///   default routes included; no rules.
/// - auto: a default route (`/0`) goes into the table named by the firewall
///   mark, with `not fwmark MARK table MARK` and `table main
///   suppress_prefixlength 0` for its family (so WireGuard's own, marked UDP
///   still leaves through the carrier); any other entry goes into the main
///   table unless a route of the interface there already covers it (as
///   wg-quick's `ip route show dev IF match PREFIX` check: the prefix routes
///   of the interface's own addresses count).
///
/// wg-quick's nftables/iptables rules for a default route (dropping packets
/// to the tunnel address that arrive on another interface) are not made:
/// inside the namespace the only other interface is the carrier's.
enum TunnelRoutes {
    /// One route to add.
    struct Route: Hashable {
        var prefix: IPPrefix
        var device: String
        /// nil: the main table.
        var table: UInt32?
    }

    /// What wg-quick would add for these interfaces: routes in order, and
    /// the rules (with the kernel choosing priorities, as `ip rule add`).
    static func plan(_ interfaces: [UpPlan.Interface], mark: UInt32) throws(TunnelError) -> (routes: [Route], rules: [RoutingRule]) {
        var routes: [Route] = []
        var rules: [RoutingRule] = []
        for i in interfaces {
            let table: RouteTable
            do { table = try RouteTable(i.config.interface, file: i.source) } catch { throw TunnelError(.config, wrapping: error) }
            if table == .off { continue }
            // As `wg show allowed-ips` lists them (host bits cleared, each once), most specific first.
            var seen = Set<IPPrefix>()
            var prefixes: [IPPrefix] = []
            for p in i.config.peers { for a in p.allowedIPs where seen.insert(a.network).inserted { prefixes.append(a.network) } }
            prefixes = prefixes.enumerated().sorted { a, b in
                a.element.prefixLength != b.element.prefixLength ? a.element.prefixLength > b.element.prefixLength : a.offset < b.offset
            }.map(\.element)
            if case .number(let t) = table {
                for p in prefixes { routes.append(Route(prefix: p, device: i.name, table: t)) }
                continue
            }
            // Routes of this interface in the main table that may cover an
            // entry: its addresses' prefix routes (IPv4 has none for a /32).
            // A route added here never covers a later entry: entries come
            // most specific first, each network once, so a later one is never
            // longer, and one as long is another network. (Checking them all
            // made 50,000 AllowedIPs take minutes.)
            let covering = i.config.interface.addresses.filter { $0.address.isV6 || $0.prefixLength < 32 }.map(\.network)
            for p in prefixes {
                if p.prefixLength == 0 {
                    routes.append(Route(prefix: p, device: i.name, table: mark))
                    let notMarked = RoutingRule.notMarked(mark, table: mark, isV6: p.address.isV6)
                    let main = RoutingRule.mainWithoutDefault(isV6: p.address.isV6)
                    for r in [notMarked, main] where !rules.contains(r) { rules.append(r) }
                } else if !covering.contains(where: { $0.covers(p) }) {
                    routes.append(Route(prefix: p, device: i.name, table: nil))
                }
            }
        }
        return (routes, rules)
    }

    /// Adds what `plan` says. A route that exists already (the same prefix
    /// on another interface) is left as it is.
    static func install(_ interfaces: [UpPlan.Interface], routes rt: RouteNetlink, mark: UInt32) throws(TunnelError) {
        let (routes, rules) = try plan(interfaces, mark: mark)
        for r in routes {
            do { try rt.addRoute(r.prefix, device: r.device, table: r.table) } catch {
                if error.code != .exists { throw TunnelError(.setup, wrapping: error) }
            }
        }
        for r in rules {
            do { try rt.addRule(r) } catch {
                if error.code != .exists { throw TunnelError(.setup, wrapping: error) }
            }
        }
        // wg-quick's sysctl for a marked IPv4 default route: reverse-path
        // checks then take the mark into account.
        if rules.contains(where: { !$0.isV6 }) {
            try? Namespace.writeFile("/proc/sys/net/ipv4/conf/all/src_valid_mark", "1")
        }
    }
}

extension IPPrefix {
    /// This prefix holds every address of `other` (same family, no longer, same network bits).
    func covers(_ other: IPPrefix) -> Bool {
        address.isV6 == other.address.isV6 && prefixLength <= other.prefixLength
            && other.address.masked(to: prefixLength) == address.masked(to: prefixLength)
    }
}
