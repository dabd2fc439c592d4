// An image given by URI, made into a SIF in the user's cache the way Singularity does before it runs one:
// OCI images (docker://, docker-archive:, oci-archive:, oci:) are converted once into cache/oci-tmp and found
// there the next time; oras:// images are SIFs already and are kept in cache/oras.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nodeCrypto } from '../../lazy-crypto.js';
import { formatPlatform } from '../../oci-dist/client.js';
import { build } from '../build/build.js';
import { DefFileError } from '../build/deffile.js';
import { hashFileInto, ImageCache } from './cache.js';
import { connect, fetchOrasSif, platformOf, resolve } from './fetch.js';
import type { RegistryOptions } from './options.js';
import { imageUri, unsupportedSource, type ImageUri } from './source.js';
import { RuntimeError } from '../../errors.js';

export interface Reporting {
  quiet: boolean;
  info(message: string): void;
  warn(message: string): void;
}

function hashFiles(parts: (string | Buffer)[], files: string[]): string {
  const hash = nodeCrypto().createHash('sha256');
  for (const p of parts) hash.update(p).update('\0');
  for (const file of files) hashFileInto(hash, file);
  return hash.digest('hex');
}

/** `path[:tag]` of the archive and layout transports, split where the path ends (it may hold colons). */
function localPath(name: string): { file: string; tag?: string } {
  if (fs.existsSync(name)) return { file: path.resolve(name) };
  const colon = name.lastIndexOf(':');
  if (colon > 0 && !name.slice(colon + 1).includes('/')) return { file: path.resolve(name.slice(0, colon)), tag: name.slice(colon + 1) };
  return { file: path.resolve(name) };
}

/** What the converted SIF is filed under in oci-tmp, and the build source that makes it. */
async function conversion(uri: ImageUri, o: RegistryOptions): Promise<{ key: string; spec: string }> {
  if (uri.transport === 'docker') {
    const image = await resolve(await connect(uri.name, o));
    return { key: image.digest.slice('sha256:'.length), spec: `docker://${uri.name}` };
  }
  const { file, tag } = localPath(uri.name);
  if (!fs.existsSync(file))
    throw new RuntimeError(`${uri.transport}:${uri.name}: ${file} does not exist`, { op: 'open', path: file, errno: 'ENOENT' });
  const spec = `${uri.transport}:${file}${tag !== undefined ? `:${tag}` : ''}`;
  if (uri.transport === 'oci') {
    // A layout's index names every image by digest: it changes whenever what the tag selects does.
    return { key: hashFiles([spec, formatPlatform(platformOf(o))], [path.join(file, 'index.json')]), spec };
  }
  return { key: hashFiles([uri.transport, tag ?? ''], [file]), spec };
}

/** Builds the SIF for an OCI source at `dest` (a name that does not exist yet). */
export async function convertToSif(spec: string, dest: string, o: RegistryOptions, r: Reporting, sandbox = false): Promise<void> {
  r.info('Converting OCI blobs to SIF format');
  try {
    await build({
      dest,
      spec,
      sandbox,
      ignoreSubuid: false,
      force: false,
      notest: true,
      buildArgs: new Map(),
      quiet: r.quiet,
      info: m => r.info(m),
      warn: m => r.warn(m),
      registry: o,
    });
  } catch (e) {
    // The definition file is one we made up from the URI: its line numbers mean nothing to the user.
    if (e instanceof DefFileError)
      throw new RuntimeError(`${spec}: ${e.message.replace(/^.*? line \d+: /, '')}`, { op: 'convert', cause: e });
    throw e;
  }
}

/** A private directory removed when the process ends (conversions with --disable-cache). */
function throwawayDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-nocache-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The cached SIF for a URI (made now if needed), or `spec` itself when it is a path. */
export async function localImage(spec: string, o: RegistryOptions, r: Reporting): Promise<string> {
  const unsupported = unsupportedSource(spec);
  if (unsupported) throw new RuntimeError(unsupported, { op: 'pull' });
  const uri = imageUri(spec);
  if (!uri) return spec;
  const cache = ImageCache.open({ disabled: o.disableCache, tmpParent: o.disableCache ? throwawayDir() : undefined });
  if (uri.transport === 'oras') return fetchOrasSif(uri.name, o, cache, r.quiet, m => r.info(m));
  const { key, spec: source } = await conversion(uri, o);
  const cached = cache.entry('oci-tmp', key);
  if (cached) {
    r.info('Using cached SIF image');
    return cached;
  }
  // The build's own "Build complete: <temporary name>" would name a file that is renamed a moment later.
  const quietDone: Reporting = {
    ...r,
    info: m => {
      if (!m.startsWith('Build complete')) r.info(m);
    },
  };
  return cache.store('oci-tmp', key, tmp => convertToSif(source, tmp, o, quietDone));
}
