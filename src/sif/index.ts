/**
 * SIF (Singularity Image Format) reader and writer, byte-compatible with the reference (sylabs/sif v2).
 * Layout and writer rules are those of sylabs/sif v2's pkg/sif: packed little-endian structs, a 128-byte header,
 * the descriptor table at 4096, partitions aligned to 4096 and other objects packed; test/singularity/sif.test.ts
 * holds this reader and writer to the reference's own images (test/fixtures/sif).
 *
 * Reading
 *   const img = SifImage.open('alpine.sif');            // read-only; { writable: true } to modify
 *   img.header                                           // SifHeader: launchScript, id, arch, counts, ...
 *   img.descriptors()                                    // used descriptors, in slot (= id) order
 *   img.descriptor(3)                                    // one object by id (throws when unused)
 *   const p = img.primaryPartition();                    // Descriptor | undefined; first PrimSys partition
 *   p.offset, p.size, p.partition!.fsType                // FsType.Squashfs ... absolute file offset/length
 *   img.readObject(p.id)                                 // Buffer with the object's bytes (small objects)
 *   img.copyObjectTo(p.id, '/tmp/rootfs.squashfs')       // streams a large object out to a file
 *   img.close()
 *
 * Writing
 *   SifImage.create('out.sif', [
 *     { dataType: DataType.Deffile, data: Buffer.from('Bootstrap: scratch\n') },
 *     { dataType: DataType.Partition, data: { path: 'rootfs.squashfs' },
 *       partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys, arch: 'amd64' } },
 *   ], { deterministic: true }).close();
 *   const w = SifImage.open('out.sif', { writable: true });
 *   w.addObject({ dataType: DataType.GenericJSON, name: 'x.json', data: Buffer.from('{}') });
 *   w.deleteObject(1, { zero: true, compact: true });
 *   w.setPrimaryPartition(4);
 *   w.close();
 *
 * Beside this module: ./mount.ts (mountImage: an image's filesystem as a directory), ./integrity.ts (signImage,
 * verifyImage: DSSE/PGP/legacy signatures), ./format.ts (siftool's header/list/info text), ./pgp.ts.
 *
 * ObjectInput defaults follow the reference: group 1 (groupId: 0 = no group), no link, partitions aligned
 * to 4096 bytes and everything else packed, timestamps from the image options. Everything is synchronous
 * and works on an fd, so large partitions are never loaded into memory.
 */
import { nodeCrypto } from '../lazy-crypto.js';
import * as fs from 'node:fs';
import { RuntimeError, fromSystemError } from '../errors.js';

export const HEADER_SIZE = 128;
export const DESCRIPTOR_SIZE = 585;
export const EXTRA_SIZE = 384;
export const NAME_SIZE = 128;
export const LAUNCH_SCRIPT_SIZE = 32;
export const DEFAULT_DESCRIPTORS_OFFSET = 4096;
export const DEFAULT_DESCRIPTORS_TOTAL = 48;
export const DEFAULT_PARTITION_ALIGNMENT = 4096;
export const SIF_MAGIC = 'SIF_MAGIC';
export const SIF_VERSION = '01';
export const DEFAULT_LAUNCH_SCRIPT = '#!/usr/bin/env run-singularity\n';
/** GroupID/LinkedID values carry this bit when they name a group rather than an object. */
export const GROUP_MASK = 0xf0000000;
/** Go's zero time.Time as unix seconds: what deterministic images store for every timestamp. */
export const ZERO_TIME = -62135596800;

export const DataType = {
  Deffile: 0x4001,
  EnvVar: 0x4002,
  Labels: 0x4003,
  Partition: 0x4004,
  Signature: 0x4005,
  GenericJSON: 0x4006,
  Generic: 0x4007,
  CryptoMessage: 0x4008,
  SBOM: 0x4009,
  OCIRootIndex: 0x400a,
  OCIBlob: 0x400b,
} as const;

