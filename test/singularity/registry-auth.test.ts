// docker:// and oras:// against registries that want TLS and credentials, as the unprivileged test user: one
// docker-registry with TLS (a CA made here with openssl) and htpasswd (Basic) auth, one with TLS and token auth
// (distribution 2.8 checks tokens but does not issue them: the token service runs in this test). Credentials come
// from SINGULARITY_/APPTAINER_DOCKER_USERNAME/_PASSWORD, --docker-login, `registry login` (stored as Singularity
// stores them), and the user's Docker config.json.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kit, type Kit } from '../singularity-run-kit.js';
import {
  busyboxImages,
  makePki,
  privateDir,
  push,
  requireTools,
  sha256,
  singAsync,
  startRegistry,
  startTokenService,
} from '../registry-kit.js';

const k: Kit = kit(t);
requireTools(t);
t.setTimeout(20 * 60_000);

const USER = 'alice';
const PASSWORD = 's3cret:with colon';
const pki = makePki(privateDir(t, 'tsrt-pki-'));
const basicReg = await startRegistry(t, { tls: pki, htpasswd: { user: USER, password: PASSWORD } });
const tokens = await startTokenService(t, pki, { [USER]: PASSWORD });
const tokenReg = await startRegistry(t, { tls: pki, token: tokens });
const images = busyboxImages(t);
const creds = `${USER}:${PASSWORD}`;
await push(`oci-archive:${images.ociArchive}`, basicReg, 'tsrt/busybox:1', { tls: pki, creds });
await push(`oci-archive:${images.ociArchive}`, tokenReg, 'tsrt/busybox:1', { tls: pki, creds });

/** The CA is trusted the way OpenSSL and Go let a user add one: SSL_CERT_FILE. */
const TRUST = { SSL_CERT_FILE: pki.ca };
const ENV_CREDS = { SINGULARITY_DOCKER_USERNAME: USER, SINGULARITY_DOCKER_PASSWORD: PASSWORD };

/** A home of its own (credentials files live there) and a cache of its own. */
function fresh(): { HOME: string; SINGULARITY_CACHEDIR: string } {
  return { HOME: k.dir('reghome-'), SINGULARITY_CACHEDIR: k.dir('regcache-') };
}

const image = (reg: { host: string }) => `docker://${reg.host}/tsrt/busybox:1`;

t.test('TLS: a certificate from an unknown CA is refused by name; trusted through SSL_CERT_FILE or SSL_CERT_DIR it works', async t => {
  const env = { ...fresh(), ...ENV_CREDS };
  const untrusted = await singAsync(k, ['exec', image(basicReg), 'true'], { env });
  t.equal(untrusted.code, 255);
  t.match(
    untrusted.stderr,
    /FATAL: {3}the TLS certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted \([A-Z_]+\): install its CA in the system certificate store, or point SSL_CERT_FILE at a bundle holding it/,
  );
  const byFile = await singAsync(k, ['exec', image(basicReg), 'busybox', 'echo', 'trusted'], { env: { ...env, ...TRUST } });
  t.equal(byFile.stdout, 'trusted\n', byFile.stderr);
  const byDir = await singAsync(k, ['exec', image(basicReg), 'busybox', 'echo', 'trusted'], { env: { ...env, SSL_CERT_DIR: pki.certDir } });
  t.equal(byDir.stdout, 'trusted\n', `SSL_CERT_DIR adds to the system store: ${byDir.stderr}`);
});

