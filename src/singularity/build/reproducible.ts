// Reproducible builds: with SOURCE_DATE_EPOCH set (reproducible-builds.org's convention), the same definition
// file and inputs give a byte-identical SIF. Every time the image records (file times in the squashfs, its
// creation time, the SIF header and descriptor times, the build-date label) is that epoch, and the SIF's id,
// random otherwise, is derived from the objects' contents.
import { createHash } from 'node:crypto';
import { type ObjectInput, sha256Of } from '../../sif/index.js';
import { RuntimeError } from '../../errors.js';

/** SOURCE_DATE_EPOCH as whole seconds, undefined when unset; anything else is refused rather than ignored. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = env['SOURCE_DATE_EPOCH'];
  if (text === undefined || text === '') return undefined;
  if (!/^\d{1,12}$/.test(text))
    throw new RuntimeError(`SOURCE_DATE_EPOCH=${JSON.stringify(text)}: expected a number of seconds since 1970`, { op: 'env' });
  return Number(text);
}

/** mksquashfs flags that give every inode and the filesystem itself the epoch as their time. */
export function squashfsTimeArgs(epoch: number | undefined): string[] {
  return epoch === undefined ? [] : ['-mkfs-time', String(epoch), '-all-time', String(epoch)];
}

/**
 * A SIF id from the objects' types, names and data: a version-8 (custom) UUID whose bits are the start of a
 * SHA-256 over them, so equal contents give equal ids and different images different ones.
 */
export function derivedImageId(objects: ObjectInput[]): Buffer {
  const h = createHash('sha256');
  for (const o of objects) h.update(`${o.dataType} ${o.name ?? ''} ${sha256Of(o.data)}\n`);
  const id = h.digest().subarray(0, 16);
  id[6] = (id[6]! & 0x0f) | 0x80;
  id[8] = (id[8]! & 0x3f) | 0x80;
  return Buffer.from(id);
}
