# shellcheck shell=bash disable=SC2154
# UpTests: `wgns up --name NAME job.conf` without a job, then from outside:
# list, a second tunnel of the same name, exec (its user and network
# namespace, an exit status, a missing command), status, show, down, and
# down again once it is gone.
"$W" up --backend "${BACKEND:-wireguard-go}" --name "$NAME" job.conf > named.out 2>&1 &
P=$!
for i in $(seq 1 100); do "$W" list | grep -qx "$NAME" && break; sleep 0.05; done
"$W" list | grep -x "$NAME" && echo listed
"$W" up --backend "${BACKEND:-wireguard-go}" --name "$NAME" job.conf -- true; echo "second status $?"
"$W" exec "$NAME" -- sh -c 'echo "inside $(id -u) $(readlink /proc/self/ns/net)"; ip -o -4 addr show wg0'
echo "outside x $(readlink /proc/self/ns/net)"
"$W" exec "$NAME" -- sh -c 'exit 5'; echo "exec status $?"
"$W" exec "$NAME" -- no-such-command-here; echo "missing status $?"
"$W" status "$NAME"
"$W" show "$NAME" endpoints
"$W" down "$NAME"; echo "down status $?"
wait $P; echo "up status $?"
"$W" list | grep -x "$NAME" || echo "not listed"
"$W" down "$NAME"; echo "down again status $?"
