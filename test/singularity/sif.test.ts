// The SIF library against the reference's own files (test/fixtures/sif, written by sylabs/sif: see its
// PROVENANCE.md) and the reference's layout: every fixture parsed field by field, what sif v2 wrote re-serialised byte for
// byte, the writer rules, and the siftool-compatible `sif` subcommands.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DataType,
  FsType,
  PartType,
  SifImage,
  ZERO_TIME,
  parseDescriptor,
  parseHeader,
  serializeDescriptor,
  serializeHeader,
  type ObjectInput,
} from '../../src/sif/index.js';
import { descriptorDigest, headerDigest, objectDigest } from '../../src/sif/integrity.js';
import { FIXTURES, IMAGES, REPO_DIST, singularity } from '../sif-helpers.js';

const fixture = (name: string): string => path.join(IMAGES, name);
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-sif-test-'));
t.teardown(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** Summary rows: [id, type, group, link ("G1" for a group), offset, size, name, extra summary]. */
type Row = [number, number, number, number | string, number, number, string, string | number];
const expected: Record<string, { size: number; free: number; dataOffset: number; dataSize: number; arch: string; rows: Row[] }> = {
  'empty.sif': { size: 32176, free: 48, dataOffset: 32176, dataSize: 0, arch: '00', rows: [] },
  'one-object-time.sif': {
    size: 32178,
    free: 47,
    dataOffset: 32176,
    dataSize: 2,
    arch: '00',
    rows: [[1, 0x4006, 1, 0, 32176, 2, 'data.json', '']],
  },
  'one-object-generic-json.sif': {
    size: 32178,
    free: 47,
    dataOffset: 32176,
    dataSize: 2,
    arch: '00',
    rows: [[1, 0x4006, 1, 0, 32176, 2, 'data.json', '']],
  },
  'one-object-crypt-message.sif': {
    size: 32180,
    free: 47,
    dataOffset: 32176,
    dataSize: 4,
    arch: '00',
    rows: [[1, 0x4008, 1, 0, 32176, 4, '', '1/256']],
  },
  'one-object-sbom.sif': {
    size: 32630,
    free: 47,
    dataOffset: 32176,
    dataSize: 454,
    arch: '00',
    rows: [[1, 0x4009, 1, 0, 32176, 454, '', 1]],
  },
  'one-object-oci-blob.sif': {
    size: 33023,
    free: 47,
    dataOffset: 32176,
    dataSize: 847,
    arch: '00',
    rows: [[1, 0x400b, 1, 0, 32176, 847, '', 'digest']],
  },
  'one-object-oci-root-index.sif': {
    size: 32882,
    free: 47,
    dataOffset: 32176,
    dataSize: 706,
    arch: '00',
    rows: [[1, 0x400a, 1, 0, 32176, 706, '', 'digest']],
  },
  'one-group.sif': {
    size: 40960,
    free: 46,
    dataOffset: 32176,
    dataSize: 8784,
    arch: '01',
    rows: [
      [1, 0x4004, 1, 0, 32768, 4, '', '4/1/386'],
      [2, 0x4004, 1, 0, 36864, 4096, '', '1/2/386'],
    ],
  },
  'two-groups.sif': {
    size: 303104,
    free: 45,
    dataOffset: 32176,
    dataSize: 270928,
    arch: '01',
    rows: [
      [1, 0x4004, 1, 0, 32768, 4, '', '4/1/386'],
      [2, 0x4004, 1, 0, 36864, 4096, '', '1/2/386'],
      [3, 0x4004, 2, 0, 40960, 262144, '', '2/1/amd64'],
    ],
  },
  'one-group-signed-pgp.sif': {
    size: 42008,
    free: 45,
    dataOffset: 32176,
    dataSize: 9832,
    arch: '01',
    rows: [
      [1, 0x4004, 1, 0, 32768, 4, '', '4/1/386'],
      [2, 0x4004, 1, 0, 36864, 4096, '', '1/2/386'],
      [3, 0x4005, 0, 'G1', 40960, 1048, '', 'h1'],
    ],
  },
  'two-groups-signed-dsse.sif': {
    size: 306224,
    free: 43,
    dataOffset: 32176,
    dataSize: 274048,
    arch: '01',
    rows: [
      [1, 0x4004, 1, 0, 32768, 4, '', '4/1/386'],
      [2, 0x4004, 1, 0, 36864, 4096, '', '1/2/386'],
      [3, 0x4004, 2, 0, 40960, 262144, '', '2/1/amd64'],
      [4, 0x4005, 0, 'G1', 303104, 1694, '', 'h1'],
      [5, 0x4005, 0, 'G2', 304798, 1426, '', 'h1'],
    ],
  },
  'one-group-signed-legacy.sif': {
    size: 41569,
    free: 45,
    dataOffset: 32768,
    dataSize: 8801,
    arch: '01',
    rows: [
      [1, 0x4004, 1, 0, 32768, 4, '.', '4/1/386'],
      [2, 0x4004, 1, 0, 36864, 4, '.', '1/2/386'],
      [3, 0x4005, 1, 2, 40960, 609, 'part-signature', 'h2'],
    ],
  },
};

function summary(img: SifImage): Row[] {
  return img.descriptors().map(d => {
    let extra: string | number = '';
    if (d.partition) extra = `${d.partition.fsType}/${d.partition.partType}/${d.partition.arch}`;
    else if (d.signature) extra = `h${d.signature.hashType}`;
    else if (d.cryptoMessage) extra = `${d.cryptoMessage.formatType}/${d.cryptoMessage.messageType}`;
    else if (d.sbomFormat !== undefined) extra = d.sbomFormat;
    else if (d.ociDigest !== undefined) extra = 'digest';
    return [d.id, d.dataType, d.groupId, d.linkedToGroup ? `G${d.linkedId}` : d.linkedId, d.offset, d.size, d.name, extra];
  });
}

/** Objects of img as create() inputs, keeping every descriptor field the writer takes from its input. */
function inputsOf(img: SifImage): ObjectInput[] {
  return img.descriptors().map(d => ({
    dataType: d.dataType,
    data: img.readObject(d.id),
    name: d.name,
    groupId: d.groupId,
    ...(d.linkedToGroup ? { linkedGroup: d.linkedId } : { linkedId: d.linkedId }),
    extra: d.extra,
    time: d.createdAt,
  }));
}

t.test('every fixture parses: header fields, descriptors, Extra views', async t => {
  for (const [name, want] of Object.entries(expected)) {
    const img = SifImage.open(fixture(name));
    t.equal(fs.statSync(fixture(name)).size, want.size, `${name}: file size`);
    t.equal(img.header.magic, 'SIF_MAGIC', `${name}: magic`);
    t.equal(img.header.version, '01', `${name}: version`);
    t.equal(img.header.arch, want.arch, `${name}: header arch`);
    t.equal(img.header.descriptorsTotal, 48, `${name}: 48 descriptor slots`);
    t.equal(img.header.descriptorsOffset, 4096, `${name}: descriptors at 4096`);
    t.equal(img.header.descriptorsSize, 48 * 585, `${name}: 585-byte descriptors`);
    t.equal(img.header.descriptorsFree, want.free, `${name}: free slots`);
    t.equal(img.header.dataOffset, want.dataOffset, `${name}: data offset`);
    t.equal(img.header.dataSize, want.dataSize, `${name}: data size`);
    t.same(summary(img), want.rows, `${name}: descriptors`);
    img.close();
  }
  const id = SifImage.open(fixture('empty-id.sif'));
  t.not(id.header.id.toString('hex'), '0'.repeat(32), 'empty-id.sif carries a UUID');
  t.equal(id.header.createdAt, ZERO_TIME, "deterministic images store Go's zero time");
  t.equal(SifImage.open(fixture('empty-launch-script.sif')).header.launchScript.length > 0, true, 'launch script read');
  t.equal(SifImage.open(fixture('one-object-time.sif')).header.createdAt, 1593475316, 'a real creation time');
});

t.test('OCI blob and root index descriptors carry the sha256 of their data', async t => {
  for (const name of ['one-object-oci-blob.sif', 'one-object-oci-root-index.sif']) {
    const img = SifImage.open(fixture(name));
    const d = img.descriptors()[0]!;
    t.equal(d.ociDigest, `sha256:${crypto.createHash('sha256').update(img.readObject(d.id)).digest('hex')}`, name);
  }
});

t.test('primary partition: the PrimSys partition with its offset, size and fs type', async t => {
  const img = SifImage.open(fixture('two-groups.sif'));
  const p = img.primaryPartition()!;
  t.equal(p.id, 2);
  t.equal(p.offset, 36864);
  t.equal(p.size, 4096);
  t.equal(p.partition!.fsType, FsType.Squashfs);
  t.equal(SifImage.open(fixture('empty.sif')).primaryPartition(), undefined, 'none in an empty image');
});

t.test('what sif v2 wrote re-serialises byte-identically through create()', async t => {
  const v2 = fs.readdirSync(IMAGES).filter(f => !f.includes('legacy'));
  t.equal(v2.length, 15, 'all non-legacy fixtures');
  for (const name of v2) {
    const img = SifImage.open(fixture(name));
    const out = path.join(scratch, name);
    SifImage.create(out, inputsOf(img), { launchScript: img.header.launchScript, id: img.header.id, time: img.header.createdAt }).close();
    t.ok(fs.readFileSync(out).equals(fs.readFileSync(fixture(name))), name);
  }
});

t.test('headers and descriptors written by older tools re-serialise unchanged', async t => {
  for (const name of fs.readdirSync(IMAGES).filter(f => f.includes('legacy'))) {
    const raw = fs.readFileSync(fixture(name));
    t.ok(serializeHeader(parseHeader(raw.subarray(0, 128))).equals(raw.subarray(0, 128)), `${name}: header`);
    for (let i = 0; i < 48; i++) {
      const slot = raw.subarray(4096 + i * 585, 4096 + (i + 1) * 585);
      if (!serializeDescriptor(parseDescriptor(slot)).equals(slot)) t.fail(`${name}: descriptor slot ${i}`);
    }
  }
});

t.test("signature digests match the doc's test vectors", async t => {
  const img = SifImage.open(fixture('one-group-signed-pgp.sif'));
  t.match(headerDigest(img), /^sha256:635fa0a1[0-9a-f]+95cc3f1$/, 'header');
  t.match(descriptorDigest(img.descriptor(1), 1), /^sha256:3634ad01[0-9a-f]+a1f41f92$/, 'object 1 descriptor');
  t.match(objectDigest(img, 1), /^sha256:004dfc8d[0-9a-f]+0fb17ec2$/, 'object 1 data');
  t.match(descriptorDigest(img.descriptor(2), 1), /^sha256:04b5f87c[0-9a-f]+d8bf66fd$/, 'object 2 descriptor');
});

t.test('writer rules', async t => {
  const file = path.join(scratch, 'rules.sif');
  const squash = Buffer.concat([Buffer.from('hsqs'), Buffer.alloc(100)]);
  const img = SifImage.create(
    file,
    [
      { dataType: DataType.Deffile, data: Buffer.from('Bootstrap: scratch\n') },
      { dataType: DataType.Partition, data: squash, partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys, arch: 'arm64' } },
    ],
    { deterministic: true },
  );
  t.test('layout: data right after the descriptor table, partitions 4096-aligned, ids = slot + 1', async t => {
    const [def, part] = img.descriptors();
    t.equal(def!.offset, 32176, 'first object at DataOffset');
    t.equal(def!.id, 1);
    t.equal(part!.id, 2);
    t.equal(part!.offset % 4096, 0, 'partition aligned');
    t.equal(part!.sizeWithPadding, part!.offset - (32176 + 19) + squash.length, 'padding counted in SizeWithPadding');
    t.equal(img.header.dataSize, part!.offset + squash.length - 32176, 'DataSize reaches the end of the last object');
    t.equal(fs.statSync(file).size, part!.offset + squash.length, 'file ends with the last object');
    t.equal(def!.groupId, 1, 'default group 1');
    t.equal(fs.readFileSync(file).readUInt32LE(4096 + 9), 0xf0000001, 'group stored with the 0xF0000000 mask');
  });
  t.test('deterministic: zero UUID and Go zero time', async t => {
    t.equal(img.header.id.toString('hex'), '0'.repeat(32));
    t.equal(img.header.createdAt, ZERO_TIME);
    t.equal(img.descriptor(1).createdAt, ZERO_TIME);
  });
  t.test('a PrimSys partition sets the header arch; a second one is refused', async t => {
    t.equal(img.header.arch, '04', 'arm64');
    t.throws(
      () =>
        img.addObject({ dataType: DataType.Partition, data: squash, partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys } }),
      /already has a primary system partition/,
    );
  });
  t.test('add takes the first free slot and decrements DescriptorsFree', async t => {
    const d = img.addObject({ dataType: DataType.GenericJSON, name: 'x.json', data: Buffer.from('{}'), groupId: 0 }, { time: 100 });
    t.equal(d.id, 3);
    t.equal(img.header.descriptorsFree, 45);
    t.equal(img.header.modifiedAt, 100, 'ModifiedAt updated');
    img.deleteObject(1, { time: 200 });
    t.equal(img.header.descriptorsFree, 46, 'delete frees the slot');
    const again = img.addObject({ dataType: DataType.Labels, data: Buffer.from('{"a":"b"}') });
    t.equal(again.id, 1, 'the freed slot is reused');
  });
  t.test('setprim demotes the old primary and copies the new arch', async t => {
    const sys = img.addObject({
      dataType: DataType.Partition,
      data: squash,
      partition: { fsType: FsType.Squashfs, partType: PartType.System, arch: 'riscv64' },
    });
    img.setPrimaryPartition(sys.id);
    t.equal(img.descriptor(2).partition!.partType, PartType.System, 'old primary demoted');
    t.equal(img.primaryPartition()!.id, sys.id);
    t.equal(img.header.arch, '12', 'riscv64');
    t.throws(() => img.setPrimaryPartition(3), /not a partition/);
  });
  t.test('delete with zero and compact; deleting the primary resets the arch', async t => {
    const last = img.descriptors().at(-1)!;
    const before = fs.statSync(file).size;
    img.deleteObject(last.id, { zero: true, compact: true });
    t.ok(fs.statSync(file).size < before, 'compact truncates the file');
    t.equal(img.header.arch, '00', 'arch reset');
    const reopened = SifImage.open(file);
    const end = Math.max(...reopened.descriptors().map(d => d.offset + d.size));
    t.equal(reopened.header.dataOffset + reopened.header.dataSize, end, 'DataSize recomputed');
    t.equal(fs.statSync(file).size, end);
  });
  t.test('bad input is refused with a clear error', async t => {
    t.throws(() => img.descriptor(40), /no SIF object with id 40/);
    t.throws(() => SifImage.open(path.join(FIXTURES, 'keys', 'rsa-public.pem')), /not a SIF file/);
    t.throws(() => SifImage.open(path.join(scratch, 'missing.sif')), /no such file or directory/);
    t.throws(() => SifImage.open(fixture('one-group.sif')).addObject({ dataType: DataType.Generic, data: Buffer.alloc(1) }), /read-only/);
  });
  t.teardown(() => img.close());
});

