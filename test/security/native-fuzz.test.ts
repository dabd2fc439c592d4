// Issue 13, adversarial testing of the native core (R10): every C parser of bytes someone else chose, fuzzed
// with libFuzzer under ASan and UBSan (harnesses in test/security/fixtures/fuzz, built by
// hack/check-native.sh): the plan decoder, the /proc/self/mountinfo line parser, tmpcopyup's getdents record
// walk and the rtnetlink reply readers of linux.netDevices. The seed corpus is made here, every run: plans the
// runtime encodes (the golden plans of test/unit/golden), this host's mountinfo lines, getdents batches and
// netlink replies as the kernel writes them. Each fuzzer runs TSRT_FUZZ_SECONDS (30 by default) and prints
// its execs. Then the copy-up walk itself, under ASan and UBSan, copies random trees.
//
// Each bug these found has a named test below that replays its input.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { encodePlan } from '../../src/plan/codec.js';
import type { LaunchPlan } from '../../src/plan/types.js';
import { native } from '../../src/native.js';
import { tmpdir } from '../helpers.js';
import { Rng } from '../robustness/fixtures/configgen.js';
import { treeSnapshot } from '../security-kit.js';
import { randomTree } from './fixtures/random-tree.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SECONDS = Number(process.env['TSRT_FUZZ_SECONDS'] ?? 30);
const SEED = Number(process.env['TSRT_COPYUP_SEED'] ?? Math.floor(Math.random() * 2 ** 32));
const work = tmpdir('tsrt-native-fuzz-');
t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
t.setTimeout((SECONDS * 4 * 3 + 600) * 1000);

