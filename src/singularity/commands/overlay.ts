// `overlay create [--size MiB] [--sparse] [--create-dir DIR]... [--fakeroot] IMAGE`: a persistent overlay for
// --overlay, as Singularity and Apptainer make one: an ext3 file system holding the upper/ and work/ directories
// overlayfs needs, owned by the user (or by root in the image, with --fakeroot), either as a new image file or
// appended to an unsigned SIF as its overlay partition.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type SingularityCommand } from '../command.js';
import { DataType, FsType, PartType, SifImage } from '../../sif/index.js';
import { fakerootMapping, hostCommand } from '../build/container.js';
import { type FlagSpec, UsageError, boolFlag, intFlag, parseFlags, withUsage } from './sif-flags.js';
import { RuntimeError } from '../../errors.js';

const usage = `overlay create [create options...] <image>

  -s, --size MiB        size of the ext3 overlay in MiB (default 64, at least 64)
  -S, --sparse          create a sparse image file
      --create-dir DIR  a directory to create in the overlay's upper layer (repeatable)
  -f, --fakeroot        owned by root in the image, for containers run with --fakeroot
  An existing SIF gets the overlay as a partition (it must be unsigned and have no writable overlay yet).`;

const flags: Record<string, FlagSpec> = {
  size: { short: 's' },
  sparse: { short: 'S', boolean: true },
  'create-dir': {},
  fakeroot: { short: 'f', boolean: true },
};

const MIB = 1024 * 1024;

function mkfs(): string {
  const found = ['/usr/sbin/mkfs.ext3', '/sbin/mkfs.ext3'].find(f => fs.existsSync(f));
  if (!found) throw new RuntimeError('overlay create needs mkfs.ext3 (apt-get install e2fsprogs)', { op: 'overlay create' });
  return found;
}

/** Why an existing file cannot take an overlay partition; undefined for a SIF that can. */
function sifRefusal(file: string): string | undefined {
  if (!SifImage.isSif(file)) return `${file} already exists and is not a SIF image (an overlay image is created new)`;
  const img = SifImage.open(file);
  try {
    if (img.primaryPartition()?.partition?.fsType === FsType.EncryptedSquashfs)
      return `${file} has an encrypted root file system: a writable overlay cannot be added`;
    if (img.descriptors().some(d => d.dataType === DataType.Signature))
      return `SIF image ${file} is signed: a writable overlay cannot be added`;
    const existing = img.descriptors().find(d => d.partition?.partType === PartType.Overlay && d.partition.fsType === FsType.Ext3);
    if (existing)
      return `a writable overlay partition already exists in ${file} (ID: ${existing.id}), delete it first with "singularity sif del ${existing.id} ${file}"`;
  } finally {
    img.close();
  }
  return undefined;
}

/** A zero-filled (or sparse) file of `size` MiB, mode 0600. */
function blankImage(file: string, size: number, sparse: boolean): void {
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    if (sparse) {
      fs.ftruncateSync(fd, size * MIB);
    } else {
      const zeros = Buffer.alloc(MIB);
      for (let i = 0; i < size; i++) fs.writeSync(fd, zeros);
    }
  } finally {
    fs.closeSync(fd);
  }
}

function create(argv: string[]): number {
  const f = parseFlags(argv, flags);
  if (f.args.length !== 1) throw new UsageError(`requires exactly 1 arg(s), received ${f.args.length}`);
  const image = path.resolve(f.args[0]!);
  const size = intFlag(f, 'size') ?? 64;
  if (size < 64) throw new RuntimeError('image size must be equal or greater than 64 MiB', { op: 'overlay create' });
  const dirs = f.values.get('create-dir') ?? [];
  const fakeroot = boolFlag(f, 'fakeroot');
  const toSif = fs.existsSync(image);
  if (toSif) {
    const why = sifRefusal(image);
    if (why) throw new RuntimeError(why, { op: 'overlay create' });
  }
  const mkfsExt3 = mkfs();
  // Made in a private directory beside IMAGE and moved into place (or appended) only when complete.
  const scratch = fs.mkdtempSync(path.join(path.dirname(image), `.${path.basename(image)}.overlay-`));
  const mapping = fakeroot ? fakerootMapping() : undefined;
  try {
    const layout = path.join(scratch, 'layout');
    const upper = path.join(layout, 'upper');
    for (const d of [layout, upper, path.join(layout, 'work')]) fs.mkdirSync(d, { mode: 0o755 });
    for (const d of dirs) {
      const inside = path.resolve(upper, `./${d}`);
      if (!inside.startsWith(`${upper}/`))
        throw new RuntimeError(`--create-dir ${d}: outside the overlay's upper layer`, { op: 'overlay create', path: d });
      fs.mkdirSync(inside, { recursive: true, mode: 0o755 });
    }
    const ext3 = path.join(scratch, 'overlay.ext3');
    blankImage(ext3, size, boolFlag(f, 'sparse'));
    // mkfs -d copies owners as it sees them: inside a root-mapped namespace the user's files are root's.
    const r = hostCommand([mkfsExt3, '-q', '-F', '-d', layout, ext3], mapping);
    if (r.error || r.status !== 0)
      throw new RuntimeError(`mkfs.ext3 could not make the overlay: ${(r.stderr || r.error?.message || '').trim()}`, {
        op: 'overlay create',
      });
    if (toSif) {
      const img = SifImage.open(image, { writable: true });
      try {
        const arch = img.primaryPartition()?.partition?.arch;
        img.addObject({
          dataType: DataType.Partition,
          data: { path: ext3 },
          partition: { fsType: FsType.Ext3, partType: PartType.Overlay, arch: arch && arch !== 'unknown' ? arch : undefined },
        });
      } finally {
        img.close();
      }
    } else {
      fs.renameSync(ext3, image);
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return 0;
}

export const overlayCommand: SingularityCommand = {
  summary: 'Manage an EXT3 writable overlay image',
  usage,
  run: argv =>
    withUsage(usage, () => {
      const [sub, ...rest] = argv;
      if (sub !== 'create') throw new UsageError(sub === undefined ? 'missing command (create)' : `unknown command "${sub}"`);
      return create(rest);
    }),
};
