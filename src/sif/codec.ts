// Bytes <-> structures: the 128-byte header and the 585-byte descriptors, packed little-endian, with the typed
// views of a descriptor's Extra bytes. Pure functions of a buffer; SifImage (./image.ts) does the file I/O.
import { RuntimeError } from '../errors.js';
import {
  DESCRIPTOR_SIZE,
  DataType,
  EXTRA_SIZE,
  GROUP_MASK,
  HEADER_SIZE,
  LAUNCH_SCRIPT_SIZE,
  NAME_SIZE,
  archCode,
  archName,
  hostArch,
  type Descriptor,
  type SifHeader,
} from './layout.js';

export function readString(buf: Buffer, start: number, size: number): string {
  const raw = buf.subarray(start, start + size);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? size : nul).toString('utf8');
}

export function writeString(buf: Buffer, start: number, size: number, value: string, what: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > size) throw new RuntimeError(`${what} "${value}" is longer than ${size} bytes`, { op: 'sif' });
  buf.fill(0, start, start + size);
  bytes.copy(buf, start);
}

const i64 = (buf: Buffer, off: number): number => Number(buf.readBigInt64LE(off));
const putI64 = (buf: Buffer, off: number, v: number): void => {
  buf.writeBigInt64LE(BigInt(Math.trunc(v)), off);
};

/** The int64 fields of the header and of a descriptor, with their byte offsets: one table read and written. */
export const HEADER_INT64 = [
  ['createdAt', 64],
  ['modifiedAt', 72],
  ['descriptorsFree', 80],
  ['descriptorsTotal', 88],
  ['descriptorsOffset', 96],
  ['descriptorsSize', 104],
  ['dataOffset', 112],
  ['dataSize', 120],
] as const;
export const DESCRIPTOR_INT64 = [
  ['offset', 17],
  ['size', 25],
  ['sizeWithPadding', 33],
  ['createdAt', 41],
  ['modifiedAt', 49],
  ['uid', 57],
  ['gid', 65],
] as const;

function readInt64s<K extends string>(buf: Buffer, table: ReadonlyArray<readonly [K, number]>): Record<K, number> {
  return Object.fromEntries(table.map(([key, off]) => [key, i64(buf, off)])) as Record<K, number>;
}

function writeInt64s<K extends string>(buf: Buffer, table: ReadonlyArray<readonly [K, number]>, from: Record<K, number>): void {
  for (const [key, off] of table) putI64(buf, off, from[key]);
}

export function parseHeader(buf: Buffer): SifHeader {
  if (buf.length < HEADER_SIZE) throw new RuntimeError('SIF header is truncated', { op: 'sif' });
  return {
    launchScript: readString(buf, 0, LAUNCH_SCRIPT_SIZE),
    magic: readString(buf, 32, 10),
    version: readString(buf, 42, 3),
    arch: readString(buf, 45, 3),
    id: Buffer.from(buf.subarray(48, 64)),
    ...readInt64s(buf, HEADER_INT64),
  };
}

export function serializeHeader(h: SifHeader): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE);
  writeString(buf, 0, LAUNCH_SCRIPT_SIZE - 1, h.launchScript, 'launch script');
  writeString(buf, 32, 10, h.magic, 'magic');
  writeString(buf, 42, 3, h.version, 'version');
  writeString(buf, 45, 3, h.arch, 'arch');
  h.id.copy(buf, 48, 0, 16);
  writeInt64s(buf, HEADER_INT64, h);
  return buf;
}

export function decodeExtra(d: Descriptor): void {
  const x = d.extra;
  switch (d.dataType) {
    case DataType.Partition:
      d.partition = { fsType: x.readInt32LE(0), partType: x.readInt32LE(4), arch: archName(readString(x, 8, 3)) };
      break;
    case DataType.Signature:
      d.signature = { hashType: x.readInt32LE(0), entity: Buffer.from(x.subarray(4, 260)) };
      break;
    case DataType.CryptoMessage:
      d.cryptoMessage = { formatType: x.readInt32LE(0), messageType: x.readInt32LE(4) };
      break;
    case DataType.SBOM:
      d.sbomFormat = x.readInt32LE(0);
      break;
    case DataType.OCIRootIndex:
    case DataType.OCIBlob:
      d.ociDigest = readString(x, 0, EXTRA_SIZE);
      break;
  }
}

export function parseDescriptor(buf: Buffer): Descriptor {
  const rawGroup = buf.readUInt32LE(9);
  const rawLink = buf.readUInt32LE(13);
  const linkedToGroup = (rawLink & GROUP_MASK) >>> 0 === GROUP_MASK;
  const d: Descriptor = {
    dataType: buf.readInt32LE(0),
    used: buf[4] !== 0,
    id: buf.readUInt32LE(5),
    groupId: (rawGroup & ~GROUP_MASK) >>> 0,
    linkedId: linkedToGroup ? (rawLink & ~GROUP_MASK) >>> 0 : rawLink,
    linkedToGroup,
    ...readInt64s(buf, DESCRIPTOR_INT64),
    name: readString(buf, 73, NAME_SIZE),
    extra: Buffer.from(buf.subarray(201, 201 + EXTRA_SIZE)),
  };
  decodeExtra(d);
  return d;
}

/** The raw GroupID field: group | mask, or the mask alone for "no group". */
export function rawGroupId(d: Pick<Descriptor, 'groupId'>): number {
  return (d.groupId | GROUP_MASK) >>> 0;
}

/** The raw LinkedID field. */
export function rawLinkedId(d: Pick<Descriptor, 'linkedId' | 'linkedToGroup'>): number {
  return d.linkedToGroup ? (d.linkedId | GROUP_MASK) >>> 0 : d.linkedId;
}

export function serializeDescriptor(d: Descriptor): Buffer {
  const buf = Buffer.alloc(DESCRIPTOR_SIZE);
  if (!d.used) return buf;
  buf.writeInt32LE(d.dataType, 0);
  buf[4] = 1;
  buf.writeUInt32LE(d.id, 5);
  buf.writeUInt32LE(rawGroupId(d), 9);
  buf.writeUInt32LE(rawLinkedId(d), 13);
  writeInt64s(buf, DESCRIPTOR_INT64, d);
  writeString(buf, 73, NAME_SIZE, d.name, 'object name');
  d.extra.copy(buf, 201, 0, EXTRA_SIZE);
  return buf;
}

export function emptyDescriptor(): Descriptor {
  return {
    dataType: 0,
    used: false,
    id: 0,
    groupId: 0,
    linkedId: 0,
    linkedToGroup: false,
    offset: 0,
    size: 0,
    sizeWithPadding: 0,
    createdAt: 0,
    modifiedAt: 0,
    uid: 0,
    gid: 0,
    name: '',
    extra: Buffer.alloc(EXTRA_SIZE),
  };
}

export function partitionExtra(p: { fsType: number; partType: number; arch?: string }): Buffer {
  const x = Buffer.alloc(EXTRA_SIZE);
  x.writeInt32LE(p.fsType, 0);
  x.writeInt32LE(p.partType, 4);
  writeString(x, 8, 3, archCode(p.arch ?? hostArch()), 'arch');
  return x;
}

/** An int64 field that must be a byte offset or size: neither negative nor past 2^53 (what a JS number holds exactly). */
export function checkOffset(path: string, what: string, buf: Buffer, off: number): void {
  const raw = buf.readBigInt64LE(off);
  if (raw < 0n || raw > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RuntimeError(`${path}: corrupt SIF: ${what} ${raw} is negative or past 2^53`, { op: 'sif', path });
  }
}
