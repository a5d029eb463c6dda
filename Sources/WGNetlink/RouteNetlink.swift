import CLibMnl
#if canImport(Glibc)
import Glibc
#endif

/// A network interface as rtnetlink lists it.
public struct Link: Sendable, Hashable {
    /// Interface name (`IFLA_IFNAME`).
    public var name: String
    /// Interface index.
    public var index: UInt32
    /// `IFLA_INFO_KIND` ("wireguard", "veth", "dummy", "tun", ...), nil for
    /// links without one (loopback, most hardware).
    public var kind: String?
    /// `IFLA_MTU`.
    public var mtu: UInt32
    /// True when administratively up (`IFF_UP`).
    public var isUp: Bool

    /// Wraps values.
    public init(name: String, index: UInt32, kind: String?, mtu: UInt32, isUp: Bool) {
        self.name = name
        self.index = index
        self.kind = kind
        self.mtu = mtu
        self.isUp = isUp
    }
}

/// The route the kernel would take toward an address, as `ip route get` shows it.
public struct RouteInfo: Sendable, Hashable {
    /// Outgoing interface name.
    public var device: String
    /// Outgoing interface index.
    public var deviceIndex: UInt32
    /// Next hop, nil for a directly connected destination.
    public var gateway: IPAddress?
    /// Preferred source address, if the kernel picked one.
    public var preferredSource: IPAddress?
    /// The path MTU: the route's `RTAX_MTU` when set, else the device's MTU.
    public var mtu: UInt32

    /// Wraps values.
    public init(device: String, deviceIndex: UInt32, gateway: IPAddress?, preferredSource: IPAddress?, mtu: UInt32) {
        self.device = device
        self.deviceIndex = deviceIndex
        self.gateway = gateway
        self.preferredSource = preferredSource
        self.mtu = mtu
    }
}

/// A policy routing rule (`ip rule`), enough for what wg-quick installs for a
/// default route through the tunnel:
/// `ip rule add not fwmark T table T` and `ip rule add table main suppress_prefixlength 0`.
public struct RoutingRule: Sendable, Hashable {
    /// IPv6 rather than IPv4.
    public var isV6: Bool
    /// The table the rule sends lookups to.
    public var table: UInt32
    /// Match packets with this firewall mark (`fwmark`), or any when nil.
    public var firewallMark: UInt32?
    /// Match packets *without* the mark instead (`not fwmark`).
    public var invert: Bool
    /// Ignore routes from `table` with a prefix this short or shorter (`suppress_prefixlength`).
    public var suppressPrefixLength: UInt32?
    /// Rule priority; nil lets the kernel choose.
    public var priority: UInt32?

    /// Wraps values.
    public init(isV6: Bool, table: UInt32, firewallMark: UInt32? = nil, invert: Bool = false,
                suppressPrefixLength: UInt32? = nil, priority: UInt32? = nil) {
        self.isV6 = isV6
        self.table = table
        self.firewallMark = firewallMark
        self.invert = invert
        self.suppressPrefixLength = suppressPrefixLength
        self.priority = priority
    }

    /// `not fwmark MARK table TABLE`: unmarked traffic (everything but
    /// WireGuard's own UDP) goes to the tunnel's table.
    public static func notMarked(_ mark: UInt32, table: UInt32, isV6: Bool) -> RoutingRule {
        RoutingRule(isV6: isV6, table: table, firewallMark: mark, invert: true)
    }

    /// `table main suppress_prefixlength 0`: the main table, minus its default route.
    public static func mainWithoutDefault(isV6: Bool) -> RoutingRule {
        RoutingRule(isV6: isV6, table: UInt32(RT_TABLE_MAIN.rawValue), suppressPrefixLength: 0)
    }
}

/// rtnetlink (`NETLINK_ROUTE`) in the network namespace of the thread that
/// created it: links, addresses, routes, rules, route lookup.
public final class RouteNetlink {
    private let socket: NetlinkSocket
    private let buffer = MessageBuffer(capacity: 4096)

    /// Opens an rtnetlink socket in the calling thread's current network namespace.
    public init() throws(NetlinkError) {
        socket = try NetlinkSocket(protocol: NETLINK_ROUTE)
    }

    /// Closes the socket now (also done when the object goes away).
    public func close() { socket.close() }

