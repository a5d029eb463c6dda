import KeyStore
import WGNetlink

/// One wg-quick style config file, parsed: `[Interface]`, `[Peer]`s, and
/// wgns's own `[Namespace]` section.
public struct TunnelConfig: Sendable, Hashable {
    /// The `[Interface]` section.
    public var interface: InterfaceSettings
    /// The `[Peer]` sections, in file order.
    public var peers: [PeerSettings]
    /// wgns's own settings; all nil when the file has no `[Namespace]` section.
    public var namespace: NamespaceSettings

    /// Wraps parsed sections.
    public init(interface: InterfaceSettings = .init(), peers: [PeerSettings] = [], namespace: NamespaceSettings = .init()) {
        self.interface = interface
        self.peers = peers
        self.namespace = namespace
    }
}

/// Where a secret comes from: inline in the config, or a separate key file.
public enum KeySource<Key: WireGuardKey>: Sendable, Hashable {
    /// The key was written in the config.
    case inline(Key)
    /// The key lives in this file (mode 0600), read when needed.
    case file(String)

    /// The key: inline, or read from its file (refusing a file others can read).
    public func load() throws(KeyStoreError) -> Key {
        switch self {
        case .inline(let k): return k
        case .file(let path): return try KeyFile.read(Key.self, path: path)
        }
    }
}

/// `[Interface]` settings, the ones `wg` reads and the ones wg-quick adds.
public struct InterfaceSettings: Sendable, Hashable {
    /// `PrivateKey =` or `PrivateKeyFile =`.
    public var privateKey: KeySource<PrivateKey>?
    /// `ListenPort =`.
    public var listenPort: UInt16?
    /// `FwMark =` (`off` is 0).
    public var firewallMark: UInt32?
    /// `Address =`, every one, in order.
    public var addresses: [IPPrefix] = []
    /// `DNS =` entries that are IP addresses.
    public var dnsServers: [IPAddress] = []
    /// `DNS =` entries that are not IP addresses: search domains.
    public var dnsSearch: [String] = []
    /// `MTU =`.
    public var mtu: UInt32?
    /// `Table =` as written (`off`, `auto`, a number or a name).
    public var table: SourcedText?
    /// `PreUp =`, `PostUp =`, `PreDown =`, `PostDown =`, each in order.
    public var preUp: [SourcedText] = [], postUp: [SourcedText] = [], preDown: [SourcedText] = [], postDown: [SourcedText] = []
    /// `SaveConfig =`.
    public var saveConfig: Bool?

    /// Empty settings.
    public init() {}
}

/// A value kept as text, with the line it was read from (0 when it was not
/// read from a file). Two values are equal when their texts are: the line
/// only serves error messages.
public struct SourcedText: Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The value as written.
    public var text: String
    /// Its 1-based line in the config file.
    public var line: Int

    /// Wraps a value and its line.
    public init(_ text: String, line: Int = 0) {
        self.text = text
        self.line = line
    }

    /// A value not read from a file.
    public init(stringLiteral text: String) { self.init(text) }

    public static func == (a: SourcedText, b: SourcedText) -> Bool { a.text == b.text }
    public func hash(into h: inout Hasher) { h.combine(text) }
    public var description: String { text }
}

/// A `[Peer]` section.
public struct PeerSettings: Sendable, Hashable {
    /// `PublicKey =`.
    public var publicKey: PublicKey
    /// `PresharedKey =` or `PresharedKeyFile =`.
    public var presharedKey: KeySource<PresharedKey>?
    /// `AllowedIPs =`, every one, in order.
    public var allowedIPs: [IPPrefix] = []
    /// `Endpoint =`: a host (name or address) and a port.
    public var endpoint: Endpoint?
    /// `PersistentKeepalive =` (`off` is 0).
    public var persistentKeepalive: UInt16?

    /// A peer with only its key.
    public init(publicKey: PublicKey) { self.publicKey = publicKey }
}

/// An endpoint as written: a host name or address, and a port.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP address text (without brackets).
    public var host: String
    /// UDP port.
    public var port: UInt16

    /// Wraps a host and port.
    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `1.2.3.4:port` or `[v6]:port`; nil otherwise.
    public init?(_ text: some StringProtocol) {
        var s = String(text)
        guard let e = s.withUTF8({ Endpoint(utf8: $0) }) else { return nil }
        self = e
    }

    /// The same from UTF-8 bytes (the config parser's form): a bracketed
    /// IPv6 address (with an optional `%zone`), or a host or IPv4 address
    /// without any `:`, then `:` and a port of at most 5 digits.
    public init?(utf8 s: UnsafeBufferPointer<UInt8>) {
        let colon = UInt8(ascii: ":")
        let host: Slice<UnsafeBufferPointer<UInt8>>
        let port: Slice<UnsafeBufferPointer<UInt8>>
        if s.first == UInt8(ascii: "[") {
            guard let close = s.firstIndex(of: UInt8(ascii: "]")), close + 1 < s.count, s[close + 1] == colon else { return nil }
            host = s[1..<close]
            port = s[(close + 2)...]
            let address = host.firstIndex(of: UInt8(ascii: "%")).map { host[..<$0] } ?? host
            guard !host.isEmpty, IPAddress(utf8: UnsafeBufferPointer(rebasing: address))?.isV6 == true else { return nil }
        } else {
            guard let last = s.lastIndex(of: colon) else { return nil }
            host = s[..<last]
            port = s[(last + 1)...]
            // An IPv6 address must be bracketed.
            guard !host.isEmpty, !host.contains(colon) else { return nil }
        }
        guard let value = parseDecimal(port, maxDigits: 5, max: 65535) else { return nil }
        self.init(host: String(decoding: UnsafeBufferPointer(rebasing: host), as: UTF8.self), port: UInt16(value))
    }

    /// The host as an IP address, when it is one.
    public var address: IPAddress? {
        var h = host
        return h.withUTF8 { IPAddress(utf8: $0) }
    }

    /// `host:port`, bracketing IPv6.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Which user-mode network stack carries the namespace's traffic out (for
