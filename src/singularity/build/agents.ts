// Bootstrap agents: each fills an empty rootfs directory from the source its definition file header names.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DefFileError, type Stage } from './deffile.js';
import { hostCommand, type FakerootMapping } from './container.js';
import { inRootfs, moveTreeInto, readLabels } from './layout.js';
import { ImageCache, privateCacheDir } from '../registry/cache.js';
import { fetchImageLayout, fetchOrasSif } from '../registry/fetch.js';
import { registryOptionsFromEnv, type RegistryOptions } from '../registry/options.js';

export interface AgentContext {
  mapping: FakerootMapping | undefined;
  /** The image cache (../registry/cache.ts cacheRoot), where agents keep downloads between builds. */
  cacheDir: string;
  /** Scratch space of this build (removed afterwards). */
  tmpDir: string;
  quiet: boolean;
  /** Extracts the root filesystem of a SIF / squashfs / sandbox image into rootfs. */
  extractImage(image: string, rootfs: string, line: number): void;
  /** Registry flags for docker:// and oras:// sources (the environment's when not given). */
  registry?: RegistryOptions;
  info?: (message: string) => void;
  /** The OCI image config of the stage's base image, set by the OCI agents (the SIF keeps it as oci-config.json). */
  imageConfig?: { architecture?: string; config?: ImageConfig };
}

const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox', '/usr/lib/initramfs-tools/bin/busybox'];

/** Whether an ELF file runs without a dynamic loader (no PT_INTERP program header), so it works in any rootfs. */
export function isStaticElf(file: string): boolean {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return false;
  }
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = buf[4] === 2;
  const le = buf[5] === 1;
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const phoff = is64 ? Number(le ? buf.readBigUInt64LE(0x20) : buf.readBigUInt64BE(0x20)) : u32(0x1c);
  const phentsize = u16(is64 ? 0x36 : 0x2a);
  const phnum = u16(is64 ? 0x38 : 0x2c);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > buf.length) return false;
    if (u32(at) === 3) return false;
  }
  return true;
}

function run(argv: string[], what: string, line: number, ctx: AgentContext, opts: { mapped?: boolean } = {}): void {
  const r = opts.mapped
    ? hostCommand(argv, ctx.mapping, { stdio: ctx.quiet ? 'pipe' : 'inherit' })
    : spawnSync(argv[0]!, argv.slice(1), { stdio: ctx.quiet ? 'pipe' : 'inherit', encoding: 'utf8' });
  if (r.error) throw new DefFileError(line, `${what}: ${argv[0]}: ${r.error.message}`);
  if (r.status !== 0) {
    const detail = typeof r.stderr === 'string' && r.stderr.trim() ? `: ${r.stderr.trim().split('\n').slice(-5).join('\n')}` : '';
    throw new DefFileError(line, `${what} failed (${argv[0]} exited ${r.status ?? `on signal ${r.signal}`})${detail}`);
  }
}

function header(stage: Stage, key: string): string | undefined {
  return stage.header.get(key)?.value;
}

