// Slurm's `--container` path and MPI across nodes, through tsrt, on the two-node cluster of hack/cluster/
// (slurmctld plus slurmd cn1 and cn2, each in a network namespace of its own). Every job is submitted by the
// unprivileged test user, so tsrt runs rootless as that user, as oci.conf has it. The cluster is brought up
// for this file and torn down (by pid) at its end; each test looks at the effect from inside the container
// (the job's output) and at what is left on the nodes afterwards.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { SINGULARITY, primaryPartitionArgs } from '../sif-helpers.js';
import { REPO, TSRT, alive, hostMountsContaining, testUser, waitFor, waitScale, type Result } from '../helpers.js';

if (process.geteuid?.() !== 0) {
  t.plan(0, 'needs root to build the cluster (network namespaces, daemons) and to switch to the test user');
  process.exit(0);
}
const missing = ['slurmctld', 'slurmd', 'munged', 'mpicc', 'mpirun', 'mksquashfs'].filter(
  tool => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
);
if (missing.length)
  throw new Error(`missing ${missing.join(', ')}: bash hack/deps.sh installs slurm-wlm, munge, Open MPI and squashfs-tools`);

const CLUSTER = path.join(REPO, 'hack', 'cluster');
const CLUSTER_DIR = '/var/tmp/cluster-tsrt';
const SLURM_CONF = path.join(CLUSTER_DIR, 'etc', 'slurm.conf');
const NODES = ['cn1', 'cn2'];
const user = testUser();

function run(argv: string[], opts: { cwd?: string; timeout?: number } = {}): Result {
  const r = spawnSync(argv[0], argv.slice(1), {
    cwd: opts.cwd,
    timeout: opts.timeout ?? 180_000,
    env: { ...process.env, SLURM_CONF },
  });
  return { code: r.status ?? -1, signal: r.signal ?? null, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '' };
}

/** A Slurm (or MPI) client command as the test user, from the work directory. */
function asUser(argv: string[], timeout?: number): Result {
  return run(['runuser', '-u', user.name, '--', ...argv], { cwd: work, timeout });
}

const up = run(['bash', path.join(CLUSTER, 'up.sh')]);
if (up.code !== 0) throw new Error(`hack/cluster/up.sh failed:\n${up.stdout}${up.stderr}`);
t.teardown(() => {
  // down.sh walks /proc for the cluster's processes and waits for each daemon: 40 s on a quiet machine, past
  // run()'s 3 minutes under load, when the killed down.sh left the whole cluster up for the next run.
  const down = run(['bash', path.join(CLUSTER, 'down.sh')], { timeout: 300_000 * waitScale() });
  if (down.code !== 0)
    console.error(`hack/cluster/down.sh: ${down.signal ? `killed by ${down.signal} (timeout)` : ''}${down.stdout}${down.stderr}`);
});

// The job's files live in the cluster's scratch directory, which every "node" sees at the same path.
const work = fs.mkdtempSync(path.join(CLUSTER_DIR, 'tmp', 'test-'));
fs.chownSync(work, user.uid, user.gid);
function bundle(name: string, hostMpi = false): string {
  const dir = path.join(work, name);
  const r = run(['bash', path.join(CLUSTER, 'mkbundle.sh'), dir, user.name, ...(hostMpi ? ['--host-mpi'] : [])]);
  if (r.code !== 0) throw new Error(`hack/cluster/mkbundle.sh failed: ${r.stderr}`);
  return dir;
}
const busybox = bundle('busybox');

/** The containers tsrt knows on a node for the test user (the oci.conf --root of that node and user). */
function containersOn(node: string): string[] {
  const root = path.join(CLUSTER_DIR, 'run', `tsrt-${node}-${user.name}`);
  if (!fs.existsSync(root)) return [];
  const r = run(['runuser', '-u', user.name, '--', TSRT, '--root', root, 'list', '-q']);
  return r.stdout.split('\n').filter(Boolean);
}
function allContainers(): string[] {
  return NODES.flatMap(containersOn);
}
/**
 * srun and sbatch return once the tasks have exited; slurmstepd then asks RunTimeQuery and runs RunTimeDelete
 * on each node, so "nothing left" is awaited (bounded), then asserted.
 */
