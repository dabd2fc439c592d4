// SifImage: one SIF file open by fd, read and modified in place (objects added, deleted, the primary partition
// set), large objects streamed, never loaded whole. The byte layout is ./codec.ts's.
import { nodeCrypto } from '../lazy-crypto.js';
import * as fs from 'node:fs';
import { RuntimeError, fromSystemError } from '../errors.js';
import {
  DESCRIPTOR_INT64,
  HEADER_INT64,
  checkOffset,
  decodeExtra,
  emptyDescriptor,
  parseDescriptor,
  parseHeader,
  partitionExtra,
  readString,
  serializeDescriptor,
  serializeHeader,
  writeString,
} from './codec.js';
import {
  DEFAULT_DESCRIPTORS_OFFSET,
  DEFAULT_DESCRIPTORS_TOTAL,
  DEFAULT_LAUNCH_SCRIPT,
  DEFAULT_PARTITION_ALIGNMENT,
  DESCRIPTOR_SIZE,
  DataType,
  EXTRA_SIZE,
  HEADER_SIZE,
  PartType,
  SIF_MAGIC,
  SIF_VERSION,
  ZERO_TIME,
  type CreateOptions,
  type DeleteOptions,
  type Descriptor,
  type ModifyOptions,
  type ObjectData,
  type ObjectInput,
  type SifHeader,
} from './layout.js';

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

export class SifImage {
  readonly path: string;
  header: SifHeader;
  private fd: number;
  private readonly writable: boolean;
  /** Every slot, used or not, index = id - 1. */
  private slots: Descriptor[];

  private constructor(
    path: string,
    fd: number,
    writable: boolean,
    private readonly ownsFd = true,
  ) {
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
        for (const [name, at] of DESCRIPTOR_INT64)
          if (['offset', 'size', 'sizeWithPadding'].includes(name)) checkOffset(path, `object ${d.id} ${name}`, raw, at);
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
    return this.slots.filter(d => d.used);
  }

  descriptor(id: number): Descriptor {
    const d = this.slots[id - 1];
    if (!d?.used) throw new RuntimeError(`${this.path}: no SIF object with id ${id}`, { op: 'sif', path: this.path });
    return d;
  }

  /** The first PrimSys partition (what Singularity boots), if any. */
  primaryPartition(): Descriptor | undefined {
    return this.slots.find(d => d.used && d.partition?.partType === PartType.PrimSys);
  }

  /** Used descriptors in group g (unmasked group number), in id order. */
  group(g: number): Descriptor[] {
    return this.descriptors().filter(d => d.groupId === g);
  }

  /** Distinct non-zero group numbers, ascending. */
  groupIds(): number[] {
    return [
      ...new Set(
        this.descriptors()
          .map(d => d.groupId)
          .filter(g => g !== 0),
      ),
    ].sort((a, b) => a - b);
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
      for (let done = 0; done < d.size; ) {
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
    for (let done = 0; done < d.size; ) {
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
    const slot = this.slots.findIndex(d => !d.used);
    if (slot < 0) {
      throw new RuntimeError(`${this.path}: no free descriptor slots (all ${this.header.descriptorsTotal} used)`, {
        op: 'sif',
        path: this.path,
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
    for (let n: number; (n = fs.readSync(fd, chunk, 0, COPY_CHUNK, null)) > 0; ) h.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}