export const FsType = { Squashfs: 1, Ext3: 2, ImmuObj: 3, Raw: 4, EncryptedSquashfs: 5 } as const;
export const PartType = { System: 1, PrimSys: 2, Data: 3, Overlay: 4 } as const;
export const HashType = { SHA256: 1, SHA384: 2, SHA512: 3, BLAKE2S: 4, BLAKE2B: 5 } as const;
export const FormatType = { OpenPGP: 1, PEM: 2 } as const;
export const MessageType = { ClearSignature: 0x100, RSAOAEP: 0x200 } as const;
export const SBOMFormat = {
  CycloneDXJSON: 1, CycloneDXXML: 2, GitHubJSON: 3, SPDXJSON: 4, SPDXRDF: 5, SPDXTagValue: 6, SPDXYAML: 7,
  SyftJSON: 8,
} as const;

/** Header/partition arch codes, indexed by their number; names are Go's GOARCH values. */
export const ARCHES = [
  'unknown', '386', 'amd64', 'arm', 'arm64', 'ppc64', 'ppc64le', 'mips', 'mipsle', 'mips64', 'mips64le', 's390x',
  'riscv64', 'loong64',
] as const;

/** "02" -> "amd64"; unrecognised codes come back as "unknown". */
export function archName(code: string): string {
  const n = /^\d\d$/.test(code) ? Number(code) : -1;
  return ARCHES[n] ?? 'unknown';
}

/** "amd64" -> "02"; also accepts node's process.arch spellings (x64, ia32). */
export function archCode(name: string): string {
  const goName = name === 'x64' ? 'amd64' : name === 'ia32' ? '386' : name === 'loong64' ? 'loong64' : name;
  const n = ARCHES.indexOf(goName as (typeof ARCHES)[number]);
  if (n < 0) throw new RuntimeError(`unknown SIF architecture "${name}"`, { op: 'sif' });
  return String(n).padStart(2, '0');
}

/** The host's architecture as a Go name, for partitions added without an explicit arch. */
export function hostArch(): string {
  return archName(archCode(process.arch));
}

export interface SifHeader {
  launchScript: string;
  magic: string;
  version: string;
  /** Two-digit ASCII code, "00" when no primary partition is set. */
  arch: string;
  /** 16 raw UUID bytes. */
  id: Buffer;
  createdAt: number;
  modifiedAt: number;
  descriptorsFree: number;
  descriptorsTotal: number;
  descriptorsOffset: number;
  descriptorsSize: number;
  dataOffset: number;
  dataSize: number;
}

export interface PartitionInfo {
  fsType: number;
  partType: number;
  /** Go arch name (amd64, arm64, ...). */
  arch: string;
}

export interface SignatureInfo {
  hashType: number;
  /** 256 bytes; the first 20 are a PGP v4 fingerprint, all zero for DSSE. */
  entity: Buffer;
}

export interface CryptoMessageInfo {
  formatType: number;
  messageType: number;
}

export interface Descriptor {
  dataType: number;
  used: boolean;
  id: number;
  /** Group number without the mask; 0 = not in a group. */
  groupId: number;
  /** Linked object id (0 = none), or linked group number when linkedToGroup. */
  linkedId: number;
  linkedToGroup: boolean;
  offset: number;
  size: number;
  sizeWithPadding: number;
  createdAt: number;
  modifiedAt: number;
  uid: number;
  gid: number;
  name: string;
  /** The raw 384 Extra bytes; the typed views below decode them. */
  extra: Buffer;
  partition?: PartitionInfo;
  signature?: SignatureInfo;
  cryptoMessage?: CryptoMessageInfo;
  sbomFormat?: number;
  /** OCIRootIndex/OCIBlob digest, "sha256:<hex>". */
  ociDigest?: string;
}

export type ObjectData = Buffer | { path: string };

