# shellcheck shell=sh
# The job of one member of a per-job VPN (`wgns up DIR --peer K -- sh
# member.sh`), for every multi-node test (ClusterTests, SlurmTests,
# VPNHubTests, the VM's 45-cluster.sh) and `make demo`. POSIX sh: runs with
# busybox's tools (the VM's guest) and with the host's.
#   sh member.sh [K N]      member K of N (default: $WGNS_PEER of $WGNS_PEERS)
# Run in a folder that every member shares: they meet through files in it
# (up.K, then done.K; reached.K holds when K had reached every target).
# Says where it is and what wg0 is, waits until all are up, pings its
# targets (each for up to 30 s: a peer the hub has not heard from yet is not
# routable), then, as asked:
#   MEMBER_TARGETS=name  targets by name: hub and every other peer-J (and
#                        peer-J.vpn), from the /etc/hosts wgns gives the job
#                        (it also says whether that file keeps localhost and
#                        is read-only); default by address: 10.97.0.1 and
#                        10.97.0.(J+1)
#   MEMBER_HUB=no        not the hub, only the other members
#   MEMBER_DF=yes        to every other member reached, a DF ping of exactly
#                        wg0's MTU ("fits") and one byte more ("refused")
#   MEMBER_SEND=S        member S sends the shared folder's data.bin to
#                        member 1 on TCP port 5001 (upload-send, upload-recv
#                        beside this file); member 1 prints what arrived
#   MEMBER_END=release   at the end waits for a file `release`; default:
#                        until every member is done
# Exits 2 if the others never came up (60 s), 3 if they never finished or
# nobody released it (120 s).
k=${1:-$WGNS_PEER} n=${2:-$WGNS_PEERS}
here=$(dirname "$0")
# The real tools, where busybox would run its own applet first (the VM).
IP=ip; [ -x /usr/sbin/ip ] && IP=/usr/sbin/ip
PING=ping; [ -x /usr/bin/ping ] && PING=/usr/bin/ping
me=peer-$k
mtu=$($IP -o link show wg0 | sed 's/.* mtu \([0-9]*\) .*/\1/')
echo "$me on $(hostname)"
echo "$me env ${WGNS_NAME:-} ${WGNS_PEER:-}/${WGNS_PEERS:-} ${WGNS_ADDRESS:-} hub ${WGNS_HUB:-}"
[ -n "${SLURM_PROCID:-}" ] && echo "$me is task $SLURM_PROCID on $SLURMD_NODENAME"
echo "$me wg0 mtu $mtu"
$IP -d -o link show wg0 | grep -q ' wireguard ' && echo "$me wg0 is kernel WireGuard"
echo "$me interfaces $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ')"

# all NAME: true once NAME.1 ... NAME.n exist.
all() { for j in $(seq 1 "$n"); do [ -e "$1.$j" ] || return 1; done; }
# address J: member J's target (0 the hub).
address() {
    if [ "${MEMBER_TARGETS:-address}" = name ]; then
        [ "$1" = 0 ] && echo hub || echo "peer-$1"
    else
        echo "10.97.0.$(($1 + 1))"
    fi
}
if [ "${MEMBER_TARGETS:-}" = name ]; then
    grep -q '^127.0.0.1[[:space:]].*localhost' /etc/hosts && echo "$me keeps localhost"
    if (echo "10.0.0.9 evil" >>/etc/hosts) 2>/dev/null; then echo "$me wrote /etc/hosts"; else echo "$me: /etc/hosts read-only"; fi
fi
send=${MEMBER_SEND:-}
if [ -n "$send" ] && [ "$k" = 1 ]; then
    bash "$here/upload-recv" 5001 >"recv.$k" 2>&1 &
    R=$!
fi
touch "up.$k"
i=0; until all up; do i=$((i + 1)); [ $i -gt 1200 ] && { echo "$me: the others never came up"; exit 2; }; sleep 0.05; done

targets=; [ "${MEMBER_HUB:-yes}" = no ] || targets=0
for j in $(seq 1 "$n"); do [ "$j" = "$k" ] || targets="$targets $j"; done
reached=" "
for j in $targets; do
    t=$(address "$j") ok=no
    for try in $(seq 30); do $PING -c1 -W1 "$t" >/dev/null 2>&1 && { ok=yes; break; }; done
    [ "${MEMBER_TARGETS:-}" = name ] && [ "$j" != 0 ] && [ $ok = yes ] && { $PING -c1 -W2 "$t.vpn" >/dev/null 2>&1 || ok=no; }
    if [ $ok = yes ]; then echo "$me reaches $t"; reached="$reached$j "; else echo "$me cannot reach $t"; fi
done
date +%s.%N >"reached.$k"

if [ "${MEMBER_DF:-}" = yes ]; then
    for j in $targets; do
        [ "$j" = 0 ] && continue
        t=$(address "$j")
        case "$reached" in *" $j "*) ;; *) echo "$me df to $t skipped"; continue ;; esac
        ok=lost
        for try in 1 2 3 4 5; do $PING -c1 -W2 -M do -s $((mtu - 28)) "$t" >/dev/null 2>&1 && { ok=fits; break; }; done
        echo "$me df $mtu to $t $ok"
        if $PING -c1 -W1 -M do -s $((mtu - 27)) "$t" 2>&1 | grep -q -i "message too long"; then
            echo "$me df $((mtu + 1)) to $t refused"
        else
            echo "$me df $((mtu + 1)) to $t not refused"
        fi
    done
fi

if [ "$send" = "$k" ]; then
    case "$reached" in
    *" 1 "*) bash "$here/upload-send" "$(address 1)" 5001 data.bin ;;
    *) echo "$me sends no file: it cannot reach $(address 1)" ;;
    esac
fi
[ -n "${R:-}" ] && { wait $R; cat "recv.$k"; rm -f "recv.$k"; }

touch "done.$k"
i=0
if [ "${MEMBER_END:-all}" = release ]; then
    until [ -e release ]; do i=$((i + 1)); [ $i -gt 2400 ] && { echo "$me: nobody released it"; exit 3; }; sleep 0.05; done
else
    until all done; do i=$((i + 1)); [ $i -gt 2400 ] && { echo "$me: the others never finished"; exit 3; }; sleep 0.05; done
fi
