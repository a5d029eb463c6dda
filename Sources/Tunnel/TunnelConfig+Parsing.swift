import KeyStore
import WGNetlink

extension TunnelConfig {
    /// Parses wg-quick text the way wireguard-tools reads it: section names
    /// and keys case-insensitive, `#` starts a comment, whitespace free,
    /// `Address`, `AllowedIPs` and `DNS` repeatable and comma-separated.
    /// `file` is used only to name the file in errors.
    public init(parsing text: String, file: String) throws(ConfigError) {
        var parser = ConfigParser(file: file)
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            try parser.consume(rawLine, line: lineNumber)
        }
        self = try parser.finish()
    }

    /// Reads and parses a file.
    public init(contentsOf path: String) throws(ConfigError) {
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(path) } catch {
            throw ConfigError(file: path, line: 0, "cannot read: \(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(file: path, line: 0, "not UTF-8 text")
        }
        try self.init(parsing: text, file: path)
        resolveKeyFiles(relativeTo: path)
    }

    /// Makes relative `PrivateKeyFile`/`PresharedKeyFile` paths relative to
    /// the folder of the config that names them, not to the current folder.
    mutating func resolveKeyFiles(relativeTo configPath: String) {
        guard let slash = configPath.lastIndex(of: "/") else { return }
        let dir = String(configPath[...slash])
        func fix<K>(_ source: inout KeySource<K>?) {
            if case .file(let p)? = source, !p.hasPrefix("/") { source = .file(dir + p) }
        }
        fix(&interface.privateKey)
        for i in peers.indices { fix(&peers[i].presharedKey) }
    }
}

enum Section { case none, interface, peer, namespace }

/// Line-by-line state of one parse.
struct ConfigParser {
    let file: String
    var section = Section.none
    var config = TunnelConfig()
    /// The peer being filled, the line its `[Peer]` header was on, and
    /// whether it has had its PublicKey yet (keys may come in any order).
    var peer: (settings: PeerSettings, line: Int, hasKey: Bool)?

    init(file: String) { self.file = file }

    func error(_ line: Int, _ message: String) -> ConfigError { ConfigError(file: file, line: line, message) }

    mutating func consume(_ raw: Substring, line: Int) throws(ConfigError) {
        var text = raw
        if let hash = text.firstIndex(of: "#") { text = text[..<hash] }
        text = trim(text)
        if text.isEmpty { return }

        if text.first == "[" {
            try closePeer()
            switch text.lowercased().filter({ !$0.isWhitespace }) {
            case "[interface]": section = .interface
            case "[peer]":
                section = .peer
                peer = (PeerSettings(publicKey: PublicKey.zero), line, false)
            case "[namespace]": section = .namespace
            default:
                throw error(line, "unknown section '\(text)' (expected [Interface], [Peer] or [Namespace])")
            }
            return
        }
        guard let eq = text.firstIndex(of: "=") else {
            throw error(line, "expected 'Key = Value', got '\(text)'")
        }
        let key = trim(text[..<eq])
        let value = trim(text[text.index(after: eq)...])
        let normalized = key.lowercased().filter { !$0.isWhitespace }
        switch section {
        case .none: throw error(line, "'\(key)' is outside any section (expected [Interface] or [Peer] first)")
        case .interface: try interfaceKey(normalized, key: key, value: value, line: line)
        case .peer: try peerKey(normalized, key: key, value: value, line: line)
        case .namespace: try namespaceKey(normalized, key: key, value: value, line: line)
        }
    }

    mutating func finish() throws(ConfigError) -> TunnelConfig {
        try closePeer()
        return config
    }

    mutating func closePeer() throws(ConfigError) {
        guard let p = peer else { return }
        peer = nil
        guard p.hasKey else { throw error(p.line, "[Peer] has no PublicKey") }
        config.peers.append(p.settings)
    }

    // MARK: [Interface]

