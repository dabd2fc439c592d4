// Runnable images: every SIF starts with "#!/usr/bin/env run-singularity", and dist/run-singularity (installed
// beside tsrt-singularity) runs the image's runscript with the arguments, so `./image.sif args` and an image
// copied onto $PATH under another name work as programs. Run as the unprivileged test user; what the runscript
// prints comes from inside the container.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { REPO } from '../helpers.js';
import { kit, sandbox, sif } from '../singularity-run-kit.js';
import { SifImage } from '../../src/sif/index.js';

const k = kit(t);
const DIST = path.join(REPO, 'dist');
const image = sif(k, sandbox(k, { runscript: 'echo "uid=$(id -u) name=$SINGULARITY_NAME args=$# [$1] [$2]"\nexit "${EXIT_WITH:-0}"' }));

/** Runs argv as the test user in cwd with a clean environment whose PATH is `pathDirs` plus the system's. */
function asUser(argv: string[], cwd: string, pathDirs: string[], extra: Record<string, string> = {}) {
  const env = {
    PATH: [...pathDirs, '/usr/bin', '/bin'].join(':'),
    HOME: k.home,
    USER: k.user.name,
    XDG_RUNTIME_DIR: k.runtime,
    SINGULARITY_CACHEDIR: path.join(k.runtime, 'cache'),
    ...extra,
  };
  const r = spawnSync('runuser', ['-u', k.user.name, '--', 'env', '-i', ...Object.entries(env).map(([n, v]) => `${n}=${v}`), ...argv], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('a SIF starts with the run-singularity launch line, and run-singularity is built beside tsrt-singularity', async t => {
  const img = SifImage.open(image);
  t.equal(img.header.launchScript, '#!/usr/bin/env run-singularity\n');
  img.close();
  t.equal(fs.readFileSync(image, 'latin1').slice(0, 31), '#!/usr/bin/env run-singularity\n', 'the first bytes of the file');
  t.ok(fs.statSync(path.join(DIST, 'run-singularity')).mode & 0o111, 'dist/run-singularity is executable');
});

t.test("./image.sif ARGS runs the runscript with those arguments, and its exit status is the program's", async t => {
  const r = asUser(['./image.sif', 'one', 'two words'], path.dirname(image), [DIST]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `uid=${k.user.uid} name=image.sif args=2 [one] [two words]\n`);
  const failing = asUser(['./image.sif'], path.dirname(image), [DIST], { SINGULARITYENV_EXIT_WITH: '7' });
  t.equal(failing.code, 7, "the runscript's exit status");
});

t.test('an image copied onto $PATH under another name runs as that command', async t => {
  const bin = k.dir('singrun-bin-');
  fs.copyFileSync(image, path.join(bin, 'greet'));
  fs.chmodSync(path.join(bin, 'greet'), 0o755);
  fs.chownSync(path.join(bin, 'greet'), k.user.uid, k.user.gid);
  const r = asUser(['greet', 'hello'], k.home, [bin, DIST]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `uid=${k.user.uid} name=greet args=1 [hello] []\n`);
});

t.test('run-singularity linked into a bin directory (as npm links it) finds the tsrt-singularity beside its target', async t => {
  const bin = k.dir('singrun-links-');
  fs.symlinkSync(path.join(DIST, 'run-singularity'), path.join(bin, 'run-singularity'));
  const r = asUser(['./image.sif', 'linked'], path.dirname(image), [bin]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `uid=${k.user.uid} name=image.sif args=1 [linked] []\n`);
});

t.test('without run-singularity on $PATH the image is not runnable: env says what is missing', async t => {
  const r = asUser(['./image.sif'], path.dirname(image), []);
  t.equal(r.code, 127);
  t.match(r.stderr, /run-singularity/);
});
