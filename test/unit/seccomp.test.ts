// linux.seccomp -> filter descriptor (src/plan/seccomp.ts) -> BPF (libseccomp, through the addon). No root:
// nothing is loaded. The compiled program is run here by a small classic-BPF interpreter against the
// seccomp_data the kernel would build, so every test asserts what the filter answers for a syscall.
// x86_64 host (the project's machine); needs build/Release/tsrt.node (npm run build).
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { RuntimeError } from '../../src/errors.js';
import { native } from '../../src/native.js';
import { compileSeccomp, FILTER_FLAG, planSeccomp, SCMP_ACT, type SeccompPlan } from '../../src/plan/seccomp.js';
import type { LinuxSeccomp } from '../../src/spec/types.gen.js';

const ADDON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build/Release/tsrt.node');
if (!fs.existsSync(ADDON)) {
  t.fail(`${ADDON} is missing: build the addon first (npm run build)`);
  process.exit(1);
}
if (process.arch !== 'x64') {
  t.plan(0, 'syscall numbers below are x86_64 ones');
  process.exit(0);
}

// ---- what the kernel feeds the filter ----

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const X32_SYSCALL_BIT = 0x40000000;
const NR = { read: 0, write: 1, getpid: 39, mkdir: 83, mkdirat: 258, personality: 135, sendmsg: 46 } as const;
const NR_I386 = { getpid: 20, mkdir: 39 } as const;

const RET = {
  KILL_THREAD: 0x00000000,
  KILL_PROCESS: 0x80000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  NOTIFY: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

interface SeccompData {
  nr: number;
  arch?: number;
  args?: bigint[];
}

/** seccomp_data as the kernel lays it out: nr, arch, instruction_pointer, args[6] (little-endian u64s). */
function packData(d: SeccompData): Buffer {
  const b = Buffer.alloc(64);
  b.writeInt32LE(d.nr, 0);
  b.writeUInt32LE(d.arch ?? AUDIT_ARCH_X86_64, 4);
  (d.args ?? []).forEach((v, i) => {
    b.writeBigUInt64LE(BigInt.asUintN(64, v), 16 + 8 * i);
  });
  return b;
}

/** Runs a classic BPF program (struct sock_filter[]) over seccomp_data; returns the filter's u32 verdict. */
function runBpf(program: Uint8Array, d: SeccompData): number {
  const code = Buffer.from(program);
  const data = packData(d);
  const mem = new Uint32Array(16);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc * 8 < code.length; pc++) {
    const op = code.readUInt16LE(pc * 8);
    const jt = code[pc * 8 + 2]!;
    const jf = code[pc * 8 + 3]!;
    const k = code.readUInt32LE(pc * 8 + 4);
    const src = op & 0x08 ? x : k;
    switch (op & 0x07) {
      case 0x00: // LD
        if ((op & 0xe0) === 0x20)
          a = data.readUInt32LE(k); // ABS, W
        else if ((op & 0xe0) === 0x00)
          a = k; // IMM
        else if ((op & 0xe0) === 0x60)
          a = mem[k]!; // MEM
        else throw new Error(`unsupported ld 0x${op.toString(16)}`);
        break;
      case 0x01: // LDX
        x = (op & 0xe0) === 0x60 ? mem[k]! : k;
        break;
      case 0x02:
        mem[k] = a;
        break; // ST
      case 0x03:
        mem[k] = x;
        break; // STX
      case 0x04: // ALU
        switch (op & 0xf0) {
          case 0x00:
            a = (a + src) >>> 0;
            break;
          case 0x10:
            a = (a - src) >>> 0;
            break;
          case 0x40:
            a = (a | src) >>> 0;
            break;
          case 0x50:
            a = (a & src) >>> 0;
            break;
          default:
            throw new Error(`unsupported alu 0x${op.toString(16)}`);
        }
        break;
      case 0x05: {
        // JMP
        const kind = op & 0xf0;
        if (kind === 0x00) {
          pc += k;
          break;
        }
        const taken =
          kind === 0x10
            ? a === src >>> 0
            : kind === 0x20
              ? a > src >>> 0
              : kind === 0x30
                ? a >= src >>> 0
                : kind === 0x40
                  ? (a & src) !== 0
                  : undefined;
        if (taken === undefined) throw new Error(`unsupported jmp 0x${op.toString(16)}`);
        pc += taken ? jt : jf;
        break;
      }
      case 0x06:
        return (op & 0x18) === 0x10 ? a : k; // RET A / RET K
      case 0x07:
        if (op & 0x80) a = x;
        else x = a;
        break; // TXA / TAX
    }
  }
  throw new Error('program ran off its end');
}

