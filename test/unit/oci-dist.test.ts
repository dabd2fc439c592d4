// The pure parts of the OCI distribution client (src/oci-dist): image references as Docker writes them, auth
// challenges, platform choice in an index, credentials files in Docker's format, Singularity's size wording.
// The protocol itself is exercised against real registries in test/singularity/registry-*.test.ts.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseChallenge } from '../../src/oci-dist/auth.js';
import { choosePlatform, parsePlatform, type Descriptor } from '../../src/oci-dist/client.js';
import { findCredentials, listCredentials, removeCredentials, storeCredentials } from '../../src/oci-dist/credentials.js';
import { formatSize } from '../../src/oci-dist/progress.js';
import { systemCertificates } from '../../src/oci-dist/transport.js';
import { parseReference } from '../../src/oci-dist/reference.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

t.test('references: Docker Hub names get docker.io and library/, a tag defaults to latest', async t => {
  t.same(parseReference('alpine'), { registry: 'docker.io', repository: 'library/alpine', tag: 'latest', digest: undefined });
  t.same(parseReference('user/app:1.2'), { registry: 'docker.io', repository: 'user/app', tag: '1.2', digest: undefined });
  t.same(parseReference('index.docker.io/user/app'), { registry: 'docker.io', repository: 'user/app', tag: 'latest', digest: undefined });
});

t.test('references: a first component with a dot, a port or localhost is the registry', async t => {
  t.same(parseReference('127.0.0.1:5000/tsrt/busybox:1'), {
    registry: '127.0.0.1:5000',
    repository: 'tsrt/busybox',
    tag: '1',
    digest: undefined,
  });
  t.same(parseReference('localhost/x'), { registry: 'localhost', repository: 'x', tag: 'latest', digest: undefined });
  t.same(parseReference('ghcr.io/o/r'), { registry: 'ghcr.io', repository: 'o/r', tag: 'latest', digest: undefined });
});

t.test('references: a digest pins the image (no default tag), a tag and a digest may come together', async t => {
  t.same(parseReference(`r.io/a@${DIGEST}`), { registry: 'r.io', repository: 'a', tag: undefined, digest: DIGEST });
  t.same(parseReference(`r.io/a:v1@${DIGEST}`), { registry: 'r.io', repository: 'a', tag: 'v1', digest: DIGEST });
});

t.test('references: invalid names are refused naming the part that is wrong', async t => {
  t.throws(() => parseReference('Upper/Case'), /repository name must be lower-case/);
  t.throws(() => parseReference('r.io/a@sha256:xyz'), /is not a digest/);
  t.throws(() => parseReference('r.io/a:bad tag'), /invalid tag/);
});

t.test('WWW-Authenticate: Bearer with quoted parameters, Basic with a realm', async t => {
  t.same(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
  });
  t.same(parseChallenge('Basic realm="tsrt \\"test\\""'), { scheme: 'basic', params: { realm: 'tsrt "test"' } });
  t.same(parseChallenge('Bearer realm=https://a/t,service=s'), { scheme: 'bearer', params: { realm: 'https://a/t', service: 's' } });
});

t.test('platforms: --arch forms, and the index entry chosen for them', async t => {
  t.same(parsePlatform('arm64'), { os: 'linux', architecture: 'arm64' });
  t.same(parsePlatform('arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.same(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  t.throws(() => parsePlatform('a/b/c/d'), /invalid platform/);
  const entry = (architecture: string, variant?: string): Descriptor => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: DIGEST,
    size: 1,
    platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) },
  });
  const index = [entry('amd64'), entry('arm', 'v6'), entry('arm', 'v7'), entry('arm64')];
  t.equal(choosePlatform(index, { os: 'linux', architecture: 'amd64' }), index[0]);
  t.equal(choosePlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' }), index[2]);
  t.equal(choosePlatform(index, { os: 'linux', architecture: 'arm64', variant: 'v8' }), index[3], 'arm64 without a variant is v8');
  t.equal(choosePlatform(index, { os: 'linux', architecture: 's390x' }), undefined);
});

t.test('credentials: stored in Docker config.json format (private), found by host, removed', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-creds-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'sub', 'docker-config.json');
  storeCredentials(file, '127.0.0.1:5000', { username: 'alice', password: 'p:w' });
  storeCredentials(file, 'docker.io', { username: 'bob', password: 'x' });
  t.equal(fs.statSync(file).mode & 0o777, 0o600, 'readable by its owner only');
  const stored = JSON.parse(fs.readFileSync(file, 'utf8'));
  t.same(stored.auths['127.0.0.1:5000'], { auth: Buffer.from('alice:p:w').toString('base64') });
  t.ok(stored.auths['https://index.docker.io/v1/'], 'Docker Hub under its historical key');
  t.same(findCredentials([file], '127.0.0.1:5000')?.credentials, { username: 'alice', password: 'p:w' }, 'a password may hold colons');
  t.same(findCredentials([file], 'docker.io')?.credentials, { username: 'bob', password: 'x' });
  t.same(listCredentials(file).sort(), ['127.0.0.1:5000', 'docker.io']);
  t.equal(removeCredentials(file, '127.0.0.1:5000'), true);
  t.equal(removeCredentials(file, '127.0.0.1:5000'), false, 'nothing left to remove');
  t.equal(findCredentials([file], '127.0.0.1:5000'), undefined);
  const docker = path.join(dir, 'config.json');
  fs.writeFileSync(docker, JSON.stringify({ auths: { 'https://reg.example:8443/v2/': { username: 'carol', password: 'y' } } }));
  t.same(
    findCredentials([path.join(dir, 'missing.json'), docker], 'reg.example:8443'),
    { credentials: { username: 'carol', password: 'y' }, file: docker },
    'keys with a scheme and a path match their host; a missing file is skipped',
  );
  fs.writeFileSync(docker, '{ not json');
  t.throws(() => findCredentials([docker], 'x.io'), /credentials file .* is not valid/);
});

t.test("TLS trusts the system store (the distribution's bundle), SSL_CERT_FILE instead when set, plus SSL_CERT_DIR", async t => {
  const bundle = '/etc/ssl/certs/ca-certificates.crt';
  const count = (file: string) => (fs.readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;
  if (!fs.existsSync(bundle)) {
    t.pass(`no ${bundle} on this host (ca-certificates not installed): the default store is not checked`);
  } else {
    t.equal(systemCertificates({}).length, count(bundle), `every certificate of ${bundle}`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-certs-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pem = (n: string) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(n).toString('base64')}\n-----END CERTIFICATE-----\n`;
  fs.writeFileSync(path.join(dir, 'site.pem'), pem('one') + pem('two'));
  fs.mkdirSync(path.join(dir, 'extra'));
  fs.writeFileSync(path.join(dir, 'extra', 'ca.crt'), pem('three'));
  t.same(
    systemCertificates({ SSL_CERT_FILE: path.join(dir, 'site.pem') }),
    [pem('one').trim(), pem('two').trim()],
    'SSL_CERT_FILE replaces the bundle',
  );
  t.equal(
    systemCertificates({ SSL_CERT_DIR: path.join(dir, 'extra') }).length,
    fs.existsSync(bundle) ? count(bundle) + 1 : 1,
    'SSL_CERT_DIR adds to it',
  );
});

t.test('sizes read as Singularity prints them', async t => {
  t.equal(formatSize(289), '0.28 KiB');
  t.equal(formatSize(1035817), '1011.54 KiB');
  t.equal(formatSize(3 * 1024 * 1024), '3.00 MiB');
  t.equal(formatSize(5 * 1024 ** 3), '5.00 GiB');
});
