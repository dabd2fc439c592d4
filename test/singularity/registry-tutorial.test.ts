// The Singularity tutorials, walked as one user session would be (issue 16's tutorial scenario: the
// unprivileged test user, a fresh home, a registry on loopback): log in to the site registry (TLS with the
// site's CA, htpasswd), pull an image, look at it, run commands and its runscript, build on it from a def file
// without --fakeroot, sign it with a new PGP key and verify it, share it through the registry with oras and get
// it back byte for byte, read its help straight from the registry, run it as ./image.sif, keep it running as a
// quiet instance, see what the cache holds, log out.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SINGULARITY, kit, type Kit } from '../singularity-run-kit.js';
import {
  busyboxImages,
  gzipFile,
  Layout,
  makePki,
  privateDir,
  push,
  requireTools,
  runAsync,
  sha256,
  singAsync,
  startRegistry,
  tarLayer,
} from '../registry-kit.js';
import type { Result } from '../helpers.js';

const k: Kit = kit(t);
requireTools(t);
t.setTimeout(20 * 60_000);

const pki = makePki(privateDir(t, 'tsrt-pki-'));
const reg = await startRegistry(t, { tls: pki, htpasswd: { user: 'researcher', password: 'hpc-2026' } });
const images = busyboxImages(t);
const layout = new Layout(path.join(images.dir, 'layout'));
const cowsay = {
  content: '#!/bin/sh\nmsg="${*:-moo}"\necho " ${msg}"\necho "  \\\\   ^__^"\necho "   \\\\  (oo)\\\\_______"\n',
  mode: 0o755,
};
layout.tag(
  'latest',
  layout.image(
    {
      config: {
        Env: ['PATH=/usr/games:/usr/sbin:/usr/bin:/sbin:/bin', 'LC_ALL=C'],
        Entrypoint: ['/usr/games/cowsay'],
        Cmd: ['hello from the registry'],
        Labels: { maintainer: 'tsrt tests', 'org.opencontainers.image.title': 'lolcow' },
      },
    },
    [gzipFile(images.rootfsTar), tarLayer({ 'usr/games/cowsay': cowsay })],
  ),
);
await push(`oci:${layout.dir}:latest`, reg, 'tutorial/lolcow:latest', { tls: pki, creds: 'researcher:hpc-2026' });

const home = k.dir('tutorial-home-');
const work = k.dir('tutorial-work-');
const env = { HOME: home, SSL_CERT_FILE: pki.ca, SINGULARITY_CACHEDIR: path.join(home, '.singularity') };
const H = reg.host;
const step = (args: string[], input?: string): Promise<Result> => singAsync(k, args, { env, cwd: work, input });
/** A command other than tsrt-singularity, as the user in the session, with dist/ (run-singularity) on PATH. */
const shell = (command: string): Promise<Result> => {
  const vars = { ...env, PATH: `${path.dirname(SINGULARITY)}:/usr/bin:/bin`, USER: k.user.name, XDG_RUNTIME_DIR: k.runtime };
  return runAsync(
    'runuser',
    ['-u', k.user.name, '--', 'env', '-i', ...Object.entries(vars).map(([n, v]) => `${n}=${v}`), 'sh', '-c', command],
    { cwd: work },
  );
};

