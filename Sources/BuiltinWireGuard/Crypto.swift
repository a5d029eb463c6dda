import CBlake2
import CSodium

/// Thin wrappers over the primitives WireGuard composes: BLAKE2s (libb2),
/// HMAC-BLAKE2s and the HKDF-style KDF of the whitepaper, X25519 and the two
/// ChaCha20-Poly1305 AEADs (libsodium). Nothing here is hand-rolled
/// cryptography; only the compositions the paper defines.
enum Crypto {
    /// Runs `sodium_init()` once.
    static let ready: Void = {
        precondition(sodium_init() >= 0, "libsodium failed to initialise")
    }()

    /// BLAKE2s output length used for hashes and keys.
    static let hashLength = 32
    /// Poly1305 tag length.
    static let tagLength = 16

    // MARK: BLAKE2s

    /// Incremental BLAKE2s (`blake2s_init`/`blake2s_init_key`, `blake2s_update`,
    /// `blake2s_final`); its state is wiped after `finish`.
    struct Blake2s {
        private var state = blake2s_state()
        private let outputLength: Int

        /// Starts a hash of `outputLength` bytes, keyed when `key` is given.
        init(outputLength: Int, key: UnsafeRawBufferPointer? = nil) {
            self.outputLength = outputLength
            if let key, key.count > 0 {
                _ = blake2s_init_key(&state, outputLength, key.baseAddress, key.count)
            } else {
                _ = blake2s_init(&state, outputLength)
            }
        }

        /// Feeds bytes.
        mutating func update(_ data: UnsafeRawBufferPointer) {
            guard data.count > 0 else { return }
            _ = blake2s_update(&state, data.baseAddress!.assumingMemoryBound(to: UInt8.self), data.count)
        }

        /// Writes the digest into `out` (exactly `outputLength` bytes) and wipes the state.
        mutating func finish(into out: UnsafeMutableRawBufferPointer) {
            precondition(out.count == outputLength)
            _ = blake2s_final(&state, out.baseAddress!.assumingMemoryBound(to: UInt8.self), outputLength)
            withUnsafeMutableBytes(of: &state) { sodium_memzero($0.baseAddress, $0.count) }
        }
    }

    /// HASH(a || b) of the whitepaper: unkeyed BLAKE2s-256. `out` may alias an input.
    static func hash(_ out: UnsafeMutableRawBufferPointer, _ a: UnsafeRawBufferPointer,
                     _ b: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        var h = Blake2s(outputLength: 32)
        h.update(a)
        h.update(b)
        h.finish(into: out)
    }

    /// MAC(key, input) of the whitepaper: keyed BLAKE2s with a 16-byte output.
    static func mac(key: UnsafeRawBufferPointer, _ input: UnsafeRawBufferPointer) -> Bytes16 {
        var out = Bytes16()
        var h = Blake2s(outputLength: 16, key: key)
        h.update(input)
        out.withMutableBytes { h.finish(into: $0) }
        return out
    }

    /// HMAC(key, a || b) with BLAKE2s-256 (RFC 2104, block 64 bytes). `out`
    /// (32 bytes) may alias an input.
    static func hmac(_ out: UnsafeMutableRawBufferPointer, key: UnsafeRawBufferPointer,
                     _ a: UnsafeRawBufferPointer,
                     _ b: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        precondition(key.count <= 64 && out.count == 32)
        withScratch(64 + 32) { s in
            let pad = UnsafeMutableRawBufferPointer(rebasing: s[0..<64])
            let inner = UnsafeMutableRawBufferPointer(rebasing: s[64..<96])
            for i in 0..<64 { pad[i] = (i < key.count ? key[i] : 0) ^ 0x36 }
            var h = Blake2s(outputLength: 32)
            h.update(UnsafeRawBufferPointer(pad))
            h.update(a)
            h.update(b)
            h.finish(into: inner)
            for i in 0..<64 { pad[i] ^= 0x36 ^ 0x5c }
            var o = Blake2s(outputLength: 32)
            o.update(UnsafeRawBufferPointer(pad))
            o.update(UnsafeRawBufferPointer(inner))
            o.finish(into: out)
        }
    }

