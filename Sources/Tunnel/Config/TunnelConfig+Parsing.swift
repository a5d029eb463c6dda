import KeyStore
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

extension TunnelConfig {
    /// Parses wg-quick text the way wireguard-tools reads it: section names
    /// and keys case-insensitive, `#` starts a comment, whitespace free,
    /// `Address`, `AllowedIPs` and `DNS` repeatable and comma-separated.
    /// `file` is used only to name the file in errors.
    public init(parsing text: String, file: String) throws(ConfigError) {
        var text = text
        let result = text.withUTF8 { utf8 in
            Result { () throws(ConfigError) -> TunnelConfig in try TunnelConfig(parsingUTF8: utf8, file: file) }
        }
        self = try result.get()
    }

    /// Parses UTF-8 text (see `init(parsing:file:)`). The parser works on
    /// bytes, as wg's does: a 10,000-peer file is read in milliseconds.
    public init(parsingUTF8 text: UnsafeBufferPointer<UInt8>, file: String) throws(ConfigError) {
        var parser = ConfigParser(file: file)
        var lineNumber = 0
        try forEachPiece(of: text, separatedBy: newline) { (line) throws(ConfigError) in
            lineNumber += 1
            try parser.consume(line, line: lineNumber)
        }
        self = try parser.finish()
    }

