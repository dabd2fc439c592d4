// A client of the OCI distribution API (and Docker's registry v2, which it grew from) for one repository:
// manifests by tag or digest (OCI and Docker schema 2, indexes and manifest lists with a platform chosen),
// blobs downloaded with their digest checked and resumed with Range after a broken connection, blobs and
// manifests uploaded. Every byte that comes back is checked against the digest that named it.
import type { Hash } from 'node:crypto';
import * as fs from 'node:fs';
import { nodeCrypto } from '../lazy-crypto.js';
import { AuthError, Authenticator, type Credentials } from './auth.js';
import { apiHost, type ImageReference } from './reference.js';
import type { Progress } from './progress.js';
import { discard, errorText, readBody, send, systemCertificates, TransportError, type RequestInit, type Response } from './transport.js';

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

const INDEX_TYPES: string[] = [MediaType.ociIndex, MediaType.dockerList];
const MANIFEST_TYPES: string[] = [MediaType.ociManifest, MediaType.dockerManifest];

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ResolvedImage {
  /** Digest of the image manifest (the platform's, when the reference named an index). */
  digest: string;
  mediaType: string;
  manifest: ImageManifest;
  /** Digest of the index the manifest was chosen from, if any. */
  indexDigest?: string;
}

export interface ClientOptions {
  /** Speak plain HTTP (--no-https). */
  plainHttp?: boolean;
  credentials?: Credentials;
  /** Trusted CA certificates (PEM); the system store by default. */
  ca?: string[];
  /** How to give credentials, for the error when a registry wants some and none were given. */
  loginHint?: string;
}

/** A manifest larger than this is refused (containers/image uses the same 4 MiB limit). */
const MANIFEST_LIMIT = 4 << 20;
/** Attempts at one blob download: a broken connection is resumed from where it stopped. */
const BLOB_ATTEMPTS = 5;
const MAX_REDIRECTS = 5;

/** Bytes that do not hash to the digest that named them: never cached, never used. */
export class DigestMismatch extends Error {}

/** The registry answered, but not with what was asked for. */
export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status = 0,
  ) {
    super(message);
  }
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** A download in progress: the bytes so far and their running hash. */
interface Transfer {
  hash: Hash;
  have: number;
}

export function sha256Digest(data: Buffer): string {
  return `sha256:${nodeCrypto().createHash('sha256').update(data).digest('hex')}`;
}

function checkDescriptor(d: unknown, where: string): Descriptor {
  const x = d as Descriptor;
  if (!x || typeof x !== 'object' || typeof x.digest !== 'string' || !Number.isSafeInteger(x.size) || x.size < 0) {
    throw new RegistryError(`${where}: a descriptor without a valid digest and size`);
  }
  if (!DIGEST.test(x.digest)) throw new RegistryError(`${where}: unsupported digest ${JSON.stringify(x.digest)} (only sha256 is)`);
  return x;
}

/** The host's platform in Go's names (what image indexes use). */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = {
    x64: 'amd64',
    ia32: '386',
    ppc64: 'ppc64le',
    arm64: 'arm64',
    arm: 'arm',
    s390x: 's390x',
    riscv64: 'riscv64',
    loong64: 'loong64',
  };
  const architecture = arch[process.arch] ?? process.arch;
  return architecture === 'arm' ? { os: 'linux', architecture, variant: 'v7' } : { os: 'linux', architecture };
}

/** `amd64`, `arm64`, `arm/v7` or `linux/arm64/v8` as a platform (linux unless named). */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/').filter(Boolean);
  if (parts.length === 0 || parts.length > 3)
    throw new Error(`invalid platform ${JSON.stringify(text)}: expected ARCH, ARCH/VARIANT or OS/ARCH[/VARIANT]`);
  const [os, architecture, variant] = parts.length === 3 || (parts.length === 2 && parts[0] === 'linux') ? parts : ['linux', ...parts];
  return variant ? { os: os!, architecture: architecture!, variant } : { os: os!, architecture: architecture! };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** arm64 images usually leave out the only variant there is (v8). */
function sameVariant(want: Platform, have: Platform): boolean {
  if (!want.variant) return true;
  const norm = (p: Platform) => p.variant ?? (p.architecture === 'arm64' ? 'v8' : '');
  return norm(want) === norm(have);
}