t.test('a session with the site registry', async t => {
  const login = await step(['registry', 'login', '--username', 'researcher', '--password-stdin', `docker://${H}`], 'hpc-2026\n');
  t.equal(login.code, 0, `registry login: ${login.stderr}`);

  const pull = await step(['pull', `docker://${H}/tutorial/lolcow:latest`]);
  t.equal(pull.code, 0, `pull: ${pull.stderr}`);
  t.ok(fs.existsSync(path.join(work, 'lolcow_latest.sif')), 'pull wrote lolcow_latest.sif');

  const labels = await step(['inspect', 'lolcow_latest.sif']);
  t.match(labels.stdout, /^maintainer: tsrt tests$/m, 'inspect shows the image labels');
  const runscript = await step(['inspect', '--runscript', 'lolcow_latest.sif']);
  t.match(runscript.stdout, /cowsay/, 'inspect --runscript shows the ENTRYPOINT');

  const exec = await step(['exec', 'lolcow_latest.sif', 'sh', '-c', 'echo "$LC_ALL"; cat /etc/os-release 2>/dev/null || echo busybox']);
  t.equal(exec.stdout, 'C\nbusybox\n', `exec: ${exec.stderr}`);
  const run = await step(['run', 'lolcow_latest.sif']);
  t.match(run.stdout, /^ hello from the registry\n {2}\\ {3}\^__\^/, 'run: ENTRYPOINT with the default CMD');
  const args = await step(['run', 'lolcow_latest.sif', 'HPC', 'is', 'fun']);
  t.match(args.stdout, /^ HPC is fun\n/, 'run ARGS: the arguments replace CMD');

  fs.writeFileSync(
    path.join(work, 'mycow.def'),
    `Bootstrap: docker\nFrom: ${H}/tutorial/lolcow:latest\n\n%labels\n    author researcher\n\n%help\n    A cow of my own: give it words.\n\n%runscript\n    exec cowsay "my own cow: $*"\n\n%startscript\n    exec sleep 300\n`,
  );
  const build = await step(['build', 'mycow.sif', 'mycow.def']);
  t.equal(build.code, 0, `build on the pulled image, as a user, without --fakeroot: ${build.stderr}`);
  t.notOk(build.stderr.includes('--fakeroot'), 'no --fakeroot asked for or suggested');
  t.match((await step(['run', 'mycow.sif', 'says hi'])).stdout, /^ my own cow: says hi\n/);

  // Answered as a user types them: name, email, comment, the passphrase twice; then the passphrase to sign.
  const key = await step(['key', 'newpair', '-b', '2048'], 'Researcher\nresearcher@example.org\ntutorial\nmoo-2026\nmoo-2026\n');
  t.equal(key.code, 0, `key newpair: ${key.stderr}`);
  const sign = await step(['sign', 'mycow.sif'], 'moo-2026\n');
  t.equal(sign.code, 0, `sign: ${sign.stderr}`);
  const verify = await step(['verify', 'mycow.sif']);
  t.equal(verify.code, 0, `verify: ${verify.stderr}`);
  t.match(verify.stderr + verify.stdout, /Researcher.*researcher@example\.org/s, 'verified with the new key');

  const shared = await step(['push', 'mycow.sif', `oras://${H}/researcher/mycow:v1`]);
  t.equal(shared.code, 0, `push with oras: ${shared.stderr}`);
  const back = await step(['pull', 'mycow-again.sif', `oras://${H}/researcher/mycow:v1`]);
  t.equal(back.code, 0, `pull it back: ${back.stderr}`);
  t.equal(sha256(path.join(work, 'mycow-again.sif')), sha256(path.join(work, 'mycow.sif')), 'byte-identical');
  t.match((await step(['run', 'mycow-again.sif', 'round trip'])).stdout, /^ my own cow: round trip\n/, 'and it runs');
  t.equal((await step(['verify', 'mycow-again.sif'])).code, 0, 'its signature came along');

  const help = await step(['run-help', `oras://${H}/researcher/mycow:v1`]);
  t.equal(help.stdout.trim(), 'A cow of my own: give it words.', `run-help on the registry's copy: ${help.stderr}`);
  const self = await shell('chmod +x mycow-again.sif && ./mycow-again.sif runs itself');
  t.match(self.stdout, /^ my own cow: runs itself\n/, `./mycow-again.sif: ${self.stderr}`);

  const started = await step(['instance', 'start', '-q', 'mycow-again.sif', 'tutorialcow']);
  t.equal(started.code, 0, started.stderr);
  t.equal(started.stderr, '', 'instance start -q says nothing');
  t.match((await step(['exec', 'instance://tutorialcow', 'cowsay', 'from the instance'])).stdout, /^ from the instance\n/);
  t.equal((await step(['instance', 'stop', 'tutorialcow'])).code, 0);

  const cache = await step(['cache', 'list']);
  t.match(
    cache.stdout,
    /^There are 2 container file\(s\) using .* and \d+ oci blob file\(s\) using .* of space\n/,
    'the cache holds the converted image and the oras pull',
  );

  const logout = await step(['registry', 'logout', `docker://${H}`]);
  t.equal(logout.code, 0, logout.stderr);
  const denied = await step(['pull', 'again.sif', `docker://${H}/tutorial/lolcow:latest`]);
  t.match(denied.stderr, /requires authentication/, 'logged out, the registry wants credentials again');
});
