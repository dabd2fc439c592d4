// Issue 13, adversarial testing of the native core: the sanitized variant of the real binaries
// (npm run build:sanitize, native/hardening.mk's TSRT_SANITIZE=1): the executor under ASan+UBSan, the helper and
// the addon under UBSan in trap mode. This file shows the variant is what it claims (the binaries dist/tsrt
// the core embeds, the sanitizers in them and active) and that a real container runs under it; .ci/run then runs the
// e2e and security suites against it with TSRT_DIST. With TSRT_DIST set (that CI phase) it checks that build;
// otherwise it builds one into a temp dir.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, makeBundle, tmpdir, uniqueId } from '../helpers.js';

t.setTimeout(15 * 60_000);

function sanitizedBuild(): string {
  if (process.env['TSRT_DIST']) return path.resolve(REPO, process.env['TSRT_DIST']);
  const out = path.join(tmpdir('tsrt-sanitized-'), 'dist');
  t.teardown(() => fs.rmSync(path.dirname(out), { recursive: true, force: true }));
  const r = spawnSync('bash', [path.join(REPO, 'hack/build-sanitize.sh'), out], {
    encoding: 'utf8',
    timeout: 10 * 60_000,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`npm run build:sanitize failed:\n${`${r.stdout}${r.stderr}`.slice(-3000)}`);
  return out;
}
const DIST = sanitizedBuild();
t.comment(`sanitized build: ${DIST}`);

/** How many ud2 (UBSan's trap in trap mode) a binary's code holds. */
function traps(file: string): number {
  const r = spawnSync('/usr/bin/objdump', ['-d', file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return r.stdout.split('\n').filter(l => /\tud2\b/.test(l)).length;
}

t.test('the core of the sanitized build embeds the sanitized executor and helper', async tt => {
  // dist/tsrt is the front door, which never clones a container; the core (its addon) carries the executor.
  const core = fs.readFileSync(path.join(DIST, 'tsrt-core'));
  for (const name of ['tsrt-executor', 'tsrt-init']) {
    tt.ok(core.indexOf(fs.readFileSync(path.join(DIST, name))) >= 0, `${name}'s bytes are in tsrt-core`);
  }
});

t.test('the sanitized executor is linked dynamically against libasan and libubsan, every symbol bound at load', async tt => {
  const exe = path.join(DIST, 'tsrt-executor');
  const d = spawnSync('/usr/bin/readelf', ['-W', '-d', exe], { encoding: 'utf8' }).stdout;
  tt.match(d, /NEEDED.*libasan\.so/, 'needs libasan');
  tt.match(d, /NEEDED.*libubsan\.so/, 'needs libubsan');
  tt.match(d, /FLAGS.*BIND_NOW|FLAGS_1.*NOW/, 'BIND_NOW (-z now)');
});

t.test('a planted heap over-read in the sanitized executor gets an ASan report and SIGABRT', async tt => {
  // The runtime starts the executor with an empty environment, so the self-test never runs in a container.
  const exe = path.join(DIST, 'tsrt-executor');
  const r = spawnSync(exe, [], { encoding: 'utf8', env: { TSRT_SANITIZE_SELFTEST: '1' }, timeout: 60_000 });
  tt.match(r.stderr, /ERROR: AddressSanitizer: heap-buffer-overflow/, `ASan reports the over-read\n${r.stderr.slice(0, 1500)}`);
  tt.match(r.stderr, /READ of size 1/, 'a one-byte read');
  tt.equal(r.signal, 'SIGABRT', 'abort_on_error ends it with SIGABRT');
  const clean = spawnSync(exe, [], { encoding: 'utf8', env: {}, timeout: 60_000 });
  tt.equal(clean.status, 126, 'without the variable it refuses as always (not started by the runtime)');
  tt.notMatch(clean.stderr, /Sanitizer/, 'and no report');
});

t.test("the helper and the addon carry UBSan's traps; the normal build has none in the helper", async tt => {
  const init = traps(path.join(DIST, 'tsrt-init'));
  tt.ok(init > 0, `sanitized tsrt-init: ${init} traps`);
  const normal = path.join(REPO, 'native/init/tsrt-init');
  if (fs.existsSync(normal)) tt.equal(traps(normal), 0, 'normal tsrt-init: no traps');
  const addon = traps(path.join(DIST, 'tsrt.node'));
  const normalAddon = path.join(REPO, 'build/Release/tsrt.node');
  if (fs.existsSync(normalAddon)) {
    const before = traps(normalAddon);
    tt.ok(addon > before, `sanitized addon: ${addon} traps, normal: ${before}`);
  } else tt.ok(addon > 0, `sanitized addon: ${addon} traps`);
});

t.test('a container runs under the sanitized build (create, start, exec, delete) with no sanitizer report', async tt => {
  const tsrt = path.join(DIST, 'tsrt');
  const root = tmpdir('tsrt-sanitized-root-');
  const id = uniqueId('sanitized');
  const bundle = makeBundle(['sleep', '30']);
  tt.teardown(() => {
    spawnSync(tsrt, ['--root', root, 'delete', '--force', id]);
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(path.dirname(bundle), { recursive: true, force: true });
  });
  const run = (args: string[]) => spawnSync(tsrt, ['--root', root, ...args], { encoding: 'utf8', timeout: 60_000 });
  const steps: [string, string[]][] = [
    ['create', ['create', '--bundle', bundle, id]],
    ['start', ['start', id]],
    ['exec', ['exec', id, 'echo', 'sanitized']],
    ['kill', ['kill', id, 'KILL']],
  ];
  for (const [name, args] of steps) {
    const r = run(args);
    tt.equal(r.status, 0, `${name} exits 0\n${r.stderr}`);
    tt.notMatch(r.stderr, /Sanitizer|runtime error/, `${name}: no sanitizer report`);
    if (name === 'exec') tt.equal(r.stdout.trim(), 'sanitized', 'exec ran the program');
  }
  let stopped = false;
  for (let i = 0; i < 100 && !stopped; i++) {
    stopped = /"status": *"stopped"/.test(run(['state', id]).stdout);
    if (!stopped) spawnSync('sleep', ['0.05']);
  }
  tt.ok(stopped, 'the container stops');
  tt.equal(run(['delete', id]).status, 0, 'delete exits 0');
});
