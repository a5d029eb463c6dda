import CWGShim
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// Host-side preparation of endpoints: names resolved before any namespace
/// exists, and the WireGuard MTU picked from the host's route toward them.
/// The one place wgns turns an endpoint's host name into an address (`wgns
/// up`, `hub`, `setconf`/`addconf`/`syncconf`, `check --resolve`).
public enum Resolver {
    /// Which of a name's addresses to take.
    public enum Preference: Sendable, Hashable {
        /// The first one getaddrinfo gives, as `wg setconf` does.
        case first
        /// An IPv4 one if the name has one, else the first: the carriers
        /// (slirp4netns by default) carry IPv4 only.
        case ipv4
    }

    /// How often and how patiently a temporary failure is retried; the
    /// defaults are wg's (`parse_endpoint` in wireguard-tools): 15 retries,
    /// the first after 1 s, each pause a fifth longer than the one before,
    /// at most 20 s.
    public struct RetryPolicy: Sendable, Hashable {
        /// Retries after the first try; nil: retry for ever.
        public var retries: Int?
        /// The pause before the first retry, in microseconds.
        public var firstPause: UInt32 = 1_000_000
        /// The longest pause, in microseconds.
        public var longestPause: UInt32 = 20_000_000

        /// A policy with `retries` retries (nil: for ever) and wg's pauses.
        public init(retries: Int?) { self.retries = retries }

        /// The pause after `pause`: a fifth longer, at most `longestPause`.
        func next(after pause: UInt32) -> UInt32 { UInt32(min(UInt64(longestPause), UInt64(pause) * 6 / 5)) }

        /// wg's policy, with the retry count from `WG_ENDPOINT_RESOLUTION_RETRIES`
        /// (a whole number, or `infinity`) when it is set, 15 otherwise.
        public static func fromEnvironment() throws(TunnelError) -> RetryPolicy {
            try parse(getenv("WG_ENDPOINT_RESOLUTION_RETRIES").map { String(cString: $0) })
        }

        /// The policy for a `WG_ENDPOINT_RESOLUTION_RETRIES` value (nil: unset).
        static func parse(_ value: String?) throws(TunnelError) -> RetryPolicy {
            guard let text = value else { return RetryPolicy(retries: 15) }
            if text == "infinity" { return RetryPolicy(retries: nil) }
            guard let n = Int(text), n >= 0, n <= Int(Int32.max), text.allSatisfy(\.isASCII) else {
                throw TunnelError(.config, "WG_ENDPOINT_RESOLUTION_RETRIES='\(text)': expected a whole number or 'infinity'")
            }
            return RetryPolicy(retries: n)
        }
    }

    /// Resolves `endpoint` to one address. An IP address is taken as it is.
    /// A name goes to getaddrinfo (UDP, any family) with wg's policy: a name
    /// that does not exist (EAI_NONAME, EAI_NODATA, EAI_FAIL) fails at once;
    /// any other failure is temporary and retried as `policy` says, each
    /// retry announced through `notice` (one line, no `wgns:` prefix; by
    /// default `wgns: LINE` on stderr).
    /// Errors start with `context` (the config file) when given.
    public static func resolve(_ endpoint: Endpoint, prefer: Preference, context: String? = nil,
                               policy: RetryPolicy? = nil,
                               notice: ((String) -> Void)? = nil) throws(TunnelError) -> SocketAddress {
        if let a = endpoint.address { return SocketAddress(address: a, port: endpoint.port) }
        let retry: RetryPolicy
        if let policy { retry = policy } else { retry = try RetryPolicy.fromEnvironment() }
        let notice = notice ?? { writeStderr("wgns: \($0)\n") }
        let prefix = context.map { "\($0): " } ?? ""
        // A host name is quoted whole; anything else (a key glued on by a
        // lost newline brings its `=`) at most 12 characters (`quotedValue`).
        let quotedEndpoint = quotedName(endpoint.host) == endpoint.host ? endpoint.description : "\(quotedName(endpoint.host)):\(endpoint.port)"
        _ = hostLookupConfigured
        var pause = retry.firstPause
        var retried = 0
        while true {
            let (rc, why, found) = lookup(endpoint.host, family: AF_UNSPEC)
            // Only IPv6 in the answer: ask for IPv4 alone as well, and keep
            // the IPv6 address if that fails. (An AF_UNSPEC lookup in
            // /etc/hosts stops at the first line that names the host.)
            if prefer == .ipv4, let a = found, a.address.isV6,
               case (0, _, let v4?) = lookup(endpoint.host, family: AF_INET) {
                return SocketAddress(address: v4.address, port: endpoint.port)
            }
            if rc == 0 {
                guard let a = found else {
                    throw TunnelError(.resolve, "\(prefix)endpoint \(quotedEndpoint) does not resolve: neither an IPv4 nor an IPv6 address found")
                }
                return SocketAddress(address: a.address, port: endpoint.port, scopeID: a.scopeID)
            }
            // glibc's permanent failures (its NameResolver notes): retrying cannot help.
            let permanent = rc == EAI_NONAME || rc == EAI_FAIL || rc == eaiNoData
            if permanent || (retry.retries.map { retried >= $0 } ?? false) {
                let tries = retried > 0 ? " (tried \(retried + 1) times)" : ""
                throw TunnelError(.resolve, "\(prefix)endpoint \(quotedEndpoint) does not resolve: \(why)\(tries)")
            }
            retried += 1
            let hundredths = (pause + 5_000) / 10_000
            notice("\(prefix)endpoint \(quotedEndpoint): \(why); trying again in \(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100) s")
            var ts = timespec(tv_sec: Int(pause / 1_000_000), tv_nsec: Int(pause % 1_000_000) * 1000)
            var rest = timespec()
            while nanosleep(&ts, &rest) < 0 && errno == EINTR { ts = rest }
            pause = retry.next(after: pause)
        }
    }

