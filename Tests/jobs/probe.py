# python3 probe.py HOST PORT: one TCP connection to HOST:PORT (3 s at most);
# prints "connected" or "refused: REASON". VPNHubTests' isolation probe.
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close(); print("connected")
except OSError as e:
    print("refused:", e.strerror)