async function busybox(stage: Stage, rootfs: string, _ctx: AgentContext): Promise<void> {
  const line = stage.bootstrap.line;
  const mirror = stage.header.get('mirrorurl');
  const binary = inRootfs(rootfs, 'bin/busybox');
  fs.mkdirSync(path.dirname(binary), { recursive: true, mode: 0o755 });
  if (mirror) {
    let response: Response;
    try {
      response = await fetch(mirror.value);
    } catch (e) {
      throw new DefFileError(mirror.line, `cannot download busybox from ${mirror.value}: ${(e as Error).message}`);
    }
    if (!response.ok) throw new DefFileError(mirror.line, `cannot download busybox from ${mirror.value}: HTTP ${response.status}`);
    fs.writeFileSync(binary, Buffer.from(await response.arrayBuffer()), { mode: 0o755 });
    if (!isStaticElf(binary)) throw new DefFileError(mirror.line, `${mirror.value} is not a statically linked ELF executable`);
  } else {
    // Our own agent: the host's static busybox (Debian's busybox-static), which runs in an otherwise empty rootfs.
    const host = BUSYBOX_CANDIDATES.find(isStaticElf);
    if (!host)
      throw new DefFileError(
        line,
        `Bootstrap: busybox needs a statically linked busybox on the host (apt-get install busybox-static) or a MirrorURL: pointing at one`,
      );
    fs.copyFileSync(host, binary);
    fs.chmodSync(binary, 0o755);
  }
  const list = spawnSync(binary, ['--list-full'], { encoding: 'utf8' });
  if (list.status !== 0) throw new DefFileError(line, `busybox --list-full failed: ${list.stderr}`);
  for (const applet of list.stdout
    .split('\n')
    .map(s => s.trim())
    .filter(Boolean)) {
    if (applet === 'bin/busybox') continue;
    const at = inRootfs(rootfs, applet);
    fs.mkdirSync(path.dirname(at), { recursive: true, mode: 0o755 });
    try {
      fs.symlinkSync('/bin/busybox', at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  const etc = inRootfs(rootfs, 'etc');
  fs.mkdirSync(etc, { recursive: true, mode: 0o755 });
  const seed: Record<string, string> = {
    passwd: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    group: 'root:x:0:\nnogroup:x:65534:\n',
  };
  for (const [name, text] of Object.entries(seed)) {
    const file = path.join(etc, name);
    if (!fs.existsSync(file)) fs.writeFileSync(file, text, { mode: 0o644 });
  }
}

const DEBIAN_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'armhf',
  ppc64: 'ppc64el',
  s390x: 's390x',
  riscv64: 'riscv64',
  ia32: 'i386',
};

function debootstrap(stage: Stage, rootfs: string, ctx: AgentContext): void {
  const line = stage.bootstrap.line;
  const version = header(stage, 'osversion');
  if (!version) throw new DefFileError(line, 'Bootstrap: debootstrap needs an OSVersion: header (for example bookworm)');
  const mirror = header(stage, 'mirrorurl') ?? 'http://deb.debian.org/debian';
  const arch = DEBIAN_ARCH[os.arch()] ?? os.arch();
  const include = (header(stage, 'include') ?? '').split(/[\s,]+/).filter(Boolean);
  if (ctx.mapping) {
    unprivilegedDebootstrap(stage, rootfs, ctx, { version, mirror, arch, include });
    return;
  }
  if (spawnSync('debootstrap', ['--version']).error)
    throw new DefFileError(line, 'Bootstrap: debootstrap needs debootstrap on the host (apt-get install debootstrap)');
  // Downloaded .debs are kept per release and architecture: a rebuild only unpacks and configures.
  const cache = bootstrapCache(ctx, 'debootstrap', version, arch);
  const argv = ['debootstrap', '--variant=minbase', `--arch=${arch}`, `--cache-dir=${cache}`];
  if (include.length) argv.push(`--include=${include.join(',')}`);
  argv.push(version, rootfs, mirror);
  run(argv, `debootstrap of ${version} from ${mirror}`, line, ctx);
}

/** Where a tool's downloaded .debs for a release and architecture are kept: the image cache's `bootstrap` type. */
function bootstrapCache(ctx: AgentContext, tool: string, version: string, arch: string): string {
  return privateCacheDir(path.join(privateCacheDir(path.join(ctx.cacheDir, 'bootstrap')), `${tool}-${version}-${arch}`));
}

/**
 * debootstrap itself needs real root (it makes device nodes); without it the same minbase system comes from
 * mmdebstrap's unshare mode, which uses the builder's subordinate ids the way --fakeroot does. Its tarball is
 * unpacked in the build's own namespace so that ownership lands as the image expects.
 */
function unprivilegedDebootstrap(
  stage: Stage,
  rootfs: string,
  ctx: AgentContext,
  o: { version: string; mirror: string; arch: string; include: string[] },
): void {
  const line = stage.bootstrap.line;
  if (!ctx.mapping?.subuid) {
    throw new DefFileError(
      line,
      'Bootstrap: debootstrap without root needs subordinate ids (your user in /etc/subuid and /etc/subgid), or build as root',
    );
  }
  if (spawnSync('mmdebstrap', ['--version']).error) {
    throw new DefFileError(line, 'Bootstrap: debootstrap without root uses mmdebstrap (apt-get install mmdebstrap), or build as root');
  }
  const cache = bootstrapCache(ctx, 'mmdebstrap', o.version, o.arch);
  const tarball = path.join(ctx.tmpDir, 'debootstrap.tar');
  const argv = [
    'mmdebstrap',
    '--mode=unshare',
    '--variant=minbase',
    `--architectures=${o.arch}`,
    '--skip=essential/unlink',
    '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
    `--setup-hook=sync-in ${shellQuote(cache)} /var/cache/apt/archives/`,
    `--customize-hook=sync-out /var/cache/apt/archives ${shellQuote(cache)}`,
  ];
  if (o.include.length) argv.push(`--include=${o.include.join(',')}`);
  if (ctx.quiet) argv.push('--quiet');
  argv.push(o.version, tarball, o.mirror);
  run(argv, `mmdebstrap of ${o.version} from ${o.mirror}`, line, ctx);
  // Device nodes cannot be made in a user namespace, and the image's /dev is a mount point anyway.
  run(['tar', '-xf', tarball, '-C', rootfs, '--numeric-owner', '--exclude=./dev/*'], 'unpacking the mmdebstrap tarball', line, ctx, {
    mapped: true,
  });
  fs.rmSync(tarball, { force: true });
}

/** Applies one image layer (tar, possibly compressed) to rootfs, honouring OCI whiteouts. */
function applyLayer(rootfs: string, layer: string, line: number, ctx: AgentContext): void {
  const listing = spawnSync('tar', ['-tf', layer], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (listing.status !== 0) throw new DefFileError(line, `cannot read layer ${layer}: ${listing.stderr.trim()}`);
  for (const entry of listing.stdout.split('\n')) {
    const name = entry.replace(/^\.\//, '').replace(/\/$/, '');
    const base = path.posix.basename(name);
    if (!base.startsWith('.wh.')) continue;
    const dir = path.posix.dirname(name);
    if (base === '.wh..wh..opq') {
      // Opaque directory: what lower layers put there is hidden.
      const host = inRootfs(rootfs, dir);
      if (fs.existsSync(host))
        for (const child of fs.readdirSync(host)) fs.rmSync(path.join(host, child), { recursive: true, force: true });
    } else {
      fs.rmSync(inRootfs(rootfs, path.posix.join(dir, base.slice(4))), { recursive: true, force: true });
    }
  }
  const extract = (into: string) =>
    run(
      ['tar', '-xf', layer, '-C', into, '--numeric-owner', '--exclude=.wh.*', '--exclude=./.wh.*'],
      `extracting layer ${path.basename(layer)}`,
      line,
      ctx,
      { mapped: true },
    );
  if (ctx.mapping) {
    // Unprivileged, tar can only write what the builder could write anyway, and our process could not give
    // merged files the subordinate owners tar set inside the namespace.
    extract(rootfs);
    return;
  }
  // As root, tar would follow a symlink an earlier layer left in the rootfs (`etc -> /etc`) and write the host's
  // files: the layer goes into an empty directory first, then is moved in with paths resolved inside the rootfs.
  const staging = fs.mkdtempSync(path.join(ctx.tmpDir, 'layer-'));
  try {
    extract(staging);
    moveTreeInto(staging, rootfs, { adoptDirMetadata: true });
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

interface ImageConfig {
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Labels?: Record<string, string> | null;
}

/** The image config's ENV, ENTRYPOINT/CMD and labels, as Singularity turns them into image metadata. */
function writeImageConfig(rootfs: string, config: ImageConfig): void {
  fs.mkdirSync(inRootfs(rootfs, '.singularity.d/env'), { recursive: true, mode: 0o755 });
  // A name that is not a shell variable name could not be exported anyway; skipping it keeps the script valid.
  const env = (config.Env ?? [])
    .filter(kv => /^[A-Za-z_][A-Za-z0-9_]*(=|$)/.test(kv))
    .map(kv => {
      const eq = kv.indexOf('=');
      const name = eq < 0 ? kv : kv.slice(0, eq);
      const value = eq < 0 ? '' : kv.slice(eq + 1);
      const quoted = value.replace(/(["\\$`])/g, '\\$1');
      // The image's PATH is the one its programs are found by: it replaces the runtime's default, as in Singularity
      // (SINGULARITYENV_PATH and friends still win, being applied after these scripts). Any other variable
      // already set at run time keeps its value.
      if (name === 'PATH') return `export PATH="${quoted}"`;
      return `export ${name}="\${${name}:-${quoted}}"`;
    });
  fs.writeFileSync(inRootfs(rootfs, '.singularity.d/env/10-docker2singularity.sh'), `#!/bin/sh\n${env.join('\n')}\n`, { mode: 0o755 });
  const entrypoint = (config.Entrypoint ?? []).map(shellQuote).join(' ');
  const cmd = (config.Cmd ?? []).map(shellQuote).join(' ');
  const runscript = [
    '#!/bin/sh',
    '# ENTRYPOINT and CMD of the OCI image config: arguments given at run time replace CMD.',
    cmd ? `if [ $# -eq 0 ]; then set -- ${cmd}; fi` : '',
    entrypoint ? `exec ${entrypoint} "$@"` : 'if [ $# -eq 0 ]; then set -- /bin/sh; fi\nexec "$@"',
    '',
  ]
    .filter(l => l !== '')
    .join('\n');
  fs.writeFileSync(inRootfs(rootfs, '.singularity.d/runscript'), `${runscript}\n`, { mode: 0o755 });
  if (config.Labels && Object.keys(config.Labels).length) {
    const file = inRootfs(rootfs, '.singularity.d/labels.json');
    fs.writeFileSync(file, JSON.stringify({ ...readLabels(file), ...config.Labels }, null, '\t'), { mode: 0o644 });
  }
}

/** The config's runtime part becomes Singularity metadata; the whole document is kept for the SIF. */
function keepImageConfig(rootfs: string, document: { architecture?: string; config?: ImageConfig }, ctx: AgentContext): void {
  writeImageConfig(rootfs, document.config ?? {});
  ctx.imageConfig = document;
}

interface OciDescriptor {
  mediaType?: string;
  digest: string;
  annotations?: Record<string, string>;
  platform?: { architecture?: string; os?: string };
}

// biome-ignore lint/suspicious/noExplicitAny: the archive's JSON documents (index, manifest, config) are read field by field by the callers, each with a default
function readJson(file: string, what: string, line: number): any {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DefFileError(line, `cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

function blobPath(layout: string, digest: string, line: number): string {
  const m = /^([a-z0-9]+):([a-f0-9]+)$/.exec(digest);
  if (!m) throw new DefFileError(line, `invalid digest ${JSON.stringify(digest)} in the OCI layout`);
  return path.join(layout, 'blobs', m[1]!, m[2]!);
}

/** Unpacks the image `tag` (or the only one) of an OCI image layout directory. */
function unpackOciLayout(layout: string, tag: string | undefined, rootfs: string, line: number, ctx: AgentContext): void {
  const index = readJson(path.join(layout, 'index.json'), 'OCI index', line);
  let manifests: OciDescriptor[] = index.manifests ?? [];
  if (tag !== undefined) {
    manifests = manifests.filter(d => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
    if (!manifests.length) throw new DefFileError(line, `the OCI layout ${layout} has no image tagged ${JSON.stringify(tag)}`);
  } else if (manifests.length !== 1) {
    throw new DefFileError(line, `the OCI layout ${layout} holds ${manifests.length} images: name one as ${layout}:TAG`);
  }
  let manifest = readJson(blobPath(layout, manifests[0]!.digest, line), 'manifest', line);
  // An image index: take this machine's platform.
  while (manifest.manifests) {
    const arch = DEBIAN_ARCH[os.arch()] === 'amd64' ? 'amd64' : os.arch();
    const pick = (manifest.manifests as OciDescriptor[]).find(
      d => !d.platform || (d.platform.os === 'linux' && d.platform.architecture === arch),
    );
    if (!pick) throw new DefFileError(line, `the OCI image in ${layout} has no linux/${arch} manifest`);
    manifest = readJson(blobPath(layout, pick.digest, line), 'manifest', line);
  }
  for (const layer of (manifest.layers ?? []) as OciDescriptor[]) applyLayer(rootfs, blobPath(layout, layer.digest, line), line, ctx);
  if (manifest.config?.digest) keepImageConfig(rootfs, readJson(blobPath(layout, manifest.config.digest, line), 'image config', line), ctx);
}

function extractArchive(archive: string, into: string, line: number, ctx: AgentContext): void {
  if (!fs.existsSync(archive)) throw new DefFileError(line, `${archive} does not exist`);
  fs.mkdirSync(into, { recursive: true, mode: 0o700 });
  run(['tar', '-xf', archive, '-C', into], `unpacking ${archive}`, line, ctx);
}

function dockerArchive(stage: Stage, rootfs: string, ctx: AgentContext): void {
  const from = requiredFrom(stage, 'a `docker save` tarball');
  const dir = path.join(ctx.tmpDir, 'docker-archive');
  extractArchive(from.value, dir, from.line, ctx);
  const manifests = readJson(path.join(dir, 'manifest.json'), 'docker-archive manifest', from.line);
  if (!Array.isArray(manifests) || manifests.length === 0) throw new DefFileError(from.line, `${from.value} holds no image`);
  const image = manifests[0];
  // Names in manifest.json come from the archive: they may not point outside it.
  const member = (name: unknown) => {
    const resolved = path.resolve(dir, String(name));
    if (!resolved.startsWith(`${dir}/`))
      throw new DefFileError(from.line, `${from.value}: manifest.json names ${JSON.stringify(name)}, outside the archive`);
    return resolved;
  };
  for (const layer of image.Layers as string[]) applyLayer(rootfs, member(layer), from.line, ctx);
  keepImageConfig(rootfs, readJson(member(image.Config), 'image config', from.line), ctx);
}

/** `path[:tag]`: the tag is what follows the last colon, when that is not part of a directory name. */
function splitRef(ref: string): { location: string; tag?: string } {
  const colon = ref.lastIndexOf(':');
  if (colon > 0 && !ref.slice(colon + 1).includes('/')) return { location: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { location: ref };
}

function oci(stage: Stage, rootfs: string, ctx: AgentContext): void {
  const from = requiredFrom(stage, 'an OCI layout directory (path[:tag])');
  const { location, tag } = splitRef(from.value);
  if (!fs.existsSync(path.join(location, 'index.json')))
    throw new DefFileError(from.line, `${location} is not an OCI image layout (no index.json)`);
  unpackOciLayout(location, tag, rootfs, from.line, ctx);
}

function ociArchive(stage: Stage, rootfs: string, ctx: AgentContext): void {
  const from = requiredFrom(stage, 'an OCI layout tarball (path[:tag])');
  const { location, tag } = splitRef(from.value);
  const dir = path.join(ctx.tmpDir, 'oci-archive');
  extractArchive(location, dir, from.line, ctx);
  unpackOciLayout(dir, tag, rootfs, from.line, ctx);
}

function requiredFrom(stage: Stage, what: string) {
  const from = stage.header.get('from');
  if (!from) throw new DefFileError(stage.bootstrap.line, `Bootstrap: ${stage.bootstrap.value} needs a From: header naming ${what}`);
  return from;
}

function localimage(stage: Stage, rootfs: string, ctx: AgentContext): void {
  const from = requiredFrom(stage, 'a SIF, squashfs image or sandbox directory');
  if (!fs.existsSync(from.value)) throw new DefFileError(from.line, `${from.value} does not exist`);
  const fingerprints = stage.header.get('fingerprints');
  // Refused rather than ignored: a build that skipped the check would look as if the base image had passed it.
  if (fingerprints)
    throw new DefFileError(
      fingerprints.line,
      "Fingerprints: asks for the base image's signatures to be verified; build does not verify signatures (verify the image first, then drop this line)",
    );
  ctx.extractImage(from.value, rootfs, from.line);
}

/** `Bootstrap: docker`: From (with Registry: and Namespace: put in front, as Singularity does) from a registry. */
async function docker(stage: Stage, rootfs: string, ctx: AgentContext): Promise<void> {
  const from = requiredFrom(stage, 'an image reference (for example alpine:3.19)');
  const name = [header(stage, 'registry'), header(stage, 'namespace'), from.value.replace(/^docker:\/\//, '')].filter(Boolean).join('/');
  const layout = path.join(ctx.tmpDir, 'registry-layout');
  fs.rmSync(layout, { recursive: true, force: true });
  try {
    await fetchImageLayout(name, ctx.registry ?? registryOptionsFromEnv(), layout, ctx.quiet, ctx.info ?? (() => undefined));
    unpackOciLayout(layout, undefined, rootfs, from.line, ctx);
  } catch (e) {
    throw e instanceof DefFileError ? e : new DefFileError(from.line, (e as Error).message);
  } finally {
    fs.rmSync(layout, { recursive: true, force: true });
  }
}

/** `Bootstrap: oras`: a SIF pushed to a registry with oras, as the base image. */
async function oras(stage: Stage, rootfs: string, ctx: AgentContext): Promise<void> {
  const from = requiredFrom(stage, 'a SIF in an OCI registry (registry/repository:tag)');
  const o = ctx.registry ?? registryOptionsFromEnv();
  const cache = ImageCache.open({ disabled: o.disableCache, tmpParent: ctx.tmpDir });
  try {
    ctx.extractImage(
      await fetchOrasSif(from.value.replace(/^oras:\/\//, ''), o, cache, ctx.quiet, ctx.info ?? (() => undefined)),
      rootfs,
      from.line,
    );
  } catch (e) {
    throw e instanceof DefFileError ? e : new DefFileError(from.line, (e as Error).message);
  } finally {
    cache.dispose();
  }
}

type Agent = (stage: Stage, rootfs: string, ctx: AgentContext) => void | Promise<void>;

const AGENTS: Record<string, Agent> = {
  busybox,
  debootstrap,
  localimage,
  docker,
  oras,
  'docker-archive': dockerArchive,
  'oci-archive': ociArchive,
  oci,
  scratch: () => {},
};

export const AGENT_NAMES = Object.keys(AGENTS);

/** Fills rootfs from the stage's Bootstrap: source. */
export async function bootstrap(stage: Stage, rootfs: string, ctx: AgentContext): Promise<void> {
  const name = stage.bootstrap.value.toLowerCase();
  const agent = AGENTS[name];
  if (!agent) {
    throw new DefFileError(
      stage.bootstrap.line,
      `unsupported bootstrap agent ${JSON.stringify(stage.bootstrap.value)} (supported: ${AGENT_NAMES.join(', ')})`,
    );
  }
  await agent(stage, rootfs, ctx);
}