    mutating func interfaceKey(_ k: String, key: Substring, value: Substring, line: Int) throws(ConfigError) {
        var i = config.interface
        switch k {
        case "privatekey":
            i.privateKey = .inline(try parseKey(PrivateKey.self, value, name: "PrivateKey", line: line))
        case "privatekeyfile":
            i.privateKey = .file(String(try nonEmpty(value, "PrivateKeyFile", "a path", line)))
        case "listenport":
            i.listenPort = try parsePort(value, name: "ListenPort", line: line, allowZero: true)
        case "fwmark":
            i.firewallMark = try parseFwMark(value, line: line)
        case "address":
            for item in try list(value, "Address", line) {
                guard let p = IPPrefix(item) else {
                    throw error(line, "Address '\(item)' is not an IP address with an optional /prefix")
                }
                i.addresses.append(p)
            }
        case "dns":
            for item in try list(value, "DNS", line) {
                // wg-quick's rule: digits and dots, or anything with a colon, is a server.
                if item.allSatisfy({ $0 == "." || ($0.isASCII && $0.isNumber) }) || item.contains(":") {
                    guard let a = IPAddress(item) else {
                        throw error(line, "DNS '\(item)' is not a valid IP address")
                    }
                    i.dnsServers.append(a)
                } else {
                    guard isDomain(item) else { throw error(line, "DNS '\(item)' is neither an IP address nor a search domain") }
                    i.dnsSearch.append(String(item))
                }
            }
        case "mtu":
            guard let m = UInt32(value), m >= 576, m <= 65535 else {
                throw error(line, "MTU '\(value)' is not a number from 576 to 65535")
            }
            i.mtu = m
        case "table":
            i.table = String(try nonEmpty(value, "Table", "off, auto, a number or a table name", line))
        case "preup": i.preUp.append(String(value))
        case "postup": i.postUp.append(String(value))
        case "predown": i.preDown.append(String(value))
        case "postdown": i.postDown.append(String(value))
        case "saveconfig":
            i.saveConfig = try parseBool(value, name: "SaveConfig", line: line)
        default:
            throw error(line, "unknown key '\(key)' in [Interface] (expected PrivateKey, PrivateKeyFile, ListenPort, FwMark, Address, DNS, MTU, Table, PreUp, PostUp, PreDown, PostDown or SaveConfig)")
        }
        config.interface = i
    }

    // MARK: [Peer]

    mutating func peerKey(_ k: String, key: Substring, value: Substring, line: Int) throws(ConfigError) {
        guard var s = peer?.settings else { return }
        switch k {
        case "publickey":
            s.publicKey = try parseKey(PublicKey.self, value, name: "PublicKey", line: line)
            peer?.hasKey = true
        case "presharedkey":
            s.presharedKey = .inline(try parseKey(PresharedKey.self, value, name: "PresharedKey", line: line))
        case "presharedkeyfile":
            s.presharedKey = .file(String(try nonEmpty(value, "PresharedKeyFile", "a path", line)))
        case "allowedips":
            // wg refuses an empty AllowedIPs line; so does wgns.
            let compact = value.filter { !$0.isWhitespace }
            if compact.isEmpty { throw error(line, "AllowedIPs is empty (expected a comma-separated list of ADDR[/LEN])") }
            for item in compact.split(separator: ",", omittingEmptySubsequences: false) {
                guard let p = IPPrefix(item) else {
                    throw error(line, "AllowedIPs '\(item)' is not an IP address with an optional /prefix")
                }
                s.allowedIPs.append(p)
            }
        case "endpoint":
            let v = value.filter { !$0.isWhitespace }
            guard let e = Endpoint(v) else {
                throw error(line, "Endpoint '\(v)' is not host:port, 1.2.3.4:port or [v6]:port")
            }
            s.endpoint = e
        case "persistentkeepalive":
            if value.lowercased() == "off" { s.persistentKeepalive = 0; break }
            guard let n = UInt16(value) else {
                throw error(line, "PersistentKeepalive '\(value)' is not 'off' or a number of seconds from 0 to 65535")
            }
            s.persistentKeepalive = n
        default:
            throw error(line, "unknown key '\(key)' in [Peer] (expected PublicKey, PresharedKey, PresharedKeyFile, AllowedIPs, Endpoint or PersistentKeepalive)")
        }
        peer?.settings = s
    }

    // MARK: [Namespace]