function containersLeft(): string[] {
  waitFor(() => allContainers().length === 0, 300, 100);
  return allContainers();
}
function jobGone(job: string): boolean {
  const r = run(['squeue', '-h', '-j', job, '-o', '%T']);
  return r.stdout.trim() === '';
}
function exitCodeOf(job: string): string {
  const r = run(['scontrol', 'show', 'job', job]);
  return /ExitCode=(\S+)/.exec(r.stdout)?.[1] ?? `no ExitCode in: ${r.stdout}${r.stderr}`;
}
function submit(args: string[]): string {
  const r = asUser([...singularityEnv, 'sbatch', '--parsable', ...args]);
  if (r.code !== 0) throw new Error(`sbatch failed: ${r.stderr}`);
  return r.stdout.trim().split(';')[0];
}

let builtImage = '';
/**
 * A SIF image (built once) of the busybox rootfs, with a file the bundles' directory trees lack (so the
 * output proves the image ran), Debian's merged-/usr links and the mount points for the host's Open MPI.
 */
function sifImage(): string {
  if (builtImage) return builtImage;
  const tree = bundle('sif-tree');
  const rootfs = path.join(tree, 'rootfs');
  fs.writeFileSync(path.join(rootfs, 'etc', 'from-sif'), 'from the SIF\n');
  for (const dir of MPI_BINDS) fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
  fs.symlinkSync('usr/lib', path.join(rootfs, 'lib'));
  fs.symlinkSync('usr/lib64', path.join(rootfs, 'lib64'));
  const squashfs = path.join(work, 'rootfs.sqfs');
  const image = path.join(work, 'img.sif');
  const steps = [
    ['mksquashfs', rootfs, squashfs, '-noappend', '-all-root', '-quiet'],
    [SINGULARITY, 'sif', 'new', image],
    [SINGULARITY, ...primaryPartitionArgs(image, squashfs)],
  ];
  for (const step of steps) {
    const r = run(step);
    if (r.code !== 0) throw new Error(`${step.slice(0, 3).join(' ')} failed: ${r.stderr}`);
  }
  fs.chownSync(image, user.uid, user.gid);
  builtImage = image;
  return image;
}
/** The host's Open MPI, bound into the image for the hybrid model (mpirun outside, ranks inside). */
const MPI_BINDS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/share/openmpi', '/etc/openmpi'];
/**
 * tsrt-singularity as the test user in a job: the job's environment is the submitter's (runuser keeps
 * root's HOME), so it gets a home and runtime directory of its own in the test's directory.
 */
const singularityEnv = (() => {
  const home = path.join(work, 'home'),
    runtime = path.join(work, 'xdg');
  for (const dir of [home, runtime]) {
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, user.uid, user.gid);
  }
  return ['env', `HOME=${home}`, `XDG_RUNTIME_DIR=${runtime}`];
})();

t.test('srun -N2 --container=BUNDLE hostname: one container on each node', async t => {
  const r = asUser(['srun', '-N2', `--container=${busybox}`, 'hostname']);
  t.equal(r.code, 0, r.stderr);
  t.same(r.stdout.split('\n').filter(Boolean).sort(), NODES, 'each node names itself from inside its container');
  t.same(containersLeft(), [], 'no container is left on either node');
});

t.test("srun -N2 --container=BUNDLE id -u: the submitting user's own uid, rootless", async t => {
  const r = asUser(['srun', '-N2', `--container=${busybox}`, 'id', '-u']);
  t.equal(r.code, 0, r.stderr);
  t.same(r.stdout.split('\n').filter(Boolean), [String(user.uid), String(user.uid)]);
  for (const node of NODES) {
    const root = path.join(CLUSTER_DIR, 'run', `tsrt-${node}-${user.name}`);
    t.equal(fs.statSync(root).uid, user.uid, `tsrt ran as ${user.name} on ${node} (its state root is theirs)`);
  }
});

