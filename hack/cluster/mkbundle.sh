#!/usr/bin/env bash
# A bundle for `srun --container=DIR` as USER: busybox (hack/mkbundle.sh), rootless, with USER's own uid and
# gid mapped to themselves (so `id -u` inside is the submitting user's uid, and files the job writes are
# theirs), and the node's UTS and network namespaces shared (hostname names the node; MPI ranks reach each
# other at the node's address).
#   hack/cluster/mkbundle.sh DIR USER [--host-mpi]
# --host-mpi binds the host's /usr (Open MPI's libraries and mpirun's helpers) and /etc/openmpi read-only, and
# /tmp (Open MPI's session directory, where a rank finds its node's daemon), and shares the IPC namespace
# (shared-memory transport between ranks on one node).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:?usage: hack/cluster/mkbundle.sh DIR USER [--host-mpi]}"
user="${2:?usage: hack/cluster/mkbundle.sh DIR USER [--host-mpi]}"
host_mpi="${3:-}"
uid=$(id -u "$user")
gid=$(id -g "$user")
bash "$here/mkbundle.sh" "$dir" --rootless --owner "$uid:$gid" >/dev/null
node - "$dir/config.json" "$uid" "$gid" "$host_mpi" <<'JS'
const fs = require('fs');
const [file, uidText, gidText, hostMpi] = process.argv.slice(2);
const uid = Number(uidText), gid = Number(gidText);
const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
spec.process.user = { uid, gid };
spec.linux.uidMappings = [{ containerID: uid, hostID: uid, size: 1 }];
spec.linux.gidMappings = [{ containerID: gid, hostID: gid, size: 1 }];
// An MPI rank also shares the node's IPC and pid namespaces: Open MPI's shared-memory transport reads its
// peers' memory by pid (CMA) and PMIx knows each rank by its pid.
const shared = hostMpi ? ['uts', 'network', 'ipc', 'pid'] : ['uts', 'network'];
spec.linux.namespaces = spec.linux.namespaces.filter(ns => !shared.includes(ns.type));
delete spec.hostname;
if (hostMpi) {
  // Without a pid namespace of its own, a user namespace may not mount a new procfs: bind the node's.
  spec.mounts = spec.mounts.map(m => m.destination === '/proc'
    ? { destination: '/proc', type: 'bind', source: '/proc', options: ['rbind', 'nosuid', 'nodev', 'noexec'] } : m)
    // an mqueue filesystem belongs to an IPC namespace of the container's own
    .filter(m => m.destination !== '/dev/mqueue');
}
if (hostMpi) {
  // rbind: /usr/lib/x86_64-linux-gnu/openmpi etc. are under /usr; Debian's /lib* are symlinks into /usr.
  for (const path of ['/usr', '/etc/openmpi', '/etc/alternatives']) {
    spec.mounts.push({ destination: path, type: 'bind', source: path, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
  }
  for (const path of ['/tmp', '/dev/shm']) {
    spec.mounts = spec.mounts.filter(m => m.destination !== path);
    spec.mounts.push({ destination: path, type: 'bind', source: path, options: ['rbind', 'nosuid', 'nodev'] });
  }
}
fs.writeFileSync(file, JSON.stringify(spec, null, 2) + '\n');
JS
if [ -n "$host_mpi" ]; then
  # The host's dynamic loader and library paths, reached through the /usr bind (merged-/usr layout).
  rm -rf "$dir/rootfs/usr"
  mkdir -p "$dir/rootfs/usr" "$dir/rootfs/etc/openmpi" "$dir/rootfs/etc/alternatives"
  for link in lib lib64; do ln -sfn "usr/$link" "$dir/rootfs/$link"; done
  cp /etc/ld.so.cache "$dir/rootfs/etc/ld.so.cache"
  chown -R "$uid:$gid" "$dir/rootfs/usr" "$dir/rootfs/etc" "$dir/rootfs/lib" "$dir/rootfs/lib64"
fi
echo "bundle ready: $dir (for $user, uid $uid)"
