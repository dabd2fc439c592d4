// The devices cgroup (pure): linux.resources.devices plus the devices every container needs, as v1
// devices.allow/deny writes in list order, or as a BPF_PROG_TYPE_CGROUP_DEVICE program for cgroup v2. Both
// mean the same thing: default deny, and a later rule overrides an earlier one.
import { RuntimeError } from '../errors.js';
import type { LinuxDeviceCgroup } from '../spec/types.gen.js';

export interface DeviceRule {
  allow: boolean;
  type: 'a' | 'b' | 'c';
  /** -1 for any. */
  major: number;
  minor: number;
  access: string;
}

const rule = (type: 'b' | 'c', major: number, minor: number, access: string): DeviceRule => ({ allow: true, type, major, minor, access });

/** What runc allows after the config's rules: mknod of anything, the default devices, ptys. */
export const ALWAYS_ALLOWED: readonly DeviceRule[] = [
  rule('c', -1, -1, 'm'),
  rule('b', -1, -1, 'm'),
  rule('c', 1, 3, 'rwm'), // null
  rule('c', 1, 8, 'rwm'), // random
  rule('c', 1, 7, 'rwm'), // full
  rule('c', 5, 0, 'rwm'), // tty
  rule('c', 1, 5, 'rwm'), // zero
  rule('c', 1, 9, 'rwm'), // urandom
  rule('c', 136, -1, 'rwm'), // pts/*
  rule('c', 5, 2, 'rwm'), // ptmx
];

/** The config's rules, checked, followed by the always-allowed ones. */
export function deviceRules(list: LinuxDeviceCgroup[] | undefined): DeviceRule[] {
  const out = (list ?? []).map((d, i): DeviceRule => {
    const where = `linux.resources.devices[${i}]`;
    const type = d.type ?? 'a';
    if (type !== 'a' && type !== 'b' && type !== 'c') {
      throw new RuntimeError(`${where}.type: invalid device type ${JSON.stringify(type)} (want a, b or c)`, {
        op: 'cgroup',
        path: `/linux/resources/devices/${i}/type`,
      });
    }
    const access = d.access ?? 'rwm';
    if (!/^[rwm]+$/.test(access)) {
      throw new RuntimeError(`${where}.access: invalid access ${JSON.stringify(access)} (want letters of rwm)`, {
        op: 'cgroup',
        path: `/linux/resources/devices/${i}/access`,
      });
    }
    for (const f of ['major', 'minor'] as const) {
      const v = d[f];
      if (v !== undefined && v !== null && (!Number.isInteger(v) || v < -1 || v > 0xffffffff)) {
        throw new RuntimeError(`${where}.${f}: invalid device number ${v}`, { op: 'cgroup', path: `/linux/resources/devices/${i}/${f}` });
      }
    }
    return { allow: d.allow, type, major: d.major ?? -1, minor: d.minor ?? -1, access: [...new Set(access)].join('') };
  });
  return [...out, ...ALWAYS_ALLOWED];
}

const num = (n: number): string => (n < 0 ? '*' : String(n));

/** v1 text form of a rule, as devices.allow/deny take it. */
export function ruleText(r: DeviceRule): string {
  return r.type === 'a' ? 'a' : `${r.type} ${num(r.major)}:${num(r.minor)} ${r.access}`;
}

/** v1: deny everything first (a fresh cgroup inherits its parent's list), then each rule in order. */
export function v1DeviceWrites(rules: DeviceRule[]): { file: 'devices.allow' | 'devices.deny'; value: string }[] {
  return [
    { file: 'devices.deny', value: 'a' },
    ...rules.map(r => ({ file: r.allow ? ('devices.allow' as const) : ('devices.deny' as const), value: ruleText(r) })),
  ];
}

// ---- cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program ----
// The context is struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }, access_type being
// (access << 16) | type with type 1 = block, 2 = char and access bits mknod 1, read 2, write 4.

const BPF = {
  LDX_MEM_W: 0x61,
  ALU64_AND_K: 0x57,
  ALU64_RSH_K: 0x77,
  ALU64_MOV_K: 0xb7,
  ALU64_MOV_X: 0xbf,
  JMP_JEQ_K: 0x15,
  JMP_JNE_K: 0x55,
  EXIT: 0x95,
} as const;

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

const insn = (code: number, dst: number, src: number, off: number, imm: number): Insn => ({ code, dst, src, off, imm });
const ACCESS_BITS: Record<string, number> = { m: 1, r: 2, w: 4 };
const TYPE_BITS = { b: 1, c: 2 } as const;

function accessMask(access: string): number {
  let m = 0;
  for (const ch of access) m |= ACCESS_BITS[ch] ?? 0;
  return m;
}

