# Names, addresses and paths of the one-machine test cluster, shared by up.sh, down.sh, the tests and the
# benchmark. Every name carries the "cluster" prefix and every address is in a private subnet of our own, so
# the cluster lives beside other users of this machine without touching their daemons, links or files.
CLUSTER_DIR="${CLUSTER_DIR:-/var/tmp/cluster-tsrt}"
CLUSTER_SUBNET=10.213.77
CLUSTER_BRIDGE=cluster-br0
CLUSTER_HOST_ADDR=$CLUSTER_SUBNET.1        # the bridge's address in the host's netns: where srun/sbatch run
CLUSTER_CTL_ADDR=$CLUSTER_SUBNET.10        # slurmctld, in netns cluster-ctl
CLUSTER_NODES=(cn1 cn2)                    # slurmd "nodes", each in netns cluster-<node>
declare -A CLUSTER_NODE_ADDR=([cn1]=$CLUSTER_SUBNET.11 [cn2]=$CLUSTER_SUBNET.12)
CLUSTER_CTL_PORT=16817
CLUSTER_SLURMD_PORT=16818
CLUSTER_SRUN_PORTS=16900-16999
export SLURM_CONF="$CLUSTER_DIR/etc/slurm.conf"
# wait_for SECONDS CMD...: bounded waits scaled with the load.
. "$(dirname "${BASH_SOURCE[0]}")/../wait.sh"
