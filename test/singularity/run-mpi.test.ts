// MPI smoke test, Singularity's hybrid model: the host's `mpirun` starts one `tsrt-singularity exec` per rank;
// each rank runs an MPI program against the host's Open MPI bound into a busybox image. The ranks exchange data
// over TCP and over Open MPI's shared memory (the host's IPC namespace and /dev/shm, as under Singularity), and
// the ranks of one mpirun share one user namespace (--sharens, automatic under MPI), so that one rank may read
// another's memory with process_vm_readv: Open MPI's single-copy mechanism (CMA).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO } from '../helpers.js';
import { SINGULARITY, kit, sandbox } from '../singularity-run-kit.js';

const k = kit(t);
const work = k.dir('singrun-mpi-');

function compile(source: string): string {
  const program = path.join(work, path.basename(source, '.c'));
  const cc = spawnSync('mpicc', ['-O2', '-o', program, path.join(REPO, source)], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`mpicc ${source}: ${cc.stderr}`);
  fs.chownSync(program, k.user.uid, k.user.gid);
  return program;
}

// The image has Debian's merged-/usr links, so the host's loader and libraries bound under /usr resolve.
const image = sandbox(k);
fs.symlinkSync('usr/lib', path.join(image, 'lib'));
fs.symlinkSync('usr/lib64', path.join(image, 'lib64'));
const binds = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/share/openmpi', '/etc/openmpi'].filter(p => fs.existsSync(p)).join(',');

/** `mpirun -np N <mpirun args> tsrt-singularity <action: [global flags] exec [flags]> IMAGE PROGRAM` as the test user. */
function mpirun(
  ranks: number,
  mpiArgs: string,
  action: string,
  program: string,
  env = '',
): { status: number | null; stdout: string; stderr: string } {
  const base = `PATH=/usr/bin:/bin HOME=${k.home} XDG_RUNTIME_DIR=${k.runtime} ${env}`;
  return spawnSync(
    'runuser',
    [
      '-u',
      k.user.name,
      '--',
      'sh',
      '-c',
      `env -i ${base} mpirun -np ${ranks} --oversubscribe ${mpiArgs} ${SINGULARITY} ${action} -B ${binds} ${image} ${program}`,
    ],
    { cwd: work, encoding: 'utf8', timeout: 180_000 },
  );
}

const ring = compile('test/singularity/fixtures/mpi-ring.c');
for (const [transport, mca] of [
  ['TCP', '--mca btl self,tcp'],
  ['shared memory', '--mca btl self,vader --mca btl_vader_single_copy_mechanism none'],
])
  t.test(`mpirun -np 2 runs two ranks in containers that exchange data over ${transport}`, async t => {
    const r = mpirun(2, mca, 'exec', ring);
    t.equal(r.status, 0, r.stderr);
    t.same(r.stdout.trim().split('\n').sort(), ['rank 0 of 2 got 107 from rank 1', 'rank 1 of 2 got 7 from rank 0']);
  });

const cma = compile('test/singularity/fixtures/mpi-cma.c');
const host = fs.readlinkSync('/proc/self/ns/user');
/** Each rank's line: its user namespace and what process_vm_readv of the next rank gave. */
const lines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .sort()
    .map(l => /^rank (\d) in (user:\[\d+\]): (.*)$/.exec(l)?.slice(1) ?? [l]);

t.test("the ranks of one mpirun share one user namespace, so each can read the next one's memory (CMA)", async t => {
  const r = mpirun(3, '--mca btl self,vader', '-v exec', cma);
  t.equal(r.status, 0, r.stderr);
  const got = lines(r.stdout);
  t.equal(got.length, 3, r.stdout);
  t.equal(new Set(got.map(l => l[1])).size, 1, 'one user namespace');
  t.not(got[0]![1], host, "a namespace of the job's, not the host's");
  t.same(
    got.map(l => [l[0], l[2]]),
    [
      ['0', 'read "secret of rank 1" from rank 1'],
      ['1', 'read "secret of rank 2" from rank 2'],
      ['2', 'read "secret of rank 0" from rank 0'],
    ],
  );
  t.equal(r.stderr.match(/--sharens: a new user namespace for mpi:/g)?.length, 1, `one rank made it: ${r.stderr}`);
  t.equal(r.stderr.match(/--sharens: joining the user namespace of mpi:/g)?.length, 2, 'the two others joined it');
  t.same(fs.readdirSync(path.join(k.runtime, 'tsrt-singularity', 'sharens')), ['lock'], 'no record outlives the job');
});

