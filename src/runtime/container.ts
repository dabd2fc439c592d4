// A container at rest, as the operations find it: its state directory locked for the length of an operation,
// its init (by pidfd, never by a pid that may have been reused), its processes and its cgroup.
import * as fs from 'node:fs';
import { loadCgroup } from '../cgroups/manager.js';
import type { CgroupManager } from '../cgroups/types.js';
import { native } from '../native.js';
import { ContainerDir, notExist, ociState, procStat, type ContainerRecord, type OciState, type Status } from './state.js';

/** A container as an operation holding its lock sees it. */
export interface Locked {
  dir: ContainerDir;
  rec: ContainerRecord;
  status: Status;
}

/**
 * Runs `fn` on the container with its lock held, and lets go of the lock however `fn` ends: a library caller
 * keeps no fd, and its next call on the container does not wait on a lock of its own.
 */
export function withContainer<T>(root: string, id: string, fn: (c: Locked) => T): T {
  const dir = new ContainerDir(root, id);
  if (!dir.exists()) throw notExist();
  return withLocked(dir, fn);
}

/** withContainer for a `dir` at hand (whose lock may be held already: it is taken once, released here). */
export function withLocked<T>(dir: ContainerDir, fn: (c: Locked) => T): T {
  try {
    dir.lock();
    const rec = dir.load();
    return fn({ dir, rec, status: dir.status(rec) });
  } finally {
    dir.unlock();
  }
}

export function state(root: string, id: string): OciState {
  const dir = new ContainerDir(root, id);
  if (!dir.exists()) throw notExist();
  const rec = dir.load();
  return ociState(rec, dir.status(rec));
}

/** Opens a pidfd for the container init, refusing a pid that now belongs to another process. */
export function initPidfd(rec: ContainerRecord): number {
  const fd = native().pidfdOpen(rec.pid);
  if (fd < 0) return -1;
  const st = procStat(rec.pid);
  if (!st || st.startTime !== rec.initStartTime) {
    native().closeFd(fd);
    return -1;
  }
  return fd;
}

/** Every process in the container's pid namespace (when it has its own), init first. */
export function containerPids(rec: ContainerRecord): number[] {
  if (!rec.privatePidns) return [rec.pid];
  let nsLink: string;
  try {
    nsLink = fs.readlinkSync(`/proc/${rec.pid}/ns/pid`);
  } catch {
    return [rec.pid];
  }
  const pids = [rec.pid];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === rec.pid) continue;
    try {
      if (fs.readlinkSync(`/proc/${name}/ns/pid`) === nsLink) pids.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

/** The container's cgroup manager, when it has a cgroup that holds its processes. */
export function cgroupOf(rec: ContainerRecord): CgroupManager | undefined {
  return rec.cgroup?.dirs.length ? loadCgroup(rec.cgroup) : undefined;
}

/** The cgroup of a container by id (for ps, events and stats): undefined when it has none. */
export function containerCgroup(root: string, id: string): CgroupManager | undefined {
  const dir = new ContainerDir(root, id);
  if (!dir.exists()) throw notExist();
  return cgroupOf(dir.load());
}