    /// Reads and parses a file.
    public init(contentsOf path: String) throws(ConfigError) {
        var bytes: [UInt8]
        do { bytes = try FileIO.readAll(path) } catch {
            throw ConfigError(file: path, line: 0, "cannot read: \(error)")
        }
        // The text may hold keys: wiped, and checked without a String copy.
        defer { KeyStore.wipe(&bytes) }
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        decoding: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: break decoding
            case .error: throw ConfigError(file: path, line: 0, "not UTF-8 text")
            }
        }
        let result = bytes.withUnsafeBufferPointer { utf8 in
            Result { () throws(ConfigError) -> TunnelConfig in try TunnelConfig(parsingUTF8: utf8, file: path) }
        }
        self = try result.get()
        resolveKeyFiles(relativeTo: path)
    }

    /// The warning wg-quick gives for a config that holds a key inline and
    /// that group or others can read (nil when there is nothing to say).
    public func exposureWarning(file: String) -> String? {
        var inline = false
        if case .inline = interface.privateKey { inline = true }
        for p in peers { if case .inline = p.presharedKey { inline = true } }
        var st = stat()
        guard inline, stat(file, &st) == 0, st.st_mode & 0o077 != 0 else { return nil }
        return "warning: \(file) holds a key and is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); run: chmod 600 \(file)"
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

typealias Bytes = UnsafeBufferPointer<UInt8>

private let newline = UInt8(ascii: "\n")

enum Section { case none, interface, peer, namespace }

/// Line-by-line state of one parse. Works on the UTF-8 bytes of each line;
/// text is made into `String`s only for values kept as text and for errors.
struct ConfigParser {
    let file: String
    var section = Section.none
    var config = TunnelConfig()
    /// The peer being filled (keys may come in any order, PublicKey too).
    var peer: PeerSettings?
    /// The line of the current `[Peer]` header.
    var peerLine = 0
    /// Whether the current peer has had its PublicKey.
    var peerHasKey = false

    init(file: String) { self.file = file }

    func error(_ line: Int, _ message: String) -> ConfigError { ConfigError(file: file, line: line, message) }

    mutating func consume(_ raw: Bytes, line: Int) throws(ConfigError) {
        var text = raw
        if let hash = text.firstIndex(of: UInt8(ascii: "#")) { text = Bytes(rebasing: text[..<hash]) }
        text = trimmed(text)
        if text.isEmpty { return }

        if text[0] == UInt8(ascii: "[") {
            try closePeer()
            switch normalized(text) {
            case "[interface]": section = .interface
            case "[peer]":
                section = .peer
                peer = PeerSettings(publicKey: PublicKey.zero)
                peerLine = line
                peerHasKey = false
            case "[namespace]": section = .namespace
            default:
                throw error(line, "unknown section '\(quoted(text))' (expected [Interface], [Peer] or [Namespace])")
            }
            return
        }
        guard let eq = text.firstIndex(of: UInt8(ascii: "=")) else {
            throw error(line, "expected 'Key = Value', got '\(quoted(text))'")
        }
        let key = trimmed(Bytes(rebasing: text[..<eq]))
        let value = trimmed(Bytes(rebasing: text[(eq + 1)...]))
        let k = normalized(key)
        switch section {
        case .none: throw error(line, "'\(quoted(key))' is outside any section (expected [Interface] or [Peer] first)")
        case .interface: try interfaceKey(k, key: key, value: value, line: line)
        case .peer: try peerKey(k, key: key, value: value, line: line)
        case .namespace: try namespaceKey(k, key: key, value: value, line: line)
        }
    }

    mutating func finish() throws(ConfigError) -> TunnelConfig {
        try closePeer()
        return config
    }

    mutating func closePeer() throws(ConfigError) {
        guard let p = peer else { return }
        peer = nil
        guard peerHasKey else { throw error(peerLine, "[Peer] has no PublicKey") }
        config.peers.append(p)
    }

    // MARK: [Interface]

    mutating func interfaceKey(_ k: String, key: Bytes, value: Bytes, line: Int) throws(ConfigError) {
        switch k {
        case "privatekey":
            config.interface.privateKey = .inline(try parseKey(PrivateKey.self, value, name: "PrivateKey", line: line))
        case "privatekeyfile":
            config.interface.privateKey = .file(try nonEmpty(value, "PrivateKeyFile", "a path", line))
        case "listenport":
            config.interface.listenPort = try parsePort(value, name: "ListenPort", line: line)
        case "fwmark":
            config.interface.firewallMark = try parseFwMark(value, line: line)
        case "address":
            for item in try list(value, "Address", line) {
                guard let p = IPPrefix(utf8: item) else {
                    throw error(line, "Address '\(quotedValue(item))' is not an IP address with an optional /prefix")
                }
                config.interface.addresses.append(p)
            }
        case "dns":
            for item in try list(value, "DNS", line) {
                // wg-quick's rule: digits and dots, or anything with a colon, is a server.
                if item.allSatisfy({ $0 == UInt8(ascii: ".") || isDigit($0) }) || item.contains(UInt8(ascii: ":")) {
                    guard let a = IPAddress(utf8: item) else {
                        throw error(line, "DNS '\(quotedValue(item))' is not a valid IP address")
                    }
                    config.interface.dnsServers.append(a)
                } else {
                    guard isDomain(item) else {
                        throw error(line, "DNS '\(quotedValue(item))' is neither an IP address nor a search domain")
                    }
                    config.interface.dnsSearch.append(str(item))
                }
            }
        case "mtu":
            guard let m = decimal(value, max: 65535), m >= 576 else {
                throw error(line, "MTU '\(quotedValue(value))' is not a number from 576 to 65535")
            }
            config.interface.mtu = UInt32(m)
        case "table":
            config.interface.table = SourcedText(try nonEmpty(value, "Table", "off, auto, a number or a table name", line), line: line)
        case "preup": config.interface.preUp.append(SourcedText(str(value), line: line))
        case "postup": config.interface.postUp.append(SourcedText(str(value), line: line))
        case "predown": config.interface.preDown.append(SourcedText(str(value), line: line))
        case "postdown": config.interface.postDown.append(SourcedText(str(value), line: line))
        case "saveconfig":
            config.interface.saveConfig = try parseBool(value, name: "SaveConfig", line: line)
        default:
            throw error(line, "unknown key '\(quoted(key))' in [Interface] (expected PrivateKey, PrivateKeyFile, ListenPort, FwMark, Address, DNS, MTU, Table, PreUp, PostUp, PreDown, PostDown or SaveConfig)")
        }
    }

    // MARK: [Peer]

    mutating func peerKey(_ k: String, key: Bytes, value: Bytes, line: Int) throws(ConfigError) {
        guard peer != nil else { return }
        switch k {
        case "publickey":
            peer!.publicKey = try parseKey(PublicKey.self, value, name: "PublicKey", line: line)
            peerHasKey = true
        case "presharedkey":
            peer!.presharedKey = .inline(try parseKey(PresharedKey.self, value, name: "PresharedKey", line: line))
        case "presharedkeyfile":
            peer!.presharedKey = .file(try nonEmpty(value, "PresharedKeyFile", "a path", line))
        case "allowedips":
            // wg ignores whitespace anywhere in the value, and refuses an
            // empty AllowedIPs line; so does wgns.
            // (Copied without spaces only when it has any.)
            let compact = value.contains(where: isSpace) ? withoutSpaces(value) : nil
            guard !(compact?.isEmpty ?? value.isEmpty) else {
                throw error(line, "AllowedIPs is empty (expected a comma-separated list of ADDR[/LEN])")
            }
            func each(_ all: Bytes) throws(ConfigError) {
                try forEachPiece(of: all, separatedBy: UInt8(ascii: ",")) { (item) throws(ConfigError) in
                    guard let p = IPPrefix(utf8: item) else {
                        throw error(line, "AllowedIPs '\(quotedValue(item))' is not an IP address with an optional /prefix")
                    }
                    peer!.allowedIPs.append(p)
                }
            }
            if let compact {
                try compact.withUnsafeBufferPointer { (all) throws(ConfigError) in try each(all) }
            } else {
                try each(value)
            }
        case "endpoint":
            let compact = value.contains(where: isSpace) ? withoutSpaces(value) : nil
            let e = compact.map { c in c.withUnsafeBufferPointer { Endpoint(utf8: $0) } } ?? Endpoint(utf8: value)
            guard let e else {
                let v = compact.map { c in c.withUnsafeBufferPointer { quotedValue($0) } } ?? quotedValue(value)
                throw error(line, "Endpoint '\(v)' is not host:port, 1.2.3.4:port or [v6]:port")
            }
            peer!.endpoint = e
        case "persistentkeepalive":
            if normalized(value) == "off" { peer!.persistentKeepalive = 0; break }
            guard let n = decimal(value, max: 65535) else {
                throw error(line, "PersistentKeepalive '\(quotedValue(value))' is not 'off' or a number of seconds from 0 to 65535")
            }
            peer!.persistentKeepalive = UInt16(n)
        default:
            throw error(line, "unknown key '\(quoted(key))' in [Peer] (expected PublicKey, PresharedKey, PresharedKeyFile, AllowedIPs, Endpoint or PersistentKeepalive)")
        }
    }

    // MARK: [Namespace]

    mutating func namespaceKey(_ k: String, key: Bytes, value: Bytes, line: Int) throws(ConfigError) {
        switch k {
        case "carrier":
            guard let c = CarrierKind(rawValue: normalized(value)) else {
                throw error(line, "Carrier '\(quotedValue(value))' is not slirp4netns, pasta or none")
            }
            config.namespace.carrier = c
        case "backend":
            guard let b = BackendKind(rawValue: normalized(value)) else {
                throw error(line, "Backend '\(quotedValue(value))' is not auto, kernel, builtin or wireguard-go")
            }
            config.namespace.backend = b
        case "mapuid":
            guard let u = decimal(value, max: UInt64(UInt32.max) - 1) else { throw error(line, "MapUID '\(quotedValue(value))' is not a user id") }
            config.namespace.mapUID = UInt32(u)
        case "mapgid":
            guard let g = decimal(value, max: UInt64(UInt32.max) - 1) else { throw error(line, "MapGID '\(quotedValue(value))' is not a group id") }
            config.namespace.mapGID = UInt32(g)
        case "isolate":
            config.namespace.isolate = try parseBool(value, name: "Isolate", line: line)
        case "netadmin":
            config.namespace.netAdmin = try parseBool(value, name: "NetAdmin", line: line)
        case "hostloopback":
            config.namespace.hostLoopback = try parseBool(value, name: "HostLoopback", line: line)
        case "mask":
            config.namespace.mask = try parseBool(value, name: "Mask", line: line)
        case "forwardtcp", "forwardudp":
            for item in try list(value, str(key), line) {
                guard let f = PortForward(str(item)) else {
                    throw error(line, "\(str(key)) '\(quotedValue(item))' is not PORT or HOSTPORT:NSPORT (ports 1 to 65535)")
                }
                if k == "forwardtcp" { config.namespace.forwardTCP.append(f) } else { config.namespace.forwardUDP.append(f) }
            }
        default:
            throw error(line, "unknown key '\(quoted(key))' in [Namespace] (expected Carrier, Backend, MapUID, MapGID, Isolate, NetAdmin, HostLoopback, Mask, ForwardTCP or ForwardUDP)")
        }
    }

    // MARK: values

    func parseKey<K: WireGuardKey>(_ type: K.Type, _ value: Bytes, name: String, line: Int) throws(ConfigError) -> K {
        var compact = withoutSpaces(value)
        defer { wipe(&compact) }
        let key: K? = compact.withUnsafeBytes { try? K(base64Bytes: $0) }
        // The value is not echoed: it may be a mistyped secret.
        guard let key else {
            throw error(line, "\(name) is not a valid key (expected 44 base64 characters ending in '=')")
        }
        return key
    }

    func parsePort(_ value: Bytes, name: String, line: Int) throws(ConfigError) -> UInt16 {
        guard let p = decimal(value, max: 65535) else {
            throw error(line, "\(name) '\(quotedValue(value))' is not a port number from 0 to 65535")
        }
        return UInt16(p)
    }

    func parseFwMark(_ value: Bytes, line: Int) throws(ConfigError) -> UInt32 {
        let v = normalized(value)
        if v == "off" { return 0 }
        let parsed: UInt32? = v.hasPrefix("0x") ? UInt32(v.dropFirst(2), radix: 16) : decimal(value, max: UInt64(UInt32.max)).map(UInt32.init)
        guard let mark = parsed else {
            throw error(line, "FwMark '\(quotedValue(value))' is not 'off' or a 32-bit number (decimal or 0x hex)")
        }
        return mark
    }

    func parseBool(_ value: Bytes, name: String, line: Int) throws(ConfigError) -> Bool {
        switch normalized(value) {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw error(line, "\(name) '\(quotedValue(value))' is not true or false")
        }
    }

    func nonEmpty(_ value: Bytes, _ name: String, _ expected: String, _ line: Int) throws(ConfigError) -> String {
        guard !value.isEmpty else { throw error(line, "\(name) is empty (expected \(expected))") }
        return str(value)
    }

    func list(_ value: Bytes, _ name: String, _ line: Int) throws(ConfigError) -> [Bytes] {
        var items: [Bytes] = []
        try forEachPiece(of: value, separatedBy: UInt8(ascii: ",")) { (piece) throws(ConfigError) in
            let item = trimmed(piece)
            if item.isEmpty { throw error(line, "\(name) has an empty item (expected a comma-separated list)") }
            items.append(item)
        }
        return items
    }
}

/// Whitespace as C's `isspace` in the C locale, which is what wg uses.
@inline(__always) func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0d) }
@inline(__always) func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

