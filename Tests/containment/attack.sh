#!/bin/sh
# Run as the job inside `wgns up`: tries every way a job could read or change
# its own tunnel, or leave it. One line per attack:
#   ATTACK NAME blocked [detail]   the way is closed
#   ATTACK NAME OPEN detail        the job got through
#   ATTACK NAME skipped why        this machine lacks the tool to try
# and INFO lines. Needs sh, wg, ip, nsenter, timeout, nc; python3 where there
# is one (the host), for what busybox cannot do (the VM).
#   attack.sh HOSTPORT [CONFIG]   (a TCP port listening on the host's
#   127.0.0.1; the config the tunnel was built from)
port=${1:-0}
conf=${2:-}
say() { echo "ATTACK $*"; }
have_py() { command -v python3 >/dev/null 2>&1; }
info() { echo "INFO $*"; }
info "uid $(id -u) gid $(id -g)"
info "links $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | tr '\n' ' ')"

# 1. wireguard-go's UAPI: any unix socket reachable by a path.
socks=$(find /run /var/run /tmp /var/tmp /dev/shm "$HOME" -maxdepth 4 -type s 2>/dev/null | sort -u)
info "sockets $(echo $socks | wc -w) wireguard-dir $(ls /run/wireguard 2>/dev/null | wc -l)"
hit=""
have_py || { [ -z "$socks" ] || hit="(python3 missing; sockets:$socks)"; socks=""; }
for s in $socks; do
  r=$(timeout 2 python3 -c '
import socket, sys
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.settimeout(1)
c.connect(sys.argv[1]); c.sendall(b"get=1\n\n"); print(c.recv(4096).decode(errors="replace"))' "$s" 2>/dev/null)
  case "$r" in *private_key*|*errno=*) hit="$hit $s" ;; esac
  r=$(timeout 2 python3 -c '
import socket, sys
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.settimeout(1)
c.connect(sys.argv[1]); c.sendall(b"set=1\nlisten_port=1\n\n"); print(c.recv(4096).decode(errors="replace"))' "$s" 2>/dev/null)
  case "$r" in *errno=0*) hit="$hit set:$s" ;; esac
done
if [ -z "$hit" ]; then say uapi blocked; else say uapi OPEN "$hit"; fi

# 2. wg itself (netlink on the kernel backend, sockets on wireguard-go).
if wg showconf wg0 2>/dev/null | grep -q PrivateKey; then say wg-showconf OPEN; else say wg-showconf blocked; fi
if wg set wg0 listen-port 1 2>/dev/null; then say wg-set OPEN; else say wg-set blocked; fi

# 3. The interface, its addresses and routes.
if ip link set wg0 down 2>/dev/null; then say ip-link OPEN; ip link set wg0 up 2>/dev/null; else say ip-link blocked; fi
if ip addr add 10.123.45.67/32 dev wg0 2>/dev/null; then say ip-addr OPEN; else say ip-addr blocked; fi
if ip route add 10.123.0.0/16 dev wg0 2>/dev/null; then say ip-route OPEN; else say ip-route blocked; fi

# 4. The files wgns wrote for the namespace.
if (echo "nameserver 192.0.2.1" >> /etc/resolv.conf) 2>/dev/null; then say resolv-write OPEN; else say resolv-write blocked; fi
if mount -o remount,rw,bind /etc/resolv.conf 2>/dev/null && (echo x >> /etc/resolv.conf) 2>/dev/null; then say resolv-remount OPEN
else say resolv-remount blocked; fi
if umount /etc/resolv.conf 2>/dev/null; then say resolv-umount OPEN; else say resolv-umount blocked; fi

# 5. Other namespaces: every /proc/*/ns/net (and user, mnt) the job can see.
own_net=$(readlink /proc/self/ns/net)
own_user=$(readlink /proc/self/ns/user)
own_mnt=$(readlink /proc/self/ns/mnt)
hit=""
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  for ns in net user mnt; do
    [ -e "$d/ns/$ns" ] || continue
    # Entering it and landing anywhere but where we are is a way out.
    got=$(timeout 2 nsenter --$ns="$d/ns/$ns" readlink /proc/self/ns/$ns 2>/dev/null) || continue
    case $ns in net) own=$own_net ;; user) own=$own_user ;; mnt) own=$own_mnt ;; esac
    [ "$got" = "$own" ] || hit="$hit $p:$ns"
  done
done
if [ -z "$hit" ]; then say setns blocked; else say setns OPEN "$hit"; fi

# 6. Processes the job can see: no wgns supervisor/holder, no daemon, no carrier.
hit=""
for d in /proc/[0-9]*; do
  c=$(cat "$d/comm" 2>/dev/null)
  case "$c" in wireguard-go|slirp4netns|pasta|pasta.avx2|passt) hit="$hit ${d#/proc/}:$c" ;; esac
  # Anything not in our own user namespace that we can still read is someone else's.
  u=$(readlink "$d/ns/user" 2>/dev/null) && [ "$u" != "$own_user" ] && hit="$hit ${d#/proc/}:foreign-userns"
