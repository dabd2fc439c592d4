// Encodes a LaunchPlan into the length-framed buffer native/executor/decode.c reads. Little-endian u32/u64,
// strings as u32 length + bytes + NUL (0xffffffff = absent). The order here IS the format: keep it in step
// with plan_decode(). The header's magic and version come from the table both are generated from.
import { TSRT_PLAN_MAGIC, TSRT_PLAN_VERSION } from '../native-abi/abi.gen.js';
import { StepKind, type ContainerPlan, type LaunchPlan, type PlanFds } from './types.js';

const ABSENT = 0xffffffff;

class Writer {
  private chunks: Buffer[] = [];
  private size = 0;

  private push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.push(b);
    return this;
  }
  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v | 0);
    this.push(b);
    return this;
  }
  u64(v: bigint | number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)));
    this.push(b);
    return this;
  }
  i64(v: bigint | number): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt.asIntN(64, BigInt(v)));
    this.push(b);
    return this;
  }
  str(s: string | undefined): this {
    if (s === undefined) return this.u32(ABSENT);
    const bytes = Buffer.from(s, 'utf8');
    this.u32(bytes.length);
    this.push(bytes);
    this.push(Buffer.alloc(1));
    return this;
  }
  strs(list: string[]): this {
    this.u32(list.length);
    for (const s of list) this.str(s);
    return this;
  }
  bytes(b: Uint8Array): this {
    this.u32(b.length);
    this.push(Buffer.from(b));
    return this;
  }
  finish(): Buffer {
    // The header's length is 32 bits. No kernel-accepted config comes near (mount-max mounts of PATH_MAX paths
    // are under 1 GiB), but a plan that cannot be framed is refused, never cut.
    if (this.size > 0xffffffff) throw new RangeError(`encodePlan: a launch plan of ${this.size} bytes does not fit its 32-bit length`);
    const out = Buffer.concat(this.chunks, this.size);
    out.writeUInt32LE(this.size, 8); // the header's total length
    return out;
  }
}

/** exec makes no container: after the join the process's root is the container's, so paths are checked against "/". */
const JOINED: ContainerPlan = {
  unshareFlags: 0,
  join: [],
  timeOffsets: { monotonic: [0n, 0], boottime: [0n, 0] },
  rootfs: '/',
  rootPropagation: 0,
  rootfsPropagation: 0,
  steps: [],
  maskedPaths: [],
  readonlyPaths: [],
  sysctl: [],
};

/**
 * `fds` are the plan's fds, bound here (an absent one is -1, which the decoder refuses where the plan needs
 * one). `seccompProgram` is the BPF compiled from the plan's seccomp (plan/seccomp.ts compileSeccomp): a plan
 * with a filter is never encoded without its program, so a forgotten compile step cannot start an unfiltered
 * container.
 */
export function encodePlan(p: LaunchPlan, fds: PlanFds = {}, seccompProgram: Uint8Array = new Uint8Array(0)): Buffer {
  const c = p.container ?? JOINED;
  const pr = p.process;
  if (pr.seccomp && seccompProgram.length === 0) throw new Error('encodePlan: the plan has a seccomp filter but no compiled program');
  const w = new Writer();
  w.u32(TSRT_PLAN_MAGIC).u32(TSRT_PLAN_VERSION).u32(0);
  w.u32(p.flags).u64(c.unshareFlags);
  w.u32(c.join.length);
  for (const j of c.join) w.u32(j.type).str(j.path);
  w.i64(c.timeOffsets.monotonic[0]).u32(c.timeOffsets.monotonic[1]);
  w.i64(c.timeOffsets.boottime[0]).u32(c.timeOffsets.boottime[1]);
  w.str(c.rootfs).u32(c.rootPropagation).u32(c.rootfsPropagation);
  w.str(c.hostname).str(c.domainname);
  w.u32(c.steps.length);
  for (const s of c.steps) {
    w.u32(StepKind[s.kind]).u32(s.flags);
    w.str(s.source).str(s.dest).str(s.fstype).str(s.data).str(s.fallback);
    w.u64(s.attrSet).u64(s.attrClr).u32(s.propagation).u32(s.mode).u64(s.rdev).u32(s.uid).u32(s.gid);
  }
  w.strs(c.maskedPaths).strs(c.readonlyPaths);
  w.u32(c.sysctl.length);
  for (const [k, v] of c.sysctl) w.str(k).str(v);
  w.i32(fds.console ?? -1)
    .u32(pr.consoleSize.rows)
    .u32(pr.consoleSize.cols);
  w.i32(pr.oomScoreAdj);
  w.u32(pr.rlimits.length);
  for (const r of pr.rlimits) w.u32(r.resource).u64(r.soft).u64(r.hard);
  const caps = pr.caps;
  w.u64(caps.bounding).u64(caps.effective).u64(caps.permitted).u64(caps.inheritable).u64(caps.ambient);
  w.u32(pr.uid).u32(pr.gid).u32(pr.umask);
  w.u32(pr.additionalGids.length);
  for (const g of pr.additionalGids) w.u32(g);
  w.str(pr.cwd).strs(pr.args).strs(pr.env);
  w.i32(fds.fifo ?? -1).u32(pr.preserveFds);
  w.bytes(seccompProgram);
  w.u32(pr.seccomp?.flags ?? 0);
  // Process attributes (runtime-spec 1.2 fields); a u32 0/1 says whether each optional one is present.
  const sched = pr.scheduler;
  w.u32(sched ? 1 : 0);
  if (sched) {
    w.u32(sched.policy).u64(sched.flags).i32(sched.nice).u32(sched.priority);
    w.u64(sched.runtime).u64(sched.deadline).u64(sched.period);
  }
  w.u32(pr.ioPriority === undefined ? 0 : 1).u32(pr.ioPriority ?? 0);
  w.bytes(pr.cpuAffinity?.initial ?? new Uint8Array(0)).bytes(pr.cpuAffinity?.final ?? new Uint8Array(0));
  w.u32(pr.personality === undefined ? 0 : 1).u32(pr.personality ?? 0);
  w.u32(pr.memoryPolicy ? 1 : 0)
    .u32(pr.memoryPolicy?.mode ?? 0)
    .bytes(pr.memoryPolicy?.nodes ?? new Uint8Array(0));
  w.str(pr.apparmorProfile).str(pr.selinuxLabel).str(c.mountLabel);
  // Idmapped bind mounts: step index, the user namespace fd (-1 if the runtime did not make one, which the
  // decoder refuses), recursive.
  const idmapped = c.steps.flatMap((s, i) => (s.idmap ? [{ i, idmap: s.idmap }] : []));
  w.u32(idmapped.length);
  for (const [k, { i, idmap }] of idmapped.entries())
    w.u32(i)
      .i32(fds.userns?.[k] ?? -1)
      .u32(idmap.recursive ? 1 : 0);
  // exec: the init's pidfd and the namespaces to join through it.
  w.i32(fds.joinPidfd ?? -1).u32(p.joinNsFlags ?? 0);
  // The tasks files of the v1 cgroups the init moves itself into.
  const tasks = fds.cgroupTasks ?? [];
  w.u32(tasks.length);
  for (const fd of tasks) w.i32(fd);
  return w.finish();
}
