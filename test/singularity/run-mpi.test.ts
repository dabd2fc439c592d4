// MPI smoke test, Singularity's hybrid model: the host's `mpirun -np 2` starts one `tsrt-singularity exec`
// per rank; each rank runs an MPI program against the host's Open MPI bound into a busybox image. The ranks
// exchange data over TCP, and over Open MPI's shared memory: each rank has a user namespace of its own but
// shares the host's IPC namespace and /dev/shm, as under Singularity (CMA between namespaces is switched off).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO } from '../helpers.js';
import { SINGULARITY, kit, sandbox } from '../singularity-run-kit.js';

const k = kit(t);

for (const [transport, mca] of [
  ['TCP', '--mca btl self,tcp'],
  ['shared memory', '--mca btl self,vader --mca btl_vader_single_copy_mechanism none'],
]) t.test(`mpirun -np 2 runs two ranks in containers that exchange data over ${transport}`, async t => {
  const work = k.dir('singrun-mpi-');
  const program = path.join(work, 'ring');
  const cc = spawnSync('mpicc', ['-o', program, path.join(REPO, 'test/singularity/fixtures/mpi-ring.c')], { encoding: 'utf8' });
  t.equal(cc.status, 0, `mpicc: ${cc.stderr}`);
  fs.chownSync(program, k.user.uid, k.user.gid);
  // The image has Debian's merged-/usr links, so the host's loader and libraries bound under /usr resolve.
  const image = sandbox(k);
  fs.symlinkSync('usr/lib', path.join(image, 'lib'));
  fs.symlinkSync('usr/lib64', path.join(image, 'lib64'));
  const binds = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/share/openmpi', '/etc/openmpi'].filter(p => fs.existsSync(p)).join(',');
  const env = `PATH=/usr/bin:/bin HOME=${k.home} XDG_RUNTIME_DIR=${k.runtime}`;
  const r = spawnSync('runuser', ['-u', k.user.name, '--', 'sh', '-c',
    `env -i ${env} mpirun -np 2 ${mca} ${SINGULARITY} exec -B ${binds} ${image} ${program}`],
  { cwd: work, encoding: 'utf8', timeout: 180_000 });
  t.equal(r.status, 0, r.stderr);
  t.same(r.stdout.trim().split('\n').sort(), ['rank 0 of 2 got 107 from rank 1', 'rank 1 of 2 got 7 from rank 0']);
});
