import KeyStore
import Tunnel
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// `wgns show [IFACE|all] [FIELD] [--json]`.
struct Show: Invocation {
    static let command = Command(
        name: "show", abstract: "Show WireGuard devices in this namespace, as `wg show`.",
        discussion: """
        Without FIELD: as `wg show` (keys hidden) or, with --json, one object per device. \
        With FIELD, exactly what `wg show IFACE FIELD` prints, one of: \(fields.joined(separator: ", ")). \
        Like wg's, `private-key`, `preshared-keys` and `dump` print secrets.
        """,
        options: [json, showKeys],
        arguments: [Argument("INTERFACE", .optional,
                             "An interface, `all` (the default), `interfaces` (names only), or a named tunnel or hub (its devices)."),
                    Argument("FIELD", .optional, "One field, as `wg show IFACE FIELD` (see above).")],
        run: start)

    static let json = Option.flag("json", "JSON: one object for an interface, an array for all.")
    static let showKeys = Option.flag("show-keys", "Include preshared keys in the JSON (never private keys).")

    /// The single fields of `wg show IFACE FIELD`.
    static let fields = ["public-key", "private-key", "listen-port", "fwmark", "peers", "preshared-keys", "endpoints",
                         "allowed-ips", "latest-handshakes", "transfer", "persistent-keepalive", "dump"]

    var interface = "all"
    var json = false
    var showKeys = false
    /// One of `fields`, or nil for the whole device.
    var field: String?

    init(interface: String) { self.interface = interface }

    init(_ a: Parsed) throws {
        interface = a.positionals.first ?? "all"
        field = a.positionals.dropFirst().first
        json = a.flag(Self.json)
        showKeys = a.flag(Self.showKeys)
    }

    func validate() throws {
        guard let field else { return }
        guard Self.fields.contains(field) else {
            throw CLIError.usage("unknown field '\(field)' (expected one of \(Self.fields.joined(separator: ", ")))")
        }
        if json { throw CLIError.usage("--\(Self.json.long) cannot be combined with a field") }
    }

    func run() throws {
        var out = Output(streamingTo: STDOUT_FILENO)
        if interface == "interfaces" {
            let names = try WireGuardClient().all().map(\.0)
            if json {
                out.add("[" + names.map { "\"\(jsonEscaped($0))\"" }.joined(separator: ",") + "]\n")
            } else if !names.isEmpty {
                out.add(names.joined(separator: " ") + "\n")
            }
        } else if let (devices, several) = try devices() {
            if let field {
                // As wg: with `all` every line starts with the interface name.
                for d in devices { appendField(field, d, withName: several, &out) }
            } else if several {
                appendDevices(devices, json: json, &out)
            } else if json {
                appendJSON(devices[0], &out); out.add("\n")
            } else {
                appendPretty(devices[0], &out)
            }
        }
        try out.flush()
    }

    /// The devices `interface` names, and whether it names a set of them
    /// (`all`, or a named tunnel or hub, whose devices are read from inside)
    /// rather than one device.
    func devices() throws -> (devices: [Device], several: Bool)? {
        if interface == "all" { return (try WireGuardClient().all().map { try $0.1.device($0.0) }, true) }
        if try RouteNetlink().link(interface) == nil && !UserspaceWireGuard().hasDevice(interface)
            && NamedTunnel.list().contains(interface) {
            return (try NamedTunnel.devices(interface), true)
        }
        return ([try WireGuardClient().open(interface).device(interface)], false)
    }

