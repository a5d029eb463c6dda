# VPNHubTests.restartedHubIsReachedAgain (after hub.sh): a member keeps
# running while its hub is stopped and started again on the same folder,
# with a picked port (FIXED empty) or the fixed one 127.0.0.1:FIXED. The job
# counts the one-second pings until the first answer after the new hub is up.
"$W" vpn new v --peers 1 ${FIXED:+--endpoint 127.0.0.1:$FIXED} > /dev/null || exit 9
start_hub
rm -f first restarted; mkfifo first
"$W" up --backend "${BACKEND:-wireguard-go}" v --peer 1 -- sh -c '
  ping -c1 -W5 hub > /dev/null && echo "reached the first hub"
  echo > first
  i=0; until [ -e restarted ]; do i=$((i+1)); [ $i -gt 400 ] && exit 3; sleep 0.05; done
  n=0; until ping -c1 -W1 hub > /dev/null 2>&1; do n=$((n+1)); [ $n -ge 10 ] && { echo "the new hub is not reached"; exit 4; }; done
  echo "reached the new hub after $n lost pings"' > job.out 2>&1 &
J=$!
read x < first
kill -TERM $H; wait $H
start_hub
touch restarted
wait $J; echo "job status $?"
kill -TERM $H; wait $H
cat job.out hub.err