// ---- helpers ----

function plan(s: LinuxSeccomp): SeccompPlan {
  return planSeccomp(s);
}

function compiled(s: LinuxSeccomp): Uint8Array {
  return compileSeccomp(planSeccomp(s), f => native().compileSeccomp(f));
}

/** The verdict of the compiled profile for one syscall. */
function verdict(s: LinuxSeccomp, d: SeccompData): number {
  return runBpf(compiled(s), d) >>> 0;
}

function rejects(t: Test, fn: () => unknown, message: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  t.ok(thrown instanceof RuntimeError, 'throws a RuntimeError');
  t.equal((thrown as Error | undefined)?.message, message);
}

const allowAllBut = (rule: LinuxSeccomp['syscalls']): LinuxSeccomp => ({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: rule });

// ---------------------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------------------

t.test("action SCMP_ACT_KILL is libseccomp's KILL: the thread is killed", async t => {
  const s = allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_KILL' }]);
  t.equal(verdict(s, { nr: NR.mkdir }), RET.KILL_THREAD);
  t.equal(verdict(s, { nr: NR.getpid }), RET.ALLOW, 'other syscalls get the default');
});

t.test('action SCMP_ACT_KILL_THREAD', async t => {
  t.equal(verdict(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_KILL_THREAD' }]), { nr: NR.mkdir }), RET.KILL_THREAD);
});

t.test('action SCMP_ACT_KILL_PROCESS', async t => {
  t.equal(verdict(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_KILL_PROCESS' }]), { nr: NR.mkdir }), RET.KILL_PROCESS);
});

t.test('action SCMP_ACT_TRAP', async t => {
  t.equal(verdict(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_TRAP' }]), { nr: NR.mkdir }), RET.TRAP);
});

t.test('action SCMP_ACT_ERRNO with errnoRet, and EPERM without', async t => {
  t.equal(verdict(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 }]), { nr: NR.mkdir }), RET.ERRNO | 28);
  t.equal(verdict(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }]), { nr: NR.mkdir }), RET.ERRNO | 1, 'EPERM');
  t.equal(
    verdict(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 0 }]), { nr: NR.mkdir }),
    RET.ERRNO,
    'errnoRet 0: a faked success',
  );
});