    /// One field of a device, in `wg show IFACE FIELD`'s tab-separated form.
    func appendField(_ field: String, _ d: Device, withName: Bool, _ out: inout Output) {
        func name() { if withName { out.add(d.name); out.add("\t") } }
        func fwmark() {
            if d.firewallMark == 0 { out.add("off") } else { out.add("0x\(String(d.firewallMark, radix: 16))") }
        }
        func publicKey() { if let k = d.publicKey { k.appendBase64(to: &out.bytes) } else { out.add("(none)") } }
        func privateKey() { if let k = d.privateKey { k.appendBase64Secret(to: &out.bytes) } else { out.add("(none)") } }
        func endpoint(_ p: Peer) { if let e = p.endpoint { e.appendText(to: &out.bytes) } else { out.add("(none)") } }
        func presharedKey(_ p: Peer) {
            if let k = p.presharedKey { k.appendBase64Secret(to: &out.bytes) } else { out.add("(none)") }
        }
        func allowedIPs(_ p: Peer, separator: String) {
            if p.allowedIPs.isEmpty { out.add("(none)"); return }
            for (j, ip) in p.allowedIPs.enumerated() {
                if j > 0 { out.add(separator) }
                ip.appendText(to: &out.bytes)
            }
        }
        func keepalive(_ p: Peer) {
            if p.persistentKeepaliveInterval == 0 { out.add("off") } else { out.add(p.persistentKeepaliveInterval) }
        }
        switch field {
        case "public-key": name(); publicKey(); out.add("\n")
        case "private-key": name(); privateKey(); out.add("\n")
        case "listen-port": name(); out.add(d.listenPort); out.add("\n")
        case "fwmark": name(); fwmark(); out.add("\n")
        case "dump":
            name(); privateKey(); out.add("\t"); publicKey(); out.add("\t"); out.add(d.listenPort); out.add("\t")
            fwmark(); out.add("\n")
        default: break
        }
        for p in d.peers {
            func key() { name(); p.publicKey.appendBase64(to: &out.bytes) }
            switch field {
            case "peers": key()
            case "preshared-keys": key(); out.add("\t"); presharedKey(p)
            case "endpoints": key(); out.add("\t"); endpoint(p)
            case "allowed-ips": key(); out.add("\t"); allowedIPs(p, separator: " ")
            case "latest-handshakes": key(); out.add("\t"); out.add(p.lastHandshake.seconds)
            case "transfer": key(); out.add("\t"); out.add(p.receiveBytes); out.add("\t"); out.add(p.transmitBytes)
            case "persistent-keepalive": key(); out.add("\t"); keepalive(p)
            case "dump":
                key(); out.add("\t"); presharedKey(p); out.add("\t"); endpoint(p); out.add("\t")
                allowedIPs(p, separator: ","); out.add("\t"); out.add(p.lastHandshake.seconds); out.add("\t")
                out.add(p.receiveBytes); out.add("\t"); out.add(p.transmitBytes); out.add("\t"); keepalive(p)
            default: continue
            }
            out.add("\n")
            out.spill()
        }
    }

    /// Several devices: a JSON array, or `wg show` blocks separated by blank lines.
    func appendDevices(_ devices: [Device], json: Bool, _ out: inout Output) {
        for (i, d) in devices.enumerated() {
            if json {
                out.add(i == 0 ? "[" : ",")
                appendJSON(d, &out)
            } else {
                if i > 0 { out.add("\n") }
                appendPretty(d, &out)
            }
        }
        if json { out.add(devices.isEmpty ? "[]\n" : "]\n") }
    }

