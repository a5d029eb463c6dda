#!/usr/bin/env bash
# Hub restarts (issue 19, item 13), on the host (userspace backend, as an
# unprivileged user): one member (`wgns up DIR --peer 1`) keeps running
# while its hub is stopped and started again on the same folder
# $BENCH_RESTARTS times (default 20), with the hub picking its port
# (published in DIR/hub.endpoint) and with a fixed one (`vpn new --endpoint
# 127.0.0.1:PORT`). For each restart: the time from the new hub's "up" line
# to the member's first answered ping of the hub (pings of 0.2 s each, one
# after the other). Prints the distribution (min, median, 90th percentile,
# max) per mode.
#   WGNS_BIN=path scripts/bench/hub-restart.sh    (default: the debug build)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/host-setup.sh
bin=${WGNS_BIN:-.build/debug/wgns}
n=${BENCH_RESTARTS:-20}
work=$(mktemp -d /tmp/wgns-bench-restart.XXXXXX)
chmod 755 "$work"
cp "$bin" "$work/wgns"
chown -R "$TEST_USER" "$work"
trap '[ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"' EXIT
# The member: for restart K (file restart.K), ping until answered, note when.
cat > "$work/member.sh" <<'EOS'
k=1
while [ $k -le $1 ]; do
  until [ -e restart.$k ]; do sleep 0.01; done
  until ping -c1 -W0.2 hub > /dev/null 2>&1; do :; done
  date +%s.%N > answered.$k.tmp && mv answered.$k.tmp answered.$k
  k=$((k+1))
done
EOS
cat > "$work/run.sh" <<'EOS'
mode=$1; n=$2; port=$3; W=$PWD/wgns
rm -rf v restart.* answered.* hub.out
"$W" vpn new v --peers 1 $([ $mode = fixed ] && echo "--endpoint 127.0.0.1:$port") > /dev/null || exit 9
start_hub() {
  "$W" hub v > hub.out 2> hub.err & H=$!
  until grep -q '^wgns hub: up' hub.out; do kill -0 $H 2>/dev/null || { cat hub.err >&2; exit 1; }; sleep 0.002; done
}
start_hub
"$W" up v --peer 1 -- sh member.sh $n > member.out 2>&1 & M=$!
sleep 1
for k in $(seq $n); do
  kill -TERM $H; wait $H
  start_hub
  up=$(date +%s.%N); touch restart.$k
  i=0; until [ -e answered.$k ]; do i=$((i+1)); [ $i -gt 3000 ] && { echo "restart $k: no answer within 30 s" >&2; break; }; sleep 0.01; done
  [ -e answered.$k ] && echo "$(cat answered.$k) - $up" | bc
  sleep 0.5
done
kill -TERM $H; wait $H
wait $M
EOS
chown "$TEST_USER" "$work"/*.sh
printf '%-7s %4s %8s %8s %8s %8s\n' mode runs min median p90 max
for mode in picked fixed; do
  port=$(free_port udp)
  times=$(cd "$work" && run_as_test_user bash run.sh $mode "$n" "$port" | sort -n)
  count=$(echo "$times" | grep -c . || true)
  [ "$count" -gt 0 ] || { printf '%-7s %4s  (no restart was answered)\n' $mode 0; continue; }
  pick() { echo "$times" | sed -n "$(( ($1 * count + 99) / 100 > 0 ? ($1 * count + 99) / 100 : 1 ))p"; }
  printf '%-7s %4d %8.2f %8.2f %8.2f %8.2f\n' $mode "$count" "$(pick 0)" "$(pick 50)" "$(pick 90)" "$(pick 100)"
done
