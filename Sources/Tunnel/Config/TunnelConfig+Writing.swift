import KeyStore
import WGNetlink

extension TunnelConfig {
    /// How much of the config to write.
    public enum Rendering: Sendable {
        /// Everything: wg-quick keys and the `[Namespace]` section.
        case full
        /// Only what `wg setconf` reads, as `wg-quick strip` prints; key files
        /// are read and their keys written inline.
        case stripped
    }

    /// The config as wg-quick text. Holds secrets: write it only to stdout or
    /// to a mode-0600 file.
    public func rendered(_ rendering: Rendering = .full) throws(KeyStoreError) -> String {
        var bytes = try renderedBytes(rendering)
        defer { KeyStore.wipe(&bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The config as wg-quick text in a buffer that the caller wipes
    /// (`KeyStore.wipe`): the keys are appended straight into it, never
    /// held in a String.
    public func renderedBytes(_ rendering: Rendering = .full) throws(KeyStoreError) -> [UInt8] {
        var out = Array("[Interface]\n".utf8)
        let i = interface
        let full = rendering == .full
        func line(_ key: String, _ value: String) { out += Array("\(key) = \(value)\n".utf8) }
        func secret(_ key: String, _ append: (inout [UInt8]) -> Void) {
            out += Array("\(key) = ".utf8)
            append(&out)
            out.append(10)
        }
        switch i.privateKey {
        case .inline(let k)?: secret("PrivateKey", k.appendBase64Secret)
        case .file(let path)?:
            if full { line("PrivateKeyFile", path) } else { secret("PrivateKey", try KeyFile.read(PrivateKey.self, path: path).appendBase64Secret) }
        case nil: break
        }
        if let p = i.listenPort { line("ListenPort", "\(p)") }
        if let m = i.firewallMark { line("FwMark", m == 0 ? "off" : "0x" + String(m, radix: 16)) }
        if full {
            if !i.addresses.isEmpty { line("Address", i.addresses.map(\.description).joined(separator: ", ")) }
            let dns = i.dnsServers.map(\.description) + i.dnsSearch
            if !dns.isEmpty { line("DNS", dns.joined(separator: ", ")) }
            if let m = i.mtu { line("MTU", "\(m)") }
            if let t = i.table { line("Table", t.text) }
            for c in i.preUp { line("PreUp", c.text) }
            for c in i.postUp { line("PostUp", c.text) }
            for c in i.preDown { line("PreDown", c.text) }
            for c in i.postDown { line("PostDown", c.text) }
            if let s = i.saveConfig { line("SaveConfig", s ? "true" : "false") }
        }
        for p in peers {
            out += Array("\n[Peer]\n".utf8)
            line("PublicKey", p.publicKey.base64)
            switch p.presharedKey {
            case .inline(let k)?: secret("PresharedKey", k.appendBase64Secret)
            case .file(let path)?:
                if full { line("PresharedKeyFile", path) } else { secret("PresharedKey", try KeyFile.read(PresharedKey.self, path: path).appendBase64Secret) }
            case nil: break
            }
            if !p.allowedIPs.isEmpty { line("AllowedIPs", p.allowedIPs.map(\.description).joined(separator: ", ")) }
            if let e = p.endpoint { line("Endpoint", e.description) }
            if let k = p.persistentKeepalive { line("PersistentKeepalive", k == 0 ? "off" : "\(k)") }
        }
        let n = namespace
        if full && !n.isEmpty {
            out += Array("\n[Namespace]\n".utf8)
            if let c = n.carrier { line("Carrier", c.rawValue) }
            if let b = n.backend { line("Backend", b.rawValue) }
            if let u = n.mapUID { line("MapUID", "\(u)") }
            if let g = n.mapGID { line("MapGID", "\(g)") }
            if let v = n.isolate { line("Isolate", v ? "true" : "false") }
            if let v = n.netAdmin { line("NetAdmin", v ? "true" : "false") }
            if let v = n.hostLoopback { line("HostLoopback", v ? "true" : "false") }
            if let v = n.mask { line("Mask", v ? "true" : "false") }
            if !n.forwardTCP.isEmpty { line("ForwardTCP", n.forwardTCP.map(\.description).joined(separator: ", ")) }
            if !n.forwardUDP.isEmpty { line("ForwardUDP", n.forwardUDP.map(\.description).joined(separator: ", ")) }
        }
        return out
    }
}