export interface ObjectInput {
  dataType: number;
  data: ObjectData;
  name?: string;
  /** Default 1; 0 puts the object in no group. */
  groupId?: number;
  /** Link to another object by id. */
  linkedId?: number;
  /** Link to a group instead (mutually exclusive with linkedId). */
  linkedGroup?: number;
  /** Byte alignment of the data offset; default 4096 for partitions, 1 otherwise. */
  alignment?: number;
  partition?: { fsType: number; partType: number; arch?: string };
  signature?: { hashType: number; entity?: Buffer };
  cryptoMessage?: CryptoMessageInfo;
  sbomFormat?: number;
  /** OCIRootIndex/OCIBlob digest; computed from the data (sha256) when omitted. */
  ociDigest?: string;
  /** Raw Extra bytes for types whose layout the caller builds itself; overrides the typed fields. */
  extra?: Buffer;
  /** Object timestamp; defaults to the image operation's time. */
  time?: number;
}

export interface CreateOptions {
  launchScript?: string;
  /** 16 bytes; a random v4 UUID by default, all zero when deterministic. */
  id?: Buffer;
  /** Image timestamps in unix seconds; now by default, Go's zero time when deterministic. */
  time?: number;
  deterministic?: boolean;
  descriptorsTotal?: number;
  descriptorsOffset?: number;
}

export interface ModifyOptions {
  /** Timestamp for ModifiedAt (and new objects' CreatedAt); now by default. */
  time?: number;
}

export interface DeleteOptions extends ModifyOptions {
  /** Overwrite the object's bytes with zeros. */
  zero?: boolean;
  /** Truncate the file to the end of the furthest remaining object. */
  compact?: boolean;
}

function readString(buf: Buffer, start: number, size: number): string {
  const raw = buf.subarray(start, start + size);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? size : nul).toString('utf8');
}

function writeString(buf: Buffer, start: number, size: number, value: string, what: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > size) throw new RuntimeError(`${what} "${value}" is longer than ${size} bytes`, { op: 'sif' });
  buf.fill(0, start, start + size);
  bytes.copy(buf, start);
}

const i64 = (buf: Buffer, off: number): number => Number(buf.readBigInt64LE(off));
const putI64 = (buf: Buffer, off: number, v: number): void => { buf.writeBigInt64LE(BigInt(Math.trunc(v)), off); };

/** The int64 fields of the header and of a descriptor, with their byte offsets: one table read and written. */
const HEADER_INT64 = [
  ['createdAt', 64], ['modifiedAt', 72], ['descriptorsFree', 80], ['descriptorsTotal', 88], ['descriptorsOffset', 96],
  ['descriptorsSize', 104], ['dataOffset', 112], ['dataSize', 120],
] as const;
const DESCRIPTOR_INT64 = [
  ['offset', 17], ['size', 25], ['sizeWithPadding', 33], ['createdAt', 41], ['modifiedAt', 49], ['uid', 57], ['gid', 65],
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

function decodeExtra(d: Descriptor): void {
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

function emptyDescriptor(): Descriptor {
  return {
    dataType: 0, used: false, id: 0, groupId: 0, linkedId: 0, linkedToGroup: false, offset: 0, size: 0,
    sizeWithPadding: 0, createdAt: 0, modifiedAt: 0, uid: 0, gid: 0, name: '', extra: Buffer.alloc(EXTRA_SIZE),
  };
}

export function partitionExtra(p: { fsType: number; partType: number; arch?: string }): Buffer {
  const x = Buffer.alloc(EXTRA_SIZE);
  x.writeInt32LE(p.fsType, 0);
  x.writeInt32LE(p.partType, 4);
  writeString(x, 8, 3, archCode(p.arch ?? hostArch()), 'arch');
  return x;
}

/** Offset rounded up to a multiple of alignment (alignment <= 1 leaves it alone). */
function alignUp(offset: number, alignment: number): number {
  return alignment > 1 ? Math.ceil(offset / alignment) * alignment : offset;
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

function randomUuid(): Buffer {
  return Buffer.from(nodeCrypto().randomUUID().replace(/-/g, ''), 'hex');
}

const COPY_CHUNK = 1 << 20;

/**
 * Opens a file that must be a regular one (an image, a definition file) without blocking: a FIFO under an
 * image's name would otherwise hold the open until a writer comes, for ever. The type is checked on the fd.
 */
export function openRegularFile(file: string, writable = false): number {
  const { O_RDONLY, O_RDWR, O_NONBLOCK } = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(file, (writable ? O_RDWR : O_RDONLY) | O_NONBLOCK);
  } catch (e) {
    throw fromSystemError('open', file, e);
  }
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd);
    throw new RuntimeError(`${file} is not a regular file`, { op: 'open', path: file });
  }
  return fd;
}