t.test("action SCMP_ACT_TRACE with errnoRet as the tracer's message", async t => {
  t.equal(verdict(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_TRACE', errnoRet: 7 }]), { nr: NR.mkdir }), RET.TRACE | 7);
  t.equal(verdict(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_TRACE' }]), { nr: NR.mkdir }), RET.TRACE | 1);
});

t.test('action SCMP_ACT_ALLOW under a denying default', async t => {
  const s: LinuxSeccomp = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ALLOW' }] };
  t.equal(verdict(s, { nr: NR.getpid }), RET.ALLOW);
  // Older than getpid: newer ones get ENOSYS (the stub below).
  t.equal(verdict(s, { nr: NR.write }), RET.ERRNO | 1);
});

t.test('action SCMP_ACT_LOG', async t => {
  t.equal(verdict(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_LOG' }]), { nr: NR.mkdir }), RET.LOG);
});

t.test('action SCMP_ACT_NOTIFY asks for a listener', async t => {
  const s: LinuxSeccomp = { ...allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }]), listenerPath: '/run/agent.sock' };
  t.equal(verdict(s, { nr: NR.mkdir }), RET.NOTIFY);
  const p = plan(s);
  t.equal(p.flags, FILTER_FLAG.NEW_LISTENER, 'loaded with SECCOMP_FILTER_FLAG_NEW_LISTENER');
  t.same(p.listener, { path: '/run/agent.sock', metadata: '' });
});

t.test('every runtime-spec action has a filter value', async t => {
  t.same(Object.keys(SCMP_ACT).sort(), [
    'SCMP_ACT_ALLOW',
    'SCMP_ACT_ERRNO',
    'SCMP_ACT_KILL',
    'SCMP_ACT_KILL_PROCESS',
    'SCMP_ACT_KILL_THREAD',
    'SCMP_ACT_LOG',
    'SCMP_ACT_NOTIFY',
    'SCMP_ACT_TRACE',
    'SCMP_ACT_TRAP',
  ]);
});

t.test('defaultAction and defaultErrnoRet', async t => {
  t.equal(verdict({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38 }, { nr: NR.getpid }), RET.ERRNO | 38);
  t.equal(verdict({ defaultAction: 'SCMP_ACT_ERRNO' }, { nr: NR.getpid }), RET.ERRNO | 1, 'EPERM by default');
  t.equal(verdict({ defaultAction: 'SCMP_ACT_KILL_PROCESS' }, { nr: NR.getpid }), RET.KILL_PROCESS);
  t.equal(verdict({ defaultAction: 'SCMP_ACT_LOG' }, { nr: NR.getpid }), RET.LOG);
});

t.test('a rule with the default action changes nothing and is left out (as runc does)', async t => {
  const p = plan({
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['mkdir'], action: 'SCMP_ACT_ERRNO' },
      { names: ['getpid'], action: 'SCMP_ACT_ALLOW' },
    ],
  });
  t.same(
    p.filter.rules.map(r => r.syscall),
    ['getpid'],
  );
  t.equal(
    verdict({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] }, { nr: NR.mkdir }),
    RET.ERRNO | 1,
  );
});

t.test('an unknown syscall name is skipped; the rest of the rule applies', async t => {
  const s = allowAllBut([{ names: ['no_such_syscall', 'mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 5 }]);
  t.equal(verdict(s, { nr: NR.mkdir }), RET.ERRNO | 5);
  t.equal(verdict(s, { nr: NR.getpid }), RET.ALLOW);
});

// ---------------------------------------------------------------------------------------------------------
// Architectures
// ---------------------------------------------------------------------------------------------------------

t.test('architectures: names become libseccomp tokens', async t => {
  const p = plan({
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC64LE'],
  });
  t.same(
    p.filter.architectures.map(a => a.token),
    ['x86_64', 'x86', 'x32', 'mipsel64n32', 'ppc64le'],
  );
});

t.test("architectures x86 and x32: the rules apply to each ABI's own numbers", async t => {
  const s: LinuxSeccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
  };
  t.equal(verdict(s, { nr: NR.mkdir }), RET.ERRNO | 13, 'x86_64 (native)');
  t.equal(verdict(s, { nr: NR_I386.mkdir, arch: AUDIT_ARCH_I386 }), RET.ERRNO | 13, 'i386 mkdir is 39');
  t.equal(verdict(s, { nr: NR_I386.getpid, arch: AUDIT_ARCH_I386 }), RET.ALLOW, 'i386 getpid');
  t.equal(verdict(s, { nr: NR.mkdir | X32_SYSCALL_BIT }), RET.ERRNO | 13, 'x32 mkdir');
});

t.test('the native architecture is always in the filter; an unlisted one meets the bad-arch action', async t => {
  const s: LinuxSeccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86'],
    syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }],
  };
  t.equal(verdict(s, { nr: NR.mkdir }), RET.ERRNO | 1, 'x86_64 rules without SCMP_ARCH_X86_64 listed');
  const nativeOnly: LinuxSeccomp = { defaultAction: 'SCMP_ACT_ALLOW' };
  t.equal(verdict(nativeOnly, { nr: NR_I386.getpid, arch: AUDIT_ARCH_I386 }), RET.KILL_THREAD, 'i386 when only native is in');
  t.equal(verdict(nativeOnly, { nr: NR.getpid | X32_SYSCALL_BIT }), RET.KILL_THREAD, 'x32 when only native is in');
});

