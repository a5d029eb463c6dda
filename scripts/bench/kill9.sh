#!/usr/bin/env bash
# The kill -9 matrix (issue 19, Tests): for each process of a running `wgns
# up` (supervisor, holder, NamespaceInit, the sandbox's pid 1, the job, the
# carrier, wireguard-go, and a data-plane process of the backend where it
# has one), BENCH_KILL9_RUNS times (default 100) per mode, as the
# unprivileged test user: a full tunnel (isolated) whose job keeps sending
# UDP datagrams marked "k9-leak" to this machine's address and to 10.0.2.2,
# outside the tunnel; the victim gets SIGKILL 0-200 ms into the job. Then:
#   left   a process of the run still alive (zombies do not count) 10 s on
#   ns     a namespace of the run still held (a process in it, or a
#          descriptor of it, anywhere on the machine)
#   files  anything left in the run's XDG_RUNTIME_DIR and TMPDIR (private
#          to the run), or a wg or tap link in the machine's namespace
#   open   a marked datagram arrived in the clear at the listener on the
#          host (a leak: it must only ever leave encrypted)
#   stuck  `wgns up` still running 15 s after the kill (then killed)
# and the median time from the kill to the end of every process of the run.
# Each column counts runs; a victim that the run does not have (no
# wireguard-go on the kernel or builtin backend, no carrier for a builtin
# full tunnel) is "absent".
#   BENCH_KILL9_MODES: BACKEND:CARRIER pairs, "default" for no flag
#     (default: wireguard-go:slirp4netns wireguard-go:pasta default:default,
#     the userspace backend under both carriers, then auto's choice);
#   BENCH_KILL9_VICTIMS; WGNS_BIN (default: the debug build). Needs python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/host-setup.sh
bin=${WGNS_BIN:-.build/debug/wgns}
n=${BENCH_KILL9_RUNS:-100}
victims=${BENCH_KILL9_VICTIMS:-supervisor holder init sandbox job carrier wireguard-go dataplane}
work=$(mktemp -d /tmp/wgns-bench-kill9.XXXXXX)
chmod 755 "$work"
listener=
cleanup() {
    [ -n "$listener" ] && { kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null || true; }
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
cp "$bin" "$work/wgns"
hostip=$(ip -o -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
[ -n "$hostip" ] || hostip=$(hostname -I | cut -d' ' -f1)
lport=$(free_port udp)
eport=$(free_port udp)
k1=$("$work/wgns" genkey); k2=$("$work/wgns" genkey)
cat > "$work/job.conf" <<EOC
[Interface]
PrivateKey = $k1
Address = 10.99.0.2/24

[Peer]
PublicKey = $(echo "$k2" | "$work/wgns" pubkey)
AllowedIPs = 0.0.0.0/0
Endpoint = 10.0.2.2:$eport
PersistentKeepalive = 1
EOC
chmod 600 "$work/job.conf"
# The listener: every datagram on the leak port or the endpoint's port
# (all addresses) that carries the mark in the clear, one line each.
cat > "$work/listen.py" <<'EOP'
import socket, select, sys
socks = []
for port in map(int, sys.argv[2:]):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    socks.append(s)
out = open(sys.argv[1], "a", buffering=1)
while True:
    for s in select.select(socks, [], [])[0]:
        data, src = s.recvfrom(65536)
        if b"k9-leak" in data:
            out.write("%s %s\n" % (src, s.getsockname()[1]))
EOP
: > "$work/leaks"
python3 "$work/listen.py" "$work/leaks" "$lport" "$eport" & listener=$!
# The control: a marked datagram sent in the clear is seen (once the
# listener runs: tried for 5 s).
for _ in $(seq 50); do
    echo k9-leak > "/dev/udp/$hostip/$lport" 2>/dev/null || true
    sleep 0.1
    [ -s "$work/leaks" ] && break
done
[ -s "$work/leaks" ] || { echo "kill9: the leak listener on $hostip:$lport did not see a control datagram" >&2; exit 1; }
: > "$work/leaks"
chown -R "$TEST_USER" "$work"
chown root "$work/leaks" 2>/dev/null || true; chmod 644 "$work/leaks"
cd "$work"
# wireguard-go is `--backend userspace` on a wgns that does not know the name.
wggo=wireguard-go
"$work/wgns" up --help 2>&1 | grep -q 'wireguard-go' || wggo=userspace

# (An empty pid must not read /proc//stat, which is /proc/stat.)
ppid_of() { case "$1" in ''|*[!0-9]*) return 0 ;; esac; awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$1/stat" 2>/dev/null; }
start_of() { case "$1" in ''|*[!0-9]*) return 0 ;; esac; awk '{ sub(/.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null; }
# Whether pid $2 is $1 or one of its descendants.
under() { local k=$2; while [ -n "$k" ] && [ "$k" -gt 1 ]; do [ "$k" = "$1" ] && return 0; k=$(ppid_of "$k"); done; return 1; }
children() { local p; for p in /proc/[0-9]*; do p=${p#/proc/}; [ "$(ppid_of "$p")" = "$1" ] && echo "$p"; done; return 0; }
comm_of() { cat "/proc/$1/comm" 2>/dev/null; }
alive() { case "$1" in ''|*[!0-9]*) return 1 ;; esac; [ -n "$2" ] || return 1; local s; s=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1; [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ] && [ "$(start_of "$1")" = "$2" ]; }

# One run; prints "left ns files open stuck seconds" (0/1 each) or "absent".
one() {
    local carrier=$1 victim=$2 mode=$3 U job sandbox init holder carrier_pid wg dp v p k t0 t1 left ns files open stuck procs nss
    rm -rf ready run tmp; mkdir -m 700 run tmp
    ( export XDG_RUNTIME_DIR=$work/run TMPDIR=$work/tmp
      exec_as_test_user ./wgns up $mode job.conf -- bash -c '
        : k9job; touch ready
        while :; do
          echo k9-leak > /dev/udp/'"$hostip/$lport"' 2>/dev/null
          echo k9-leak > /dev/udp/10.0.2.2/'"$lport"' 2>/dev/null
          sleep 0.01
        done' > up.out 2>&1 ) & U=$!
    for _ in $(seq 1000); do [ -e ready ] && break; kill -0 "$U" 2>/dev/null || break; sleep 0.01; done
    job=
    for p in $(pgrep -f ': k9job' || true); do
        k=$p; while [ -n "$k" ] && [ "$k" -gt 1 ] && [ "$k" != "$U" ]; do k=$(ppid_of "$k"); done
        [ "$k" = "$U" ] && [ "$(comm_of "$p")" = bash ] && { job=$p; break; }
    done
    if [ -z "$job" ]; then
        echo "kill9: the job did not start ($carrier): $(head -c 300 up.out)" >&2
        kill -9 "$U" 2>/dev/null; wait "$U" 2>/dev/null || true
        echo failed; return
    fi
    sandbox=$(ppid_of "$job"); init=$(ppid_of "$sandbox"); holder=$(ppid_of "$init")
    carrier_pid= dp=
    for p in $(children "$U"); do
        case "$(comm_of "$p")" in
        slirp4netns|pasta*|passt*) carrier_pid=$p ;;
        *) [ "$p" != "$holder" ] && dp=$p ;;
        esac
    done
    wg=
    for p in $(children "$init"); do [ "$(comm_of "$p")" = wireguard-go ] && wg=$p; done
    # Every process of the run, with its start time (pids may be reused).
    procs=""
    for p in $U $holder $init $sandbox $job $carrier_pid $wg $dp; do procs="$procs $p:$(start_of "$p")"; done
    # Every namespace of the run (the holder's, and the sandbox's own).
    nss=$( { for p in $holder $sandbox $job; do for k in net user mnt pid; do readlink "/proc/$p/ns/$k" 2>/dev/null; done; done; } | { grep -v -F -x -f <(for k in net user mnt pid; do readlink "/proc/$$/ns/$k"; done) || true; } | sort -u)
    case $victim in
    supervisor) v=$U ;; holder) v=$holder ;; init) v=$init ;; sandbox) v=$sandbox ;; job) v=$job ;;
    carrier) v=$carrier_pid ;; wireguard-go) v=$wg ;; dataplane) v=$dp ;;
    esac
    # Nothing but a process of this run is ever killed.
    if [ -n "$v" ] && ! under "$U" "$v"; then
        echo "kill9: $victim ($v) is not a process of the run any more; run skipped" >&2
        kill -TERM "$U" 2>/dev/null; wait "$U" 2>/dev/null || true
        echo failed; return
    fi
    if [ -z "$v" ]; then
        kill -TERM "$U"; wait "$U" 2>/dev/null || true
        echo absent; return
    fi
    sleep "0.$(printf '%03d' $((RANDOM % 200)))"
    t0=$(date +%s.%N)
    kill -9 "$v" 2>/dev/null
    stuck=0
    for _ in $(seq 1500); do kill -0 "$U" 2>/dev/null && [ "$(awk '{ sub(/.*\) /, ""); print $1 }' /proc/$U/stat 2>/dev/null)" != Z ] || break; sleep 0.01; done
    if alive "$U" "$(start_of "$U")"; then stuck=1; kill -9 "$U"; fi
    wait "$U" 2>/dev/null || true
    # Until every process of the run has ended (10 s at most).
    left=1
    for _ in $(seq 1000); do
        left=0
        for p in $procs; do alive "${p%%:*}" "${p#*:}" && { left=1; break; }; done
        [ $left = 0 ] && break
        sleep 0.01
    done
    t1=$(date +%s.%N)
    ns=0
    if [ -n "$nss" ] && { ls -l /proc/[0-9]*/ns/ /proc/[0-9]*/fd/ 2>/dev/null | grep -F -f <(echo "$nss") -q; }; then ns=1; fi
    files=0
    [ -z "$(find run tmp -mindepth 1)" ] || files=1
    ip -o link | grep -q -E '^[0-9]+: (wg[0-9]|tap0)' && files=1
    sleep 0.1
    open=0
    [ -s leaks ] && { open=1; : > leaks; }
    if [ $left = 1 ]; then for p in $procs; do alive "${p%%:*}" "${p#*:}" && echo "kill9 $carrier $victim: left $(tr '\0' ' ' < /proc/${p%%:*}/cmdline | head -c 120)" >&2 && kill -9 "${p%%:*}"; done; fi
    [ $files = 1 ] && echo "kill9 $carrier $victim: left files or links: $(find run tmp -mindepth 1 | tr '\n' ' ')" >&2
    rm -rf run tmp
    echo "$left $ns $files $open $stuck $(echo "$t1 - $t0" | bc)"
}