/** An int64 field that must be a byte offset or size: neither negative nor past 2^53 (what a JS number holds exactly). */
function checkOffset(path: string, what: string, buf: Buffer, off: number): void {
  const raw = buf.readBigInt64LE(off);
  if (raw < 0n || raw > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RuntimeError(`${path}: corrupt SIF: ${what} ${raw} is negative or past 2^53`, { op: 'sif', path });
  }
}

export class SifImage {
  readonly path: string;
  header: SifHeader;
  private fd: number;
  private readonly writable: boolean;
  /** Every slot, used or not, index = id - 1. */
  private slots: Descriptor[];

  private constructor(path: string, fd: number, writable: boolean, private readonly ownsFd = true) {
    this.path = path;
    this.fd = fd;
    this.writable = writable;
    const head = this.readAt(0, HEADER_SIZE);
    if (head.length < HEADER_SIZE || readString(head, 32, 10) !== SIF_MAGIC) {
      throw new RuntimeError(`${path}: not a SIF file (no SIF_MAGIC in the header)`, { op: 'sif', path });
    }
    this.header = parseHeader(head);
    if (this.header.version !== SIF_VERSION) {
      throw new RuntimeError(`${path}: unsupported SIF version "${this.header.version}"`, { op: 'sif', path });
    }
    for (const [name, off] of HEADER_INT64) if (!name.endsWith('At')) checkOffset(path, `header ${name}`, head, off);
    const { descriptorsTotal: total, descriptorsOffset: off } = this.header;
    if (total > 1 << 20 || off < HEADER_SIZE) {
      throw new RuntimeError(`${path}: corrupt SIF header (descriptor table)`, { op: 'sif', path });
    }
    // Checked before reading, so a header claiming a huge table costs no allocation.
    if (off + total * DESCRIPTOR_SIZE > fs.fstatSync(fd).size) {
      throw new RuntimeError(`${path}: SIF descriptor table is truncated`, { op: 'sif', path });
    }
    const table = this.readAt(off, total * DESCRIPTOR_SIZE);
    this.slots = [];
    for (let i = 0; i < total; i++) {
      const raw = table.subarray(i * DESCRIPTOR_SIZE, (i + 1) * DESCRIPTOR_SIZE);
      const d = parseDescriptor(raw);
      if (d.used) {
        for (const [name, at] of DESCRIPTOR_INT64) if (['offset', 'size', 'sizeWithPadding'].includes(name)) checkOffset(path, `object ${d.id} ${name}`, raw, at);
        if (!Number.isSafeInteger(d.offset + d.size)) {
          throw new RuntimeError(`${path}: corrupt SIF: object ${d.id} ends past 2^53`, { op: 'sif', path });
        }
      }
      this.slots.push(d);
    }
  }