t.test('sif subcommands', async t => {
  t.test('sif list', async t => {
    const r = singularity(['sif', 'list', fixture('two-groups-signed-pgp.sif')]);
    t.equal(r.code, 0);
    t.equal(
      r.stdout,
      [
        '------------------------------------------------------------------------------',
        'ID   |GROUP   |LINK    |SIF POSITION (start-end)  |TYPE',
        '------------------------------------------------------------------------------',
        '1    |1       |NONE    |32768-32772               |FS (Raw/System/386)',
        '2    |1       |NONE    |36864-40960               |FS (Squashfs/*System/386)',
        '3    |2       |NONE    |40960-303104              |FS (Ext3/System/amd64)',
        '4    |NONE    |1   (G) |303104-304152             |Signature (SHA-256)',
        '5    |NONE    |2   (G) |304152-305001             |Signature (SHA-256)',
        '',
      ].join('\n'),
    );
    const types =
      singularity(['sif', 'list', fixture('one-object-crypt-message.sif')]).stdout +
      singularity(['sif', 'list', fixture('one-object-sbom.sif')]).stdout;
    t.match(types, '|Cryptographic Message (OpenPGP/Clear Signature)');
    t.match(types, '|SBOM (cyclonedx-json)');
  });
  t.test('sif header', async t => {
    t.equal(
      singularity(['sif', 'header', fixture('one-object-oci-root-index.sif')]).stdout,
      [
        'Version:            01',
        'Descriptors Free:   47',
        'Descriptors Total:  48',
        'Descriptors Offset: 4096',
        'Descriptors Size:   27 KiB',
        'Data Offset:        32176',
        'Data Size:          706 B',
        '',
      ].join('\n'),
    );
    const legacy = singularity(['sif', 'header', fixture('one-group-signed-legacy.sif')]).stdout;
    t.match(legacy, 'Launch Script:        #!/usr/bin/env run-singularity\n');
    t.match(legacy, 'Primary Architecture: 386\n');
    t.match(legacy, 'ID:                   6ecc76b7-a497-4f7f-9ebd-8da2a04c6be1\n');
    t.match(legacy, 'Created At:           2020-05-22 19:30:59 +0000 UTC\n');
  });
  t.test('sif info', async t => {
    t.equal(
      singularity(['sif', 'info', '3', fixture('one-group-signed-pgp.sif')]).stdout,
      [
        '  Data Type:  Signature',
        '  ID:         3',
        '  Group ID:   NONE',
        '  Linked ID:  1 (G)',
        '  Offset:     40960',
        '  Size:       1048',
        '  Hash Type:  SHA-256',
        '  Entity:     12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84',
        '',
      ].join('\n'),
    );
    t.equal(
      singularity(['sif', 'info', '1', fixture('one-object-time.sif')]).stdout,
      [
        '  Data Type:    JSON.Generic',
        '  ID:           1',
        '  Group ID:     1',
        '  Linked ID:    NONE',
        '  Offset:       32176',
        '  Size:         2',
        '  Created At:   2020-06-30 00:01:56 +0000 UTC',
        '  Modified At:  2020-06-30 00:01:56 +0000 UTC',
        '  Name:         data.json',
        '',
      ].join('\n'),
    );
    const missing = singularity(['sif', 'info', '9', fixture('one-group.sif')]);
    t.not(missing.code, 0, 'unknown id fails');
    t.match(missing.stderr, 'no SIF object with id 9');
  });
  t.test('sif dump', async t => {
    const r = spawnSync(path.join(REPO_DIST, 'tsrt-singularity'), ['sif', 'dump', '1', fixture('one-object-sbom.sif')]);
    t.ok(r.stdout.equals(SifImage.open(fixture('one-object-sbom.sif')).readObject(1)), 'object bytes on stdout');
  });
  t.test('sif new, add, setprim, del', async t => {
    const file = path.join(scratch, 'cli.sif');
    t.equal(singularity(['sif', 'new', file]).code, 0);
    t.equal(fs.statSync(file).size, 32176, 'an empty SIF');
    const part = path.join(scratch, 'part.img');
    fs.writeFileSync(part, Buffer.concat([Buffer.from('hsqs'), Buffer.alloc(60)]));
    const add = (...flags: string[]) => singularity(['sif', 'add', ...flags, file, part]);
    t.equal(add('--datatype', '4', '--partfs', '1', '--parttype', '2', '--partarch', '2', '--groupid', '1').code, 0);
    t.equal(add('--datatype', '4', '--partfs', '1', '--parttype', '1', '--partarch', '4', '--groupid', '1').code, 0);
    t.equal(add('--datatype', '7', '--filename', 'raw.bin', '--link', '1').code, 0);
    const missingFlags = add('--datatype', '4');
    t.not(missingFlags.code, 0);
    t.match(missingFlags.stderr, '--partfs, --parttype and --partarch must be passed');
    t.match(add('--datatype', '12').stderr, 'datatype flag is required');
    let img = SifImage.open(file);
    t.same(
      summary(img).map(r => [r[0], r[2], r[3], r[6], r[7]]),
      [
        [1, 1, 0, 'part.img', '1/2/amd64'],
        [2, 1, 0, 'part.img', '1/1/arm64'],
        [3, 0, 1, 'raw.bin', ''],
      ],
      'objects with their flags (default name = input file name, default group none)',
    );
    t.equal(img.header.arch, '02');
    t.equal(singularity(['sif', 'setprim', '2', file]).code, 0);
    img = SifImage.open(file);
    t.equal(img.primaryPartition()!.id, 2);
    t.equal(img.header.arch, '04');
    t.equal(singularity(['sif', 'del', '3', file]).code, 0);
    t.same(
      SifImage.open(file)
        .descriptors()
        .map(d => d.id),
      [1, 2],
    );
    const bad = singularity(['sif', 'del', 'x', file]);
    t.equal(bad.code, 1, 'a usage error, as in Singularity');
    t.match(bad.stderr, 'invalid object id "x"');
  });
});
