import CLibMnl
import KeyStore
#if canImport(Glibc)
import Glibc
#endif


/// Builds a `Device` from the messages of a `WG_CMD_GET_DEVICE` dump.
struct GetDeviceDecoder {
    private(set) var device: Device

    init(name: String) { device = Device(name: name) }

    /// Adds one message of the dump.
    mutating func add(_ msg: UnsafePointer<nlmsghdr>) {
        var firstPeerInMessage = true
        for a in Attributes(message: msg, headerSize: MemoryLayout<genlmsghdr>.size) {
            switch UInt32(a.type) {
            case WGDEVICE_A_IFINDEX.rawValue: device.ifindex = a.u32
            case WGDEVICE_A_IFNAME.rawValue: device.name = a.string
            case WGDEVICE_A_PRIVATE_KEY.rawValue:
                if let k = try? PrivateKey(rawBytes: a.payload), !k.isZero { device.privateKey = k }
            case WGDEVICE_A_PUBLIC_KEY.rawValue:
                if let k = try? PublicKey(rawBytes: a.payload), !k.isZero { device.publicKey = k }
            case WGDEVICE_A_LISTEN_PORT.rawValue: device.listenPort = a.u16
            case WGDEVICE_A_FWMARK.rawValue: device.firewallMark = a.u32
            case WGDEVICE_A_PEERS.rawValue:
                for p in a.nested {
                    guard let peer = Self.parsePeer(p) else { continue }
                    // A peer whose allowed IPs did not fit continues, same key, at
                    // the start of the next message.
                    if firstPeerInMessage, let last = device.peers.last, last.publicKey == peer.publicKey {
                        device.peers[device.peers.count - 1].allowedIPs.append(contentsOf: peer.allowedIPs)
                    } else {
                        device.peers.append(peer)
                    }
                    firstPeerInMessage = false
                }
            default: break
            }
        }
    }

    static func parsePeer(_ nest: Attribute) -> Peer? {
        // The public key comes first; finding it first avoids building a
        // placeholder key for every peer.
        guard let keyAttr = nest.nested.first(where: { UInt32($0.type) == WGPEER_A_PUBLIC_KEY.rawValue }),
              let key = try? PublicKey(rawBytes: keyAttr.payload) else { return nil }
        var peer = Peer(publicKey: key)
        for a in nest.nested {
            switch UInt32(a.type) {
            case WGPEER_A_PRESHARED_KEY.rawValue:
                // The kernel always sends one; all zeros means none.
                if a.payload.contains(where: { $0 != 0 }), let k = try? PresharedKey(rawBytes: a.payload) { peer.presharedKey = k }
            case WGPEER_A_ENDPOINT.rawValue: peer.endpoint = parseEndpoint(a.payload)
            case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL.rawValue: peer.persistentKeepaliveInterval = a.u16
            case WGPEER_A_LAST_HANDSHAKE_TIME.rawValue:
                if a.payload.count >= 16 {
                    peer.lastHandshake = (a.payload.loadUnaligned(as: Int64.self),
                                          a.payload.loadUnaligned(fromByteOffset: 8, as: Int64.self))
                }
            case WGPEER_A_RX_BYTES.rawValue: peer.receiveBytes = a.u64
            case WGPEER_A_TX_BYTES.rawValue: peer.transmitBytes = a.u64
            case WGPEER_A_PROTOCOL_VERSION.rawValue: peer.protocolVersion = a.u32
            case WGPEER_A_ALLOWEDIPS.rawValue:
                for ip in a.nested {
                    var family: UInt16 = 0
                    var address: IPAddress?
                    var cidr: UInt8 = 0
                    for f in ip.nested {
                        switch UInt32(f.type) {
                        case WGALLOWEDIP_A_FAMILY.rawValue: family = f.u16
                        case WGALLOWEDIP_A_IPADDR.rawValue: address = IPAddress(bytes: f.payload)
                        case WGALLOWEDIP_A_CIDR_MASK.rawValue: cidr = f.u8
                        default: break
                        }
                    }
                    if let address, Int32(family) == address.family, let p = IPPrefix(address: address, prefixLength: cidr) {
                        peer.allowedIPs.append(p)
                    }
                }
            default: break
            }
        }
        return peer
    }

    /// A `sockaddr_in` / `sockaddr_in6` as the kernel sends it.
    static func parseEndpoint(_ raw: UnsafeRawBufferPointer) -> SocketAddress? {
        guard raw.count >= 2 else { return nil }
        let family = Int32(raw.loadUnaligned(as: sa_family_t.self))
        if family == AF_INET, raw.count >= MemoryLayout<sockaddr_in>.size {
            let sin = raw.loadUnaligned(as: sockaddr_in.self)
            return withUnsafeBytes(of: sin.sin_addr) { SocketAddress(address: IPAddress(bytes: $0)!, port: UInt16(bigEndian: sin.sin_port)) }
        }
        if family == AF_INET6, raw.count >= MemoryLayout<sockaddr_in6>.size {
            let sin6 = raw.loadUnaligned(as: sockaddr_in6.self)
            return withUnsafeBytes(of: sin6.sin6_addr) {
                SocketAddress(address: IPAddress(bytes: $0)!, port: UInt16(bigEndian: sin6.sin6_port), scopeID: sin6.sin6_scope_id)
            }
        }
        return nil
    }
}
