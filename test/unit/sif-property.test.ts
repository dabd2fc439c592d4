// Property test of the SIF reader (issue 13): on random files and on valid SIFs with mutated headers,
// descriptors and lengths, every reader entry point either works or throws a RuntimeError with a message;
// never a Node internal error (ERR_OUT_OF_RANGE from a read position, RangeError from an allocation or a
// date, TypeError), and never a hang. Seeded: TSRT_PROPERTY_SEED=N replays a run, and a failure names the
// seed, the iteration and the mutation.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RuntimeError } from '../../src/errors.js';
import { formatHeader, formatInfo, formatList } from '../../src/sif/siftool-text.js';
import { DataType, DESCRIPTOR_SIZE, FsType, HEADER_SIZE, PartType, SifImage } from '../../src/sif/index.js';
import { inspectImage } from '../../src/sif/mount.js';
import { random } from '../property-kit.js';

const SEED = Number(process.env['TSRT_PROPERTY_SEED'] ?? 13);
const ITERATIONS = 400;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-sif-property-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A valid SIF: a definition file, labels and a primary squashfs partition (a superblock magic and zeros). */
const base = path.join(dir, 'base.sif');
SifImage.create(base, [
  { dataType: DataType.Deffile, data: Buffer.from('Bootstrap: scratch\n') },
  { dataType: DataType.Labels, data: Buffer.from('{"a":"b"}') },
  {
    dataType: DataType.Partition,
    data: Buffer.concat([Buffer.from('hsqs'), Buffer.alloc(8188)]),
    partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys },
  },
]).close();
const baseBytes = fs.readFileSync(base);
const tableEnd = 4096 + 48 * DESCRIPTOR_SIZE;

/** The byte offsets of every int64 field: the header's and those of the first three descriptors. */
const INT64_FIELDS = [
  ...[64, 72, 80, 88, 96, 104, 112, 120],
  ...[0, 1, 2].flatMap(slot => [17, 25, 33, 41, 49, 57, 65].map(f => 4096 + slot * DESCRIPTOR_SIZE + f)),
];
const EXTREMES = [
  -1n,
  -(2n ** 63n),
  2n ** 63n - 1n,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 60n,
  0n,
  BigInt(baseBytes.length),
  BigInt(baseBytes.length + 1),
];

/** One mutated input and a description of how it was made. */
function mutate(rnd: ReturnType<typeof random>): { bytes: Buffer; how: string } {
  const bytes = Buffer.from(baseBytes);
  switch (rnd.int(5)) {
    case 0: {
      const n = 1 + rnd.int(16);
      const where: number[] = [];
      for (let i = 0; i < n; i++) {
        const at = rnd.int(tableEnd);
        where.push(at);
        bytes[at] = rnd.int(256);
      }
      return { bytes, how: `flipped bytes at ${where.join(',')}` };
    }
    case 1: {
      const at = rnd.pick(INT64_FIELDS);
      const value =
        rnd.int(3) === 0
          ? BigInt.asIntN(64, BigInt(rnd.int(2 ** 31)) * BigInt(rnd.int(2 ** 31)) * BigInt(rnd.int(2 ** 3) + 1))
          : rnd.pick(EXTREMES);
      bytes.writeBigInt64LE(value, at);
      return { bytes, how: `int64 at ${at} = ${value}` };
    }
    case 2: {
      const len = rnd.int(bytes.length);
      return { bytes: bytes.subarray(0, len), how: `truncated to ${len} bytes` };
    }
    case 3: {
      const noise = Buffer.from(Array.from({ length: rnd.int(2 * tableEnd) }, () => rnd.int(256)));
      if (rnd.int(2) && noise.length >= HEADER_SIZE) noise.write('SIF_MAGIC\0', 32, 'latin1');
      if (rnd.int(2) && noise.length >= HEADER_SIZE) noise.write('01\0', 42, 'latin1');
      return { bytes: noise, how: `${noise.length} random bytes` };
    }
    default: {
      // The descriptor count and table offset pushed around, the most sensitive pair.
      bytes.writeBigInt64LE(rnd.pick([-1n, 0n, 1n, 48n, 49n, 1n << 20n, (1n << 20n) + 1n, 2n ** 40n]), 88);
      bytes.writeBigInt64LE(rnd.pick([-1n, 0n, 127n, 128n, 4096n, BigInt(bytes.length), 2n ** 62n]), 96);
      return { bytes, how: `descriptor count/offset ${bytes.readBigInt64LE(88)}/${bytes.readBigInt64LE(96)}` };
    }
  }
}

/** Every read a command of tsrt-singularity makes on an image: header, list, info, objects, the partition. */
function readAll(file: string): void {
  SifImage.isSif(file);
  const img = SifImage.open(file);
  try {
    formatHeader(img.header);
    const ds = img.descriptors();
    formatList(ds);
    for (const d of ds) {
      formatInfo(d);
      img.readObject(d.id);
    }
    img.primaryPartition();
  } finally {
    img.close();
  }
}

t.test(`the SIF reader on ${ITERATIONS} mutated and random files (seed ${SEED}): a RuntimeError or success, nothing else`, async tt => {
  const rnd = random(SEED);
  const file = path.join(dir, 'mutated.sif');
  let opened = 0;
  let refused = 0;
  const bad: string[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const { bytes, how } = mutate(rnd);
    fs.writeFileSync(file, bytes);
    for (const [what, fn] of [
      ['read', () => readAll(file)],
      ['inspect', () => inspectImage(file)],
    ] as const) {
      try {
        fn();
        opened++;
      } catch (e) {
        if (e instanceof RuntimeError && e.message) refused++;
        else bad.push(`iteration ${i} (${how}), ${what}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
      }
    }
  }
  tt.same(bad, [], 'no Node internal error');
  tt.ok(opened > ITERATIONS / 10, `mutations left many files readable (${opened}), so the reads after the header ran too`);
  tt.ok(refused > ITERATIONS / 10, `and many were refused (${refused})`);
});