    /// KDF_n(key, input) of the whitepaper, n = number of non-nil outputs
    /// (1 to 3): τ0 = HMAC(key, input), τ1 = HMAC(τ0, 0x1), τi = HMAC(τ0, τ(i-1) || i).
    /// Outputs may alias the key (C = KDF1(C, x)).
    static func kdf(key: UnsafeRawBufferPointer, input: UnsafeRawBufferPointer,
                    _ out1: UnsafeMutableRawBufferPointer,
                    _ out2: UnsafeMutableRawBufferPointer? = nil,
                    _ out3: UnsafeMutableRawBufferPointer? = nil) {
        withScratch(32 + 32 + 1) { s in
            let tau0 = UnsafeMutableRawBufferPointer(rebasing: s[0..<32])
            let prev = UnsafeMutableRawBufferPointer(rebasing: s[32..<64])
            let counter = UnsafeMutableRawBufferPointer(rebasing: s[64..<65])
            hmac(tau0, key: key, input)
            counter[0] = 1
            hmac(prev, key: UnsafeRawBufferPointer(tau0), UnsafeRawBufferPointer(counter))
            out1.copyMemory(from: UnsafeRawBufferPointer(prev))
            guard let out2 else { return }
            counter[0] = 2
            hmac(prev, key: UnsafeRawBufferPointer(tau0), UnsafeRawBufferPointer(prev), UnsafeRawBufferPointer(counter))
            out2.copyMemory(from: UnsafeRawBufferPointer(prev))
            guard let out3 else { return }
            counter[0] = 3
            hmac(prev, key: UnsafeRawBufferPointer(tau0), UnsafeRawBufferPointer(prev), UnsafeRawBufferPointer(counter))
            out3.copyMemory(from: UnsafeRawBufferPointer(prev))
        }
    }

    // MARK: X25519

    /// DH(private, public) = X25519 (`crypto_scalarmult`). False when the
    /// result is all zeros (a low-order public key): the handshake fails then.
    static func dh(_ out: UnsafeMutableRawBufferPointer, privateKey: UnsafeRawBufferPointer,
                   publicKey: UnsafeRawBufferPointer) -> Bool {
        _ = ready
        precondition(out.count == 32 && privateKey.count == 32 && publicKey.count == 32)
        let rc = crypto_scalarmult(out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                   privateKey.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                   publicKey.baseAddress!.assumingMemoryBound(to: UInt8.self))
        guard rc == 0, sodium_is_zero(out.baseAddress!.assumingMemoryBound(to: UInt8.self), 32) == 0 else {
            sodium_memzero(out.baseAddress, 32)
            return false
        }
        return true
    }

