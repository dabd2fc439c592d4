// `push IMG.sif oras://REF`: the SIF as the single layer of an OCI artifact, as Singularity pushes it (config
// `{}` of type application/vnd.sylabs.sif.config.v1+json, layer application/vnd.sylabs.sif.layer.v1.sif titled
// with the file's name), so Singularity, Apptainer and the oras CLI can pull it back byte for byte.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { MediaType, sha256Digest } from '../../oci-dist/client.js';
import { progressBar } from '../../oci-dist/progress.js';
import { SifImage } from '../../sif/index.js';
import { sha256File } from './cache.js';
import { connect, SIF_CONFIG_TYPE, SIF_LAYER_TYPES } from './fetch.js';
import type { RegistryOptions } from './options.js';
import { RuntimeError } from '../../errors.js';

/** Pushes the SIF; returns the manifest's digest. */
export async function pushOras(file: string, name: string, o: RegistryOptions, quiet: boolean): Promise<string> {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new RuntimeError(`${file}: no such file`, { op: 'push', path: file, errno: 'ENOENT' });
  }
  if (!st.isFile() || !SifImage.isSif(file))
    throw new RuntimeError(`${file} is not a SIF image: only SIF files can be pushed with oras://`, { op: 'push', path: file });
  const remote = await connect(name, o);
  if (remote.ref.digest)
    throw new RuntimeError(`oras://${name}: push needs a tag, not a digest (the registry computes the digest)`, { op: 'push' });
  const digest = sha256File(file);
  const progress = progressBar('Uploading', process.stderr, !quiet);
  progress.expect(st.size);
  try {
    const outcome = await remote.client.uploadBlob(digest, st.size, () => {
      const stream = fs.createReadStream(file);
      stream.on('data', chunk => progress.advance((chunk as Buffer).length));
      return stream;
    });
    if (outcome === 'exists') progress.advance(st.size);
  } finally {
    progress.done();
  }
  const config = Buffer.from('{}');
  const configDigest = sha256Digest(config);
  await remote.client.uploadBlob(configDigest, config.length, () => Readable.from([config]));
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: SIF_CONFIG_TYPE, digest: configDigest, size: config.length },
    layers: [
      { mediaType: SIF_LAYER_TYPES[0], digest, size: st.size, annotations: { 'org.opencontainers.image.title': path.basename(file) } },
    ],
  };
  return remote.client.putManifest(remote.ref.tag ?? 'latest', MediaType.ociManifest, Buffer.from(JSON.stringify(manifest)));
}
