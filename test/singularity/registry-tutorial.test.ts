// The registry half of the Singularity tutorials, walked as one user session would be (the unprivileged test
// user, a fresh home): log in to the site registry (TLS with the site's CA, htpasswd), pull an image, look at
// it, run commands and its runscript, build on it, share a SIF through the registry with oras and get it back
// byte for byte, run that, see what the cache holds, log out.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kit, type Kit } from '../singularity-run-kit.js';
import { busyboxImages, gzipFile, Layout, makePki, privateDir, push, requireTools, sha256, singAsync, startRegistry, tarLayer } from '../registry-kit.js';
import type { Result } from '../helpers.js';

const k: Kit = kit(t);
requireTools(t);
t.setTimeout(20 * 60_000);

const pki = makePki(privateDir(t, 'tsrt-pki-'));
const reg = await startRegistry(t, { tls: pki, htpasswd: { user: 'researcher', password: 'hpc-2026' } });
const images = busyboxImages(t);
const layout = new Layout(path.join(images.dir, 'layout'));
const cowsay = { content: '#!/bin/sh\nmsg="${*:-moo}"\necho " ${msg}"\necho "  \\\\   ^__^"\necho "   \\\\  (oo)\\\\_______"\n', mode: 0o755 };
layout.tag('latest', layout.image({
  config: {
    Env: ['PATH=/usr/games:/usr/sbin:/usr/bin:/sbin:/bin', 'LC_ALL=C'], Entrypoint: ['/usr/games/cowsay'], Cmd: ['hello from the registry'],
    Labels: { maintainer: 'tsrt tests', 'org.opencontainers.image.title': 'lolcow' },
  },
}, [gzipFile(images.rootfsTar), tarLayer({ 'usr/games/cowsay': cowsay })]));
await push(`oci:${layout.dir}:latest`, reg, 'tutorial/lolcow:latest', { tls: pki, creds: 'researcher:hpc-2026' });

const home = k.dir('tutorial-home-');
const work = k.dir('tutorial-work-');
const env = { HOME: home, SSL_CERT_FILE: pki.ca, SINGULARITY_CACHEDIR: path.join(home, '.singularity') };
const H = reg.host;
const step = (args: string[], input?: string): Promise<Result> => singAsync(k, args, { env, cwd: work, input });

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

  fs.writeFileSync(path.join(work, 'mycow.def'), `Bootstrap: docker\nFrom: ${H}/tutorial/lolcow:latest\n\n%labels\n    author researcher\n\n%runscript\n    exec cowsay "my own cow: $*"\n`);
  const build = await step(['build', 'mycow.sif', 'mycow.def']);
  t.equal(build.code, 0, `build on the pulled image: ${build.stderr}`);
  t.match((await step(['run', 'mycow.sif', 'says hi'])).stdout, /^ my own cow: says hi\n/);

  const shared = await step(['push', 'mycow.sif', `oras://${H}/researcher/mycow:v1`]);
  t.equal(shared.code, 0, `push with oras: ${shared.stderr}`);
  const back = await step(['pull', 'mycow-again.sif', `oras://${H}/researcher/mycow:v1`]);
  t.equal(back.code, 0, `pull it back: ${back.stderr}`);
  t.equal(sha256(path.join(work, 'mycow-again.sif')), sha256(path.join(work, 'mycow.sif')), 'byte-identical');
  t.match((await step(['run', 'mycow-again.sif', 'round trip'])).stdout, /^ my own cow: round trip\n/, 'and it runs');

  const cache = await step(['cache', 'list']);
  t.match(cache.stdout, /^There are 2 container file\(s\) using .* and \d+ oci blob file\(s\) using .* of space\n/, 'the cache holds the converted image and the oras pull');

  const logout = await step(['registry', 'logout', `docker://${H}`]);
  t.equal(logout.code, 0, logout.stderr);
  const denied = await step(['pull', 'again.sif', `docker://${H}/tutorial/lolcow:latest`]);
  t.match(denied.stderr, /requires authentication/, 'logged out, the registry wants credentials again');
});
