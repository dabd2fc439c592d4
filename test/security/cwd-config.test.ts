// The working directory is not configuration. Bun's single executables read bunfig.toml and .env from the
// directory they are started in unless built not to: a bunfig.toml `preload` ran its script inside tsrt (as
// root, before any of tsrt's code), and a .env set the runtime's environment. The cwd of a runtime is whatever
// the engine, the user's shell or a Slurm job left it: a directory another user may write (a bundle, a home,
// /tmp). Both are now off at build time (hack/build.sh), which also spares every command the scan of the cwd
// and its parents that the .env lookup made (one getdents per 190 names of /tmp).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { DIST, TSRT, e2eFile, tmpdir } from '../helpers.js';

const { ROOT, scope } = e2eFile(t, { name: 'cwdcfg', idPrefix: 'cwdenv', needsRoot: 'create needs root here' });

const CORE = path.join(DIST, 'tsrt-core');
const SINGULARITY = path.join(DIST, 'tsrt-singularity');

/** A directory holding a bunfig.toml whose preload leaves `marker`, and a .env with `env` in it. */
function hostileCwd(tt: { teardown(fn: () => void): void }, env: string): { dir: string; marker: string } {
  const dir = tmpdir('tsrt-cwd-');
  tt.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const marker = path.join(dir, 'preloaded');
  fs.writeFileSync(path.join(dir, 'bunfig.toml'), 'preload = ["./preload.js"]\n');
  fs.writeFileSync(path.join(dir, 'preload.js'), `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "ran\\n");\n`);
  fs.writeFileSync(path.join(dir, '.env'), `${env}\n`);
  return { dir, marker };
}

for (const [name, argv] of [
  ['tsrt-core --version', [CORE, '--version']],
  ['tsrt create (handed to the core)', [TSRT, 'create', '--bundle', '/nonexistent-tsrt-bundle', 'tsrt-cwd-none']],
  ['tsrt-singularity --version', [SINGULARITY, '--version']],
] as const) {
  t.test(`${name}: a bunfig.toml preload in the cwd is not run`, async tt => {
    const { dir, marker } = hostileCwd(tt, 'TSRT_CWD_PROBE=1');
    const r = spawnSync(argv[0], argv.slice(1), { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    tt.not(r.status, null, `${name} ran to its end (${r.stderr.trim().slice(-200)})`);
    tt.notOk(fs.existsSync(marker), "the preload script in the cwd's bunfig.toml did not run");
  });
}

t.test('tsrt create: a .env in the cwd does not set the runtime environment', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['true']);
  // The test's own crash hook: were the .env read, create would SIGKILL itself once the state dir is made.
  const { dir } = hostileCwd(tt, 'TSRT_TEST_CRASH_AT=dir-made');
  const id = s.id();
  // The created init keeps the stdio it was given until start: files, so that nothing waits for it to close a pipe.
  const err = path.join(s.dir(), 'stderr');
  const fd = fs.openSync(err, 'w');
  const r = spawnSync(TSRT, ['--root', ROOT, 'create', '--bundle', bundle, id], { cwd: dir, stdio: ['ignore', fd, fd], timeout: 60_000 });
  fs.closeSync(fd);
  tt.equal(r.signal, null, 'create was not killed by a crash point set in the .env');
  tt.equal(r.status, 0, `create succeeded (${fs.readFileSync(err, 'utf8').trim()})`);
});

t.test('no command opens bunfig.toml or .env (strace)', async tt => {
  if (spawnSync('strace', ['-V']).status !== 0) {
    tt.fail('strace is missing (hack/deps.sh installs it)');
    return;
  }
  const { dir } = hostileCwd(tt, 'TSRT_CWD_PROBE=1');
  for (const argv of [
    [CORE, '--version'],
    [SINGULARITY, '--version'],
  ]) {
    const out = path.join(dir, 'trace');
    spawnSync('strace', ['-f', '-e', 'trace=open,openat,openat2', '-o', out, ...argv], { cwd: dir, timeout: 60_000 });
    const opened = fs
      .readFileSync(out, 'utf8')
      .split('\n')
      .filter(l => /"(?:[^"]*\/)?(?:bunfig\.toml|\.env)"/.test(l));
    tt.same(opened, [], `${path.basename(argv[0]!)} opens neither bunfig.toml nor .env`);
  }
});