/** One rule: falls through to the next block when it does not match, else returns its verdict. */
function ruleBlock(r: DeviceRule): Insn[] {
  // Registers: r2 type, r3 access, r4 major, r5 minor (loaded in the prologue), r6 scratch.
  const tests: Insn[][] = [];
  if (r.type !== 'a') tests.push([insn(BPF.JMP_JNE_K, 2, 0, 0, TYPE_BITS[r.type])]);
  const mask = accessMask(r.access);
  if (mask !== 7) {
    // allow: every requested bit must be granted; deny: any requested bit that is denied.
    tests.push([
      insn(BPF.ALU64_MOV_X, 6, 3, 0, 0),
      insn(BPF.ALU64_AND_K, 6, 0, 0, r.allow ? ~mask & 0xffff : mask),
      insn(r.allow ? BPF.JMP_JNE_K : BPF.JMP_JEQ_K, 6, 0, 0, 0),
    ]);
  }
  if (r.major >= 0) tests.push([insn(BPF.JMP_JNE_K, 4, 0, 0, r.major | 0)]);
  if (r.minor >= 0) tests.push([insn(BPF.JMP_JNE_K, 5, 0, 0, r.minor | 0)]);
  const body = tests.flat();
  body.push(insn(BPF.ALU64_MOV_K, 0, 0, 0, r.allow ? 1 : 0), insn(BPF.EXIT, 0, 0, 0, 0));
  // Every conditional jump skips to the end of this block.
  body.forEach((x, i) => {
    if (x.code === BPF.JMP_JNE_K || x.code === BPF.JMP_JEQ_K) x.off = body.length - (i + 1);
  });
  return body;
}

/** The program bytes (struct bpf_insn, little-endian): the last matching rule decides; nothing matched denies. */
export function deviceProgram(rules: DeviceRule[]): Buffer {
  const prologue = [
    insn(BPF.LDX_MEM_W, 2, 1, 0, 0),
    insn(BPF.ALU64_AND_K, 2, 0, 0, 0xffff),
    insn(BPF.LDX_MEM_W, 3, 1, 0, 0),
    insn(BPF.ALU64_RSH_K, 3, 0, 0, 16),
    insn(BPF.LDX_MEM_W, 4, 1, 4, 0),
    insn(BPF.LDX_MEM_W, 5, 1, 8, 0),
  ];
  const all = [...prologue];
  let decided = false;
  for (const r of [...rules].reverse()) {
    const block = ruleBlock(r);
    all.push(...block);
    // A rule without tests matches everything: what follows could never run, and the verifier refuses
    // unreachable code.
    if (block.length === 2) {
      decided = true;
      break;
    }
  }
  if (!decided) all.push(insn(BPF.ALU64_MOV_K, 0, 0, 0, 0), insn(BPF.EXIT, 0, 0, 0, 0));
  const buf = Buffer.alloc(all.length * 8);
  all.forEach((x, i) => {
    buf.writeUInt8(x.code, i * 8);
    buf.writeUInt8((x.src << 4) | x.dst, i * 8 + 1);
    buf.writeInt16LE(x.off, i * 8 + 2);
    buf.writeInt32LE(x.imm | 0, i * 8 + 4);
  });
  return buf;
}

/** What a device program decides for one access (an interpreter of exactly the code above, for tests). */
export function runDeviceProgram(prog: Buffer, type: 'b' | 'c', major: number, minor: number, access: string): boolean {
  const regs = new Array<bigint>(11).fill(0n);
  const ctx = [BigInt((accessMask(access) << 16) | TYPE_BITS[type]), BigInt(major), BigInt(minor)];
  const M = (1n << 64n) - 1n;
  for (let pc = 0; pc * 8 < prog.length; pc++) {
    const code = prog.readUInt8(pc * 8);
    const regsByte = prog.readUInt8(pc * 8 + 1);
    const dst = regsByte & 0xf;
    const src = regsByte >> 4;
    const off = prog.readInt16LE(pc * 8 + 2);
    const imm = BigInt.asUintN(64, BigInt(prog.readInt32LE(pc * 8 + 4)));
    switch (code) {
      case BPF.LDX_MEM_W:
        regs[dst] = ctx[off / 4]!;
        break;
      case BPF.ALU64_AND_K:
        regs[dst] = regs[dst]! & imm;
        break;
      case BPF.ALU64_RSH_K:
        regs[dst] = (regs[dst]! >> imm) & M;
        break;
      case BPF.ALU64_MOV_K:
        regs[dst] = imm;
        break;
      case BPF.ALU64_MOV_X:
        regs[dst] = regs[src]!;
        break;
      case BPF.JMP_JEQ_K:
        if (regs[dst] === imm) pc += off;
        break;
      case BPF.JMP_JNE_K:
        if (regs[dst] !== imm) pc += off;
        break;
      case BPF.EXIT:
        return regs[0] === 1n;
      default:
        throw new Error(`unknown opcode ${code}`);
    }
  }
  throw new Error('program fell off its end');
}