    // MARK: Links

    /// Every link (`RTM_GETLINK` dump), in index order. Retries when the
    /// kernel reports the dump as interrupted.
    public func links() throws(NetlinkError) -> [Link] {
        while true {
            var result: [Link] = []
            buffer.start(type: UInt16(RTM_GETLINK), flags: NLM_F_REQUEST | NLM_F_DUMP)
            buffer.extraHeader(ifinfomsg.self).pointee.ifi_family = UInt8(AF_UNSPEC)
            let outcome = try socket.request(buffer, operation: "list links") { (msg) throws(NetlinkError) in
                if let l = Self.parseLink(msg) { result.append(l) }
            }
            if outcome == .done { return result }
        }
    }

    /// The link called `name`, or nil when there is none (`RTM_GETLINK`).
    public func link(_ name: String) throws(NetlinkError) -> Link? {
        try checkName(name)
        buffer.start(type: UInt16(RTM_GETLINK), flags: NLM_F_REQUEST | NLM_F_ACK)
        buffer.extraHeader(ifinfomsg.self).pointee.ifi_family = UInt8(AF_UNSPEC)
        buffer.put(IFLA_IFNAME, string: name)
        return try getLink(operation: "look up link \(name)", device: name)
    }

    /// The link with index `index`, or nil when there is none.
    public func link(index: UInt32) throws(NetlinkError) -> Link? {
        buffer.start(type: UInt16(RTM_GETLINK), flags: NLM_F_REQUEST | NLM_F_ACK)
        let ifi = buffer.extraHeader(ifinfomsg.self)
        ifi.pointee.ifi_family = UInt8(AF_UNSPEC)
        ifi.pointee.ifi_index = Int32(bitPattern: index)
        return try getLink(operation: "look up link #\(index)", device: "#\(index)")
    }

    private func getLink(operation: String, device: String) throws(NetlinkError) -> Link? {
        var found: Link?
        do {
            try socket.request(buffer, operation: operation, device: device) { (msg) throws(NetlinkError) in
                found = Self.parseLink(msg)
            }
        } catch where error.code == .noSuchDevice {
            return nil
        }
        return found
    }

    /// The index of the link called `name`, or nil when there is none.
    public func linkIndex(_ name: String) throws(NetlinkError) -> UInt32? {
        try link(name)?.index
    }

    /// Creates a link (`RTM_NEWLINK`, create + exclusive) of `kind`:
    /// "wireguard", "dummy", or "veth" (whose peer the kernel names).
    /// A kernel without WireGuard gives `.noWireGuardModule`.
    public func createLink(name: String, kind: String) throws(NetlinkError) {
        try createLink(name: name, kind: kind, vethPeer: nil)
    }

    /// Creates a veth pair `name` / `peer`.
    public func createVeth(name: String, peer: String) throws(NetlinkError) {
        try checkName(peer)
        try createLink(name: name, kind: "veth", vethPeer: peer)
    }

