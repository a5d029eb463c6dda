# shellcheck shell=bash disable=SC2154
# SlurmTests' srun scenario, on h1 as the test user in the work folder (W the
# wgns binary), WGNS_SLURM_TEST set, every wgns on BACKEND, the VPN of TOPOLOGY (star or mesh): the hub named HUB on h1, and `srun -N2
# -n4 wgns up` with each task running jobs/member.sh by name (peer-4 uploads
# an 8 MiB file to peer-1; released once all are done). Prints the file's
# checksum, the hub's lines and published host, where the hub sees each
# peer, srun's status and output, each task's MTU and containment lines, and
# the hub's status.
export WGNS_SLURM_TEST
head -c 8388608 /dev/urandom > data.bin; chmod 644 data.bin
echo "sent $(sha256sum < data.bin | cut -d' ' -f1)"
"$W" vpn new vpn --peers 4 --topology "${TOPOLOGY:-star}" > /dev/null || exit 9
"$W" hub --backend "$BACKEND" vpn --name "$HUB" > hub.out 2> hub.err & H=$!
for i in $(seq 200); do grep -q '^wgns hub: up' hub.out && break; kill -0 $H 2>/dev/null || break; sleep 0.05; done
cat hub.out hub.err
echo "published $(head -1 vpn/hub.endpoint | cut -d: -f1)"
srun -N2 -n4 --error='task.%t.err' "$W" up --backend "$BACKEND" -v vpn -- env MEMBER_TARGETS=name MEMBER_SEND=4 MEMBER_END=release sh jobs/member.sh > srun.out & S=$!
i=0; until [ "$(ls | grep -c '^done\.')" = 4 ]; do i=$((i + 1)); [ $i -gt 2400 ] && break; kill -0 $S 2>/dev/null || break; sleep 0.05; done
"$W" show "$HUB" endpoints | awk '{ print "hub sees", $NF }'
touch release
wait $S; echo "srun status $?"
cat srun.out
for t in 0 1 2 3; do grep -h "MTU wg0\|containment" task.$t.err | sed "s/^/task $t: /"; done
echo "mesh direct lines $(cat task.*.err | grep -c 'mesh: peer-[0-9]*: direct: handshake')"
for t in 0 1 2 3; do grep -h "mesh: " task.$t.err | sed "s/^/task $t: /"; done
"$W" down "$HUB"; wait $H; echo "hub status $?"