printf '%-13s %-12s %-13s %5s %6s %5s %5s %6s %5s %5s %9s\n' backend carrier victim runs absent left ns files open stuck "median s"
status=0
for m in ${BENCH_KILL9_MODES:-wireguard-go:slirp4netns wireguard-go:pasta default:default}; do
    b=${m%%:*} carrier=${m#*:} mode=
    [ "$b" = default ] || mode="--backend $([ "$b" = wireguard-go ] && echo $wggo || echo "$b")"
    [ "$carrier" = default ] || mode="$mode --carrier $carrier"
    for victim in $victims; do
        : > "results"
        # The shell's own notices of killed children go to the log.
        # (errexit off in a run: a process that ends by itself between
        # two looks must not end the benchmark.)
        for i in $(seq "$n"); do set +e; one "$carrier" "$victim" "$mode" >> results 2>> log; set -e; done
        awk -v b="$b" -v c="$carrier" -v v="$victim" '
            $1 == "absent" { absent++; next }
            $1 == "failed" { failed++; next }
            { runs++; left += $1; ns += $2; files += $3; open += $4; stuck += $5; t[runs] = $6 }
            END {
                if (runs) { for (i = 1; i <= runs; i++) for (j = i + 1; j <= runs; j++) if (t[j] < t[i]) { x = t[i]; t[i] = t[j]; t[j] = x }
                            med = sprintf("%.2f", t[int((runs + 1) / 2)]) } else med = "-"
                printf "%-13s %-12s %-13s %5d %6d %5d %5d %6d %5d %5d %9s%s\n", b, c, v, runs, absent, left, ns, files, open, stuck, med, failed ? "  (" failed " runs did not start)" : ""
                exit (left + ns + files + open + stuck + failed > 0)
            }' results || status=1
    done
done
grep -h '^kill9' log >&2 || true
echo "(runs per row: $n; a column counts the runs where it happened: 0 everywhere is the aim; 2 shared cores, times noisy)"
exit "$status"
