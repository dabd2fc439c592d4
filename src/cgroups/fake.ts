// An in-memory cgroup driver for tests of lifecycle logic (create's checks, kill --all, delete, pause, resume,
// update, state's "paused") without root and without touching the host's cgroups, as youki's TestManager.
// A fake cgroup outlives its managers, as a real one outlives the command that made it: every command
// loads a new manager from the record and finds the same state. Its members are real processes the test
// started, so signals reach them as they would through a cgroup.
import type { LinuxResources } from '../spec/types.gen.js';
import { RuntimeError } from '../errors.js';
import { mergeResources } from './resources.js';
import {
  UNIFIED,
  type CgroupDriver,
  type CgroupManager,
  type LifecycleFacts,
  type CgroupPlacement,
  type CgroupRecord,
  type CgroupRequest,
  type Layout,
} from './types.js';

/** What happened to one fake cgroup: the state a test sets up and then asserts on. */
export interface FakeCgroup {
  /** The processes in it; SIGKILL empties it. */
  members: number[];
  /** Whether it has a freezer (a delegated v1 freezer or cgroup2's cgroup.freeze). */
  freezer: boolean;
  frozen: boolean;
  /** Every pid join() or joinSub() placed in it. */
  joined: number[];
  /** Every signal signalAll() sent, in order. */
  signals: number[];
  /** Every pid moved out of the freezer. */
  released: number[];
  /** The resources create applied, then every update's change. */
  applied: (LinuxResources | undefined)[];
  destroyed: boolean;
}

const ROOT = '/fake-cgroup';

export class FakeCgroups implements CgroupDriver {
  /** By cgroupsPath (the container id when it has none). */
  readonly cgroups = new Map<string, FakeCgroup>();

  /** A cgroup that is there before create, as a pre-existing cgroupsPath is: create joins it, never owns it. */
  existing(cgroupsPath: string, state: Partial<FakeCgroup> = {}): FakeCgroup {
    const cg = { ...blank(), ...state };
    this.cgroups.set(cgroupsPath, cg);
    return cg;
  }

  place(_layout: Layout, req: CgroupRequest): CgroupPlacement {
    return { req, dirs: [{ key: UNIFIED, mountPoint: ROOT, dir: `${ROOT}/${req.cgroupsPath || req.id}` }] };
  }

  create(layout: Layout, placement: CgroupPlacement, resources: LinuxResources | undefined): CgroupManager {
    const { req, dirs } = placement;
    const name = req.cgroupsPath || req.id;
    let cg = this.cgroups.get(name);
    const made = !cg || cg.destroyed;
    if (made) {
      cg = blank();
      this.cgroups.set(name, cg);
    }
    cg!.applied.push(resources);
    const record: CgroupRecord = {
      layout: layout.layout,
      dirs: [...dirs],
      created: made ? dirs.map(d => d.dir) : [],
      v1Controllers: [],
      rootless: req.rootless,
      resources,
    };
    return new FakeManager(cg!, record);
  }

  load(record: CgroupRecord): CgroupManager {
    const name = record.dirs[0]?.dir.slice(ROOT.length + 1) ?? '';
    const cg = this.cgroups.get(name);
    if (!cg) throw new Error(`fake cgroup ${JSON.stringify(name)} was never created`);
    return new FakeManager(cg, record);
  }
}

function blank(): FakeCgroup {
  return { members: [], freezer: true, frozen: false, joined: [], signals: [], released: [], applied: [], destroyed: false };
}

class FakeManager implements CgroupManager {
  constructor(
    private readonly cg: FakeCgroup,
    readonly record: CgroupRecord,
  ) {}

  dirOf(key: string): string | undefined {
    return key === UNIFIED ? this.record.dirs[0]?.dir : undefined;
  }

  selfJoinDirs(): string[] {
    return [];
  }

  join(pid: number): void {
    this.cg.members.push(pid);
    this.cg.joined.push(pid);
  }

  joinSub(pid: number): void {
    this.join(pid);
  }

  update(change: LinuxResources): void {
    this.record.resources = mergeResources(this.record.resources, change);
    this.cg.applied.push(change);
  }

  ownsCgroup(): boolean {
    return this.record.dirs.every(d => this.record.created.includes(d.dir));
  }

  lifecycleFacts(): LifecycleFacts {
    return { remove: [...this.record.created].reverse().map(dir => ({ dir, leaf: this.record.dirs.some(d => d.dir === dir) })) };
  }

  canFreeze(): boolean {
    return this.cg.freezer;
  }

  isFrozen(): boolean {
    return this.cg.frozen;
  }

  frozenForNewcomers(): boolean {
    return this.cg.frozen;
  }

  releaseFromFreezer(pid: number): void {
    this.cg.released.push(pid);
  }

  /** The cgroupfs manager's refusal without a freezer. */
  setFrozen(frozen: boolean): void {
    if (!this.cg.freezer) throw new RuntimeError('cannot freeze: the container has no freezer cgroup', { op: 'pause' });
    this.cg.frozen = frozen;
  }

  pids(): number[] {
    return [...this.cg.members];
  }

  signalAll(sig: number): void {
    this.cg.signals.push(sig);
    for (const pid of this.cg.members) {
      try {
        process.kill(pid, sig);
      } catch {
        /* exited meanwhile */
      }
    }
    if (sig === 9) this.cg.members = [];
  }

  destroy(): void {
    this.cg.destroyed = true;
  }
}
