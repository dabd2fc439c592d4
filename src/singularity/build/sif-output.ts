// The SIF a build writes (docs/singularity.md §2.5, in Singularity's order, all in object group 1): the
// definition file, labels JSON, environment, the inspect-metadata.json generic JSON object, then the squashfs
// root filesystem as the primary system partition, 4096-byte aligned.
import * as fs from 'node:fs';
import * as crypto from 'node:crypto';

const HEADER_SIZE = 128;
const DESCRIPTORS_OFFSET = 4096;
const DESCRIPTOR_SIZE = 585;
const DESCRIPTOR_SLOTS = 48;
const DATA_OFFSET = DESCRIPTORS_OFFSET + DESCRIPTOR_SLOTS * DESCRIPTOR_SIZE;
const PARTITION_ALIGN = 4096;
const GROUP_MASK = 0xf0000000;
const LAUNCH_SCRIPT = '#!/usr/bin/env run-singularity\n';

const DATA_DEFFILE = 0x4001;
const DATA_ENVVAR = 0x4002;
const DATA_LABELS = 0x4003;
const DATA_PARTITION = 0x4004;
const DATA_GENERIC_JSON = 0x4006;
const FS_SQUASHFS = 1;
const PART_PRIMSYS = 2;

/** The header's and partitions' ASCII arch codes. */
const ARCH_CODES: Record<string, string> = {
  '386': '01', amd64: '02', arm: '03', arm64: '04', ppc64: '05', ppc64le: '06', mips: '07', mipsle: '08', mips64: '09',
  mips64le: '10', s390x: '11', riscv64: '12', loong64: '13',
};

export interface SifContents {
  deffile: string;
  labels: Buffer;
  environment: string;
  /** JSON text of the inspect metadata. */
  inspect: string;
  /** Path of the squashfs image of the root filesystem. */
  squashfs: string;
  arch: string;
}

interface PlannedObject {
  dataType: number;
  name: string;
  size: number;
  align: number;
  extra?: Buffer;
  write(fd: number, at: number): void;
}

function bytes(data: Buffer): Pick<PlannedObject, 'size' | 'write'> {
  return { size: data.length, write: (fd, at) => fs.writeSync(fd, data, 0, data.length, at) };
}

function copyFileInto(fd: number, file: string, at: number): void {
  const input = fs.openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(1 << 20);
    let done = 0;
    for (;;) {
      const n = fs.readSync(input, chunk, 0, chunk.length, done);
      if (n === 0) break;
      fs.writeSync(fd, chunk, 0, n, at + done);
      done += n;
    }
  } finally {
    fs.closeSync(input);
  }
}

/** Writes a new SIF at `file` (which must not exist). */
export function writeSif(file: string, c: SifContents): void {
  const archCode = ARCH_CODES[c.arch] ?? '00';
  const partitionExtra = Buffer.alloc(384);
  partitionExtra.writeInt32LE(FS_SQUASHFS, 0);
  partitionExtra.writeInt32LE(PART_PRIMSYS, 4);
  partitionExtra.write(archCode, 8, 'ascii');
  const objects: PlannedObject[] = [
    { dataType: DATA_DEFFILE, name: '', align: 1, ...bytes(Buffer.from(c.deffile)) },
    { dataType: DATA_LABELS, name: '', align: 1, ...bytes(c.labels) },
    { dataType: DATA_ENVVAR, name: '', align: 1, ...bytes(Buffer.from(c.environment)) },
    { dataType: DATA_GENERIC_JSON, name: 'inspect-metadata.json', align: 1, ...bytes(Buffer.from(c.inspect)) },
    {
      dataType: DATA_PARTITION, name: '', align: PARTITION_ALIGN, extra: partitionExtra,
      size: fs.statSync(c.squashfs).size, write: (fd, at) => copyFileInto(fd, c.squashfs, at),
    },
  ];
  const now = BigInt(Math.floor(Date.now() / 1000));
  const descriptors = Buffer.alloc(DESCRIPTOR_SLOTS * DESCRIPTOR_SIZE);
  const fd = fs.openSync(file, 'wx', 0o644);
  try {
    let end = DATA_OFFSET;
    objects.forEach((o, i) => {
      const offset = Math.ceil(end / o.align) * o.align;
      o.write(fd, offset);
      const d = descriptors.subarray(i * DESCRIPTOR_SIZE, (i + 1) * DESCRIPTOR_SIZE);
      d.writeInt32LE(o.dataType, 0);
      d.writeUInt8(1, 4);
      d.writeUInt32LE(i + 1, 5);
      d.writeUInt32LE((1 | GROUP_MASK) >>> 0, 9);
      d.writeUInt32LE(0, 13);
      d.writeBigInt64LE(BigInt(offset), 17);
      d.writeBigInt64LE(BigInt(o.size), 25);
      d.writeBigInt64LE(BigInt(offset - end + o.size), 33);
      d.writeBigInt64LE(now, 41);
      d.writeBigInt64LE(now, 49);
      d.write(o.name, 73, 128, 'utf8');
      o.extra?.copy(d, 201);
      end = offset + o.size;
    });
    const header = Buffer.alloc(HEADER_SIZE);
    header.write(LAUNCH_SCRIPT, 0, 'ascii');
    header.write('SIF_MAGIC', 32, 'ascii');
    header.write('01', 42, 'ascii');
    header.write(archCode, 45, 'ascii');
    const id = crypto.randomBytes(16);
    id[6] = (id[6]! & 0x0f) | 0x40;
    id[8] = (id[8]! & 0x3f) | 0x80;
    id.copy(header, 48);
    header.writeBigInt64LE(now, 64);
    header.writeBigInt64LE(now, 72);
    header.writeBigInt64LE(BigInt(DESCRIPTOR_SLOTS - objects.length), 80);
    header.writeBigInt64LE(BigInt(DESCRIPTOR_SLOTS), 88);
    header.writeBigInt64LE(BigInt(DESCRIPTORS_OFFSET), 96);
    header.writeBigInt64LE(BigInt(DESCRIPTOR_SLOTS * DESCRIPTOR_SIZE), 104);
    header.writeBigInt64LE(BigInt(DATA_OFFSET), 112);
    header.writeBigInt64LE(BigInt(end - DATA_OFFSET), 120);
    fs.writeSync(fd, header, 0, header.length, 0);
    fs.writeSync(fd, descriptors, 0, descriptors.length, DESCRIPTORS_OFFSET);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Offset and size of the first primary system partition of a SIF, if it has one. */
export function sifPrimaryPartition(file: string): { offset: number; size: number; fstype: number } | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const header = Buffer.alloc(HEADER_SIZE);
    fs.readSync(fd, header, 0, HEADER_SIZE, 0);
    const total = Number(header.readBigInt64LE(88));
    const offset = Number(header.readBigInt64LE(96));
    const table = Buffer.alloc(total * DESCRIPTOR_SIZE);
    fs.readSync(fd, table, 0, table.length, offset);
    for (let i = 0; i < total; i++) {
      const d = table.subarray(i * DESCRIPTOR_SIZE, (i + 1) * DESCRIPTOR_SIZE);
      if (d.readUInt8(4) !== 1 || d.readInt32LE(0) !== DATA_PARTITION || d.readInt32LE(205) !== PART_PRIMSYS) continue;
      return { offset: Number(d.readBigInt64LE(17)), size: Number(d.readBigInt64LE(25)), fstype: d.readInt32LE(201) };
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}