const built = spawnSync('bash', [path.join(REPO, 'hack/check-native.sh'), 'fuzzers', path.join(work, 'bin')], { encoding: 'utf8' });
if (built.status !== 0) {
  t.fail(`hack/check-native.sh fuzzers failed (hack/deps.sh installs clang): ${built.stderr}`);
  process.exit(1);
}
const bin = (name: string): string => path.join(work, 'bin', name);
/** Sanitizer reports name files and lines; a crash stops at the first error. */
const sanitizerEnv = { ...process.env, ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1' };

// ---- seeds ----

function seedDir(name: string, seeds: Buffer[]): string {
  const dir = path.join(work, `corpus-${name}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const [i, s] of seeds.entries()) fs.writeFileSync(path.join(dir, `seed-${i}`), s);
  return dir;
}

/** Every golden plan, encoded as the runtime encodes it (a plan with a filter gets a one-instruction program). */
function planSeeds(): Buffer[] {
  const golden = path.join(REPO, 'test/unit/golden');
  const allow = Buffer.from([0x06, 0, 0, 0, 0, 0, 0xff, 0x7f]); // BPF_RET|BPF_K SECCOMP_RET_ALLOW
  return fs
    .readdirSync(golden)
    .filter(f => f.endsWith('.json'))
    .map(f => {
      // u64 fields are kept as decimal strings in the golden files; the codec's BigInt() takes them as they are.
      const plan = JSON.parse(fs.readFileSync(path.join(golden, f), 'utf8')) as LaunchPlan;
      // The fds are bound at encode time: any numbers do, the decoder only checks those the flags need.
      const idmapped = (plan.container?.steps ?? []).filter(s => s.idmap).length;
      const fds = {
        console: 5,
        fifo: 3,
        joinPidfd: plan.container ? undefined : 4,
        userns: Array.from({ length: idmapped }, (_, i) => 10 + i),
      };
      return encodePlan(plan, fds, plan.process.seccomp ? allow : new Uint8Array(0));
    });
}

function mountinfoSeeds(): Buffer[] {
  const lines = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).slice(0, 64);
  lines.push('36 35 98:0 /mnt\\040with\\011tabs /a\\134b rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue');
  lines.push('1 0 0:1 / / rw - rootfs rootfs rw');
  return lines.map(l => Buffer.from(l));
}

/** One getdents64 record: u64 ino, s64 off, u16 reclen, u8 type, the name and its NUL, padded to 8 bytes. */
function dirent(name: string, type = 8): Buffer {
  const reclen = (19 + Buffer.byteLength(name) + 1 + 7) & ~7;
  const b = Buffer.alloc(reclen);
  b.writeBigUInt64LE(1234n, 0);
  b.writeBigInt64LE(BigInt(reclen), 8);
  b.writeUInt16LE(reclen, 16);
  b[18] = type;
  b.write(name, 19);
  return b;
}

function direntSeeds(): Buffer[] {
  return [
    Buffer.concat([dirent('.', 4), dirent('..', 4), dirent('file'), dirent('link', 10), dirent('sub', 4)]),
    Buffer.concat([dirent('.', 4), dirent('x'.repeat(255)), dirent('y'.repeat(200), 10)]),
    Buffer.concat(Array.from({ length: 100 }, (_, i) => dirent(`f${i}`))),
  ];
}

/** One netlink message: header (len, type, flags, seq 1, pid 0) and payload, padded to 4 bytes. */
function nlmsg(type: number, payload: Buffer, seq = 1): Buffer {
  const len = 16 + payload.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt32LE(seq, 8);
  payload.copy(b, 16);
  return b;
}

function rtattr(type: number, data: Buffer): Buffer {
  const b = Buffer.alloc((4 + data.length + 3) & ~3);
  b.writeUInt16LE(4 + data.length, 0);
  b.writeUInt16LE(type, 2);
  data.copy(b, 4);
  return b;
}

const NLMSG_ERROR = 2,
  NLMSG_DONE = 3,
  RTM_NEWLINK = 16,
  RTM_NEWADDR = 20;
/** struct nlmsgerr: the error and the request's header. */
const nlerr = (error: number): Buffer => {
  const b = Buffer.alloc(20);
  b.writeInt32LE(error, 0);
  return b;
};
const ifinfo = (index: number, flags = 1): Buffer => {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  return b;
};
const ifaddr = (family: number, index: number, scope = 0): Buffer => Buffer.from([family, 24, 0, scope, index, 0, 0, 0]);

function netlinkSeeds(): Buffer[] {
  const link = nlmsg(RTM_NEWLINK, Buffer.concat([ifinfo(1), rtattr(3, Buffer.from('eth0\0'))]));
  const v4 = nlmsg(
    RTM_NEWADDR,
    Buffer.concat([ifaddr(2, 1), rtattr(1, Buffer.from([10, 0, 0, 1])), rtattr(2, Buffer.from([10, 0, 0, 1]))]),
  );
  const v6 = nlmsg(RTM_NEWADDR, Buffer.concat([ifaddr(10, 1), rtattr(1, Buffer.alloc(16, 0xfd))]));
  return [
    Buffer.concat([Buffer.from([0]), link]),
    Buffer.concat([Buffer.from([1]), link, nlmsg(NLMSG_ERROR, nlerr(0))]),
    Buffer.concat([Buffer.from([0]), nlmsg(NLMSG_ERROR, nlerr(-19))]),
    Buffer.concat([Buffer.from([2]), v4, v6, nlmsg(NLMSG_DONE, Buffer.alloc(4))]),
  ];
}

t.test('seeds: the golden plans encode into plans the decoder takes', async tt => {
  const refused = planSeeds()
    .map(s => native().checkPlan(s))
    .filter(r => typeof r === 'string');
  tt.same(refused, [], 'every seed decodes, so mutations start from real plans');
});

// ---- the fuzzers ----

const fuzzers: [string, () => Buffer[]][] = [
  ['plan', planSeeds],
  ['mountinfo', mountinfoSeeds],
  ['dirent', direntSeeds],
  ['netlink', netlinkSeeds],
];

for (const [name, seeds] of fuzzers) {
  t.test(`fuzz: ${name} for ${SECONDS} s under ASan and UBSan finds nothing`, async tt => {
    const corpus = seedDir(name, seeds());
    const artifacts = path.join(work, `artifacts-${name}`) + '/';
    fs.mkdirSync(artifacts, { recursive: true });
    // -max_total_time bounds the run; the spawn's own timeout bounds it again should the fuzzer hang.
    const r = spawnSync(
      bin(`${name}-fuzz`),
      [`-max_total_time=${SECONDS}`, '-timeout=10', '-rss_limit_mb=1024', '-print_final_stats=1', `-artifact_prefix=${artifacts}`, corpus],
      { encoding: 'utf8', env: sanitizerEnv, timeout: (SECONDS * 4 + 60) * 1000, maxBuffer: 64 << 20 },
    );
    const done = /Done (\d+) runs in (\d+) second/.exec(r.stderr);
    tt.comment(`${name}: ${done ? `${done[1]} execs in ${done[2]} s` : 'no final count'}, corpus ${fs.readdirSync(corpus).length} inputs`);
    const crashes = fs.readdirSync(artifacts);
    tt.same(crashes, [], `no crashing input (${crashes.map(c => artifacts + c).join(' ')})`);
    tt.equal(
      r.status,
      0,
      `the fuzzer exits 0${
        r.status === 0
          ? ''
          : `: ${r.stderr
              .split('\n')
              .filter(l => /ERROR|SUMMARY|runtime error|#[0-9] /.test(l))
              .slice(0, 12)
              .join('\n')}`
      }`,
    );
    tt.ok(done && Number(done[1]) > 0, 'it ran inputs');
  });
}

// ---- the bugs they found, each replayed ----

/** Runs one input through a harness (a libFuzzer binary runs the files it is given); its status and report. */
function replay(harness: string, input: Buffer, env: Record<string, string> = {}): { status: number | null; report: string } {
  const file = path.join(work, `replay-${harness}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, input);
  const r = spawnSync(bin(`${harness}-fuzz`), [file], { encoding: 'utf8', env: { ...sanitizerEnv, ...env }, timeout: 60_000 });
  const report = `${r.stdout}${r.stderr}`
    .split('\n')
    .filter(l => /ERROR|SUMMARY|answer|#[0-9] .*native/.test(l))
    .slice(0, 8)
    .join('\n');
  return { status: r.status, report };
}

t.test('netlink: an NLMSG_ERROR shorter than struct nlmsgerr is not read past its end', async tt => {
  // A 16-byte error message (a header alone) as the whole datagram: the old reader took the error from the
  // 4 bytes after it.
  const r = replay('netlink', Buffer.concat([Buffer.from([0]), nlmsg(NLMSG_ERROR, Buffer.alloc(0))]));
  tt.equal(r.status, 0, `read within the datagram\n${r.report}`);
});

t.test('netlink: a RTM_NEWLINK shorter than struct ifinfomsg is not copied past its end', async tt => {
  const r = replay('netlink', Buffer.concat([Buffer.from([0]), nlmsg(RTM_NEWLINK, Buffer.alloc(4))]));
  tt.equal(r.status, 0, `read within the datagram\n${r.report}`);
});

t.test('netlink: a RTM_NEWADDR shorter than struct ifaddrmsg is not read past its end', async tt => {
  const r = replay('netlink', Buffer.concat([Buffer.from([2]), nlmsg(RTM_NEWADDR, Buffer.alloc(0))]));
  tt.equal(r.status, 0, `read within the datagram\n${r.report}`);
});

t.test('netlink: an error message with a positive error is a protocol error, not "read on"', async tt => {
  // The kernel's errors are negative; a positive one made the reader's answer look like "more to read".
  const r = replay('netlink', Buffer.concat([Buffer.from([0]), nlmsg(NLMSG_ERROR, nlerr(5))]), { TSRT_FUZZ_PRINT: '1' });
  tt.equal(r.status, 0, `the answer is an errno\n${r.report}`);
  tt.match(r.report, /answer -71/, 'EPROTO');
});

t.test("netlink: an ACK where a link was asked for is not a link (the analyzer's uninitialised ifinfomsg)", async tt => {
  // get_link's answer 0 promised a filled ifinfomsg; an ACK alone left it uninitialised (netdev_move then used
  // its index). It is EPROTO now.
  const r = replay('netlink', Buffer.concat([Buffer.from([0]), nlmsg(NLMSG_ERROR, nlerr(0))]), { TSRT_FUZZ_PRINT: '1' });
  tt.equal(r.status, 0, r.report);
  tt.match(r.report, /answer -71/, 'EPROTO');
});

t.test('netlink: a device name longer than IFNAMSIZ is refused before it is copied into a request', async tt => {
  // Found by the hardened build: the name was copied into the request's 256 bytes of attributes unchecked
  // (the config's names are checked in TypeScript, the addon's callers are not), and _FORTIFY_SOURCE=3 aborted
  // the runtime. Run in a child: the failure mode is an abort.
  const addon = path.join(REPO, 'build/Release/tsrt.node');
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `const a = require(${JSON.stringify(addon)});
    try { a.netdevMove(-1, 'x'.repeat(300), -1, 'y'); console.log('moved'); } catch (e) { console.log('refused: ' + e.message); }`,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  tt.equal(r.status, 0, `the runtime lives on ${r.stderr.trim()}`);
  tt.match(r.stdout, /refused: device name longer than IFNAMSIZ/, 'a clear error');
});

// ---- the copy-up walk itself ----

t.test('copy-up walk under ASan and UBSan: random trees are copied exactly', async tt => {
  tt.comment(`copy-up seed ${SEED} (replay with TSRT_COPYUP_SEED=${SEED})`);
  const rng = new Rng(SEED);
  for (let i = 0; i < 4; i++) {
    const src = path.join(work, `tree-${i}`);
    const dst = path.join(work, `copy-${i}`);
    fs.mkdirSync(src);
    fs.mkdirSync(dst);
    randomTree(rng, src, { entries: 400 + rng.int(2000), bigDirs: 1 }, 0);
    const r = spawnSync(bin('copyup-harness'), [src, dst], { encoding: 'utf8', env: sanitizerEnv, timeout: 300_000 });
    tt.equal(r.status, 0, `tree ${i}: the walk succeeds ${r.stderr.split('\n').slice(0, 12).join('\n')}`);
    // The copy's root is the tmpfs's own: compare what is below it.
    const strip = (s: string): string => s.split('\n').slice(1).join('\n');
    tt.equal(strip(treeSnapshot(dst)), strip(treeSnapshot(src)), `tree ${i}: the copy is the tree`);
  }
});
