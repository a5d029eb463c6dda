import Foundation
import Testing
import TestSupport

extension BuiltinTests {
    /// Both ends of `bulkTransfer`: `server.py ADDR PORT BYTES` (on the
    /// wireguard-go side) receives BYTES and prints their SHA-256, then
    /// sends BYTES of random data back and prints theirs; `client.py ADDR
    /// PORT BYTES` (the job) does the opposite, retrying its connect while
    /// the tunnel comes up.
    static let bulkScripts = (server: #"""
        import hashlib, os, socket, sys
        addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port)); s.listen(1); s.settimeout(60)
        c, _ = s.accept(); c.settimeout(60)
        h = hashlib.sha256(); got = 0
        while got < n:
            b = c.recv(1 << 20)
            if not b: break
            h.update(b); got += len(b)
        print("server got", got, h.hexdigest(), flush=True)
        h = hashlib.sha256(); left = n
        while left > 0:
            b = os.urandom(min(left, 1 << 20)); h.update(b); c.sendall(b); left -= len(b)
        c.shutdown(socket.SHUT_WR)
        print("server sent", n, h.hexdigest(), flush=True)
        c.recv(1)
        """#, client: #"""
        import hashlib, os, socket, sys, time
        addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        for _ in range(100):
            try:
                c = socket.create_connection((addr, port), timeout=2); break
            except OSError:
                time.sleep(0.2)
        c.settimeout(60)
        h = hashlib.sha256(); left = n
        while left > 0:
            b = os.urandom(min(left, 1 << 20)); h.update(b); c.sendall(b); left -= len(b)
        print("client sent", n, h.hexdigest(), flush=True)
        h = hashlib.sha256(); got = 0
        while got < n:
            b = c.recv(1 << 20)
            if not b: break
            h.update(b); got += len(b)
        print("client got", got, h.hexdigest(), flush=True)
        c.close()
        """#)

    /// The batched, offloaded path both ways against Debian 13's
    /// wireguard-go (which uses TUN offloads itself), across the test
    /// cluster at fabric MTU 1500 and 9000 (tunnel MTU fabric - 80): a job
    /// on the builtin backend with no carrier on h2 sends 64 MiB over TCP to
    /// a wireguard-go 13 device of root's on h1 and gets 64 MiB back; each
    /// side's SHA-256 of what it got must equal the other's of what it
    /// sent (so nothing was lost, duplicated, reordered past TCP or corrupted
    /// by the GSO split, the sealing of a batch, or the GRO coalescing).
    @Test(.enabled(if: ClusterTests.canRun && BuiltinTests.wireguardGo13 != nil && which("wg") != nil),
          arguments: [1500, 9000])
    func bulkTransferWithWireGuardGo13(fabricMTU: Int) throws {
        let f = try ClusterTests.Fixture(hosts: 2, mtu: fabricMTU)
        #expect(f.start.status == 0, "\(f.start.stderr)")
        try Self.bulkScripts.server.write(toFile: "\(f.work)/server.py", atomically: true, encoding: .utf8)
        try Self.bulkScripts.client.write(toFile: "\(f.work)/client.py", atomically: true, encoding: .utf8)
        let bytes = 64 << 20
        let name = "wgb\(UInt16.random(in: 1000...9999))"
        let r = try f.sh("""
            chmod 644 server.py client.py
            (umask 077; wg genkey > k1; wg genkey > k2)
            WG_PROCESS_FOREGROUND=1 onroot h1 '\(BuiltinTests.wireguardGo13!)' -f \(name) > wg.out 2>&1 &
            WG=$!
            for i in $(seq 100); do [ -S /var/run/wireguard/\(name).sock ] && break; sleep 0.05; done
            onroot h1 wg set \(name) private-key "$W/k1" listen-port $PORT peer "$(wg pubkey < k2)" allowed-ips 10.98.0.2/32
            onroot h1 ip addr add 10.98.0.1/24 dev \(name)
            onroot h1 ip link set \(name) mtu \(fabricMTU - 80) up
            onroot h1 python3 "$W/server.py" 10.98.0.1 5300 \(bytes) > server.out 2>&1 &
            SERVER=$!
            cat > job.conf <<CONF
            [Interface]
            PrivateKey = $(cat k2)
            Address = 10.98.0.2/24
            MTU = \(fabricMTU - 80)
            [Peer]
            PublicKey = $(wg pubkey < k1)
            AllowedIPs = 10.98.0.1/32
            Endpoint = h1:$PORT
            CONF
            chown "$(stat -c %u "$W")" job.conf; chmod 600 job.conf
            on h2 ./wgns up --backend builtin --carrier none job.conf -- sh -c 'ip -o link show wg0 | grep -o "mtu [0-9]*"; python3 client.py 10.98.0.1 5300 \(bytes)'
            echo "job status $?"
            wait $SERVER; echo "server status $?"
            cat server.out
            onroot h1 ip link del \(name) 2>/dev/null
            kill $WG 2>/dev/null; wait $WG 2>/dev/null
            true
            """)
        let out = r.stdout
        func hash(_ prefix: String) -> Substring? {
            out.split(separator: "\n").first { $0.hasPrefix(prefix) }?.split(separator: " ").last
        }
        #expect(out.contains("mtu \(fabricMTU - 80)\n"), "the tunnel MTU: \(out)\n\(r.stderr)")
        #expect(out.contains("job status 0") && out.contains("server status 0"), "\(out)\n\(r.stderr)")
        #expect(hash("client sent \(bytes) ") != nil && hash("client sent \(bytes) ") == hash("server got \(bytes) "), "\(out)")
        #expect(hash("server sent \(bytes) ") != nil && hash("server sent \(bytes) ") == hash("client got \(bytes) "), "\(out)")
    }
}