/// the kernel's and wireguard-go's WireGuard, its encrypted UDP too), or
/// none at all.
public enum CarrierKind: String, Sendable, Hashable, CaseIterable {
    case slirp4netns
    case pasta
    /// `none`: no carrier. The namespace has no way out but the built-in
    /// backend's TUN, whose UDP socket is on the host.
    case noCarrier = "none"

    /// The program that runs this carrier; nil for `none`.
    public var program: String? { self == .noCarrier ? nil : rawValue }
}

/// Which WireGuard implementation runs the interface.
public enum BackendKind: Sendable, Hashable, CaseIterable, RawRepresentable {
    /// The kernel's when it has one, else the built-in one.
    case auto
    /// The kernel module only.
    case kernel
    /// wgns's own data plane: a TUN in the namespace, its UDP socket on the host.
    case builtin
    /// wireguard-go in the namespace (`userspace` is an alias).
    case wireguardGo

    /// `auto`, `kernel`, `builtin` or `wireguard-go`.
    public var rawValue: String {
        switch self {
        case .auto: return "auto"
        case .kernel: return "kernel"
        case .builtin: return "builtin"
        case .wireguardGo: return "wireguard-go"
        }
    }

    /// Reads a backend's name; `userspace` is the older name of `wireguard-go`.
    public init?(rawValue: String) {
        switch rawValue {
        case "auto": self = .auto
        case "kernel": self = .kernel
        case "builtin": self = .builtin
        case "wireguard-go", "userspace": self = .wireguardGo
        default: return nil
        }
    }
}

/// A port forwarded from the host into the namespace.
public struct PortForward: Sendable, Hashable, CustomStringConvertible {
    /// Port on the host side.
    public var hostPort: UInt16
    /// Port inside the namespace.
    public var namespacePort: UInt16

    /// Wraps two ports.
    public init(hostPort: UInt16, namespacePort: UInt16) {
        self.hostPort = hostPort
        self.namespacePort = namespacePort
    }

    /// Parses `PORT` or `HOSTPORT:NSPORT`.
    public init?(_ text: some StringProtocol) {
        let parts = Substring(text).split(separator: ":", omittingEmptySubsequences: false)
        func port(_ s: Substring) -> UInt16? {
            guard !s.isEmpty, s.count <= 5, s.allSatisfy({ $0.isASCII && $0.isNumber }), let p = UInt16(s), p != 0 else { return nil }
            return p
        }
        switch parts.count {
        case 1:
            guard let p = port(parts[0]) else { return nil }
            self.init(hostPort: p, namespacePort: p)
        case 2:
            guard let h = port(parts[0]), let n = port(parts[1]) else { return nil }
            self.init(hostPort: h, namespacePort: n)
        default: return nil
        }
    }

    /// `PORT` or `HOSTPORT:NSPORT`.
    public var description: String { hostPort == namespacePort ? "\(hostPort)" : "\(hostPort):\(namespacePort)" }
}

/// wgns's own `[Namespace]` section: settings wg-quick has no word for.
/// Every field is nil (or empty) when not given; command-line flags override.
public struct NamespaceSettings: Sendable, Hashable {
    /// `Carrier = slirp4netns | pasta | none`.
    public var carrier: CarrierKind?
    /// `Backend = auto | kernel | builtin | wireguard-go` (`userspace` is wireguard-go).
    public var backend: BackendKind?
    /// `MapUID =`: the job's uid inside the namespace.
    public var mapUID: UInt32?
    /// `MapGID =`: the job's gid inside the namespace.
    public var mapGID: UInt32?
    /// `Isolate = true|false`: the job sees only `lo` and the tunnel.
    public var isolate: Bool?
    /// `NetAdmin = true|false`: the job runs in the tunnel's own user
    /// namespace, as its root, and so can change and leave its tunnel.
    public var netAdmin: Bool?
    /// `HostLoopback = true|false`: reach the host's loopback at 10.0.2.2.
    public var hostLoopback: Bool?
    /// `Mask = true|false`: hide the configs, key files and VPN folder the
    /// tunnel was built from in the job's file system (default true).
    public var mask: Bool?
    /// `ForwardTCP =`: host TCP ports forwarded into the namespace.
    public var forwardTCP: [PortForward] = []
    /// `ForwardUDP =`: host UDP ports forwarded into the namespace.
    public var forwardUDP: [PortForward] = []

    /// No settings.
    public init() {}

    /// True when nothing is set (the file is a plain wg-quick file).
    public var isEmpty: Bool { self == NamespaceSettings() }
}