/// Calls `body` with each piece of `b` between `separator`s, in order,
/// empty pieces included (so "" is one empty piece and "a," two).
@inline(__always)
func forEachPiece(of b: Bytes, separatedBy separator: UInt8, _ body: (Bytes) throws(ConfigError) -> Void) throws(ConfigError) {
    var start = 0
    while start <= b.count {
        var end = start
        while end < b.count && b[end] != separator { end += 1 }
        try body(Bytes(rebasing: b[start..<end]))
        start = end + 1
    }
}

/// `b` without leading and trailing whitespace.
func trimmed(_ b: Bytes) -> Bytes {
    var lo = 0, hi = b.count
    while lo < hi && isSpace(b[lo]) { lo += 1 }
    while hi > lo && isSpace(b[hi - 1]) { hi -= 1 }
    return Bytes(rebasing: b[lo..<hi])
}

/// The bytes with all whitespace removed (wg's reading of values).
func withoutSpaces(_ b: Bytes) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(b.count)
    for c in b where !isSpace(c) { out.append(c) }
    return out
}

/// Lowercased ASCII with whitespace removed, for matching keys and words.
func normalized(_ b: Bytes) -> String {
    String(unsafeUninitializedCapacity: b.count) { out in
        var n = 0
        for c in b where !isSpace(c) { out[n] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c; n += 1 }
        return n
    }
}