    mutating func namespaceKey(_ k: String, key: Substring, value: Substring, line: Int) throws(ConfigError) {
        var n = config.namespace
        switch k {
        case "carrier":
            guard let c = CarrierKind(rawValue: value.lowercased()) else {
                throw error(line, "Carrier '\(value)' is not slirp4netns or pasta")
            }
            n.carrier = c
        case "backend":
            guard let b = BackendKind(rawValue: value.lowercased()) else {
                throw error(line, "Backend '\(value)' is not auto, kernel or userspace")
            }
            n.backend = b
        case "mapuid":
            guard let u = UInt32(value), u != UInt32.max else { throw error(line, "MapUID '\(value)' is not a user id") }
            n.mapUID = u
        case "mapgid":
            guard let g = UInt32(value), g != UInt32.max else { throw error(line, "MapGID '\(value)' is not a group id") }
            n.mapGID = g
        case "isolate":
            n.isolate = try parseBool(value, name: "Isolate", line: line)
        case "hostloopback":
            n.hostLoopback = try parseBool(value, name: "HostLoopback", line: line)
        case "forwardtcp", "forwardudp":
            for item in try list(value, String(key), line) {
                guard let f = PortForward(item) else {
                    throw error(line, "\(key) '\(item)' is not PORT or HOSTPORT:NSPORT (ports 1 to 65535)")
                }
                if k == "forwardtcp" { n.forwardTCP.append(f) } else { n.forwardUDP.append(f) }
            }
        default:
            throw error(line, "unknown key '\(key)' in [Namespace] (expected Carrier, Backend, MapUID, MapGID, Isolate, HostLoopback, ForwardTCP or ForwardUDP)")
        }
        config.namespace = n
    }

    // MARK: values

    func parseKey<K: WireGuardKey>(_ type: K.Type, _ value: Substring, name: String, line: Int) throws(ConfigError) -> K {
        do { return try K(base64: String(value.filter { !$0.isWhitespace })) } catch {
            // The value is not echoed: it may be a mistyped secret.
            throw self.error(line, "\(name) is not a valid key (expected 44 base64 characters ending in '=')")
        }
    }

    func parsePort(_ value: Substring, name: String, line: Int, allowZero: Bool) throws(ConfigError) -> UInt16 {
        guard let p = UInt16(value), allowZero || p != 0 else {
            throw error(line, "\(name) '\(value)' is not a port number from \(allowZero ? 0 : 1) to 65535")
        }
        return p
    }

    func parseFwMark(_ value: Substring, line: Int) throws(ConfigError) -> UInt32 {
        let v = value.lowercased()
        if v == "off" { return 0 }
        let parsed: UInt32? = v.hasPrefix("0x") ? UInt32(v.dropFirst(2), radix: 16) : UInt32(v)
        guard let mark = parsed else {
            throw error(line, "FwMark '\(value)' is not 'off' or a 32-bit number (decimal or 0x hex)")
        }
        return mark
    }

    func parseBool(_ value: Substring, name: String, line: Int) throws(ConfigError) -> Bool {
        switch value.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw error(line, "\(name) '\(value)' is not true or false")
        }
    }

    func nonEmpty(_ value: Substring, _ name: String, _ expected: String, _ line: Int) throws(ConfigError) -> Substring {
        guard !value.isEmpty else { throw error(line, "\(name) is empty (expected \(expected))") }
        return value
    }

    func list(_ value: Substring, _ name: String, _ line: Int) throws(ConfigError) -> [Substring] {
        let items = value.split(separator: ",", omittingEmptySubsequences: false).map { trim($0) }
        if items.contains(where: \.isEmpty) {
            throw error(line, "\(name) has an empty item (expected a comma-separated list)")
        }
        return items
    }
}

/// Strips leading and trailing whitespace.
func trim(_ s: Substring) -> Substring {
    var t = s
    while let f = t.first, f.isWhitespace { t = t.dropFirst() }
    while let l = t.last, l.isWhitespace { t = t.dropLast() }
    return t
}

/// A DNS search domain: letters, digits, hyphens, underscores and dots.
func isDomain(_ s: Substring) -> Bool {
    !s.isEmpty && s.count <= 253 && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") }
}