for (const [kind, reg] of [
  ['Basic (htpasswd)', basicReg],
  ['Bearer token', tokenReg],
] as const) {
  t.test(`${kind}: no credentials, wrong ones, and SINGULARITY_/APPTAINER_DOCKER_USERNAME and _PASSWORD`, async t => {
    const none = await singAsync(k, ['exec', image(reg), 'true'], { env: { ...fresh(), ...TRUST } });
    t.equal(none.code, 255);
    t.match(
      none.stderr,
      /FATAL: {3}127\.0\.0\.1:\d+ requires authentication: log in with `singularity registry login`, or give --docker-login, or SINGULARITY_DOCKER_USERNAME and SINGULARITY_DOCKER_PASSWORD/,
    );
    const wrong = await singAsync(k, ['exec', image(reg), 'true'], {
      env: { ...fresh(), ...TRUST, SINGULARITY_DOCKER_USERNAME: USER, SINGULARITY_DOCKER_PASSWORD: 'nope' },
    });
    t.equal(wrong.code, 255);
    t.match(
      wrong.stderr,
      reg === basicReg
        ? /FATAL: {3}127\.0\.0\.1:\d+ refused the credentials of "alice"/
        : /FATAL: {3}the token service of 127\.0\.0\.1:\d+ \(https:\/\/127\.0\.0\.1:\d+\) refused the credentials of "alice" \(HTTP 401\)/,
    );
    const right = await singAsync(k, ['exec', image(reg), 'busybox', 'echo', 'in'], { env: { ...fresh(), ...TRUST, ...ENV_CREDS } });
    t.equal(right.stdout, 'in\n', right.stderr);
    const apptainer = await singAsync(k, ['exec', image(reg), 'busybox', 'echo', 'in'], {
      env: {
        ...fresh(),
        ...TRUST,
        APPTAINER_DOCKER_USERNAME: USER,
        APPTAINER_DOCKER_PASSWORD: PASSWORD,
        SINGULARITY_DOCKER_PASSWORD: 'ignored',
      },
    });
    t.equal(apptainer.stdout, 'in\n', `APPTAINER_ names win over SINGULARITY_ ones: ${apptainer.stderr}`);
  });

  t.test(`${kind}: --docker-login asks for the username and password`, async t => {
    const r = await singAsync(k, ['pull', '--docker-login', 'asked.sif', image(reg)], {
      env: { ...fresh(), ...TRUST },
      cwd: k.dir(),
      input: `${USER}\n${PASSWORD}\n`,
    });
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, /Enter Docker Username: Enter Docker Password: /);
  });

  t.test(`${kind}: registry login stores the credentials as Singularity does, registry logout removes them`, async t => {
    const env = { ...fresh(), ...TRUST };
    const bad = await singAsync(k, ['registry', 'login', '--username', USER, '--password-stdin', `docker://${reg.host}`], {
      env,
      input: 'wrong\n',
    });
    t.equal(bad.code, 255, 'a wrong password is refused at login');
    const file = path.join(env.HOME, '.singularity', 'docker-config.json');
    t.notOk(fs.existsSync(file), 'and nothing is stored');
    const login = await singAsync(k, ['registry', 'login', '-u', USER, '--password-stdin', `oras://${reg.host}`], {
      env,
      input: `${PASSWORD}\n`,
    });
    t.equal(login.code, 0, login.stderr);
    t.match(login.stderr, new RegExp(`INFO: {4}Token stored in ${file}`));
    const st = fs.statSync(file);
    t.equal(st.mode & 0o777, 0o600, 'the file is private');
    t.equal(st.uid, k.user.uid);
    t.same(
      JSON.parse(fs.readFileSync(file, 'utf8')).auths[reg.host],
      { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') },
      'Docker config.json format',
    );
    const listed = await singAsync(k, ['registry', 'list'], { env });
    t.equal(listed.stdout, `REGISTRY\n${reg.host}\n`);
    const pulled = await singAsync(k, ['exec', image(reg), 'busybox', 'echo', 'logged in'], { env });
    t.equal(pulled.stdout, 'logged in\n', pulled.stderr);
    const logout = await singAsync(k, ['registry', 'logout', `docker://${reg.host}`], { env });
    t.equal(logout.code, 0, logout.stderr);
    t.match(logout.stderr, /Token removed from .*docker-config\.json\nINFO: {4}Logout succeeded/);
    const after = await singAsync(k, ['exec', image(reg), 'true'], { env: { ...env, SINGULARITY_CACHEDIR: k.dir('regcache-') } });
    t.match(after.stderr, /requires authentication/, 'logged out: no credentials any more');
    const again = await singAsync(k, ['registry', 'logout', `docker://${reg.host}`], { env });
    t.match(again.stderr, /WARNING: There is no existing login to registry "127\.0\.0\.1:\d+"\./);
  });

  t.test(`${kind}: the user's Docker config.json (as docker login writes it)`, async t => {
    const env = { ...fresh(), ...TRUST };
    fs.mkdirSync(path.join(env.HOME, '.docker'));
    fs.writeFileSync(
      path.join(env.HOME, '.docker', 'config.json'),
      JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(creds).toString('base64') } } }),
    );
    const r = await singAsync(k, ['exec', image(reg), 'busybox', 'echo', 'docker config'], { env });
    t.equal(r.stdout, 'docker config\n', r.stderr);
    const authfile = path.join(k.dir(), 'auth.json');
    fs.renameSync(path.join(env.HOME, '.docker', 'config.json'), authfile);
    fs.chownSync(authfile, k.user.uid, k.user.gid);
    const byFlag = await singAsync(k, ['exec', '--authfile', authfile, image(reg), 'busybox', 'echo', 'authfile'], {
      env: { ...env, SINGULARITY_CACHEDIR: k.dir('regcache-') },
    });
    t.equal(byFlag.stdout, 'authfile\n', `--authfile names the file: ${byFlag.stderr}`);
  });

  t.test(`${kind}: push and pull oras:// with credentials`, async t => {
    const env = { ...fresh(), ...TRUST, ...ENV_CREDS };
    const cwd = k.dir();
    t.equal((await singAsync(k, ['pull', 'local.sif', image(reg)], { env, cwd })).code, 0);
    const pushed = await singAsync(k, ['push', 'local.sif', `oras://${reg.host}/tsrt/sif:1`], { env, cwd });
    t.equal(pushed.code, 0, pushed.stderr);
    const back = await singAsync(k, ['pull', 'back.sif', `oras://${reg.host}/tsrt/sif:1`], { env, cwd });
    t.equal(back.code, 0, back.stderr);
    t.equal(sha256(path.join(cwd, 'back.sif')), sha256(path.join(cwd, 'local.sif')), 'byte-identical');
  });
}

t.test("the token service was asked for the repository scopes, for the registry's service, as the user", async t => {
  const scopes = new Set(tokens.requests.filter(r => r.user === USER).flatMap(r => r.scopes));
  t.ok(scopes.has('repository:tsrt/busybox:pull'), 'pull scope for a pull');
  t.ok(scopes.has('repository:tsrt/sif:pull,push'), 'pull,push scope for a push');
  t.ok(
    tokens.requests.every(r => r.service === tokens.service),
    `service=${tokens.service} on every request`,
  );
  t.ok(
    tokens.requests.some(r => r.user === undefined),
    'anonymous requests were refused (the no-credentials test)',
  );
});