done
info "processes $(ls -d /proc/[0-9]* | wc -l)"
if [ -z "$hit" ]; then say processes blocked; else say processes OPEN "$hit"; fi

# 7. Memory and environment of any wgns process (opening /proc/PID/mem
# needs ptrace access: being able to open it is the hole).
hit=""
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = "$$" ] && continue
  [ "$(cat $d/comm 2>/dev/null)" = "wgns" ] || continue
  if (exec 3<"$d/mem") 2>/dev/null; then hit="$hit $p:mem"; fi
  if [ -s "$d/environ" ] 2>/dev/null && head -c 1 "$d/environ" >/dev/null 2>&1; then hit="$hit $p:environ"; fi
done
if [ -z "$hit" ]; then say memory blocked; else say memory OPEN "$hit"; fi

# 8. The host's loopback through the carrier (10.0.2.2 is the host's 127.0.0.1 when allowed).
reach_host() {
  if have_py; then
    timeout 3 python3 -c 'import socket, sys
socket.create_connection(("10.0.2.2", int(sys.argv[1])), timeout=2).close()' "$1" 2>/dev/null
  else
    echo | timeout 3 nc -w 2 10.0.2.2 "$1" >/dev/null 2>&1
  fi
}
if [ "$port" != 0 ] && reach_host "$port"; then say host-loopback OPEN; else say host-loopback blocked; fi

# 9. The carrier's device directly (SO_BINDTODEVICE), and its resolver.
if have_py; then
  if timeout 3 python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"tap0")
s.sendto(b"x", ("10.0.2.3", 53))' 2>/dev/null; then say bind-tap0 OPEN; else say bind-tap0 blocked; fi
elif ip link show tap0 >/dev/null 2>&1; then say bind-tap0 OPEN "tap0 is visible"
else say bind-tap0 blocked; fi
info "resolv $(grep -c '^nameserver' /etc/resolv.conf) $(grep '^nameserver' /etc/resolv.conf | tr '\n' ' ')"

# 10. The host's daemons under /run (nscd, resolved, D-Bus, the user's bus).
n=$(find /run /var/run/ -type s 2>/dev/null | wc -l)
if [ "$n" = 0 ]; then say run-sockets blocked; else say run-sockets OPEN "$(find /run /var/run/ -type s 2>/dev/null | tr '\n' ' ')"; fi

# 11. The config (and so its keys) on disk.
if [ -z "$conf" ]; then say config-file skipped "no config named"
elif [ -s "$conf" ] || grep -q . "$conf" 2>/dev/null; then say config-file OPEN "$conf"
else say config-file blocked; fi

# 12. Typing into a terminal: TIOCSTI on a controlling terminal of our own
# (a fresh pty, made ours by a new session), which the kernel allows.
if have_py; then
  r=$(timeout 5 python3 -c '
import fcntl, os, pty, termios
m, s = pty.openpty()
name = os.ttyname(s)
pid = os.fork()
if pid == 0:
    os.setsid()
    fd = os.open(name, os.O_RDWR)  # becomes the controlling terminal
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b"x"); os._exit(0)
    except OSError as e: os._exit(e.errno)
_, st = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(st))' 2>&1)
  case "$r" in 0) say tiocsti OPEN ;; 1) say tiocsti blocked ;; *) say tiocsti skipped "$r" ;; esac
else say tiocsti skipped "no python3"
fi
info "seccomp $(awk '/^Seccomp:/ {print $2}' /proc/self/status) no-new-privs $(awk '/^NoNewPrivs:/ {print $2}' /proc/self/status)"

# What root inside its own user namespace can still do (MapUid 0).
if have_py; then
  if python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 80))' 2>/dev/null; then
    info "low-port ok"; else info "low-port refused"; fi
else
  # A listener that is still listening when timeout ends it bound the port
  # (GNU timeout says 124, busybox's 143); one that could not bind exits 1.
  timeout 1 nc -l -p 80 >/dev/null 2>&1
  case $? in 124|143) info "low-port ok" ;; *) info "low-port refused" ;; esac
fi
# iputils' ping by path where there is one (busybox's applet would run first).
PING=ping; [ -x /usr/bin/ping ] && PING=/usr/bin/ping
if $PING -c 1 -W 2 127.0.0.1 >/dev/null 2>&1; then info "ping ok"; else info "ping refused"; fi
if touch /tmp/.wgns-attack-$$ 2>/dev/null && chown 0:0 /tmp/.wgns-attack-$$ 2>/dev/null; then info "chown ok"; else info "chown refused"; fi
rm -f /tmp/.wgns-attack-$$
echo "DONE"
