# shellcheck shell=bash disable=SC2016
# SlurmTests: what Slurm says of its nodes (sinfo), where a two-task step
# lands (host, user, fabric address), and a job that outlives the test: a
# hub on h1 and four tasks in wgns, each saying it is up. Run on h1 as the
# test user in the work folder (W the wgns binary), WGNS_SLURM_TEST set.
export WGNS_SLURM_TEST
sinfo -N -h -o '%N %o %n %t'
srun -N2 -n2 sh -c 'echo "task $SLURM_PROCID on $SLURMD_NODENAME: $(hostname) $(id -un) $(ip -4 -o addr show eth0 | awk "{print \$4}")"' | sort
# A job that outlives the test: a hub on h1 and four tasks in wgns, each saying it is up.
"$W" vpn new vpn --peers 4 > /dev/null || exit 9
"$W" hub --backend wireguard-go vpn -- srun -N2 -n4 "$W" up --backend wireguard-go vpn -- sh -c 'touch up.$WGNS_PEER; exec sleep 600' > job.out 2>&1 &
i=0; until [ "$(ls | grep -c '^up\.')" = 4 ]; do i=$((i + 1)); [ $i -gt 1200 ] && break; sleep 0.05; done
echo "up $(ls | grep -c '^up\.')"
