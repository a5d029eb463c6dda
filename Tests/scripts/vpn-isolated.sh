# shellcheck shell=bash disable=SC2154
# VPNHubTests: peer 2 isolated (ISOLATE, "--isolate" or empty; HOW=config
# puts `Isolate = true` in its config instead) says what it sees and reaches
# (interfaces, sysfs, a TCP listener on the host's loopback port TCP, an
# outside address, ping of the host's loopback), then runs jobs/member.sh with
# peer 1; the same peer without isolation then tries the host's loopback (the
# control). probe.py HOST PORT says "connected" or "refused: REASON".
"$W" vpn new v --peers 2 --subnet 10.97.0.0/24 --endpoint "127.0.0.1:$PORT" > /dev/null || exit 9
[ "$HOW" = config ] && printf 'Isolate = true\n' >> v/peer-2.conf
python3 -c 'import socket, sys, time; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); time.sleep(60)' "$TCP" &
L=$!
start_hub
"$W" up --backend "${BACKEND:-wireguard-go}" v --peer 1 -- sh jobs/member.sh 1 2 > job.1.out 2>&1 &
J1=$!
"$W" up --backend "${BACKEND:-wireguard-go}" v --peer 2 $ISOLATE -- sh -c '
  echo "interfaces $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort | tr "\n" " ")"
  echo "sysfs $(ls /sys/class/net | tr "\n" " ")"
  echo "host loopback $(python3 jobs/probe.py 10.0.2.2 $1)"
  echo "outside $(python3 jobs/probe.py 192.0.2.1 80)"
  ping -c1 -W1 10.0.2.2 > /dev/null 2>&1 && echo "ping host loopback works" || echo "ping host loopback fails"
  sh jobs/member.sh 2 2' _ "$TCP"
echo "isolated status $?"
wait $J1; echo "job 1 status $?"
"$W" up --backend "${BACKEND:-wireguard-go}" v --peer 1 -- sh -c 'echo "control host loopback $(python3 jobs/probe.py 10.0.2.2 $1)"' _ "$TCP"
cat job.1.out
kill -INT $H; wait $H; echo "hub status $?"
kill -KILL $L; wait $L 2>/dev/null
rm -f up.* done.* reached.* job.*.out
