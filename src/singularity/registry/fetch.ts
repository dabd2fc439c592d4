// Getting images out of registries into the cache: an OCI image (docker://) as a local OCI image layout whose
// blobs are the cache's verified files, ready for the build's layer unpacking; a SIF pushed with oras
// (oras://) as a cached file. Layers download in parallel, with one progress bar on a terminal.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  formatPlatform,
  hostPlatform,
  inParallel,
  parsePlatform,
  RegistryClient,
  sha256Digest,
  type Descriptor,
  type Platform,
  type ResolvedImage,
} from '../../oci-dist/client.js';
import { progressBar } from '../../oci-dist/progress.js';
import { formatReference, parseReference, type ImageReference } from '../../oci-dist/reference.js';
import { ImageCache } from './cache.js';
import { clientOptions, type RegistryOptions } from './options.js';
import { RuntimeError } from '../../errors.js';

/** Layers fetched at once (containers/image, which Singularity uses, allows 6; a login node is shared). */
const PARALLEL_BLOBS = 3;

/** Media types of a SIF pushed with oras; the first is the current one, the second Singularity < 3.7's typo. */
export const SIF_LAYER_TYPES = ['application/vnd.sylabs.sif.layer.v1.sif', 'appliciation/vnd.sylabs.sif.layer.tar'];
export const SIF_CONFIG_TYPE = 'application/vnd.sylabs.sif.config.v1+json';

export interface Remote {
  ref: ImageReference;
  client: RegistryClient;
  platform: Platform;
}

export function platformOf(o: RegistryOptions): Platform {
  return o.arch ? parsePlatform(o.arch) : hostPlatform();
}

/** `docker://` (or oras://) text after the scheme; the `//` is optional, as Singularity takes it. */
export async function connect(name: string, o: RegistryOptions): Promise<Remote> {
  const ref = parseReference(name.replace(/^\/\//, ''));
  return { ref, client: new RegistryClient(ref, await clientOptions(ref.registry, o)), platform: platformOf(o) };
}

const resolved = new Map<string, Promise<ResolvedImage>>();

/** The image manifest for the platform; asked once per process (pull resolves, then the build unpacks). */
export function resolve(remote: Remote): Promise<ResolvedImage> {
  const key = `${remote.client.base.href}|${formatReference(remote.ref)}|${formatPlatform(remote.platform)}`;
  let found = resolved.get(key);
  if (!found) {
    found = remote.client.resolve(remote.platform);
    resolved.set(key, found);
    found.catch(() => resolved.delete(key));
  }
  return found;
}

function link(layout: string, digest: string, target: string): void {
  const file = path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
  fs.rmSync(file, { force: true });
  fs.symlinkSync(target, file);
}

/**
 * Downloads an image's config and layers into the cache and lays out `layout` (a new directory) as an OCI
 * image layout holding just that image: index.json naming its manifest, blobs linked to the cache's files.
 */
export async function fetchImageLayout(
  name: string,
  o: RegistryOptions,
  layout: string,
  quiet: boolean,
  log: (m: string) => void,
): Promise<{ image: ResolvedImage; remote: Remote }> {
  const remote = await connect(name, o);
  const image = await resolve(remote);
  fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true, mode: 0o700 });
  // Without the cache, the blobs are downloaded into the layout itself and go with it.
  const cache = ImageCache.open({ disabled: o.disableCache, tmpParent: layout });
  const blobs: Descriptor[] = [image.manifest.config, ...image.manifest.layers];
  log(`Fetching ${formatReference(remote.ref)} (${formatPlatform(remote.platform)}, ${image.digest})`);
  const progress = progressBar('Copying blobs', process.stderr, !quiet);
  for (const b of blobs) progress.expect(b.size);
  try {
    await inParallel(blobs, PARALLEL_BLOBS, async desc => link(layout, desc.digest, await cache.fetchBlob(remote.client, desc, progress)));
  } finally {
    progress.done();
  }
  const manifest = Buffer.from(JSON.stringify(image.manifest));
  const digest = sha256Digest(manifest);
  fs.writeFileSync(path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)), manifest, { mode: 0o600 });
  fs.writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: image.mediaType, digest, size: manifest.length }],
    }),
  );
  return { image, remote };
}

/** The SIF an oras:// reference names, from the cache (oras/HEX) or downloaded into it. */
export async function fetchOrasSif(
  name: string,
  o: RegistryOptions,
  cache: ImageCache,
  quiet: boolean,
  log: (m: string) => void,
): Promise<string> {
  const remote = await connect(name, o);
  const image = await resolve(remote);
  const layers = image.manifest.layers.filter(l => SIF_LAYER_TYPES.includes(l.mediaType));
  if (layers.length !== 1) {
    const types = image.manifest.layers.map(l => l.mediaType).join(', ') || 'none';
    throw new RuntimeError(
      `${formatReference(remote.ref)} is not a SIF pushed with oras: it needs exactly one layer of type ${SIF_LAYER_TYPES[0]} (its layers: ${types})`,
      { op: 'pull' },
    );
  }
  const layer = layers[0]!;
  const key = layer.digest.slice('sha256:'.length);
  const cached = cache.entry('oras', key);
  if (cached) {
    log('Using cached image');
    return cached;
  }
  log('Downloading oras image');
  const progress = progressBar('Downloading', process.stderr, !quiet);
  progress.expect(layer.size);
  try {
    return await cache.store('oras', key, async tmp => {
      const blob = await cache.fetchBlob(remote.client, layer, progress);
      // The SIF is kept once, as the oras entry; its blob copy would only double the space.
      fs.renameSync(blob, tmp);
    });
  } finally {
    progress.done();
  }
}