/// A line or key that did not parse, as an error may quote it: only up to
/// its first separator (space, tab, ':', '=', ',') and at most 12
/// characters, with "..." when cut. A mistyped key line (`PrivateKey: KEY`,
/// a bare key) must not put the key into an error that ends up in a batch
/// job's output file.
func quoted(_ b: Bytes) -> String {
    let cut = b.firstIndex { $0 == 0x20 || $0 == 0x09 || $0 == 0x3a || $0 == 0x3d || $0 == 0x2c } ?? b.endIndex
    let head = b[b.startIndex..<min(cut, b.startIndex + 12)]
    return String(decoding: head, as: UTF8.self) + (head.count < b.count ? "..." : "")
}

/// A value that did not parse, as an error may quote it: at most 12
/// characters, cut also at the first whitespace or '=', with "..." when cut.
/// A line that lost its newline glues the next key onto this value
/// (`AllowedIPs = 10.0.0.0/8 PresharedKey = KEY`): the key must not reach an
/// error, whatever the field.
func quotedValue(_ b: Bytes) -> String {
    let cut = b.firstIndex { isSpace($0) || $0 == 0x3d } ?? b.endIndex
    let head = b[b.startIndex..<min(cut, b.startIndex + 12)]
    return String(decoding: head, as: UTF8.self) + (head.count < b.count ? "..." : "")
}

