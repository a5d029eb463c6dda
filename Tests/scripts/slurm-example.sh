# shellcheck shell=bash
# SlurmTests: examples/slurm-vpn.sbatch (copied into the work folder)
# submitted twice at once with `sbatch --wait`, on h1 as the test user (W the
# wgns binary), WGNS_SLURM_TEST set. Prints whether both ran at once, each
# job's status and output, and what is left in the folder.
export WGNS_SLURM_TEST
export WGNS="$W"
# Both jobs need every core of both nodes: --oversubscribe lets them share.
sbatch --wait --oversubscribe --parsable slurm-vpn.sbatch > job.1 & A=$!
sbatch --wait --oversubscribe --parsable slurm-vpn.sbatch > job.2 & B=$!
for i in $(seq 600); do
  [ "$(squeue -h -t R -o %i | wc -l)" = 2 ] && { echo "both running"; break; }
  sleep 0.05
done
wait $A; echo "job 1 status $?"; wait $B; echo "job 2 status $?"
for k in 1 2; do echo "== job $k"; cat wgns-vpn-$(cat job.$k).out; done
echo "== left"; ls -a | grep -v '^\.*$' | tr '\n' ' '; echo
