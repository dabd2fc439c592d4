// Issue 13, finding 7 (the tsrt-singularity parts; the created init's fds are tested with the executor): a
// FIFO named x.sif blocked every tsrt-singularity command that looked at it for ever (the open waited for a
// writer), and SIF offsets that are negative or beyond 2^53 printed Node's internal range error instead of
// saying the SIF is corrupt. Images are now opened without blocking and checked on the fd first, and every
// offset and size is checked when the descriptors are read.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataType, DESCRIPTOR_SIZE, FsType, PartType, SifImage } from '../../src/sif/index.js';
import { tmpdir } from '../helpers.js';
import { SINGULARITY, singularity } from '../sif-helpers.js';

const dir = tmpdir('tsrt-finding7-');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Node's own errors, which a user should never see for a bad file. */
const NODE_INTERNAL = /ERR_[A-Z_]+|RangeError|TypeError|out of range|\bposition\b|at .*\.js:\d+/;

t.test('finding 7: a FIFO named x.sif is refused at once by every command that reads images', async tt => {
  const fifo = path.join(dir, 'x.sif');
  spawnSync('/usr/bin/mkfifo', [fifo]);
  const commands = [
    ['exec', fifo, 'true'],
    ['run', fifo],
    ['shell', fifo],
    ['inspect', fifo],
    ['run-help', fifo],
    ['test', fifo],
    ['sif', 'header', fifo],
    ['sif', 'list', fifo],
    ['sif', 'info', '1', fifo],
    ['sif', 'dump', '1', fifo],
    ['verify', fifo],
    ['build', '--sandbox', path.join(dir, 'out'), fifo],
  ];
  for (const args of commands) {
    // Bounded: a command that blocks on the FIFO is killed (and fails the test) instead of hanging the run.
    const r = singularity(args, { timeout: 30_000, input: '' });
    tt.equal(r.signal, null, `${args.join(' ')} returns instead of blocking`);
    tt.not(r.code, 0, `${args.join(' ')} fails`);
    tt.match(r.stderr, /x\.sif.*not a regular file/, `${args.join(' ')} says why: ${r.stderr.trim().split('\n').pop()}`);
  }
});

/** A valid one-partition SIF; `patch` then writes raw int64 fields (header or descriptor 1) in place. */
function sifWith(name: string, patch: { at: number; value: bigint }[]): string {
  const sqfs = path.join(dir, 'part.sqfs');
  fs.writeFileSync(sqfs, Buffer.alloc(8192, 1));
  const file = path.join(dir, name);
  SifImage.create(file, [
    { dataType: DataType.Partition, data: { path: sqfs }, partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys } },
  ]).close();
  const fd = fs.openSync(file, 'r+');
  for (const p of patch) {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(p.value);
    fs.writeSync(fd, b, 0, 8, p.at);
  }
  fs.closeSync(fd);
  return file;
}

const DESC1 = 4096;
const cases: [string, { at: number; value: bigint }[]][] = [
  ['a negative object offset', [{ at: DESC1 + 17, value: -4096n }]],
  ['an object offset beyond 2^53', [{ at: DESC1 + 17, value: 2n ** 60n }]],
  ['a negative object size', [{ at: DESC1 + 25, value: -1n }]],
  ['an object size beyond 2^53', [{ at: DESC1 + 25, value: 2n ** 62n }]],
  [
    'offset + size beyond 2^53',
    [
      { at: DESC1 + 17, value: 2n ** 53n - 10n },
      { at: DESC1 + 25, value: 100n },
    ],
  ],
  ['a negative descriptor table offset', [{ at: 96, value: -BigInt(DESCRIPTOR_SIZE) }]],
  ['a data offset beyond 2^53', [{ at: 112, value: 2n ** 61n }]],
];

t.test('finding 7: SIF offsets and sizes that are negative or beyond 2^53 say "corrupt SIF", never a Node error', async tt => {
  for (const [what, patch] of cases) {
    const file = sifWith(`${what.replace(/\W+/g, '-')}.sif`, patch);
    for (const args of [
      ['sif', 'list', file],
      ['sif', 'info', '1', file],
      ['sif', 'dump', '1', file],
      ['inspect', file],
      ['exec', file, 'true'],
    ]) {
      const r = singularity(args, { timeout: 30_000, input: '' });
      tt.not(r.code, 0, `${what}: ${args.slice(0, 2).join(' ')} fails`);
      tt.match(r.stderr, /corrupt SIF/, `${what}: ${args.slice(0, 2).join(' ')} says the SIF is corrupt`);
      tt.notMatch(r.stderr, NODE_INTERNAL, `${what}: ${args.slice(0, 2).join(' ')} shows no Node internal error: ${r.stderr.trim()}`);
    }
  }
});

t.test('finding 7: a SIF with sane offsets still lists (the checks refuse only what is out of range)', async tt => {
  const file = sifWith('good.sif', []);
  const r = spawnSync(SINGULARITY, ['sif', 'list', file], { encoding: 'utf8' });
  tt.equal(r.status, 0, r.stderr);
  tt.match(r.stdout, /^1 +\|1 +\|NONE +\|\d+-\d+ +\|FS \(Squashfs\/\*System\/amd64\)$/m);
});