    /// EAI_NODATA: glibc defines it for GNU sources only, so Swift does not see it.
    private static let eaiNoData: Int32 = -5

    /// One getaddrinfo (UDP) of `host` in `family`: its status, the reason
    /// in words, and the first IPv4 or IPv6 address it gave (port 0).
    private static func lookup(_ host: String, family: Int32) -> (Int32, String, SocketAddress?) {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_UDP)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        let why = rc == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(rc))
        guard rc == 0 else { return (rc, why, nil) }
        defer { freeaddrinfo(list) }
        var p = list
        while let a = p, let sa = a.pointee.ai_addr {
            p = a.pointee.ai_next
            if a.pointee.ai_family == AF_INET && a.pointee.ai_addrlen >= MemoryLayout<sockaddr_in>.size {
                let sin = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in.self)
                if let ip = withUnsafeBytes(of: sin.sin_addr, { IPAddress(bytes: $0) }) {
                    return (0, why, SocketAddress(address: ip, port: 0))
                }
            } else if a.pointee.ai_family == AF_INET6 && a.pointee.ai_addrlen >= MemoryLayout<sockaddr_in6>.size {
                let sin6 = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in6.self)
                if let ip = withUnsafeBytes(of: sin6.sin6_addr, { IPAddress(bytes: $0) }) {
                    return (0, why, SocketAddress(address: ip, port: 0, scopeID: sin6.sin6_scope_id))
                }
            }
        }
        return (0, why, nil)
    }

    /// The services of nsswitch.conf's `hosts:` line that a static glibc
    /// has built in, `files` and `dns`, in the order given; "files dns"
    /// when the line names neither (or there is no file). Every other
    /// service (sss, ldap, myhostname, mdns...) is an NSS module that glibc
    /// would dlopen: absent, it can stall or fail the lookup, and present,
    /// it is a shared library built against another glibc than the one
    /// linked into wgns. Actions (`[NOTFOUND=return]`) are dropped with them.
    public static func hostServices(nsswitch text: String?) -> String {
        var found: [String] = []
        for raw in (text ?? "").split(separator: "\n") {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard trimmed.hasPrefix("hosts:") else { continue }
            var inAction = false
            var word = ""
            for ch in trimmed.dropFirst("hosts:".count) + " " {
                if inAction { if ch == "]" { inAction = false }; continue }
                if ch == "[" { inAction = true; continue }
                if ch == " " || ch == "\t" {
                    let w = word.lowercased()
                    if (w == "files" || w == "dns") && !found.contains(w) { found.append(w) }
                    word = ""
                } else {
                    word.append(ch)
                }
            }
        }
        return found.isEmpty ? "files dns" : found.joined(separator: " ")
    }

    /// Once per process, before the first lookup: the hosts database uses
    /// only what `hostServices` keeps of /etc/nsswitch.conf.
    private static let hostLookupConfigured: Bool = {
        let text = (try? FileIO.readAll("/etc/nsswitch.conf")).map { String(decoding: $0, as: UTF8.self) }
        return CWGShim_nss_configure_hosts(hostServices(nsswitch: text)) == 0
    }()

    /// The MTU of the carrier's tap device inside the namespace.
    public static let carrierMTU: UInt32 = 65520

    /// WireGuard's per-packet overhead on the worst path (IPv6 + UDP + WireGuard).
    public static let overhead: UInt32 = 80

    /// The WireGuard MTU for a config whose endpoints are `endpoints`: the
    /// host's route MTU toward each (at most the carrier's), minus 80, the
    /// smallest of them; 1420 without endpoints.
    public static func mtu(toward endpoints: [SocketAddress], routes: RouteNetlink?) -> UInt32 {
        guard !endpoints.isEmpty, let routes else { return 1420 }
        var best = carrierMTU
        for e in endpoints {
            var m: UInt32 = 1500
            if let info = try? routes.routeGet(e.address) {
                m = info.mtu != 0 ? info.mtu : ((try? routes.link(index: info.deviceIndex))??.mtu ?? 1500)
            }
            best = min(best, m)
        }
        return max(best, 1280 + overhead) - overhead
    }
}
