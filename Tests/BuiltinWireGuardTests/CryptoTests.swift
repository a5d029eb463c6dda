import Testing
@testable import BuiltinWireGuard

/// Known-answer vectors: the RFCs' and a second implementation's (Python's
/// hashlib/hmac for the HMAC-BLAKE2s compositions) are the judges.
@Suite struct CryptoTests {
    @Test func blake2sRFC7693() {
        var out = [UInt8](repeating: 0, count: 32)
        Array("abc".utf8).withUnsafeBytes { m in out.withUnsafeMutableBytes { Crypto.hash($0, m) } }
        #expect(hexString(out) == "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982")
    }

    @Test func hmacAndKDFMatchPythonHMACBlake2s() {
        // python3: hmac.new(bytes(range(32)), b"wgns hmac test", hashlib.blake2s), and the KDF chain on it.
        let key = (0..<32).map { UInt8($0) }
        let msg = Array("wgns hmac test".utf8)
        var out = [UInt8](repeating: 0, count: 32)
        key.withUnsafeBytes { k in msg.withUnsafeBytes { m in out.withUnsafeMutableBytes { Crypto.hmac($0, key: k, m) } } }
        #expect(hexString(out) == "71fafa9911f7fd7ee230cce8bd65ded529bf2830f1edbab107e1efa6afb9f671")
        var t1 = [UInt8](repeating: 0, count: 32), t2 = t1, t3 = t1
        key.withUnsafeBytes { k in msg.withUnsafeBytes { m in
            t1.withUnsafeMutableBytes { o1 in t2.withUnsafeMutableBytes { o2 in t3.withUnsafeMutableBytes { o3 in
                Crypto.kdf(key: k, input: m, o1, o2, o3)
            } } }
        } }
        #expect(hexString(t1) == "e0a746954e792dced1c86d7944b0be7bd9f4c3d0a3598fac095bcf1cd1df8473")
        #expect(hexString(t2) == "1745d971823c6c144b1bcc1271cd6424126c720fd64342ad898e34c5424df616")
        #expect(hexString(t3) == "3334ada050622dba3d30b14b17ed4aad3c0fd29475028c2aa148acea780124ec")
    }

    @Test func noiseInitialChainKeyAndHash() {
        #expect(hexString(Noise.initial.chainKey.array) == "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36")
        #expect(hexString(Noise.initial.hash.array) == "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3")
    }

    @Test func x25519RFC7748() {
        func dh(_ scalar: String, _ u: String) -> String? {
            var out = [UInt8](repeating: 0, count: 32)
            let ok = hex(scalar).withUnsafeBytes { s in hex(u).withUnsafeBytes { p in
                out.withUnsafeMutableBytes { Crypto.dh($0, privateKey: s, publicKey: p) } } }
            return ok ? hexString(out) : nil
        }
        // §5.2, first vector.
        #expect(dh("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                   "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
                == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
        // §6.1: both sides of the Diffie-Hellman agree on the published secret.
        let alice = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
        let bob = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
        let alicePub = hex(alice).withUnsafeBytes { Crypto.publicKey(of: $0) }
        #expect(hexString(alicePub.array) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        #expect(dh(alice, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f") == shared)
        #expect(dh(bob, hexString(alicePub.array)) == shared)
        // A low-order point gives the all-zero result, which is refused.
        #expect(dh(alice, String(repeating: "0", count: 64)) == nil)
    }

    static let sunscreen = Array("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8)

    @Test func chacha20Poly1305RFC8439() {
        let key = (0x80..<0xa0).map { UInt8($0) }
        let nonce = hex("070000004041424344454647")
        let ad = hex("50515253c0c1c2c3c4c5c6c7")
        let pt = Self.sunscreen
        var ct = [UInt8](repeating: 0, count: pt.count), tag = [UInt8](repeating: 0, count: 16)
        key.withUnsafeBytes { k in nonce.withUnsafeBufferPointer { n in pt.withUnsafeBytes { p in ad.withUnsafeBytes { a in
            ct.withUnsafeMutableBytes { c in tag.withUnsafeMutableBytes { t in
                Crypto.sealIETF(key: k, nonce: n.baseAddress!, plaintext: p, ad: a, out: c.baseAddress!, tag: t.baseAddress!)
            } }
        } } } }
        #expect(hexString(ct) == "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116")
        #expect(hexString(tag) == "1ae10b594f09e26a7e902ecbd0600691")
        // Open it again; a flipped bit fails.
        var back = [UInt8](repeating: 0, count: pt.count)
        func open(_ c: [UInt8]) -> Bool {
            key.withUnsafeBytes { k in nonce.withUnsafeBufferPointer { n in c.withUnsafeBytes { cb in ad.withUnsafeBytes { a in
                tag.withUnsafeBytes { t in back.withUnsafeMutableBytes { o in
                    Crypto.openIETF(key: k, nonce: n.baseAddress!, ciphertext: cb, tag: t.baseAddress!, ad: a, out: o.baseAddress!)
                } }
            } } } }
        }
        #expect(open(ct) && back == pt)
        var bad = ct
        bad[7] ^= 1
        #expect(!open(bad))
    }

    @Test func transportNonceIsFourZerosThenCounterLittleEndian() {
        let bytes = Crypto.withNonce(0x0807_0605_0403_0201) { Array(UnsafeBufferPointer(start: $0, count: 12)) }
        #expect(bytes == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func xchacha20Poly1305Draft() {
        let key = (0x80..<0xa0).map { UInt8($0) }
        let nonce = (0x40..<0x58).map { UInt8($0) }
        let ad = hex("50515253c0c1c2c3c4c5c6c7")
        var out = [UInt8](repeating: 0, count: Self.sunscreen.count + 16)
        key.withUnsafeBytes { k in nonce.withUnsafeBytes { n in Self.sunscreen.withUnsafeBytes { p in ad.withUnsafeBytes { a in
            out.withUnsafeMutableBytes { Crypto.xseal(key: k, nonce: n, plaintext: p, ad: a, out: $0) }
        } } } }
        #expect(hexString(out) == "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e" + "c0875924c1c7987947deafd8780acf49")
        var back = [UInt8](repeating: 0, count: Self.sunscreen.count)
        let ok = key.withUnsafeBytes { k in nonce.withUnsafeBytes { n in out.withUnsafeBytes { c in ad.withUnsafeBytes { a in
            back.withUnsafeMutableBytes { Crypto.xopen(key: k, nonce: n, ciphertext: c, ad: a, out: $0) }
        } } } }
        #expect(ok && back == Self.sunscreen)
    }

    @Test func timestampIsTAI64NWhitened() {
        let t = Noise.timestamp((seconds: 1_700_000_000, nanoseconds: 123_456_789))
        let b = t.array
        // 2^62 + 10 + seconds, big-endian.
        #expect(hexString(b[0..<8]) == hexString(withUnsafeBytes(of: (UInt64(0x4000_0000_0000_000a) + 1_700_000_000).bigEndian) { Array($0) }))
        // The nanoseconds' low 24 bits are cleared: 123456789 & ~0xffffff = 117440512.
        #expect(UInt32(b[8]) << 24 | UInt32(b[9]) << 16 | UInt32(b[10]) << 8 | UInt32(b[11]) == 117_440_512)
        #expect(Noise.isLater(Noise.timestamp((1_700_000_000, 200_000_000)), than: t))
        #expect(!Noise.isLater(t, than: t))
    }
}