    private func createLink(name: String, kind: String, vethPeer: String?) throws(NetlinkError) {
        try checkName(name)
        buffer.start(type: UInt16(RTM_NEWLINK), flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
        buffer.extraHeader(ifinfomsg.self).pointee.ifi_family = UInt8(AF_UNSPEC)
        buffer.put(IFLA_IFNAME, string: name)
        let info = buffer.nestStart(IFLA_LINKINFO)!
        buffer.put(IFLA_INFO_KIND, string: kind)
        if let vethPeer {
            let data = buffer.nestStart(IFLA_INFO_DATA)!
            let peer = buffer.nestStart(1 /* VETH_INFO_PEER */)!
            // The peer's attributes follow its own ifinfomsg.
            buffer.extraHeader(ifinfomsg.self).pointee.ifi_family = UInt8(AF_UNSPEC)
            buffer.put(IFLA_IFNAME, string: vethPeer)
            buffer.nestEnd(peer)
            buffer.nestEnd(data)
        }
        buffer.nestEnd(info)
        try socket.request(buffer, operation: "create \(kind) link \(name)", device: name, context: .createLink(kind: kind))
    }

    /// Deletes the link `name` (`RTM_DELLINK`).
    public func deleteLink(_ name: String) throws(NetlinkError) {
        try checkName(name)
        buffer.start(type: UInt16(RTM_DELLINK), flags: NLM_F_REQUEST | NLM_F_ACK)
        buffer.extraHeader(ifinfomsg.self).pointee.ifi_family = UInt8(AF_UNSPEC)
        buffer.put(IFLA_IFNAME, string: name)
        try socket.request(buffer, operation: "delete link \(name)", device: name)
    }

    /// Sets a link up or down and/or its MTU (`RTM_NEWLINK` without create);
    /// nil leaves a setting as it is.
    public func setLink(_ name: String, up: Bool? = nil, mtu: UInt32? = nil) throws(NetlinkError) {
        try checkName(name)
        buffer.start(type: UInt16(RTM_NEWLINK), flags: NLM_F_REQUEST | NLM_F_ACK)
        let ifi = buffer.extraHeader(ifinfomsg.self)
        ifi.pointee.ifi_family = UInt8(AF_UNSPEC)
        if let up {
            ifi.pointee.ifi_change = UInt32(IFF_UP)
            ifi.pointee.ifi_flags = up ? UInt32(IFF_UP) : 0
        }
        buffer.put(IFLA_IFNAME, string: name)
        if let mtu { buffer.put(IFLA_MTU, u32: mtu) }
        var what: [String] = []
        if let up { what.append(up ? "up" : "down") }
        if let mtu { what.append("mtu \(mtu)") }
        try socket.request(buffer, operation: "set link \(name) \(what.joined(separator: " "))", device: name)
    }

    /// Moves the link `name` into the network namespace open as `fd`
    /// (`RTM_NEWLINK` with `IFLA_NET_NS_FD`). A WireGuard link keeps its UDP
    /// socket in the namespace it was created in.
    public func moveLink(_ name: String, toNetnsFD fd: Int32) throws(NetlinkError) {
        try checkName(name)
        buffer.start(type: UInt16(RTM_NEWLINK), flags: NLM_F_REQUEST | NLM_F_ACK)
        buffer.extraHeader(ifinfomsg.self).pointee.ifi_family = UInt8(AF_UNSPEC)
        buffer.put(IFLA_IFNAME, string: name)
        buffer.put(IFLA_NET_NS_FD, u32: UInt32(bitPattern: fd))
        try socket.request(buffer, operation: "move link \(name) to namespace fd \(fd)", device: name)
    }

    // MARK: Addresses

    /// Adds an address with its prefix length to `name` (`RTM_NEWADDR`), as
    /// `ip address add PREFIX dev NAME`.
    /// `noDAD`: an IPv6 address usable at once, without duplicate address
    /// detection (`ip address add ... nodad`).
    public func addAddress(_ prefix: IPPrefix, to name: String, noDAD: Bool = false) throws(NetlinkError) {
        try address(RTM_NEWADDR, prefix, name, flags: NLM_F_CREATE | NLM_F_EXCL,
                    addressFlags: noDAD ? UInt8(IFA_F_NODAD) : 0, verb: "add address \(prefix) to \(name)")
    }

    /// Removes an address from `name` (`RTM_DELADDR`).
    public func removeAddress(_ prefix: IPPrefix, from name: String) throws(NetlinkError) {
        try address(RTM_DELADDR, prefix, name, flags: 0, verb: "remove address \(prefix) from \(name)")
    }

    private func address(_ type: Int, _ prefix: IPPrefix, _ name: String, flags: Int32, addressFlags: UInt8 = 0,
                         verb: String) throws(NetlinkError) {
        guard let index = try linkIndex(name) else {
            throw NetlinkError(.noSuchDevice, errno: ENODEV, "cannot \(verb): no such device \(name)")
        }
        buffer.start(type: UInt16(type), flags: NLM_F_REQUEST | NLM_F_ACK | flags)
        let ifa = buffer.extraHeader(ifaddrmsg.self)
        ifa.pointee.ifa_family = UInt8(prefix.address.family)
        ifa.pointee.ifa_prefixlen = prefix.prefixLength
        ifa.pointee.ifa_index = index
        ifa.pointee.ifa_flags = addressFlags
        putAddress(IFA_LOCAL, prefix.address)
        putAddress(IFA_ADDRESS, prefix.address)
        try socket.request(buffer, operation: verb, device: name)
    }

    private func putAddress(_ type: some BinaryInteger, _ address: IPAddress) {
        switch address {
        case let .v4(a, b, c, d):
            buffer.put(type, value: (a, b, c, d))
        case let .v6(bytes):
            bytes.withUnsafeBytes { _ = buffer.put(type, $0) }
        }
    }

    // MARK: Routes

    /// Adds a route to `prefix` through the link `device` (`RTM_NEWROUTE`),
    /// in the main table or `table`, as `ip route add PREFIX dev DEVICE [table T]`.
    /// With `gateway`: `ip route add PREFIX via GATEWAY dev DEVICE`.
    public func addRoute(_ prefix: IPPrefix, device: String, gateway: IPAddress? = nil, table: UInt32? = nil) throws(NetlinkError) {
        try route(add: true, prefix, device: device, gateway: gateway, table: table)
    }

    /// Removes such a route (`RTM_DELROUTE`).
    public func removeRoute(_ prefix: IPPrefix, device: String, table: UInt32? = nil) throws(NetlinkError) {
        try route(add: false, prefix, device: device, table: table)
    }

    private func route(add: Bool, _ prefix: IPPrefix, device: String, gateway: IPAddress? = nil, table: UInt32?) throws(NetlinkError) {
        let verb = "\(add ? "add" : "remove") route \(prefix.network)" + (gateway.map { " via \($0)" } ?? "")
            + " dev \(device)" + (table.map { " table \($0)" } ?? "")
        guard let index = try linkIndex(device) else {
            throw NetlinkError(.noSuchDevice, errno: ENODEV, "cannot \(verb): no such device \(device)")
        }
        buffer.start(type: UInt16(add ? RTM_NEWROUTE : RTM_DELROUTE),
                     flags: NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0))
        let rtm = buffer.extraHeader(rtmsg.self)
        let isV6 = prefix.address.isV6
        rtm.pointee.rtm_family = UInt8(prefix.address.family)
        rtm.pointee.rtm_dst_len = prefix.prefixLength
        let t = table ?? UInt32(RT_TABLE_MAIN.rawValue)
        rtm.pointee.rtm_table = t < 256 ? UInt8(t) : UInt8(RT_TABLE_UNSPEC.rawValue)
        if add {
            rtm.pointee.rtm_protocol = UInt8(RTPROT_BOOT)
            rtm.pointee.rtm_type = UInt8(RTN_UNICAST)
            // As iproute2: a gateway-less IPv4 route is link-scoped, IPv6 ignores scope.
            rtm.pointee.rtm_scope = isV6 || gateway != nil ? UInt8(RT_SCOPE_UNIVERSE.rawValue) : UInt8(RT_SCOPE_LINK.rawValue)
        } else {
            rtm.pointee.rtm_scope = UInt8(RT_SCOPE_NOWHERE.rawValue)
        }
        if prefix.prefixLength > 0 { putAddress(RTA_DST.rawValue, prefix.network.address) }
        if let gateway { putAddress(RTA_GATEWAY.rawValue, gateway) }
        buffer.put(RTA_OIF.rawValue, u32: index)
        if t >= 256 { buffer.put(RTA_TABLE.rawValue, u32: t) }
        try socket.request(buffer, operation: verb, device: device)
    }

