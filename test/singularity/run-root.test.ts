// tsrt-singularity run by root: no user namespace is needed, root keeps its ids, the image stays read-only,
// and SIF partitions are mounted (kernel loop mount or squashfuse) and unmounted when the container ends.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { hostMountsContaining, tmpdir } from '../helpers.js';
import { SINGULARITY, kit, sandbox, sif } from '../singularity-run-kit.js';

const k = kit(t);
const image = sandbox(k, { runscript: 'echo "root run: $*"' });
// Root's own runtime directory (root's, 0700, as /run/user/0 is): the test user's is not root's to use.
const runtime = tmpdir('singrun-root-rt-');
fs.chmodSync(runtime, 0o700);
t.teardown(() => fs.rmSync(runtime, { recursive: true, force: true }));

function asRoot(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(SINGULARITY, args, {
    env: { PATH: '/usr/bin:/bin', HOME: '/root', XDG_RUNTIME_DIR: runtime, SINGULARITY_CACHEDIR: `${runtime}/cache` },
    cwd: '/',
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

t.test('root runs without a user namespace as uid 0, the rootfs read-only', async t => {
  const r = asRoot(['exec', image, 'sh', '-c', 'id; readlink /proc/self/ns/user; touch /x 2>/dev/null || echo ro']);
  t.equal(r.code, 0, r.stderr);
  const [id, userns, ro] = r.stdout.trim().split('\n');
  t.match(id, /^uid=0\(root\) gid=0\(root\)/);
  t.equal(userns, spawnSync('readlink', ['/proc/self/ns/user']).stdout.toString().trim(), 'the host user namespace');
  t.equal(ro, 'ro');
});

t.test('root runs a SIF through a mount of its partition, released afterwards', async t => {
  const file = sif(k, image);
  const r = asRoot(['-v', 'run', file, 'a']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'root run: a\n');
  // A kernel loop mount when losetup is there, else squashfuse: either way a mount that must go away after.
  const where = /(?:kernel loop|squashfuse) mount \(read-only\) on (\S+)/.exec(r.stderr);
  t.ok(where, `the mount is reported: ${r.stderr}`);
  t.same(hostMountsContaining(` ${where![1]} `), [], 'that mount is gone from the host');
});

t.test("root's exec stays in the caller's cgroups: Singularity makes one only to apply resource limits", async t => {
  const r = asRoot(['exec', image, 'cat', '/proc/self/cgroup']);
  t.equal(r.code, 0, r.stderr);
  // The container shares the host's cgroup namespace here, so its paths read as the caller's do.
  t.equal(r.stdout, fs.readFileSync('/proc/self/cgroup', 'utf8'), "the test process's cgroup in every hierarchy");
});
