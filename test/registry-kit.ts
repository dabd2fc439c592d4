// What the test/singularity/registry-*.test.ts files share: Debian's docker-registry (distribution 2.8) started on
// 127.0.0.1 on a free port with a private config and storage directory and stopped by pid; a CA, server
// certificates and htpasswd files made with openssl and htpasswd; a token service (distribution 2.8 only checks
// tokens, it does not issue them) and a forwarding proxy that can cut or hold blob downloads, both served from
// the test process; OCI image layouts assembled from the busybox rootfs of hack/engines/image.sh and pushed with
// skopeo; and tsrt-singularity run as the test user without blocking those servers.
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Kit, SingOptions } from './singularity-run-kit.js';
import { REPO, type Result } from './helpers.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
export const SKOPEO = '/usr/bin/skopeo';
const OPENSSL = '/usr/bin/openssl';
const HTPASSWD = '/usr/bin/htpasswd';

/** Skips the file (plan 0, saying why) when a tool hack/deps.sh installs is missing. */
export function requireTools(t: { plan(n: number, why: string): void }): void {
  const missing = [REGISTRY_BIN, SKOPEO, OPENSSL, HTPASSWD, '/usr/bin/script'].filter(f => !fs.existsSync(f));
  if (missing.length) {
    t.plan(0, `needs ${missing.join(', ')} (bash hack/deps.sh installs docker-registry, skopeo, apache2-utils, bsdutils)`);
    process.exit(0);
  }
}