// ---------------------------------------------------------------------------------------------------------
// runc's ENOSYS stub: syscalls newer than the profile
// ---------------------------------------------------------------------------------------------------------

const ENOSYS = 38;
const NR_NEW = { clone3: 435, openat2: 437, faccessat2: 439 } as const;
/** An old-style allow-list: its newest syscall is personality (135 on x86_64, 136 on i386). */
const oldProfile = (extra: Partial<LinuxSeccomp> = {}): LinuxSeccomp => ({
  defaultAction: 'SCMP_ACT_ERRNO',
  syscalls: [{ names: ['getpid', 'mkdir', 'personality'], action: 'SCMP_ACT_ALLOW' }],
  ...extra,
});

t.test('ENOSYS stub: a syscall above the newest one the profile names gets ENOSYS, not the default', async t => {
  const s = oldProfile();
  for (const [name, nr] of Object.entries(NR_NEW)) t.equal(verdict(s, { nr }), RET.ERRNO | ENOSYS, name);
  t.equal(verdict(s, { nr: NR.personality + 1 }), RET.ERRNO | ENOSYS, 'just above the newest named one');
  t.equal(verdict(s, { nr: 100 }), RET.ERRNO | 1, 'an older syscall the profile leaves out: the default EPERM');
  t.equal(verdict(s, { nr: NR.personality }), RET.ALLOW, 'the newest named one: its rule');
  t.equal(verdict(s, { nr: NR.getpid }), RET.ALLOW, 'an allowed one');
});

