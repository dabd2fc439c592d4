// Gathers HostFacts from the running system (the impure half of plan building).
import * as fs from 'node:fs';
import type { CgroupHierarchy, HostFacts } from '../plan/facts.js';

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

function nofileHard(limits: string | undefined): bigint {
  const line = limits?.split('\n').find(l => l.startsWith('Max open files'));
  const hard = line?.split(/\s+/)[4];
  return hard && /^\d+$/.test(hard) ? BigInt(hard) : 1024n;
}

/** The soft RLIMIT_STACK, 2^64-1 when unlimited; undefined when /proc/self/limits does not say. */
function stackSoft(limits: string | undefined): bigint | undefined {
  const line = limits?.split('\n').find(l => l.startsWith('Max stack size'));
  const soft = line?.split(/\s+/)[3];
  if (soft === 'unlimited') return (1n << 64n) - 1n;
  return soft && /^\d+$/.test(soft) ? BigInt(soft) : undefined;
}

/** /proc/self/mountinfo + /proc/self/cgroup -> the cgroup layout: v1, v2 or hybrid (this project's host). */
export function cgroupLayout(mountinfo: string, selfCgroup: string): HostFacts['cgroup'] {
  const own = new Map<string, string>();
  for (const line of selfCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (m) own.set(m[2]!, m[3]!);
  }
  // What this process sees: a later mount on a path hides every earlier one on or below it, and a cgroup mounted
  // outside /sys/fs/cgroup (a container's rootfs prepared in this mount namespace) is not the host's hierarchy
  // while one below /sys/fs/cgroup exists.
  let seen: { mountPoint: string; fstype: string; options: string }[] = [];
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mountPoint = left.split(' ')[4]!.replace(/\\040/g, ' ');
    const [fstype = '', , superOpts = ''] = right.split(' ');
    seen = seen.filter(m => m.mountPoint !== mountPoint && !m.mountPoint.startsWith(`${mountPoint === '/' ? '' : mountPoint}/`));
    seen.push({ mountPoint, fstype, options: superOpts });
  }
  const cgroupMounts = seen.filter(m => m.fstype === 'cgroup' || m.fstype === 'cgroup2');
  const standard = cgroupMounts.filter(m => m.mountPoint === '/sys/fs/cgroup' || m.mountPoint.startsWith('/sys/fs/cgroup/'));
  const v1: CgroupHierarchy[] = [];
  let unifiedMountPoint: string | undefined;
  for (const { mountPoint, fstype, options } of standard.length > 0 ? standard : cgroupMounts) {
    if (fstype === 'cgroup2') unifiedMountPoint ??= mountPoint;
    if (fstype !== 'cgroup') continue;
    const opts = options
      .split(',')
      .filter(
        o =>
          !['rw', 'ro', 'relatime', 'noatime', 'nosuid', 'nodev', 'noexec', 'xattr', 'clone_children'].includes(o) &&
          !o.startsWith('release_agent='),
      );
    const key = opts.join(',');
    if (v1.some(h => h.options === key)) continue;
    v1.push({ mountPoint, options: key, ownPath: own.get(key) ?? '/' });
  }
  const layout = v1.length === 0 ? 'v2' : unifiedMountPoint ? 'hybrid' : 'v1';
  return { layout, v1, unifiedMountPoint, unifiedOwnPath: own.get('') ?? '/' };
}

/** The first resctrl mount in mountinfo (field 5 is the mount point; the fstype follows " - "). */
export function resctrlMountPoint(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (right?.split(' ')[0] === 'resctrl') return left!.split(' ')[4]!.replace(/\\040/g, ' ');
  }
  return undefined;
}

/** Whether this process lives in a user namespace other than the initial one (whose map is all of 0..2^32-2). */
export function inUserNamespace(uidMap = readUidMap()): boolean {
  const lines = uidMap
    .trim()
    .split('\n')
    .map(l => l.trim().split(/\s+/).join(' '));
  return !(lines.length === 1 && lines[0] === '0 0 4294967295');
}

function readUidMap(): string {
  try {
    return fs.readFileSync('/proc/self/uid_map', 'utf8');
  } catch {
    return '0 0 4294967295';
  }
}

export function hostFacts(): HostFacts {
  const mountinfo = readText('/proc/self/mountinfo') ?? '';
  const limits = readText('/proc/self/limits');
  return {
    euid: process.geteuid?.() ?? 0,
    egid: process.getegid?.() ?? 0,
    inUserns: inUserNamespace(),
    capLastCap: Number(readText('/proc/sys/kernel/cap_last_cap')?.trim() ?? 40),
    capBounding: BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)$/m.exec(readText('/proc/self/status') ?? '')?.[1] ?? '0'}`),
    defaultNofile: (() => {
      const hard = nofileHard(limits);
      return { soft: hard < 1024n ? hard : 1024n, hard };
    })(),
    execStack: stackSoft(limits),
    cgroup: cgroupLayout(mountinfo, readText('/proc/self/cgroup') ?? ''),
    resctrlMountPoint: resctrlMountPoint(mountinfo),
    isDirectory(p: string) {
      try {
        return fs.statSync(p).isDirectory();
      } catch {
        return undefined;
      }
    },
    exists(p: string) {
      try {
        fs.lstatSync(p);
        return true;
      } catch {
        return false;
      }
    },
    isRuntimeNamespace(p: string, type: string) {
      const file = type === 'network' ? 'net' : type === 'mount' ? 'mnt' : type;
      try {
        const own = fs.statSync(`/proc/self/ns/${file}`);
        const other = fs.statSync(p);
        return own.dev === other.dev && own.ino === other.ino;
      } catch {
        return false;
      }
    },
    setgroupsDenied(p: string) {
      const pid = /^\/proc\/(\d+)\/ns\/user$/.exec(p)?.[1];
      return pid !== undefined && readText(`/proc/${pid}/setgroups`)?.trim() === 'deny';
    },
    apparmorEnabled: readText('/sys/module/apparmor/parameters/enabled')?.trim() === 'Y',
    selinuxEnabled: fs.existsSync('/sys/fs/selinux/enforce'),
  };
}

/** Mount points at or below `dir` in this process's mount namespace, deepest first (mountinfo field 5, octal escapes undone). */
export function mountsBelow(dir: string): string[] {
  const unescapeOctal = (f: string) => f.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const points = (readText('/proc/self/mountinfo') ?? '')
    .split('\n')
    .map(line => line.split(' ')[4])
    .filter((p): p is string => !!p)
    .map(unescapeOctal)
    .filter(p => p === dir || p.startsWith(`${dir}/`));
  // mountinfo lists parents before children; unmounting in reverse takes the deepest first.
  return points.reverse();
}