/** A private (0700) scratch directory, removed at teardown. */
export function privateDir(t: { teardown(fn: () => void): void }, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function checked(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd, input: opts.input, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** Runs a program without blocking the event loop (the servers below live in this process). */
export function runAsync(
  file: string,
  argv: string[],
  opts: { cwd?: string; input?: string; timeout?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Result> {
  return new Promise(resolve => {
    const child = spawn(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', d => out.push(d));
    child.stderr.on('data', d => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? 300_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal: signal ?? null, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    // A program that exits without reading its input closes the pipe first: its status tells what happened.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** tsrt-singularity as the test user, without blocking this process's servers. */
export function singAsync(k: Kit, args: string[], o: SingOptions = {}): Promise<Result> {
  const c = k.command(args, o);
  return runAsync(c.file, c.argv, { cwd: c.cwd, input: c.input, timeout: c.timeout });
}

/** A port on 127.0.0.1 nobody listens on right now. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

export interface Pki {
  dir: string;
  /** The CA certificate (PEM file): what clients must trust. */
  ca: string;
  cert: string;
  key: string;
  /** A directory holding ca.crt, as skopeo's --dest-cert-dir takes it. */
  certDir: string;
}

/** A CA and a certificate for 127.0.0.1 signed by it. */
export function makePki(dir: string): Pki {
  const f = (n: string) => path.join(dir, n);
  checked(OPENSSL, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=tsrt test CA',
  ]);
  checked(OPENSSL, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  checked(OPENSSL, [
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('server.crt'),
    '-days',
    '2',
    '-extfile',
    f('server.ext'),
  ]);
  fs.mkdirSync(f('certs.d'));
  fs.copyFileSync(f('ca.crt'), path.join(f('certs.d'), 'ca.crt'));
  fs.chmodSync(dir, 0o755);
  for (const n of ['ca.crt', 'server.crt']) fs.chmodSync(f(n), 0o644);
  return { dir, ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key'), certDir: f('certs.d') };
}

export interface RegistryServer {
  /** 127.0.0.1:PORT, as image references name it. */
  host: string;
  storage: string;
  log: string;
  pid: number;
}

export interface RegistryConfig {
  tls?: Pki;
  htpasswd?: { user: string; password: string };
  token?: { realm: string; service: string; issuer: string; rootCert: string };
}

/** GET /v2/ answered at all (200 or 401): the registry is up. */
async function answers(host: string, tls: Pki | undefined): Promise<boolean> {
  return new Promise(resolve => {
    const url = `${tls ? 'https' : 'http'}://${host}/v2/`;
    const req = (tls ? https : http).get(url, tls ? { ca: fs.readFileSync(tls.ca) } : {}, res => {
      res.resume();
      resolve(res.statusCode === 200 || res.statusCode === 401);
    });
    req.on('error', () => resolve(false));
    req.setTimeout(2000, () => req.destroy());
  });
}

/** Starts docker-registry with its own config and storage; it is stopped (by pid) and removed at teardown. */
export async function startRegistry(
  t: { teardown(fn: () => void | Promise<void>): void },
  config: RegistryConfig = {},
): Promise<RegistryServer> {
  const dir = privateDir(t, 'tsrt-registry-');
  const storage = path.join(dir, 'storage');
  fs.mkdirSync(storage);
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
  ];
  if (config.htpasswd) {
    const file = path.join(dir, 'htpasswd');
    fs.writeFileSync(file, checked(HTPASSWD, ['-Bbn', config.htpasswd.user, config.htpasswd.password]));
    lines.push('auth:', '  htpasswd:', '    realm: tsrt-test', `    path: ${file}`);
  } else if (config.token) {
    const k = config.token;
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${k.realm}`,
      `    service: ${k.service}`,
      `    issuer: ${k.issuer}`,
      `    rootcertbundle: ${k.rootCert}`,
    );
  }
  const log = path.join(dir, 'registry.log');
  // A port found free can be taken before the registry binds it: try another then.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const http_ = ['http:', `  addr: ${host}`, `  secret: ${crypto.randomBytes(16).toString('hex')}`];
    if (config.tls) http_.push('  tls:', `    certificate: ${config.tls.cert}`, `    key: ${config.tls.key}`);
    const file = path.join(dir, 'config.yml');
    fs.writeFileSync(file, `${[...lines, ...http_].join('\n')}\n`);
    const out = fs.openSync(log, 'a');
    const child = spawn(REGISTRY_BIN, ['serve', file], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    let exited = false;
    child.on('exit', () => {
      exited = true;
    });
    const pid = child.pid!;
    const stop = async (): Promise<void> => {
      if (exited) return;
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100 && !exited; i++) await sleep(50);
      if (!exited) process.kill(pid, 'SIGKILL');
    };
    let up = false;
    for (let i = 0; i < 200 && !exited && !up; i++) {
      up = await answers(host, config.tls);
      if (!up) await sleep(50);
    }
    if (up) {
      t.teardown(stop);
      return { host, storage, log, pid };
    }
    await stop();
  }
  throw new Error(`docker-registry did not start: ${fs.readFileSync(log, 'utf8').slice(-2000)}`);
}

/** Where distribution's filesystem driver keeps a blob's bytes. */
export function storedBlob(reg: RegistryServer, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return path.join(reg.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

export interface Access {
  tls?: Pki;
  creds?: string;
}

function skopeoArgs(prefix: 'src' | 'dest', a: Access): string[] {
  const args = a.tls ? [`--${prefix}-cert-dir`, a.tls.certDir] : [`--${prefix}-tls-verify=false`];
  if (a.creds) args.push(`--${prefix}-creds`, a.creds);
  return args;
}

/** skopeo copy SRC docker://HOST/REPO (async: a token service of this process may have to answer). */
export async function push(src: string, reg: RegistryServer, repo: string, a: Access = {}, extra: string[] = []): Promise<void> {
  const r = await runAsync(SKOPEO, ['copy', '--quiet', ...extra, ...skopeoArgs('dest', a), src, `docker://${reg.host}/${repo}`]);
  if (r.code !== 0) throw new Error(`skopeo copy ${src} ${repo} failed: ${r.stderr}`);
}

/** The manifest the registry serves for REPO:REF, as stored (skopeo inspect --raw). */
export async function rawManifest(reg: RegistryServer, repo: string, a: Access = {}): Promise<any> {
  const tls = a.tls ? ['--cert-dir', a.tls.certDir] : ['--tls-verify=false'];
  const r = await runAsync(SKOPEO, ['inspect', '--raw', ...tls, ...(a.creds ? ['--creds', a.creds] : []), `docker://${reg.host}/${repo}`]);
  if (r.code !== 0) throw new Error(`skopeo inspect ${repo} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// ---- images ----

export interface BusyboxImages {
  dir: string;
  rootfsTar: string;
  ociArchive: string;
  dockerArchive: string;
}

/** hack/engines/image.sh's busybox images (rootfs tarball, OCI archive, docker-archive), readable by everyone. */
export function busyboxImages(t: { teardown(fn: () => void): void }): BusyboxImages {
  const dir = privateDir(t, 'tsrt-regimg-');
  fs.chmodSync(dir, 0o755);
  checked('bash', [path.join(REPO, 'hack/engines/image.sh'), dir]);
  return {
    dir,
    rootfsTar: path.join(dir, 'busybox-rootfs.tar'),
    ociArchive: path.join(dir, 'busybox-oci.tar'),
    dockerArchive: path.join(dir, 'busybox-docker.tar'),
  };
}

export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
}

/** A tar layer of `files` (path -> content; a path ending in / is a directory), reproducible, gzipped. */
export function tarLayer(files: Record<string, string | { content: string; mode: number }>): Buffer {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-layer-'));
  try {
    for (const [name, v] of Object.entries(files)) {
      const at = path.join(stage, name);
      if (name.endsWith('/')) {
        fs.mkdirSync(at, { recursive: true });
        continue;
      }
      fs.mkdirSync(path.dirname(at), { recursive: true });
      const { content, mode } = typeof v === 'string' ? { content: v, mode: 0o644 } : v;
      fs.writeFileSync(at, content, { mode });
      fs.chmodSync(at, mode);
    }
    const tar = path.join(stage, '..', `${path.basename(stage)}.tar`);
    checked('tar', ['-C', stage, '--sort=name', '--numeric-owner', '--owner=0', '--group=0', '--mtime=@0', '-cf', tar, '.']);
    const gz = gzipFile(tar);
    fs.rmSync(tar);
    return gz;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

export function gzipFile(file: string): Buffer {
  return zlib.gzipSync(fs.readFileSync(file));
}

/** An OCI image layout being assembled: blobs by digest, tagged manifests and indexes in index.json. */
export class Layout {
  private readonly refs: object[] = [];

  constructor(readonly dir: string) {
    fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  }

  blob(data: Buffer, mediaType: string): Blob {
    const hex = crypto.createHash('sha256').update(data).digest('hex');
    fs.writeFileSync(path.join(this.dir, 'blobs', 'sha256', hex), data);
    return { mediaType, digest: `sha256:${hex}`, size: data.length };
  }

  /** An image: its config document (rootfs.diff_ids filled in) and gzipped layers; returns the manifest descriptor. */
  image(config: object, layers: Buffer[]): Blob {
    const layerBlobs = layers.map(l => this.blob(l, 'application/vnd.oci.image.layer.v1.tar+gzip'));
    const diffIds = layers.map(l => `sha256:${crypto.createHash('sha256').update(zlib.gunzipSync(l)).digest('hex')}`);
    const document = { os: 'linux', architecture: 'amd64', ...config, rootfs: { type: 'layers', diff_ids: diffIds } };
    const cfg = this.blob(Buffer.from(JSON.stringify(document)), 'application/vnd.oci.image.config.v1+json');
    return this.blob(
      Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: cfg, layers: layerBlobs }),
      ),
      'application/vnd.oci.image.manifest.v1+json',
    );
  }

  index(entries: { manifest: Blob; platform: { os: string; architecture: string; variant?: string } }[]): Blob {
    return this.blob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: entries.map(e => ({ ...e.manifest, platform: e.platform })),
        }),
      ),
      'application/vnd.oci.image.index.v1+json',
    );
  }

  tag(name: string, desc: Blob): void {
    this.refs.push({ ...desc, annotations: { 'org.opencontainers.image.ref.name': name } });
    fs.writeFileSync(path.join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: this.refs }));
  }
}

// ---- servers in this process ----

interface Stoppable {
  close(cb?: (err?: Error) => void): unknown;
  closeAllConnections?(): void;
}

function serve(t: { teardown(fn: () => void | Promise<void>): void }, server: Stoppable & net.Server): Promise<number> {
  t.teardown(
    () =>
      new Promise<void>(resolve => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  );
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

export interface TokenService {
  realm: string;
  service: string;
  issuer: string;
  rootCert: string;
  /** Every token request: the scopes asked for and the user who authenticated (undefined: anonymous). */
  requests: { scopes: string[]; service: string | null; user?: string }[];
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * A token service for distribution's `auth: token`: checks Basic credentials against `users` and issues an
 * RS256 JWT for the scopes asked, with the signing certificate in x5c (the registry trusts it through its
 * rootcertbundle). Requests without valid credentials get 401, as a registry that requires login would.
 */
export async function startTokenService(
  t: { teardown(fn: () => void | Promise<void>): void },
  pki: Pki,
  users: Record<string, string>,
): Promise<TokenService> {
  const f = (n: string) => path.join(pki.dir, n);
  checked(OPENSSL, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('token.key'),
    '-out',
    f('token.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=tsrt token issuer',
  ]);
  const key = fs.readFileSync(f('token.key'), 'utf8');
  const der = new crypto.X509Certificate(fs.readFileSync(f('token.crt'))).raw;
  const svc: TokenService = {
    realm: '',
    service: 'tsrt-test-registry',
    issuer: 'tsrt-test-issuer',
    rootCert: f('token.crt'),
    requests: [],
  };
  const server = https.createServer({ cert: fs.readFileSync(pki.cert), key: fs.readFileSync(pki.key) }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const scopes = url.searchParams.getAll('scope');
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    const [user, password] = basic ? Buffer.from(basic[1]!, 'base64').toString().split(/:(.*)/s) : [];
    const ok = user !== undefined && users[user] !== undefined && users[user] === password;
    svc.requests.push({ scopes, service: url.searchParams.get('service'), user: ok ? user : undefined });
    if (!ok) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end('{"details":"incorrect username or password"}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.map(s => {
      const [type, name, actions] = s.split(':');
      return { type, name, actions: (actions ?? '').split(',').filter(Boolean) };
    });
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] }));
    const claims = b64url(
      JSON.stringify({
        iss: svc.issuer,
        sub: user,
        aud: svc.service,
        exp: now + 600,
        nbf: now - 60,
        iat: now,
        jti: crypto.randomBytes(8).toString('hex'),
        access,
      }),
    );
    const signature = b64url(crypto.sign('sha256', Buffer.from(`${header}.${claims}`), key));
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token: `${header}.${claims}.${signature}`, expires_in: 600 }));
  });
  const port = await serve(t, server);
  svc.realm = `https://127.0.0.1:${port}/token`;
  return svc;
}

export interface Proxy {
  host: string;
  /** Every request passed on: method, path, Range asked for, status answered. */
  log: { method: string; path: string; range?: string; status: number }[];
  /** The most blob downloads that were in progress at once. */
  maxInFlight: number;
}

export interface ProxyBehaviour {
  /** The first `times` (default 1) downloads of this blob are each cut off after `after` bytes (the connection is destroyed). */
  cut?: { digest: string; after: number; times?: number };
  /** Blob downloads are held until this many are in progress, or a bounded wait has passed. */
  holdUntil?: number;
}

/** A plain-HTTP forwarder to `upstream` (127.0.0.1:PORT) that records what it passes on. */
export async function startProxy(
  t: { teardown(fn: () => void | Promise<void>): void },
  upstream: string,
  behaviour: ProxyBehaviour = {},
): Promise<Proxy> {
  const proxy: Proxy = { host: '', log: [], maxInFlight: 0 };
  let inFlight = 0;
  let cuts = 0;
  const server = http.createServer(async (req, res) => {
    const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
    if (isBlob) {
      inFlight++;
      proxy.maxInFlight = Math.max(proxy.maxInFlight, inFlight);
      res.on('close', () => {
        inFlight--;
      });
      // Bounded: a client that fetches one blob at a time is only slowed down, never stuck.
      for (let i = 0; behaviour.holdUntil && inFlight < behaviour.holdUntil && i < 200; i++) await sleep(50);
    }
    const up = http.request(`http://${upstream}${req.url}`, { method: req.method, headers: { ...req.headers, host: upstream } }, upRes => {
      const entry = { method: req.method ?? '', path: req.url ?? '', range: req.headers.range, status: upRes.statusCode ?? 0 };
      proxy.log.push(entry);
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      const cut =
        behaviour.cut && cuts < (behaviour.cut.times ?? 1) && isBlob && req.url?.endsWith(behaviour.cut.digest) ? behaviour.cut : undefined;
      if (!cut) {
        upRes.pipe(res);
        return;
      }
      cuts++;
      let sent = 0;
      upRes.on('data', (chunk: Buffer) => {
        if (sent >= cut.after) return;
        const part = chunk.subarray(0, cut.after - sent);
        sent += part.length;
        res.write(part);
        if (sent >= cut.after) {
          upRes.destroy();
          res.socket?.destroy();
        }
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  const port = await serve(t, server);
  proxy.host = `127.0.0.1:${port}`;
  return proxy;
}

export function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}