    func appendJSON(_ d: Device, _ out: inout Output) {
        out.add("{\"interface\":\""); out.add(jsonEscaped(d.name))
        out.add("\",\"publicKey\":"); out.add(d.publicKey.map { "\"\($0.base64)\"" } ?? "null")
        out.add(",\"listenPort\":"); out.add(d.listenPort)
        out.add(",\"fwmark\":"); out.add(d.firewallMark)
        out.add(",\"peers\":[")
        for (i, p) in d.peers.enumerated() {
            out.add(i == 0 ? "{\"publicKey\":\"" : ",{\"publicKey\":\"")
            p.publicKey.appendBase64(to: &out.bytes)
            out.add("\",\"hasPresharedKey\":"); out.add(p.presharedKey != nil ? "true" : "false")
            if showKeys {
                out.add(",\"presharedKey\":")
                if let k = p.presharedKey { out.add("\""); k.appendBase64Secret(to: &out.bytes); out.add("\"") } else { out.add("null") }
            }
            out.add(",\"endpoint\":")
            if let e = p.endpoint { out.add("\""); e.appendText(to: &out.bytes); out.add("\"") } else { out.add("null") }
            out.add(",\"allowedIPs\":[")
            for (j, ip) in p.allowedIPs.enumerated() {
                out.add(j == 0 ? "\"" : ",\""); ip.appendText(to: &out.bytes); out.add("\"")
            }
            out.add("],\"latestHandshake\":"); out.add(p.lastHandshake.seconds)
            out.add(",\"transferRx\":"); out.add(p.receiveBytes)
            out.add(",\"transferTx\":"); out.add(p.transmitBytes)
            out.add(",\"persistentKeepalive\":"); out.add(p.persistentKeepaliveInterval)
            out.add("}")
            out.spill()
        }
        out.add("]}")
    }

    func appendPretty(_ d: Device, _ out: inout Output) {
        out.add("interface: \(d.name)\n")
        if let k = d.publicKey { out.add("  public key: \(k.base64)\n") }
        if d.privateKey != nil { out.add("  private key: (hidden)\n") }
        if d.listenPort != 0 { out.add("  listening port: \(d.listenPort)\n") }
        if d.firewallMark != 0 { out.add("  fwmark: 0x\(String(d.firewallMark, radix: 16))\n") }
        if !d.peers.isEmpty { out.add("\n") }
        // As wg: the most recent handshake first.
        let peers = d.peers.enumerated().sorted {
            ($0.element.lastHandshake.seconds, -$0.offset) > ($1.element.lastHandshake.seconds, -$1.offset)
        }.map(\.element)
        let now = Int64(time(nil))
        for (i, p) in peers.enumerated() {
            out.add("peer: \(p.publicKey.base64)\n")
            if p.presharedKey != nil { out.add("  preshared key: (hidden)\n") }
            if let e = p.endpoint { out.add("  endpoint: "); e.appendText(to: &out.bytes); out.add("\n") }
            out.add("  allowed ips: ")
            out.add(p.allowedIPs.isEmpty ? "(none)" : p.allowedIPs.map(\.description).joined(separator: ", "))
            out.add("\n")
            if p.lastHandshake.seconds != 0 {
                let t = p.lastHandshake.seconds
                let text = now == t ? "Now" : now < t ? "(System clock wound backward; connection problems may ensue.)"
                    : durationText(UInt64(now - t)) + " ago"
                out.add("  latest handshake: \(text)\n")
            }
            if p.receiveBytes != 0 || p.transmitBytes != 0 {
                out.add("  transfer: \(bytesText(p.receiveBytes)) received, \(bytesText(p.transmitBytes)) sent\n")
            }
            if p.persistentKeepaliveInterval != 0 {
                out.add("  persistent keepalive: every \(durationText(UInt64(p.persistentKeepaliveInterval)))\n")
            }
            if i + 1 < peers.count { out.add("\n") }
            out.spill()
        }
    }
}

/// `1 day, 2 hours, 3 minutes, 4 seconds`, as wg prints durations.
func durationText(_ total: UInt64) -> String {
    let parts: [(UInt64, String)] = [
        (total / (365 * 24 * 3600), "year"), (total / (24 * 3600) % 365, "day"),
        (total / 3600 % 24, "hour"), (total / 60 % 60, "minute"), (total % 60, "second"),
    ]
    let text = parts.filter { $0.0 != 0 }.map { "\($0.0) \($0.1)\($0.0 == 1 ? "" : "s")" }.joined(separator: ", ")
    return text.isEmpty ? "0 seconds" : text
}

/// `123 B`, `1.50 KiB`, ... as wg prints byte counts.
func bytesText(_ b: UInt64) -> String {
    if b < 1024 { return "\(b) B" }
    let units = ["KiB", "MiB", "GiB", "TiB"]
    var v = Double(b) / 1024
    var i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    let hundredths = Int((v * 100).rounded())
    return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100) \(units[i])"
}

