"""A test host's link with delay and loss, for kernels without sch_netem.

relay.py HOST_IF BRIDGE_IF DELAY_MS LOSS_PCT MTU

Copies every Ethernet frame between two interfaces of the machine's namespace
(the host's end of its veth and a veth whose other end is on the bridge).
Frames that leave the host (HOST_IF -> BRIDGE_IF) are held DELAY_MS and
dropped with probability LOSS_PCT percent, as `tc qdisc add dev eth0 root
netem delay D loss L` on the host's eth0 would do; frames toward the host
pass at once. Runs until killed (cluster.sh stop does so).
"""
import heapq
import random
import select
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def open_raw(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.bind((ifname, 0))
    s.setblocking(False)
    return s


def main():
    host_if, bridge_if, delay_ms, loss_pct, mtu = sys.argv[1:6]
    delay = float(delay_ms) / 1000.0
    loss = float(loss_pct) / 100.0
    bufsize = int(mtu) + 64
    host, bridge = open_raw(host_if), open_raw(bridge_if)
    peer = {host.fileno(): bridge, bridge.fileno(): host}
    pending = []  # (due, seq, frame): frames leaving the host, held back
    seq = 0
    poller = select.poll()
    poller.register(host, select.POLLIN)
    poller.register(bridge, select.POLLIN)
    while True:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, frame = heapq.heappop(pending)
            try:
                bridge.send(frame)
            except OSError:
                pass  # a full queue or a link that is down drops the frame, as a wire would
        timeout = None if not pending else max(0, int((pending[0][0] - now) * 1000) + 1)
        for fd, _ in poller.poll(timeout):
            src = host if fd == host.fileno() else bridge
            for _ in range(64):
                try:
                    frame, addr = src.recvfrom(bufsize)
                except BlockingIOError:
                    break
                # A packet socket also sees what we send on it ourselves.
                if addr[2] == PACKET_OUTGOING:
                    continue
                if src is host:
                    if loss and random.random() < loss:
                        continue
                    if delay:
                        seq += 1
                        heapq.heappush(pending, (time.monotonic() + delay, seq, frame))
                        continue
                try:
                    peer[fd].send(frame)
                except OSError:
                    pass


if __name__ == "__main__":
    main()