    /// The public key of `privateKey` (`crypto_scalarmult_base`).
    static func publicKey(of privateKey: UnsafeRawBufferPointer) -> Bytes32 {
        _ = ready
        var out = Bytes32()
        out.withMutableBytes { o in
            _ = crypto_scalarmult_base(o.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                       privateKey.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        return out
    }

    /// A fresh X25519 private key written into `out` (32 random bytes,
    /// `randombytes_buf`; clamping happens inside `crypto_scalarmult`).
    static func generatePrivateKey(_ out: UnsafeMutableRawBufferPointer) {
        _ = ready
        randombytes_buf(out.baseAddress!, out.count)
    }

    /// `count` random bytes into `out` (`randombytes_buf`).
    static func random(_ out: UnsafeMutableRawBufferPointer) {
        _ = ready
        randombytes_buf(out.baseAddress!, out.count)
    }

    /// A uniformly random number below `bound` (`randombytes_uniform`).
    static func random(below bound: UInt32) -> UInt32 {
        _ = ready
        return randombytes_uniform(bound)
    }

    // MARK: ChaCha20-Poly1305

    /// The 96-bit IETF nonce for `counter`: 4 zero bytes, then the counter little-endian.
    @inline(__always)
    static func withNonce<R>(_ counter: UInt64, _ body: (UnsafePointer<UInt8>) -> R) -> R {
        // Three 32-bit words, no padding: 0, then the counter's low and high halves, each little-endian.
        var nonce: (UInt32, UInt32, UInt32) = (0, UInt32(truncatingIfNeeded: counter).littleEndian,
                                               UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
        return withUnsafeBytes(of: &nonce) { body($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
    }

    /// AEAD(key, counter, plaintext, ad): `sealIETF` with the nonce of `counter`.
    static func seal(key: UnsafeRawBufferPointer, counter: UInt64, plaintext: UnsafeRawBufferPointer,
                     ad: UnsafeRawBufferPointer, out: UnsafeMutableRawPointer, tag: UnsafeMutableRawPointer) {
        withNonce(counter) { sealIETF(key: key, nonce: $0, plaintext: plaintext, ad: ad, out: out, tag: tag) }
    }

    /// The inverse of `seal`: `openIETF` with the nonce of `counter`.
    static func open(key: UnsafeRawBufferPointer, counter: UInt64, ciphertext: UnsafeRawBufferPointer,
                     tag: UnsafeRawPointer, ad: UnsafeRawBufferPointer, out: UnsafeMutableRawPointer) -> Bool {
        withNonce(counter) { openIETF(key: key, nonce: $0, ciphertext: ciphertext, tag: tag, ad: ad, out: out) }
    }

    /// ChaCha20-Poly1305 IETF with a 12-byte nonce (`crypto_aead_chacha20poly1305_ietf_encrypt_detached`):
    /// writes `plaintext.count` bytes of ciphertext into `out` (which may be
    /// the plaintext itself) and the 16-byte tag into `tag`.
    static func sealIETF(key: UnsafeRawBufferPointer, nonce: UnsafePointer<UInt8>, plaintext: UnsafeRawBufferPointer,
                         ad: UnsafeRawBufferPointer, out: UnsafeMutableRawPointer, tag: UnsafeMutableRawPointer) {
        _ = ready
        precondition(key.count == 32)
        _ = crypto_aead_chacha20poly1305_ietf_encrypt_detached(
            out.assumingMemoryBound(to: UInt8.self), tag.assumingMemoryBound(to: UInt8.self), nil,
            plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(plaintext.count),
            ad.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(ad.count), nil, nonce,
            key.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }

    /// The inverse of `sealIETF` (`crypto_aead_chacha20poly1305_ietf_decrypt_detached`):
    /// false, with nothing trustworthy in `out`, when the tag does not verify.
    static func openIETF(key: UnsafeRawBufferPointer, nonce: UnsafePointer<UInt8>, ciphertext: UnsafeRawBufferPointer,
                         tag: UnsafeRawPointer, ad: UnsafeRawBufferPointer, out: UnsafeMutableRawPointer) -> Bool {
        _ = ready
        precondition(key.count == 32)
        return crypto_aead_chacha20poly1305_ietf_decrypt_detached(
            out.assumingMemoryBound(to: UInt8.self), nil,
            // An empty ciphertext may have no address; libsodium reads none of it then.
            (ciphertext.baseAddress ?? tag).assumingMemoryBound(to: UInt8.self), UInt64(ciphertext.count),
            tag.assumingMemoryBound(to: UInt8.self),
            ad.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(ad.count), nonce,
            key.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
    }

    /// XAEAD(key, nonce, plaintext, ad) (`crypto_aead_xchacha20poly1305_ietf_encrypt`):
    /// `out` holds `plaintext.count + 16` bytes.
    static func xseal(key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer,
                      ad: UnsafeRawBufferPointer, out: UnsafeMutableRawBufferPointer) {
        _ = ready
        precondition(key.count == 32 && nonce.count == 24 && out.count == plaintext.count + tagLength)
        _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
            out.baseAddress!.assumingMemoryBound(to: UInt8.self), nil,
            plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(plaintext.count),
            ad.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(ad.count), nil,
            nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }

    /// The inverse of `xseal` (`crypto_aead_xchacha20poly1305_ietf_decrypt`);
    /// `out` holds `ciphertext.count - 16` bytes. False when the tag does not verify.
    static func xopen(key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer,
                      ad: UnsafeRawBufferPointer, out: UnsafeMutableRawBufferPointer) -> Bool {
        _ = ready
        precondition(key.count == 32 && nonce.count == 24 && ciphertext.count == out.count + tagLength)
        return crypto_aead_xchacha20poly1305_ietf_decrypt(
            out.baseAddress!.assumingMemoryBound(to: UInt8.self), nil, nil,
            ciphertext.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(ciphertext.count),
            ad.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(ad.count),
            nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
    }
}