t.test('ENOSYS stub: each architecture has its own bound; x32 calls are not x86_64 ones', async t => {
  const s = oldProfile({ architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'] });
  t.equal(verdict(s, { nr: 137, arch: AUDIT_ARCH_I386 }), RET.ERRNO | ENOSYS, 'i386: above its personality (136)');
  t.equal(verdict(s, { nr: 136, arch: AUDIT_ARCH_I386 }), RET.ALLOW, 'i386 personality');
  t.equal(verdict(s, { nr: 100, arch: AUDIT_ARCH_I386 }), RET.ERRNO | 1, 'i386: below it, the default');
  t.not(verdict(s, { nr: NR_NEW.clone3 | X32_SYSCALL_BIT }), RET.ERRNO | ENOSYS, 'x32 not in the filter: the bad-arch action decides');
  const withX32 = oldProfile({ architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'] });
  t.equal(verdict(withX32, { nr: NR_NEW.clone3 | X32_SYSCALL_BIT }), RET.ERRNO | ENOSYS, 'x32 in the filter: its own bound');
  t.equal(verdict(withX32, { nr: NR.getpid | X32_SYSCALL_BIT }), RET.ALLOW, 'x32 getpid');
  t.equal(verdict(withX32, { nr: NR_NEW.clone3 }), RET.ERRNO | ENOSYS, 'x86_64 still bounded');
});

t.test('ENOSYS stub: names whose rule equals the default still count; none under a permissive default', async t => {
  const s = oldProfile({
    syscalls: [
      { names: ['getpid'], action: 'SCMP_ACT_ALLOW' },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO' },
    ],
  });
  t.equal(verdict(s, { nr: NR_NEW.clone3 }), RET.ERRNO | 1, 'clone3 named (with the default action): EPERM as written');
  t.equal(verdict(s, { nr: NR_NEW.clone3 + 1 }), RET.ERRNO | ENOSYS, 'newer than clone3: ENOSYS');
  for (const defaultAction of ['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE'] as const) {
    t.equal(
      plan({ defaultAction, syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_KILL' }] }).filter.enosysNames,
      undefined,
      defaultAction,
    );
  }
  t.equal(plan(oldProfile({ defaultErrnoRet: ENOSYS })).filter.enosysNames, undefined, 'a default that already answers ENOSYS');
  t.same(plan(oldProfile()).filter.enosysNames, ['getpid', 'mkdir', 'personality']);
});

t.test('an architecture this libseccomp lacks, or of the other byte order, names the field', async t => {
  // Debian 12's libseccomp 2.5.4 has no loongarch64 (2.6 adds it), and big-endian s390x cannot join x86_64.
  rejects(
    t,
    () => compiled({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_LOONGARCH64'] }),
    'config.json: /linux/seccomp/architectures/1: architecture "loongarch64" is not supported by libseccomp 2.5.4',
  );
  rejects(
    t,
    () => compiled({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_S390X'] }),
    'config.json: /linux/seccomp/architectures/0: architecture "s390x" cannot share a filter with the native one (byte order)',
  );
});

// ---------------------------------------------------------------------------------------------------------
// Argument comparisons
// ---------------------------------------------------------------------------------------------------------

/** personality(arg0) -> ERRNO(99) when `arg0 op value`. */
function personalityRule(op: string, value: number, valueTwo?: number): LinuxSeccomp {
  return allowAllBut([
    { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 99, args: [{ index: 0, op: op as 'SCMP_CMP_EQ', value, valueTwo }] },
  ]);
}

const DENIED = RET.ERRNO | 99;
const opCases: [string, number, [bigint, boolean][]][] = [
  [
    'SCMP_CMP_NE',
    8,
    [
      [7n, true],
      [8n, false],
      [9n, true],
    ],
  ],
  [
    'SCMP_CMP_LT',
    8,
    [
      [7n, true],
      [8n, false],
      [9n, false],
    ],
  ],
  [
    'SCMP_CMP_LE',
    8,
    [
      [7n, true],
      [8n, true],
      [9n, false],
    ],
  ],
  [
    'SCMP_CMP_EQ',
    8,
    [
      [7n, false],
      [8n, true],
      [9n, false],
    ],
  ],
  [
    'SCMP_CMP_GE',
    8,
    [
      [7n, false],
      [8n, true],
      [9n, true],
    ],
  ],
  [
    'SCMP_CMP_GT',
    8,
    [
      [7n, false],
      [8n, false],
      [9n, true],
    ],
  ],
];
for (const [op, value, cases] of opCases) {
  t.test(`operator ${op}`, async t => {
    const s = personalityRule(op, value);
    for (const [arg, denied] of cases) {
      t.equal(
        verdict(s, { nr: NR.personality, args: [arg] }),
        denied ? DENIED : RET.ALLOW,
        `personality(${arg}) ${denied ? 'denied' : 'allowed'}`,
      );
    }
  });
}

t.test('operator SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo', async t => {
  const s = personalityRule('SCMP_CMP_MASKED_EQ', 0xff00, 0x0800);
  t.equal(verdict(s, { nr: NR.personality, args: [0x0800n] }), DENIED);
  t.equal(verdict(s, { nr: NR.personality, args: [0x08ffn] }), DENIED, 'bits outside the mask do not matter');
  t.equal(verdict(s, { nr: NR.personality, args: [0x0900n] }), RET.ALLOW);
});

t.test('comparisons use all 64 bits of an argument', async t => {
  const s = personalityRule('SCMP_CMP_EQ', 2 ** 40);
  t.equal(verdict(s, { nr: NR.personality, args: [1n << 40n] }), DENIED);
  t.equal(verdict(s, { nr: NR.personality, args: [0n] }), RET.ALLOW, 'the low word alone does not match');
});

t.test('2^64-1, rounded up to 2^64 by JSON, stays 2^64-1', async t => {
  const p = plan(personalityRule('SCMP_CMP_EQ', 2 ** 64));
  t.equal(p.filter.rules[0]!.args[0]!.value, '18446744073709551615');
  t.equal(verdict(personalityRule('SCMP_CMP_EQ', 2 ** 64), { nr: NR.personality, args: [(1n << 64n) - 1n] }), DENIED);
});

t.test('conditions on distinct arguments must all match (one rule)', async t => {
  const s = allowAllBut([
    {
      names: ['personality'],
      action: 'SCMP_ACT_ERRNO',
      errnoRet: 99,
      args: [
        { index: 0, op: 'SCMP_CMP_EQ', value: 1 },
        { index: 1, op: 'SCMP_CMP_EQ', value: 2 },
      ],
    },
  ]);
  t.equal(plan(s).filter.rules.length, 1);
  t.equal(verdict(s, { nr: NR.personality, args: [1n, 2n] }), DENIED);
  t.equal(verdict(s, { nr: NR.personality, args: [1n, 3n] }), RET.ALLOW);
});

t.test('several conditions on the same argument become one rule each (any matches), as runc does', async t => {
  const s = allowAllBut([
    {
      names: ['personality'],
      action: 'SCMP_ACT_ERRNO',
      errnoRet: 99,
      args: [
        { index: 0, op: 'SCMP_CMP_EQ', value: 1 },
        { index: 0, op: 'SCMP_CMP_EQ', value: 2 },
      ],
    },
  ]);
  t.equal(plan(s).filter.rules.length, 2);
  t.equal(verdict(s, { nr: NR.personality, args: [1n] }), DENIED);
  t.equal(verdict(s, { nr: NR.personality, args: [2n] }), DENIED);
  t.equal(verdict(s, { nr: NR.personality, args: [3n] }), RET.ALLOW);
});

// ---------------------------------------------------------------------------------------------------------
// Flags and the listener
// ---------------------------------------------------------------------------------------------------------

t.test('flag SECCOMP_FILTER_FLAG_LOG', async t => {
  t.equal(plan({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG'] }).flags, FILTER_FLAG.LOG);
});

t.test('flag SECCOMP_FILTER_FLAG_SPEC_ALLOW', async t => {
  t.equal(plan({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_SPEC_ALLOW'] }).flags, FILTER_FLAG.SPEC_ALLOW);
});

t.test('flag SECCOMP_FILTER_FLAG_TSYNC has nothing to do in a single-threaded executor', async t => {
  t.equal(plan({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_TSYNC'] }).flags, 0);
});

t.test('flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV goes with a listener only', async t => {
  const notify = allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }]);
  t.equal(
    plan({ ...notify, listenerPath: '/a', flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] }).flags,
    FILTER_FLAG.NEW_LISTENER | FILTER_FLAG.WAIT_KILLABLE_RECV,
  );
  t.equal(
    plan({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] }).flags,
    0,
    'without one the kernel would refuse it',
  );
});

t.test('listenerMetadata travels with the listener', async t => {
  const p = plan({ ...allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }]), listenerPath: '/a', listenerMetadata: 'who=me' });
  t.same(p.listener, { path: '/a', metadata: 'who=me' });
  t.equal(plan({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/a' }).listener, undefined, 'no NOTIFY rule, no listener');
});

// ---------------------------------------------------------------------------------------------------------
// Errors: each names the JSON path
// ---------------------------------------------------------------------------------------------------------

t.test('reject: an unknown action', async t => {
  rejects(
    t,
    () =>
      plan({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [
          { names: ['a'], action: 'SCMP_ACT_ALLOW' },
          { names: ['b'], action: 'SCMP_ACT_DENY' as 'SCMP_ACT_ALLOW' },
        ],
      }),
    'config.json: /linux/seccomp/syscalls/1/action: unknown seccomp action "SCMP_ACT_DENY"',
  );
  rejects(
    t,
    () => plan({ defaultAction: 'ALLOW' as 'SCMP_ACT_ALLOW' }),
    'config.json: /linux/seccomp/defaultAction: unknown seccomp action "ALLOW"',
  );
});

t.test('reject: an unknown architecture', async t => {
  rejects(
    t,
    () => plan({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86', 'x86_64' as 'SCMP_ARCH_X86'] }),
    'config.json: /linux/seccomp/architectures/1: unknown seccomp architecture "x86_64"',
  );
});

t.test('reject: an unknown operator', async t => {
  rejects(
    t,
    () => plan(personalityRule('SCMP_CMP_IN', 1)),
    'config.json: /linux/seccomp/syscalls/0/args/0/op: unknown seccomp operator "SCMP_CMP_IN"',
  );
});

t.test('reject: an argument index past the sixth', async t => {
  rejects(
    t,
    () => plan(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, op: 'SCMP_CMP_EQ', value: 0 }] }])),
    'config.json: /linux/seccomp/syscalls/0/args/0/index: argument index 6 is out of range (a syscall has arguments 0-5)',
  );
});

t.test('reject: an unknown flag', async t => {
  rejects(
    t,
    () =>
      plan({
        defaultAction: 'SCMP_ACT_ALLOW',
        flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_NEW_LISTENER' as 'SECCOMP_FILTER_FLAG_LOG'],
      }),
    'config.json: /linux/seccomp/flags/1: unknown seccomp flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"',
  );
});

t.test('reject: errnoRet on an action that returns no errno', async t => {
  rejects(
    t,
    () => plan(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_KILL', errnoRet: 1 }])),
    'config.json: /linux/seccomp/syscalls/0/errnoRet: SCMP_ACT_KILL does not return an errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)',
  );
  rejects(
    t,
    () => plan({ defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 }),
    'config.json: /linux/seccomp/defaultErrnoRet: SCMP_ACT_ALLOW does not return an errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)',
  );
});

t.test('reject: an errno above MAX_ERRNO', async t => {
  rejects(
    t,
    () => plan(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 4096 }])),
    'config.json: /linux/seccomp/syscalls/0/errnoRet: errno 4096 is out of range (0-4095)',
  );
});

t.test('reject: SCMP_ACT_NOTIFY as the default action', async t => {
  rejects(
    t,
    () => plan({ defaultAction: 'SCMP_ACT_NOTIFY', listenerPath: '/a' }),
    'config.json: /linux/seccomp/defaultAction: SCMP_ACT_NOTIFY cannot be the default action',
  );
});

t.test('reject: SCMP_ACT_NOTIFY without listenerPath', async t => {
  rejects(
    t,
    () => plan(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }])),
    'config.json: /linux/seccomp/listenerPath: SCMP_ACT_NOTIFY needs a listenerPath to send the listener fd to',
  );
});

t.test('reject: SCMP_ACT_NOTIFY on sendmsg, which hands the listener over', async t => {
  rejects(
    t,
    () => plan({ ...allowAllBut([{ names: ['mkdir', 'sendmsg'], action: 'SCMP_ACT_NOTIFY' }]), listenerPath: '/a' }),
    'config.json: /linux/seccomp/syscalls/0/names: SCMP_ACT_NOTIFY cannot be used for sendmsg: tsrt hands the listener fd over with it',
  );
});

t.test('reject: a libseccomp refusal names the rule', async t => {
  // An operand the descriptor cannot carry: only reachable by a hand-made descriptor, checked all the same.
  const p = plan(personalityRule('SCMP_CMP_EQ', 1));
  p.filter.rules[0]!.args[0]!.value = '-1';
  rejects(
    t,
    () => compileSeccomp(p, f => native().compileSeccomp(f)),
    'config.json: /linux/seccomp/syscalls/0/args/0: operand is not an unsigned 64-bit number',
  );
});
