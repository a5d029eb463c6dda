/// Pieces of the shell jobs that multi-node tests run inside their tunnels.
public enum TestJobs {
    /// A shell line that starts, in the background, a python3 receiver of
    /// one TCP connection on `address`:5001 (120 s to come, 60 s between
    /// reads) that prints `received SIZE SHA256 from PEER` into tcp.recv
    /// once the sender closes; `$R` is its pid.
    public static func tcpReceiver(bind address: String) -> String {
        """
        python3 -c '
        import socket, hashlib
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("\(address)", 5001)); s.listen(1); s.settimeout(120)
        c, a = s.accept(); c.settimeout(60); h = hashlib.sha256(); size = 0
        while True:
            b = c.recv(65536)
            if not b: break
            h.update(b); size += len(b)
        print("received", size, h.hexdigest(), "from", a[0])' > tcp.recv 2>&1 &
          R=$!
        """
    }

    /// A shell line that sends data.bin over TCP to `host`:5001 with
    /// python3, retrying the connection for 20 s (the receiver may start
    /// later).
    public static func tcpSend(to host: String) -> String {
        """
        python3 -c '
        import socket, time
        for i in range(100):
            try: c = socket.create_connection(("\(host)", 5001), timeout=5); break
            except OSError: time.sleep(0.2)
        with open("data.bin", "rb") as f:
            c.sendall(f.read())
        c.close()'
        """
    }

    /// Shell lines for peer `$k` of `$n` (set before): defines `all NAME`
    /// (true once NAME.1 ... NAME.n exist), starts peer 1's `tcpReceiver`
    /// if given an address, then says `up.$k` and waits (60 s at most, else
    /// exit 2) until every peer has.
    public static func meet(receiverBind address: String? = nil) -> String {
        """
        all() { for j in $(seq 1 $n); do [ -e $1.$j ] || return 1; done; }
        \(address.map { "if [ $k = 1 ]; then\n  \(tcpReceiver(bind: $0))\nfi" } ?? ":")
        touch up.$k
        i=0; until all up; do i=$((i+1)); [ $i -gt 1200 ] && { echo "peer $k: the others never came up"; exit 2; }; sleep 0.05; done
        """
    }
}
