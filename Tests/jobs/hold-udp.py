# python3 hold-udp.py PORT...: binds each UDP PORT on 0.0.0.0 (every second
# one with SO_REUSEADDR), creates the file `held`, and holds them until that
# file is gone (30 s at most). VPNHubTests' ports someone else holds.
import os, socket, sys, time
held = []
for i, p in enumerate(sys.argv[1:]):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if i % 2: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(p)))
    held.append(s)
open("held", "w").close()
end = time.time() + 30
while os.path.exists("held") and time.time() < end:
    time.sleep(0.05)
