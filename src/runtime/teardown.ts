// Taking a container down: killing what runs in it, giving back what it took from the host (cgroup, devices,
// resctrl group, mounts) and removing its state. delete does all of it; a create or run that fails after the
// state was written uses the same steps, so there is one way to undo a container, whatever made it.
import { loadCgroup } from '../cgroups/manager.js';
import { native } from '../native.js';
import { cgroupOf, containerPids, initPidfd } from './container.js';
import { runHooksWarning } from './hooks.js';
import { mountsBelow } from './host.js';
import { unmountImageRootfs } from './image-rootfs.js';
import { netnsPinPath, returnToHost } from './netdev.js';
import { leaveResctrl } from './resctrl.js';
import { ociState, procStat, type ContainerDir, type ContainerRecord } from './state.js';

/** SIGKILLs everything in the container and waits until the init is gone. */
export function killAndWait(rec: ContainerRecord): void {
  const a = native();
  const pidfd = initPidfd(rec);
  if (pidfd < 0) return;
  const cgroup = cgroupOf(rec);
  // Only a cgroup we made holds nothing but the container: a pre-existing one given as cgroupsPath may hold
  // other processes, which delete must not touch.
  if (cgroup?.ownsCgroup()) {
    cgroup.signalAll(9);
    a.pidfdExited(pidfd, 10_000);
    a.closeFd(pidfd);
    return;
  }
  for (const pid of containerPids(rec).slice(1)) {
    const fd = a.pidfdOpen(pid);
    if (fd >= 0) {
      a.pidfdSignal(fd, 9);
      a.closeFd(fd);
    }
  }
  a.pidfdSignal(pidfd, 9);
  // A paused container's init cannot die frozen in a v1 freezer.
  if (cgroup?.isFrozen()) cgroup.setFrozen(false);
  a.pidfdExited(pidfd, 10_000);
  a.closeFd(pidfd);
}

/** Gives back what the container took from the host outside its state directory: devices, resctrl, mounts. */
export function releaseHostResources(dir: ContainerDir, rec: ContainerRecord, warn: (m: string) => void): void {
  // The pinned network namespace outlives the init: its devices go home now, whether it exited or was killed.
  if (rec.netDevices) returnToHost(netnsPinPath(dir.dir), rec.netDevices).forEach(warn);
  if (rec.resctrl) leaveResctrl(rec.resctrl).forEach(warn);
  if (rec.rootfsMountedHere) unmountRootfs(rec.rootfs, warn);
  if (rec.imageRootfs) unmountImageRootfs(rec.imageRootfs, warn);
}

/** What a container without a mount namespace mounted on its rootfs stays on the host until taken down here. */
function unmountRootfs(rootfs: string, warn: (m: string) => void): void {
  for (const point of mountsBelow(rootfs)) {
    try {
      native().unmount(point);
    } catch (e) {
      warn((e as Error).message);
    }
  }
}

/**
 * Kills what is left in the container's cgroup, then removes what create made of it. Only a cgroup we made
 * (or a systemd unit we started) is signalled: a pre-existing one may hold processes that are not the
 * container's. An empty one is not: on v1 signalling means a freeze and a thaw for nothing. The removal runs
 * even when signalling failed: a cgroup directory or systemd unit left behind would keep the name taken.
 */
export function removeCgroup(rec: ContainerRecord, warn: (m: string) => void): void {
  if (!rec.cgroup) return;
  const cgroup = loadCgroup(rec.cgroup);
  try {
    if (cgroup.ownsCgroup() && cgroup.pids().length) cgroup.signalAll(9);
  } catch (e) {
    warn((e as Error).message);
  }
  try {
    cgroup.destroy();
  } catch (e) {
    warn((e as Error).message);
  }
}

/**
 * A library caller is the parent of the inits it created (the CLI exits and leaves them to pid 1): an init
 * that has exited stays a zombie until its parent reaps it.
 */
function reapInit(rec: ContainerRecord): void {
  const st = rec.pid > 0 ? procStat(rec.pid) : undefined;
  if (st?.state !== 'Z' || st.ppid !== process.pid || st.startTime !== rec.initStartTime) return;
  const pidfd = native().pidfdOpen(rec.pid);
  if (pidfd < 0) return;
  try {
    native().wait(pidfd);
  } catch {
    /* reaped meanwhile */
  }
  native().closeFd(pidfd);
}

/**
 * Everything of a container whose processes are gone, its state directory last; `poststop` hooks run just
 * before that (delete runs them, a create or run that fails does not).
 */
export function teardown(dir: ContainerDir, rec: ContainerRecord, warn: (m: string) => void, poststop: boolean): void {
  removeCgroup(rec, warn);
  releaseHostResources(dir, rec, warn);
  if (poststop) runHooksWarning('poststop', rec.hooks?.poststop, ociState(rec, 'stopped'), warn);
  dir.remove();
}

/** A stopped container's end, as delete and a foreground run make it: reaped, taken down, poststop run. */
export function destroy(dir: ContainerDir, rec: ContainerRecord, warn: (m: string) => void): void {
  reapInit(rec);
  teardown(dir, rec, warn, true);
}
