// What the cgroup modules share: the host's layout, the container's place in each hierarchy, the record kept
// in the container's state, and the CgroupManager interface the runtime programs against. Types and one
// constant only, so every module can import it without pulling in another's code.
import type { HostFacts } from '../plan/facts.js';
import type { LinuxResources } from '../spec/types.gen.js';

/** The key of the cgroup2 hierarchy, beside the v1 keys ("cpu,cpuacct", "memory", "name=systemd"). */
export const UNIFIED = 'unified';

export type Layout = HostFacts['cgroup'];

/** One hierarchy the container gets a directory in. */
export interface HierarchyDir {
  /** "cpu,cpuacct", "memory", "name=systemd" for v1 hierarchies; "unified" for cgroup2. */
  key: string;
  /** Where the hierarchy is mounted on the host. */
  mountPoint: string;
  /** The container's directory in it (absolute host path). */
  dir: string;
}

/** Which controllers the host offers, and where. */
export interface Placement {
  /** Controllers with a v1 hierarchy. */
  v1: ReadonlySet<string>;
  /** Controllers the cgroup2 hierarchy can enable; undefined when there is no cgroup2 at all. */
  v2: ReadonlySet<string> | undefined;
}

export interface CgroupPathRequest {
  cgroupsPath?: string | undefined;
  id: string;
  /** --systemd-cgroup or --cgroup-manager=systemd */
  systemd: boolean;
  /** Whether systemd runs on this host (/run/systemd/system exists). */
  systemdRunning: boolean;
  /** The systemd manager's own cgroup ("/" for the host's pid 1): its units live below it. */
  systemdRoot?: string;
  /** Unprivileged: the systemd default slice is user.slice. */
  rootless?: boolean;
}

/** What create needs: where the cgroup goes, and whether cgroups the runtime may not make are done without. */
export interface CgroupRequest extends CgroupPathRequest {
  rootless: boolean;
  /** The config's annotations: org.systemd.property.* ones become unit properties. */
  annotations?: Record<string, string> | undefined;
}

/**
 * Where a new container's cgroup will be, decided before anything is made: the directories its cgroup mounts
 * show, and that create then makes (cgroupfs) or systemd makes (below its manager's root, asked for by place).
 */
export interface CgroupPlacement {
  req: CgroupRequest;
  dirs: HierarchyDir[];
}

/** How tsrt reaches a systemd: recorded with the container, so every later command talks to the same one. */
export interface SystemdAddress {
  address: string;
  /** Through a bus daemon (Hello, AddMatch, destination names), or straight to systemd's private socket. */
  bus: boolean;
}

export interface SystemdRecord extends SystemdAddress {
  unit: string;
  slice: string;
  /** The unit's cgroup as systemd will name it (below its own root): checked against ControlGroup. */
  cgroup: string;
  /** Whether the unit was started (delete stops it). */
  started: boolean;
  id: string;
  /** The config's org.systemd.property.* annotations: extra unit properties. */
  annotations?: Record<string, string>;
}

export interface CgroupRecord {
  layout: Layout['layout'];
  /** The container's directory in each hierarchy it could use. */
  dirs: HierarchyDir[];
  /** Directories this runtime made (parents first): delete removes these and nothing else. */
  created: string[];
  /** Controllers the host mounts as v1 hierarchies, whether or not we could use them (rootless). */
  v1Controllers: string[];
  /** Controllers the cgroup2 hierarchy offers (hybrid and v2 hosts); absent without cgroup2. */
  v2Controllers?: string[];
  /** The resources in force, so an update can merge into them (cpu quota and period belong together). */
  resources?: LinuxResources;
  rootless: boolean;
  /** Present when systemd manages the cgroup. */
  systemd?: SystemdRecord;
}

/**
 * The freezer file and its frozen text, the directory whose cgroup.procs lists the container's processes, and
 * the directories destroy() removes, in its order (a leaf goes with any children it has).
 */
export interface LifecycleFacts {
  freezer?: { file: string; frozen: string };
  procsDir?: string;
  remove: { dir: string; leaf: boolean }[];
}

/**
 * A container's cgroup, whoever manages it: cgroupfs (cgroupfs.ts), systemd (systemd-manager.ts, which
 * wraps cgroupfs), or the in-memory fake (fake.ts) that lets lifecycle logic be tested without root.
 */
export interface CgroupManager {
  /** Everything a later command needs, saved in the container's state (update changes it: save again). */
  readonly record: CgroupRecord;
  /** The directory holding a v1 controller's files, or the cgroup2 directory for "unified". */
  dirOf(key: string): string | undefined;
  /**
   * The directories the init may move itself into through their `tasks` file, as root: a move of oneself
   * takes no global lock. v1 cgroupfs hierarchies only; none for systemd, which starts its unit with the pid.
   */
  selfJoinDirs(): string[];
  /**
   * Moves `pid` into the container's cgroup in every hierarchy (never the runtime itself) but the directories
   * in `joinedByInit`, which the init moved itself into (create as root: their v1 tasks files).
   */
  join(pid: number, joinedByInit?: ReadonlySet<string>): void;
  /**
   * Moves `pid` into existing sub-cgroups of the container's (exec --cgroup): `sub` maps a controller, or ''
   * for every hierarchy without its own entry, to a path below the container's directory.
   */
  joinSub(pid: number, sub: Map<string, string>): void;
  /** Merges `change` into the resources in force and applies it (the caller saves the record). */
  update(change: LinuxResources): void;
  /** Whether the cgroup is the container's alone (made by us), so signalling all of it is safe. */
  ownsCgroup(): boolean;
  /** What the lifecycle record carries, so the front door tells paused and deletes a stopped one without a manager. */
  lifecycleFacts(): LifecycleFacts;
  canFreeze(): boolean;
  isFrozen(): boolean;
  /** Whether a process placed in the cgroup would stop where it stands (frozen or freezing, here or above). */
  frozenForNewcomers(): boolean;
  /** Moves `pid` out of a v1 freezer, where even SIGKILL waits. */
  releaseFromFreezer(pid: number): void;
  /** Freezes (true) or thaws (false), and waits until the kernel says it is done. */
  setFrozen(frozen: boolean): void;
  /** Every process in the container's cgroup (including any sub-cgroups it made). */
  pids(): number[];
  /** Signals every process in the cgroup, with no fork escaping. */
  signalAll(sig: number): void;
  /** Removes what create made, and nothing else. */
  destroy(): void;
}

/** How managers are made and found again: the host's (manager.ts), or a fake one in tests. */
export interface CgroupDriver {
  /** Where create will put the container, checked without making anything. */
  place(layout: Layout, req: CgroupRequest): CgroupPlacement;
  /** Makes the container's cgroup where `place` put it and applies `resources`; on failure nothing made stays. */
  create(layout: Layout, placement: CgroupPlacement, resources: LinuxResources | undefined): CgroupManager;
  /** The manager of a cgroup create made, from its record. */
  load(record: CgroupRecord): CgroupManager;
}