export function choosePlatform(manifests: Descriptor[], want: Platform): Descriptor | undefined {
  return manifests.find(
    d => d.platform && d.platform.os === want.os && d.platform.architecture === want.architecture && sameVariant(want, d.platform),
  );
}

/** Runs `fn` over items with at most `limit` at a time; the first failure fails the whole (after the rest stop). */
export async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
}

export class RegistryClient {
  readonly base: URL;
  private readonly auth: Authenticator;
  private readonly ca: string[] | undefined;

  constructor(
    readonly ref: ImageReference,
    opts: ClientOptions = {},
  ) {
    this.base = new URL(`${opts.plainHttp ? 'http' : 'https'}://${apiHost(ref)}/v2/${ref.repository}/`);
    this.ca = opts.plainHttp ? undefined : opts.ca;
    this.auth = new Authenticator(ref.registry, opts.credentials, () => this.ca ?? systemCertificates(), opts.loginHint);
  }

  private scope(push: boolean): string {
    return `repository:${this.ref.repository}:${push ? 'pull,push' : 'pull'}`;
  }

  /** One request, answering an auth challenge once and following redirects (without our credentials elsewhere). */
  private async request(
    target: string | URL,
    init: Omit<RequestInit, 'body' | 'ca'> & { body?: () => RequestInit['body']; push?: boolean; scope?: string } = {},
  ): Promise<Response> {
    let url = typeof target === 'string' ? new URL(target, this.base) : target;
    const scope = init.scope ?? this.scope(!!init.push);
    let challenged = false;
    for (let hops = 0; hops <= MAX_REDIRECTS; ) {
      const ours = url.origin === this.base.origin;
      const headers = { ...init.headers };
      const authorization = ours ? this.auth.header(scope) : undefined;
      if (authorization) headers['Authorization'] = authorization;
      const res = await send(url, {
        method: init.method,
        headers,
        body: init.body?.(),
        ca: url.protocol === 'https:' ? (this.ca ?? systemCertificates()) : undefined,
      });
      if (res.status === 401 && ours) {
        // The body goes first: a connection left holding it would keep the process from ending.
        await discard(res);
        if (!challenged) {
          challenged = true;
          if (await this.auth.challenge(res, scope, authorization)) continue;
        }
        throw this.auth.refused();
      }
      const location = res.headers.location;
      if ([301, 302, 303, 307, 308].includes(res.status) && location) {
        await discard(res);
        url = new URL(location, url);
        hops++;
        continue;
      }
      return res;
    }
    throw new RegistryError(`${this.ref.registry}: more than ${MAX_REDIRECTS} redirects for ${url.pathname}`);
  }

  private async failure(res: Response, what: string): Promise<RegistryError> {
    const detail = await errorText(res);
    if (res.status === 404) return new RegistryError(`${what}: not found in ${this.ref.registry} (${detail})`, 404);
    if (res.status === 403) return new RegistryError(`${what}: access denied by ${this.ref.registry} (${detail})`, 403);
    return new RegistryError(`${what}: ${this.ref.registry} answered ${detail}`, res.status);
  }

  /** Checks that the registry answers its API and takes our credentials (the version check of the spec). */
  async ping(): Promise<void> {
    const res = await this.request(new URL('/v2/', this.base), { scope: '' });
    if (res.status !== 200) throw await this.failure(res, `${this.ref.registry}: the registry API (/v2/)`);
    await discard(res);
  }

