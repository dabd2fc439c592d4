// What the cgroup modules share: the host's layout, the container's place in each hierarchy and the record kept
// in the container's state. Types and one constant only, so every module can import it without pulling in
// another's code.
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