    // MARK: Rules

    /// Adds a policy rule (`RTM_NEWRULE`).
    public func addRule(_ rule: RoutingRule) throws(NetlinkError) { try self.rule(add: true, rule) }

    /// Removes a policy rule (`RTM_DELRULE`); the first rule that matches goes.
    public func removeRule(_ rule: RoutingRule) throws(NetlinkError) { try self.rule(add: false, rule) }

    private func rule(add: Bool, _ rule: RoutingRule) throws(NetlinkError) {
        var verb = "\(add ? "add" : "remove") rule"
        if let m = rule.firewallMark { verb += rule.invert ? " not fwmark \(m)" : " fwmark \(m)" }
        verb += " table \(rule.table)"
        if let s = rule.suppressPrefixLength { verb += " suppress_prefixlength \(s)" }
        buffer.start(type: UInt16(add ? RTM_NEWRULE : RTM_DELRULE),
                     flags: NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0))
        let frh = buffer.extraHeader(fib_rule_hdr.self)
        frh.pointee.family = UInt8(rule.isV6 ? AF_INET6 : AF_INET)
        frh.pointee.table = rule.table < 256 ? UInt8(rule.table) : UInt8(RT_TABLE_UNSPEC.rawValue)
        frh.pointee.action = UInt8(FR_ACT_TO_TBL)
        if rule.invert { frh.pointee.flags = UInt32(FIB_RULE_INVERT) }
        buffer.put(FRA_TABLE, u32: rule.table)
        if let m = rule.firewallMark { buffer.put(FRA_FWMARK, u32: m) }
        if let s = rule.suppressPrefixLength { buffer.put(FRA_SUPPRESS_PREFIXLEN, u32: s) }
        if let p = rule.priority { buffer.put(FRA_PRIORITY, u32: p) }
        try socket.request(buffer, operation: verb)
    }

    // MARK: Route lookup

    /// The route toward `address` (`RTM_GETROUTE`), as `ip route get`: the
    /// device, gateway, preferred source and MTU.
    public func routeGet(_ address: IPAddress) throws(NetlinkError) -> RouteInfo {
        buffer.start(type: UInt16(RTM_GETROUTE), flags: NLM_F_REQUEST | NLM_F_ACK)
        let rtm = buffer.extraHeader(rtmsg.self)
        rtm.pointee.rtm_family = UInt8(address.family)
        rtm.pointee.rtm_dst_len = address.maxPrefixLength
        putAddress(RTA_DST.rawValue, address)
        var oif: UInt32 = 0
        var gateway: IPAddress?
        var source: IPAddress?
        var mtu: UInt32 = 0
        try socket.request(buffer, operation: "look up the route to \(address)") { msg in
            guard Int32(msg.pointee.nlmsg_type) == RTM_NEWROUTE else { return }
            for a in Attributes(message: msg, headerSize: MemoryLayout<rtmsg>.size) {
                switch UInt32(a.type) {
                case RTA_OIF.rawValue: oif = a.u32
                case RTA_GATEWAY.rawValue: gateway = IPAddress(bytes: a.payload)
                case RTA_PREFSRC.rawValue: source = IPAddress(bytes: a.payload)
                case RTA_METRICS.rawValue:
                    for m in a.nested where Int(m.type) == Int(RTAX_MTU) { mtu = m.u32 }
                default: break
                }
            }
        }
        guard oif != 0, let link = try link(index: oif) else {
            throw NetlinkError(.notFound, "cannot look up the route to \(address): the kernel named no outgoing device")
        }
        return RouteInfo(device: link.name, deviceIndex: oif, gateway: gateway, preferredSource: source,
                         mtu: mtu != 0 ? mtu : link.mtu)
    }

    // MARK: Helpers

    private func checkName(_ name: String) throws(NetlinkError) {
        guard !name.isEmpty, name.utf8.count < Int(IFNAMSIZ), !name.contains("/"), !name.contains(" ") else {
            throw NetlinkError(.invalidArgument, errno: EINVAL,
                               "invalid interface name \"\(name)\": 1 to \(IFNAMSIZ - 1) characters, no '/' or spaces")
        }
    }

    /// Reads an `RTM_NEWLINK` message.
    static func parseLink(_ msg: UnsafePointer<nlmsghdr>) -> Link? {
        guard Int32(msg.pointee.nlmsg_type) == RTM_NEWLINK, let ifi = fixedHeader(msg, ifinfomsg.self) else { return nil }
        var name = ""
        var kind: String?
        var mtu: UInt32 = 0
        for a in Attributes(message: msg, headerSize: MemoryLayout<ifinfomsg>.size) {
            switch Int(a.type) {
            case Int(IFLA_IFNAME): name = a.string
            case Int(IFLA_MTU): mtu = a.u32
            case Int(IFLA_LINKINFO):
                for i in a.nested where Int(i.type) == Int(IFLA_INFO_KIND) { kind = i.string }
            default: break
            }
        }
        return Link(name: name, index: UInt32(bitPattern: ifi.ifi_index), kind: kind, mtu: mtu,
                    isUp: ifi.ifi_flags & UInt32(IFF_UP) != 0)
    }
}