  /** A manifest or index by tag or digest, its bytes checked against the digest. */
  async manifest(reference: string, accept: string[]): Promise<{ mediaType: string; digest: string; body: Buffer }> {
    const what = `${this.ref.registry}/${this.ref.repository}:${reference}`.replace(/:(sha256:)/, '@$1');
    const res = await this.request(`manifests/${reference}`, { headers: { Accept: accept.join(', ') } });
    if (res.status !== 200) throw await this.failure(res, `manifest of ${what}`);
    const body = await readBody(res, MANIFEST_LIMIT);
    const digest = sha256Digest(body);
    if (reference.includes(':') && reference !== digest) {
      throw new DigestMismatch(`the manifest of ${what} does not match its digest (it hashes to ${digest})`);
    }
    const claimed = res.headers['docker-content-digest'];
    if (typeof claimed === 'string' && claimed.startsWith('sha256:') && claimed !== digest) {
      throw new DigestMismatch(
        `the manifest of ${what} does not match the digest the registry gives for it (${claimed}; it hashes to ${digest})`,
      );
    }
    let declared: string | undefined;
    try {
      declared = (JSON.parse(body.toString('utf8')) as { mediaType?: string }).mediaType;
    } catch {
      throw new RegistryError(`the manifest of ${what} is not JSON`);
    }
    const header = String(res.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    return { mediaType: declared ?? header, digest, body };
  }

  /** The image manifest for `platform` behind a tag or digest (through an index when there is one). */
  async resolve(platform: Platform): Promise<ResolvedImage> {
    const reference = this.ref.digest ?? this.ref.tag ?? 'latest';
    const top = await this.manifest(reference, [...INDEX_TYPES, ...MANIFEST_TYPES, MediaType.dockerSchema1Signed, MediaType.dockerSchema1]);
    if (INDEX_TYPES.includes(top.mediaType) || (!top.mediaType && 'manifests' in JSON.parse(top.body.toString('utf8')))) {
      const index = JSON.parse(top.body.toString('utf8')) as { manifests?: unknown[] };
      const where = `the index of ${this.ref.registry}/${this.ref.repository}:${reference}`;
      const manifests = (index.manifests ?? []).map(d => checkDescriptor(d, where));
      const chosen = choosePlatform(manifests, platform);
      if (!chosen) {
        const have = manifests.filter(d => d.platform && d.platform.os !== 'unknown').map(d => formatPlatform(d.platform!));
        throw new RegistryError(
          `${this.ref.registry}/${this.ref.repository}:${reference} has no image for ${formatPlatform(platform)} (it has: ${have.join(', ') || 'none'}); choose one with --arch`,
        );
      }
      const image = await this.manifest(chosen.digest, MANIFEST_TYPES);
      return { ...this.imageManifest(image), indexDigest: top.digest };
    }
    return this.imageManifest(top);
  }

  private imageManifest(m: { mediaType: string; digest: string; body: Buffer }): ResolvedImage {
    const where = `the manifest ${m.digest} of ${this.ref.registry}/${this.ref.repository}`;
    if (m.mediaType === MediaType.dockerSchema1 || m.mediaType === MediaType.dockerSchema1Signed) {
      throw new RegistryError(
        `${where} is a Docker schema 1 manifest, which is deprecated and not supported: push the image again with a current client`,
      );
    }
    const parsed = JSON.parse(m.body.toString('utf8')) as Partial<ImageManifest>;
    if (parsed.schemaVersion !== 2 || !parsed.config || !Array.isArray(parsed.layers)) {
      throw new RegistryError(`${where} is not an image manifest (media type ${JSON.stringify(m.mediaType)})`);
    }
    const manifest: ImageManifest = {
      ...parsed,
      schemaVersion: 2,
      config: checkDescriptor(parsed.config, where),
      layers: parsed.layers.map(l => checkDescriptor(l, where)),
    };
    return { digest: m.digest, mediaType: m.mediaType || MediaType.ociManifest, manifest };
  }

  /**
   * Downloads a blob to `file` (appending to what an earlier attempt left there), checking size and digest.
   * A connection that breaks is resumed with a Range request; a registry that ignores Range starts over.
   * On a digest or size mismatch the file is removed and DigestMismatch thrown.
   */
  async downloadBlob(desc: Descriptor, file: string, progress?: Progress): Promise<void> {
    const state: Transfer = { hash: nodeCrypto().createHash('sha256'), have: 0 };
    try {
      state.have = fs.statSync(file).size;
    } catch {
      state.have = 0;
    }
    if (state.have > desc.size) {
      fs.truncateSync(file, 0);
      state.have = 0;
    }
    if (state.have > 0) for await (const chunk of fs.createReadStream(file)) state.hash.update(chunk as Buffer);
    progress?.advance(state.have);
    const what = `blob ${desc.digest} of ${this.ref.registry}/${this.ref.repository}`;
    let lastError: unknown;
    for (let attempt = 0; attempt < BLOB_ATTEMPTS && state.have < desc.size; attempt++) {
      let res: Response;
      try {
        res = await this.request(`blobs/${desc.digest}`, { headers: state.have > 0 ? { Range: `bytes=${state.have}-` } : {} });
      } catch (e) {
        if (e instanceof AuthError || e instanceof RegistryError) throw e;
        lastError = e;
        continue;
      }
      if (res.status === 200 && state.have > 0) {
        // The registry ignored Range: the whole blob comes again.
        progress?.advance(-state.have);
        fs.truncateSync(file, 0);
        state.hash = nodeCrypto().createHash('sha256');
        state.have = 0;
      } else if (res.status === 206) {
        if (!String(res.headers['content-range'] ?? '').startsWith(`bytes ${state.have}-`)) {
          await discard(res);
          throw new RegistryError(
            `${what}: the registry resumed at the wrong offset (${String(res.headers['content-range'])}, asked for byte ${state.have})`,
          );
        }
      } else if (res.status !== 200) {
        throw await this.failure(res, what);
      }
      try {
        await this.receive(res, file, state, desc.size, progress);
      } catch (e) {
        if (e instanceof DigestMismatch) throw e;
        lastError = e;
      }
    }
    if (state.have < desc.size) {
      const why = lastError instanceof Error ? lastError.message : 'the connection ended early';
      throw new TransportError(
        `${what}: download incomplete after ${BLOB_ATTEMPTS} attempts (${state.have} of ${desc.size} bytes; ${why}); run the command again to resume`,
      );
    }
    const digest = `sha256:${state.hash.digest('hex')}`;
    if (digest !== desc.digest) {
      fs.rmSync(file, { force: true });
      throw new DigestMismatch(
        `${what}: the downloaded bytes hash to ${digest}, not to the digest that names them; the registry sent a corrupt or tampered blob, which was not kept`,
      );
    }
  }

  /** Appends a response body to `file`, counting and hashing as it goes (so a break keeps what arrived). */
  private async receive(res: Response, file: string, state: Transfer, size: number, progress?: Progress): Promise<void> {
    const fd = fs.openSync(file, 'a', 0o600);
    try {
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        if (state.have + buf.length > size) {
          res.body.destroy();
          fs.rmSync(file, { force: true });
          throw new DigestMismatch(
            `blob of ${this.ref.registry}/${this.ref.repository}: the registry sent more than the ${size} bytes the manifest gives; nothing was kept`,
          );
        }
        fs.writeSync(fd, buf);
        state.hash.update(buf);
        state.have += buf.length;
        progress?.advance(buf.length);
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  async hasBlob(digest: string, push = false): Promise<boolean> {
    const res = await this.request(`blobs/${digest}`, { method: 'HEAD', push });
    await discard(res);
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw new RegistryError(`checking for blob ${digest} in ${this.ref.registry}/${this.ref.repository}: HTTP ${res.status}`, res.status);
  }

  /** Uploads a blob in one PUT (unless the registry has it already); the stream factory may be called twice. */
  async uploadBlob(digest: string, size: number, open: () => NodeJS.ReadableStream): Promise<'uploaded' | 'exists'> {
    if (await this.hasBlob(digest, true)) return 'exists';
    const what = `uploading blob ${digest} to ${this.ref.registry}/${this.ref.repository}`;
    const start = await this.request('blobs/uploads/', { method: 'POST', push: true, body: () => Buffer.alloc(0) });
    if (start.status !== 202 || !start.headers.location) throw await this.failure(start, what);
    await discard(start);
    const location = new URL(start.headers.location, this.base);
    location.searchParams.set('digest', digest);
    const put = await this.request(location, {
      method: 'PUT',
      push: true,
      headers: { 'Content-Type': 'application/octet-stream' },
      body: () => ({ stream: open(), length: size }),
    });
    if (put.status !== 201) throw await this.failure(put, what);
    await discard(put);
    return 'uploaded';
  }

  /** Stores a manifest under a tag; returns its digest. */
  async putManifest(reference: string, mediaType: string, body: Buffer): Promise<string> {
    const res = await this.request(`manifests/${reference}`, {
      method: 'PUT',
      push: true,
      headers: { 'Content-Type': mediaType },
      body: () => body,
    });
    if (res.status !== 201)
      throw await this.failure(res, `storing the manifest of ${this.ref.registry}/${this.ref.repository}:${reference}`);
    await discard(res);
    return sha256Digest(body);
  }
}
