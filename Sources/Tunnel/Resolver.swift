import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// Host-side preparation of endpoints: names resolved before any namespace
/// exists, and the WireGuard MTU picked from the host's route toward them.
public enum Resolver {
    /// Resolves `endpoint` to one address (IPv4 preferred: slirp4netns carries
    /// only IPv4 by default). Temporary failures (EAI_AGAIN) are retried with
    /// back-off, `retries` times, as `wg` does; a name that does not exist fails at once.
    public static func resolve(_ endpoint: Endpoint, retries: Int = 8) throws(TunnelError) -> SocketAddress {
        if let a = endpoint.address { return SocketAddress(address: a, port: endpoint.port) }
        var delayMs = 50
        var attempt = 0
        while true {
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
            var res: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(endpoint.host, nil, &hints, &res)
            if rc == 0, let first = res {
                defer { freeaddrinfo(res) }
                var v4: IPAddress?, v6: IPAddress?
                var p: UnsafeMutablePointer<addrinfo>? = first
                while let a = p {
                    if a.pointee.ai_family == AF_INET, v4 == nil {
                        a.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                            var addr = sin.pointee.sin_addr
                            v4 = withUnsafeBytes(of: &addr) { IPAddress(bytes: $0) }
                        }
                    } else if a.pointee.ai_family == AF_INET6, v6 == nil {
                        a.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                            var addr = sin.pointee.sin6_addr
                            v6 = withUnsafeBytes(of: &addr) { IPAddress(bytes: $0) }
                        }
                    }
                    p = a.pointee.ai_next
                }
                if let a = v4 ?? v6 { return SocketAddress(address: a, port: endpoint.port) }
            }
            let temporary = rc == EAI_AGAIN || rc == EAI_SYSTEM
            if !temporary || attempt >= retries {
                let why = rc == 0 ? "no address" : String(cString: gai_strerror(rc))
                throw TunnelError(.resolve, "endpoint \(endpoint) does not resolve: \(why)")
            }
            attempt += 1
            var ts = timespec(tv_sec: delayMs / 1000, tv_nsec: (delayMs % 1000) * 1_000_000)
            var rest = timespec()
            while nanosleep(&ts, &rest) < 0 && errno == EINTR { ts = rest }
            delayMs = min(delayMs * 2, 2000)
        }
    }

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