/// A string with JSON's special characters escaped.
func jsonEscaped(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where c.value < 0x20:
            let h = String(c.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// `wgns showconf IFACE`: the device's configuration exactly as `wg showconf` prints it.
enum ShowConf {
    static let command = Command(
        name: "showconf", abstract: "Print a device's configuration, as `wg showconf` (includes the private key).",
        arguments: [Argument("INTERFACE", "The interface.")]
    ) { a in try run(interface: a.positionals[0]) }

    static func run(interface: String) throws {
        let d = try WireGuardClient().open(interface).device(interface)
        var out = Output(capacity: 256 + d.peers.count * 160)
        out.add("[Interface]\n")
        if d.listenPort != 0 { out.add("ListenPort = "); out.add(d.listenPort); out.add("\n") }
        if d.firewallMark != 0 { out.add("FwMark = 0x\(String(d.firewallMark, radix: 16))\n") }
        if let k = d.privateKey { out.add("PrivateKey = "); k.appendBase64Secret(to: &out.bytes); out.add("\n") }
        out.add("\n")
        for (i, p) in d.peers.enumerated() {
            out.add("[Peer]\nPublicKey = "); p.publicKey.appendBase64(to: &out.bytes); out.add("\n")
            if let k = p.presharedKey { out.add("PresharedKey = "); k.appendBase64Secret(to: &out.bytes); out.add("\n") }
            if !p.allowedIPs.isEmpty {
                out.add("AllowedIPs = ")
                for (j, ip) in p.allowedIPs.enumerated() {
                    if j > 0 { out.add(", ") }
                    ip.appendText(to: &out.bytes)
                }
                out.add("\n")
            }
            if let e = p.endpoint { out.add("Endpoint = "); e.appendText(to: &out.bytes); out.add("\n") }
            if p.persistentKeepaliveInterval != 0 {
                out.add("PersistentKeepalive = "); out.add(p.persistentKeepaliveInterval); out.add("\n")
            }
            if i + 1 < d.peers.count { out.add("\n") }
        }
        try out.flush()
    }
}

/// What `setconf`, `addconf` and `syncconf` share: read a wg-format file
/// (wg-quick keys and `[Namespace]` allowed, and ignored), map it to a
/// `DeviceConfig`, apply it.
enum ConfApplier {
    enum Mode { case set, add, sync }

    /// The command for `mode`: `wgns NAME IFACE FILE`.
    static func command(_ mode: Mode, _ name: String, _ abstract: String) -> Command {
        Command(name: name, abstract: abstract,
                arguments: [Argument("INTERFACE", "The interface."), Argument("FILE", "A config file in wg (or wg-quick) format.")]
        ) { a in try apply(mode, interface: a.positionals[0], file: a.positionals[1]) }
    }

    static func apply(_ mode: Mode, interface: String, file: String) throws {
        let parsed = try TunnelConfig(contentsOf: file)
        let backend = try WireGuardClient().open(interface)
        var config = try parsed.deviceConfig(mode == .add ? .add : .replace, file: file)
        if mode == .sync {
            config = config.synchronized(from: try backend.device(interface))
        }
        try backend.configure(interface, config)
    }
}

/// `wgns setconf IFACE FILE`.
enum SetConf {
    static let command = ConfApplier.command(.set, "setconf", "Set a device's whole configuration from a file, as `wg setconf`.")
}

/// `wgns addconf IFACE FILE`.
enum AddConf {
    static let command = ConfApplier.command(.add, "addconf", "Add a file's peers and settings to a device, as `wg addconf`.")
}

/// `wgns syncconf IFACE FILE`.
enum SyncConf {
    static let command = ConfApplier.command(
        .sync, "syncconf", "Make a device match a file without disturbing unchanged peers, as `wg syncconf`.")
}
