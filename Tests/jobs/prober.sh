# shellcheck shell=sh
# The peers' job in ClusterTests' fault test: `sh prober.sh K N` (member K
# of N) notes that it started (started.K gets a line each time), then,
# until a file `stop` exists, pings the hub and every other member, each
# success stamping ok.K.T (T the target's last address byte) with the time.
k=$1 n=$2
echo $$ >>"started.$k"
targets=1; for j in $(seq 1 "$n"); do [ "$j" = "$k" ] || targets="$targets $((j + 1))"; done
while [ ! -e stop ]; do
    for t in $targets; do
        ping -c1 -W1 "10.97.0.$t" >/dev/null 2>&1 && { date +%s.%N >"ok.$k.$t.tmp"; mv "ok.$k.$t.tmp" "ok.$k.$t"; }
    done
    sleep 0.2
done