t.test('--sharens=false: a user namespace per rank, where process_vm_readv of another rank is not permitted', async t => {
  for (const [how, action, env] of [
    ['--sharens=false', 'exec --sharens=false', ''],
    ['SINGULARITY_SHARENS=false', 'exec', 'SINGULARITY_SHARENS=false'],
  ]) {
    const r = mpirun(3, '--mca btl self,vader --mca btl_vader_single_copy_mechanism none', action, cma, env);
    t.equal(r.status, 0, r.stderr);
    const got = lines(r.stdout);
    t.equal(new Set(got.map(l => l[1])).size, 3, `${how}: three user namespaces`);
    t.same(
      got.map(l => l[2]),
      [1, 2, 0].map(n => `process_vm_readv of rank ${n}: Operation not permitted`),
      `${how}: CMA fails`,
    );
  }
});

t.test('--sharens outside MPI: the containers one parent starts share a namespace; without it each has its own', async t => {
  const ns = (flag: string) => {
    const r = k.sing(['exec', flag, image, 'readlink', '/proc/self/ns/user'].filter(Boolean));
    return r.stdout.trim() || r.stderr;
  };
  // Each k.sing is a new runuser, a new parent: two runs from one shell are what share.
  const twice = (flag: string) =>
    spawnSync(
      'runuser',
      [
        '-u',
        k.user.name,
        '--',
        'sh',
        '-c',
        `env -i PATH=/usr/bin:/bin HOME=${k.home} XDG_RUNTIME_DIR=${k.runtime} sh -c '${SINGULARITY} exec ${flag} ${image} sh -c "readlink /proc/self/ns/user; sleep 2" & sleep 1; ${SINGULARITY} exec ${flag} ${image} readlink /proc/self/ns/user; wait'`,
      ],
      { cwd: work, encoding: 'utf8', timeout: 120_000 },
    );
  const shared = twice('--sharens');
  t.equal(shared.status, 0, shared.stderr);
  const [a, b] = shared.stdout.trim().split('\n');
  t.match(a, /^user:\[\d+\]$/);
  t.equal(a, b, 'one namespace for both');
  const apart = twice('');
  const [c, d] = apart.stdout.trim().split('\n');
  t.not(c, d, 'without --sharens, one each');
  t.match(ns(''), /^user:\[\d+\]$/, 'a lone run is unaffected');
});

const pingpong = compile('hack/cluster/mpi/pingpong.c');
t.test(
  "Open MPI's single copy (CMA) carries 4 MiB messages between ranks that share a namespace, and fails between ranks that do not",
  async t => {
    const mca = '--mca btl self,vader --mca btl_vader_single_copy_mechanism cma';
    const shared = mpirun(2, mca, 'exec', pingpong);
    t.equal(shared.status, 0, shared.stderr);
    t.match(shared.stdout, /^latency_us=[\d.]+ bandwidth_MBps=[\d.]+$/m, 'the ping-pong ran');
    const apart = mpirun(2, mca, 'exec --sharens=false', pingpong);
    t.not(apart.status, 0, 'without a shared namespace the job fails');
    // Open MPI compares the ranks' user namespaces before it tries (help-btl-vader.txt, cma-different-user-namespace-error).
    // Open MPI's help text is sent to mpirun over its own channel, which loses it under load ('Data unpack
    // would read past end of buffer'): when it arrives, it is the namespace reason.
    const said = apart.stderr.replace(/\s+/g, ' ');
    if (!/show_help\.c/.test(said)) t.match(said, /CMA support is not available due to different user namespaces/, 'Open MPI says why');
  },
);
