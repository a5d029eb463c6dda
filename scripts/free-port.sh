# Sourced: free_port [udp|tcp] prints a port that is free on this host's
# 127.0.0.1 right now (the kernel picks it; default udp). Sourced by
# scripts/host-setup.sh, so the test, demo and bench scripts have it.
free_port() {
  python3 -c 'import socket, sys
kind = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "${1:-udp}"
}