t.test("the container's exit status is srun's", async t => {
  const r = asUser(['srun', '-N1', `--container=${busybox}`, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  t.equal(r.code, 3);
  t.match(r.stdout, /^out$/m);
  t.match(r.stderr, /^err$/m);
  t.same(containersLeft(), []);
});

t.test('an sbatch job array of containers: output, error and exit code of each task reach its files', async t => {
  const script = path.join(work, 'array.sh');
  fs.writeFileSync(
    script,
    '#!/bin/sh\necho "task $SLURM_ARRAY_TASK_ID uid $(id -u)"\necho "stderr of $SLURM_ARRAY_TASK_ID" >&2\nexit $((SLURM_ARRAY_TASK_ID + 3))\n',
    { mode: 0o755 },
  );
  const job = submit([`--container=${busybox}`, '--array=0-2', '-o', 'array-%a.out', '-e', 'array-%a.err', script]);
  t.ok(
    waitFor(() => jobGone(job), 600, 200),
    `array job ${job} finished`,
  );
  for (const task of [0, 1, 2]) {
    t.equal(fs.readFileSync(path.join(work, `array-${task}.out`), 'utf8'), `task ${task} uid ${user.uid}\n`);
    t.equal(
      fs.readFileSync(path.join(work, `array-${task}.err`), 'utf8'),
      `stderr of ${task}\n`,
      "the container's stderr and nothing else (no runtime noise)",
    );
    t.equal(exitCodeOf(`${job}_${task}`), `${task + 3}:0`);
  }
  t.same(containersLeft(), []);
});

t.test('scancel of a running container job: killed and deleted on both nodes, nothing leaks', async t => {
  const job = submit(['-N2', '-o', 'cancel.out', '-e', 'cancel.err', '--wrap', `srun --container=${busybox} sleep 600`]);
  t.ok(
    waitFor(() => NODES.every(n => containersOn(n).length === 1), 600, 200),
    'a container runs on each node',
  );
  const ids = allContainers();
  // The containers' processes, by the pid tsrt recorded for each.
  const pids = NODES.flatMap(node =>
    containersOn(node).map(id => {
      const root = path.join(CLUSTER_DIR, 'run', `tsrt-${node}-${user.name}`);
      return Number(JSON.parse(run([TSRT, '--root', root, 'state', id]).stdout).pid);
    }),
  );
  t.equal(pids.filter(p => p > 0).length, 2);
  const cgroups = pids.flatMap(p => fs.readFileSync(`/proc/${p}/cgroup`, 'utf8').split('\n').filter(Boolean));

  t.equal(run(['scancel', job]).code, 0);
  t.ok(
    waitFor(() => jobGone(job), 600, 200),
    'the job ends',
  );
  t.same(containersLeft(), [], 'tsrt has no container left on either node');
  for (const pid of pids) t.notOk(alive(pid), `container process ${pid} is gone`);
  for (const id of ids) {
    t.same(hostMountsContaining(id), [], `no mount of ${id} remains`);
    const leftover = spawnSync('find', ['/sys/fs/cgroup', '-maxdepth', '4', '-name', `*${id}*`]).stdout.toString();
    t.equal(leftover, '', `no cgroup named after ${id}`);
  }
  // A cgroup the containers had of their own (not one shared with the node) is gone with them.
  for (const line of cgroups) {
    const [, controllers, rel] = line.split(':');
    if (!ids.some(id => rel.includes(id))) continue;
    const hierarchy = controllers === '' ? 'unified' : controllers.replace(/^name=/, '');
    t.notOk(fs.existsSync(path.join('/sys/fs/cgroup', hierarchy, rel)), `${hierarchy}${rel} removed`);
  }
  t.match(fs.readFileSync(path.join(work, 'cancel.err'), 'utf8'), /CANCELLED/);
});

t.test('a bad bundle: the error names the JSON path, srun fails, nothing is left', async t => {
  const bad = bundle('bad');
  const file = path.join(bad, 'config.json');
  const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
  spec.linux.namespaces.push({ type: 'bogus' });
  fs.writeFileSync(file, JSON.stringify(spec));
  const r = asUser(['srun', '-N2', `--container=${bad}`, 'true']);
  t.not(r.code, 0);
  t.match(r.stderr, /config\.json: \/linux\/namespaces\/\d+\/type/);
  t.same(containersLeft(), []);
});

t.test('srun -N2 --container=BUNDLE whose root filesystem is a SIF image (org.tsrt.sif)', async t => {
  const image = sifImage();
  const sifBundle = bundle('sif');
  fs.rmSync(path.join(sifBundle, 'rootfs'), { recursive: true });
  const file = path.join(sifBundle, 'config.json');
  const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
  // Slurm 22.05 points root.path at the bundle's rootfs directory in the config it writes, whatever the user
  // gave, but keeps annotations: tsrt's org.tsrt.sif names the image instead.
  spec.root = { path: 'rootfs', readonly: true };
  spec.annotations = { ...spec.annotations, 'org.tsrt.sif': image };
  fs.writeFileSync(file, JSON.stringify(spec));
  const r = asUser(['srun', '-N2', `--container=${sifBundle}`, 'sh', '-c', 'echo "$(hostname) $(id -u) $(cat /etc/from-sif)"']);
  t.equal(r.code, 0, r.stderr);
  t.same(
    r.stdout.split('\n').filter(Boolean).sort(),
    NODES.map(n => `${n} ${user.uid} from the SIF`),
  );
  t.same(containersLeft(), []);
  t.same(hostMountsContaining(sifBundle), [], 'no mount of the image is left');
});

t.test('a job script runs srun -N2 tsrt-singularity exec image.sif', async t => {
  const image = sifImage();
  const script = path.join(work, 'singularity-job.sh');
  fs.writeFileSync(script, `#!/bin/sh\nsrun -N2 ${SINGULARITY} exec ${image} sh -c 'echo "$(hostname) $(id -u) $(cat /etc/from-sif)"'\n`, {
    mode: 0o755,
  });
  const job = submit(['-N2', '-o', 'singularity.out', '-e', 'singularity.err', script]);
  t.ok(
    waitFor(() => jobGone(job), 600, 200),
    `job ${job} finished`,
  );
  t.equal(exitCodeOf(job), '0:0', fs.readFileSync(path.join(work, 'singularity.err'), 'utf8'));
  const lines = fs.readFileSync(path.join(work, 'singularity.out'), 'utf8').split('\n').filter(Boolean);
  t.same(
    lines.sort(),
    NODES.map(n => `${n} ${user.uid} from the SIF`),
  );
  t.same(hostMountsContaining(image), [], 'no mount of the image is left');
});

// --- MPI: Open MPI's mpirun inside a Slurm allocation (plm=slurm launches its daemon on each node through
// srun); every rank is a tsrt container of the --host-mpi bundle, started by hack/cluster/mpi/in-container.
const mpiBundle = bundle('mpi', true);
const ring = path.join(work, 'ring');
const cc = run(['mpicc', '-O2', '-o', ring, path.join(CLUSTER, 'mpi', 'ring.c')]);
if (cc.code !== 0) throw new Error(`mpicc failed: ${cc.stderr}`);
fs.chownSync(ring, user.uid, user.gid);
const MCA = [
  '--mca',
  'btl_tcp_if_include',
  '10.213.77.0/24',
  '--mca',
  'oob_tcp_if_include',
  '10.213.77.0/24',
  '--mca',
  'btl_vader_single_copy_mechanism',
  'none',
];
const inContainer = path.join(CLUSTER, 'mpi', 'in-container');
// The ranks' tsrt state goes under the cluster's directory (removed with it), not the wrapper's /tmp default.
const rankRoot = `TSRT_ROOT=${path.join(CLUSTER_DIR, 'run', `mpi-${user.name}`)}`;

/** The hosts rank 0 reports, in rank order, after checking the ring's and the allreduce's results. */
function ringHosts(t: Test, r: Result, ranks: number): string[] {
  t.equal(r.code, 0, r.stderr);
  const m = /^ring size=(\d+) token=(\d+) expected=(\d+) allreduce=(\d+) hosts=(\S+) (ok|WRONG)$/m.exec(r.stdout);
  if (!m) {
    t.fail(`no ring result in: ${r.stdout}${r.stderr}`);
    return [];
  }
  t.equal(Number(m[1]), ranks, 'every rank joined');
  t.equal(Number(m[2]), (3 * ranks * (ranks - 1)) / 2, 'the token went round the ring three times');
  t.equal(Number(m[4]), (ranks * (ranks - 1)) / 2, 'allreduce summed every rank');
  t.equal(m[6], 'ok');
  return m[5].split(',');
}

t.test('mpirun -np 4 with each rank in a container, on one node', async t => {
  const r = asUser(['env', rankRoot, 'salloc', '-N1', '-w', 'cn1', '-n4', 'mpirun', ...MCA, '-np', '4', inContainer, mpiBundle, ring]);
  t.same(ringHosts(t, r, 4), ['cn1', 'cn1', 'cn1', 'cn1']);
});

t.test('mpirun -np 4 across both nodes, each rank in a container', async t => {
  const r = asUser(['env', rankRoot, 'salloc', '-N2', '--ntasks-per-node=2', 'mpirun', ...MCA, '-np', '4', inContainer, mpiBundle, ring]);
  t.same(ringHosts(t, r, 4).sort(), ['cn1', 'cn1', 'cn2', 'cn2']);
  const leftovers = fs.readdirSync('/tmp').filter(name => name.startsWith('tsrt-rank.'));
  t.same(
    leftovers.filter(name => fs.statSync(path.join('/tmp', name)).uid === user.uid),
    [],
    'no per-rank bundle is left in /tmp',
  );
});

// The same ring with every rank a `tsrt-singularity exec` of the SIF image, the host's Open MPI bound in.
// Ranks are in user namespaces of their own: TCP between them (no shared-memory single copy).
const SINGULARITY_MCA = [
  '--mca',
  'btl',
  'self,tcp',
  '--mca',
  'pml',
  'ob1',
  '--mca',
  'btl_tcp_if_include',
  '10.213.77.0/24',
  '--mca',
  'oob_tcp_if_include',
  '10.213.77.0/24',
];
function singularityRing(allocation: string[]): Result {
  const binds = MPI_BINDS.filter(p => fs.existsSync(p)).join(',');
  return asUser([
    ...singularityEnv,
    'salloc',
    ...allocation,
    'mpirun',
    ...SINGULARITY_MCA,
    '-np',
    '4',
    SINGULARITY,
    'exec',
    '-B',
    binds,
    sifImage(),
    ring,
  ]);
}

t.test('mpirun -np 4 tsrt-singularity exec image.sif ./ring, on one node', async t => {
  t.same(ringHosts(t, singularityRing(['-N1', '-w', 'cn1', '-n4']), 4), ['cn1', 'cn1', 'cn1', 'cn1']);
});

t.test('mpirun -np 4 tsrt-singularity exec image.sif ./ring, across both nodes', async t => {
  t.same(ringHosts(t, singularityRing(['-N2', '--ntasks-per-node=2']), 4).sort(), ['cn1', 'cn1', 'cn2', 'cn2']);
  t.same(hostMountsContaining(sifImage()), [], 'no mount of the image is left');
});