/// `quotedValue` of text.
func quotedValue(_ s: String) -> String {
    var s = s
    return s.withUTF8 { quotedValue($0) }
}

/// A name (a host, a routing table) as an error quotes it: whole when it is
/// one (letters, digits, '-', '_', '.'; a key glued on by a lost newline
/// brings its '='), else as `quotedValue`.
func quotedName(_ s: String) -> String {
    var s = s
    return s.withUTF8 { isDomain($0) ? String(decoding: $0, as: UTF8.self) : quotedValue($0) }
}

/// The bytes as text (they are always valid UTF-8 here: slices cut at ASCII).
func str(_ b: Bytes) -> String { String(decoding: b, as: UTF8.self) }

/// A decimal number of at most `max`, digits only; nil otherwise.
func decimal(_ b: Bytes, max: UInt64) -> UInt64? {
    guard !b.isEmpty, b.count <= 20 else { return nil }
    var v: UInt64 = 0
    for c in b {
        guard isDigit(c) else { return nil }
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (s, o2) = m.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
        guard !o1, !o2 else { return nil }
        v = s
    }
    return v <= max ? v : nil
}

/// A DNS search domain: letters, digits, hyphens, underscores and dots.
func isDomain(_ b: Bytes) -> Bool {
    !b.isEmpty && b.count <= 253 && b.allSatisfy {
        isDigit($0) || ($0 | 0x20 >= UInt8(ascii: "a") && $0 | 0x20 <= UInt8(ascii: "z")) || $0 == UInt8(ascii: "-")
            || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_")
    }
}