  /** Opens an existing SIF; throws a RuntimeError naming the file when it is not one (or not a regular file). */
  static open(path: string, opts: { writable?: boolean } = {}): SifImage {
    const fd = openRegularFile(path, opts.writable);
    try {
      return new SifImage(path, fd, !!opts.writable);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** Reads a SIF from an fd the caller opened (and keeps: close() leaves it open); `path` names it in messages. */
  static openFd(path: string, fd: number): SifImage {
    return new SifImage(path, fd, false, false);
  }

  /** True when the file starts like a SIF (magic at offset 32); never throws for readable files. */
  static isSif(path: string): boolean {
    let fd: number | undefined;
    try {
      fd = openRegularFile(path);
      const head = Buffer.alloc(42);
      return fs.readSync(fd, head, 0, 42, 0) === 42 && readString(head, 32, 10) === SIF_MAGIC;
    } catch {
      return false;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  /** Writes a new SIF at path (truncating any existing file) holding objects in order; returns it open writable. */
  static create(path: string, objects: ObjectInput[], opts: CreateOptions = {}): SifImage {
    const deterministic = !!opts.deterministic;
    const time = opts.time ?? (deterministic ? ZERO_TIME : nowSeconds());
    const total = opts.descriptorsTotal ?? DEFAULT_DESCRIPTORS_TOTAL;
    const offset = opts.descriptorsOffset ?? DEFAULT_DESCRIPTORS_OFFSET;
    if (total < objects.length) {
      throw new RuntimeError(`${objects.length} objects do not fit in ${total} descriptors`, { op: 'sif', path });
    }
    const header: SifHeader = {
      launchScript: opts.launchScript ?? DEFAULT_LAUNCH_SCRIPT,
      magic: SIF_MAGIC,
      version: SIF_VERSION,
      arch: '00',
      id: opts.id ?? (deterministic ? Buffer.alloc(16) : randomUuid()),
      createdAt: time,
      modifiedAt: time,
      descriptorsFree: total,
      descriptorsTotal: total,
      descriptorsOffset: offset,
      descriptorsSize: total * DESCRIPTOR_SIZE,
      dataOffset: offset + total * DESCRIPTOR_SIZE,
      dataSize: 0,
    };
    const layout = Buffer.alloc(header.dataOffset);
    serializeHeader(header).copy(layout, 0);
    try {
      fs.writeFileSync(path, layout);
    } catch (e) {
      throw fromSystemError('create', path, e);
    }
    const img = SifImage.open(path, { writable: true });
    try {
      for (const o of objects) img.addObject(o, { time });
      // addObject bumps ModifiedAt; a fresh image keeps its creation time there, as the reference does.
      img.header.modifiedAt = time;
      img.writeHeader();
    } catch (e) {
      img.close();
      throw e;
    }
    return img;
  }

  close(): void {
    if (this.fd >= 0 && this.ownsFd) fs.closeSync(this.fd);
    this.fd = -1;
  }

  /** Used descriptors in id order. */
  descriptors(): Descriptor[] {
    return this.slots.filter((d) => d.used);
  }

  descriptor(id: number): Descriptor {
    const d = this.slots[id - 1];
    if (!d?.used) throw new RuntimeError(`${this.path}: no SIF object with id ${id}`, { op: 'sif', path: this.path });
    return d;
  }

  /** The first PrimSys partition (what Singularity boots), if any. */
  primaryPartition(): Descriptor | undefined {
    return this.slots.find((d) => d.used && d.partition?.partType === PartType.PrimSys);
  }

  /** Used descriptors in group g (unmasked group number), in id order. */
  group(g: number): Descriptor[] {
    return this.descriptors().filter((d) => d.groupId === g);
  }

  /** Distinct non-zero group numbers, ascending. */
  groupIds(): number[] {
    return [...new Set(this.descriptors().map((d) => d.groupId).filter((g) => g !== 0))].sort((a, b) => a - b);
  }

  /** Bytes [offset, offset+length) of the file; short at end of file. */
  readAt(offset: number, length: number): Buffer {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return done === length ? buf : buf.subarray(0, done);
  }

  readObject(id: number): Buffer {
    const d = this.descriptor(id);
    // Checked before reading, so a size claimed past the end of the file costs no allocation.
    if (d.offset + d.size > fs.fstatSync(this.fd).size) {
      throw new RuntimeError(`${this.path}: object ${id} is truncated`, { op: 'sif', path: this.path });
    }
    const data = this.readAt(d.offset, d.size);
    if (data.length !== d.size) {
      throw new RuntimeError(`${this.path}: object ${id} is truncated`, { op: 'sif', path: this.path });
    }
    return data;
  }

  /** Streams an object's bytes into a new file at dest (mode 0644). */
  copyObjectTo(id: number, dest: string): void {
    const d = this.descriptor(id);
    const out = fs.openSync(dest, 'w', 0o644);
    try {
      for (let done = 0; done < d.size;) {
        const chunk = this.readAt(d.offset + done, Math.min(COPY_CHUNK, d.size - done));
        if (chunk.length === 0) throw new RuntimeError(`${this.path}: object ${id} is truncated`, { op: 'sif' });
        fs.writeSync(out, chunk);
        done += chunk.length;
      }
    } finally {
      fs.closeSync(out);
    }
  }

  /** Calls fn on each chunk of an object's bytes (for hashing large partitions). */
  forEachObjectChunk(id: number, fn: (chunk: Buffer) => void): void {
    const d = this.descriptor(id);
    for (let done = 0; done < d.size;) {
      const chunk = this.readAt(d.offset + done, Math.min(COPY_CHUNK, d.size - done));
      if (chunk.length === 0) throw new RuntimeError(`${this.path}: object ${id} is truncated`, { op: 'sif' });
      fn(chunk);
      done += chunk.length;
    }
  }

  private requireWritable(): void {
    if (!this.writable) throw new RuntimeError(`${this.path}: SIF opened read-only`, { op: 'sif', path: this.path });
  }

  private writeAt(buf: Buffer, offset: number): void {
    let done = 0;
    while (done < buf.length) done += fs.writeSync(this.fd, buf, done, buf.length - done, offset + done);
  }

  private writeHeader(): void {
    this.writeAt(serializeHeader(this.header), 0);
  }

  private writeDescriptors(): void {
    this.writeAt(Buffer.concat(this.slots.map(serializeDescriptor)), this.header.descriptorsOffset);
  }

  /** Writes data at offset, returning the number of bytes written. */
  private writeData(data: ObjectData, offset: number): number {
    if (Buffer.isBuffer(data)) {
      this.writeAt(data, offset);
      return data.length;
    }
    let src: number;
    try {
      src = fs.openSync(data.path, 'r');
    } catch (e) {
      throw fromSystemError('open', data.path, e);
    }
    try {
      const chunk = Buffer.alloc(COPY_CHUNK);
      let total = 0;
      for (;;) {
        const n = fs.readSync(src, chunk, 0, COPY_CHUNK, null);
        if (n === 0) return total;
        this.writeAt(chunk.subarray(0, n), offset + total);
        total += n;
      }
    } finally {
      fs.closeSync(src);
    }
  }

  private buildExtra(o: ObjectInput, data: ObjectData): Buffer {
    if (o.extra) {
      const x = Buffer.alloc(EXTRA_SIZE);
      o.extra.copy(x, 0, 0, EXTRA_SIZE);
      return x;
    }
    const x = Buffer.alloc(EXTRA_SIZE);
    switch (o.dataType) {
      case DataType.Partition:
        if (!o.partition) throw new RuntimeError('a partition object needs fsType and partType', { op: 'sif' });
        return partitionExtra(o.partition);
      case DataType.Signature:
        if (!o.signature) throw new RuntimeError('a signature object needs a hash type', { op: 'sif' });
        x.writeInt32LE(o.signature.hashType, 0);
        o.signature.entity?.copy(x, 4, 0, 256);
        return x;
      case DataType.CryptoMessage:
        if (!o.cryptoMessage) throw new RuntimeError('a crypto message needs format and message types', { op: 'sif' });
        x.writeInt32LE(o.cryptoMessage.formatType, 0);
        x.writeInt32LE(o.cryptoMessage.messageType, 4);
        return x;
      case DataType.SBOM:
        if (o.sbomFormat === undefined) throw new RuntimeError('an SBOM object needs a format', { op: 'sif' });
        x.writeInt32LE(o.sbomFormat, 0);
        return x;
      case DataType.OCIRootIndex:
      case DataType.OCIBlob: {
        const digest = o.ociDigest ?? `sha256:${sha256Of(data)}`;
        writeString(x, 0, EXTRA_SIZE, digest, 'OCI digest');
        return x;
      }
    }
    return x;
  }

  /** Appends an object in the first free slot; returns its descriptor. */
  addObject(o: ObjectInput, opts: ModifyOptions = {}): Descriptor {
    this.requireWritable();
    const time = opts.time ?? nowSeconds();
    const slot = this.slots.findIndex((d) => !d.used);
    if (slot < 0) {
      throw new RuntimeError(`${this.path}: no free descriptor slots (all ${this.header.descriptorsTotal} used)`, {
        op: 'sif', path: this.path,
      });
    }
    if (o.linkedId !== undefined && o.linkedGroup !== undefined) {
      throw new RuntimeError('an object links either to an object or to a group, not both', { op: 'sif' });
    }
    const extra = this.buildExtra(o, o.data);
    const isPrimary = o.dataType === DataType.Partition && extra.readInt32LE(4) === PartType.PrimSys;
    if (isPrimary && this.primaryPartition()) {
      throw new RuntimeError(`${this.path}: image already has a primary system partition`, { op: 'sif', path: this.path });
    }
    const alignment = o.alignment ?? (o.dataType === DataType.Partition ? DEFAULT_PARTITION_ALIGNMENT : 1);
    const unaligned = this.header.dataOffset + this.header.dataSize;
    const offset = alignUp(unaligned, alignment);
    const size = this.writeData(o.data, offset);
    const d: Descriptor = {
      ...emptyDescriptor(),
      dataType: o.dataType,
      used: true,
      id: slot + 1,
      groupId: o.groupId ?? 1,
      linkedId: o.linkedGroup ?? o.linkedId ?? 0,
      linkedToGroup: o.linkedGroup !== undefined,
      offset,
      size,
      sizeWithPadding: offset - unaligned + size,
      createdAt: o.time ?? time,
      modifiedAt: o.time ?? time,
      name: o.name ?? '',
      extra,
    };
    decodeExtra(d);
    this.slots[slot] = d;
    this.header.dataSize += d.sizeWithPadding;
    this.header.descriptorsFree--;
    this.header.modifiedAt = time;
    if (isPrimary) this.header.arch = readString(extra, 8, 3);
    this.writeDescriptors();
    this.writeHeader();
    return d;
  }

  deleteObject(id: number, opts: DeleteOptions = {}): void {
    this.requireWritable();
    const d = this.descriptor(id);
    if (opts.zero) {
      const zeros = Buffer.alloc(Math.min(COPY_CHUNK, d.size));
      for (let done = 0; done < d.size; done += zeros.length) {
        this.writeAt(zeros.subarray(0, Math.min(zeros.length, d.size - done)), d.offset + done);
      }
    }
    if (d.partition?.partType === PartType.PrimSys) this.header.arch = '00';
    this.slots[id - 1] = emptyDescriptor();
    this.header.descriptorsFree++;
    this.header.modifiedAt = opts.time ?? nowSeconds();
    if (opts.compact) {
      const end = this.descriptors().reduce((m, x) => Math.max(m, x.offset + x.size), this.header.dataOffset);
      this.header.dataSize = end - this.header.dataOffset;
      fs.ftruncateSync(this.fd, end);
    }
    this.writeDescriptors();
    this.writeHeader();
  }

  /** Makes partition id the primary system partition, demoting the current one to System. */
  setPrimaryPartition(id: number, opts: ModifyOptions = {}): void {
    this.requireWritable();
    const d = this.descriptor(id);
    if (!d.partition) {
      throw new RuntimeError(`${this.path}: object ${id} is not a partition`, { op: 'sif', path: this.path });
    }
    const current = this.primaryPartition();
    if (current && current.id !== id) {
      current.extra.writeInt32LE(PartType.System, 4);
      decodeExtra(current);
    }
    d.extra.writeInt32LE(PartType.PrimSys, 4);
    decodeExtra(d);
    this.header.arch = readString(d.extra, 8, 3);
    this.header.modifiedAt = opts.time ?? nowSeconds();
    this.writeDescriptors();
    this.writeHeader();
  }
}

/** Hex SHA-256 of an object's data, read in chunks when it is a file. */
export function sha256Of(data: ObjectData): string {
  const h = nodeCrypto().createHash('sha256');
  if (Buffer.isBuffer(data)) return h.update(data).digest('hex');
  const fd = fs.openSync(data.path, 'r');
  try {
    const chunk = Buffer.alloc(COPY_CHUNK);
    for (let n: number; (n = fs.readSync(fd, chunk, 0, COPY_CHUNK, null)) > 0;) h.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

