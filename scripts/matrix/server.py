# The peer's side of a matrix cell, run inside the peer's namespace: takes
# one upload (until the client closes), then answers a second connection
# with "BYTES SHA256" of what arrived, so that the client knows every byte
# got through before its job (and its tunnel) ends.
import hashlib, socket, sys

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5000))
s.listen(2)
open(sys.argv[2], "w").write("ready\n")
# A client that never comes (a failing cell) must not hang the matrix.
s.settimeout(60)
c, _ = s.accept()
c.settimeout(60)
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(65536)
    if not b:
        break
    h.update(b)
    n += len(b)
c.close()
d, _ = s.accept()
d.settimeout(10)
d.sendall(("%d %s\n" % (n, h.hexdigest())).encode())
d.shutdown(socket.SHUT_WR)
# The client's "done" (or close) says it has the reply; it judges the cell,
# so a word lost as its tunnel went away is no failure here.
try:
    d.recv(16)
except socket.timeout:
    print("server: the client's done never came", flush=True)
d.close()
print("server got", n, h.hexdigest(), flush=True)
