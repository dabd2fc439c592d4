// pause and resume: every process of the container frozen, or thawed, through its cgroup's freezer.
import type { CgroupManager } from '../cgroups/types.js';
import { RuntimeError } from '../errors.js';
import { cgroupOf, withContainer } from './container.js';
import type { ContainerRecord } from './state.js';

function frozenCgroup(rec: ContainerRecord, verb: string): CgroupManager {
  const cgroup = cgroupOf(rec);
  if (!cgroup?.canFreeze()) {
    throw new RuntimeError(
      `cannot ${verb} container ${rec.id}: it has no freezer cgroup${rec.rootless ? ' (unprivileged, without a delegated cgroup)' : ''}`,
      { op: verb },
    );
  }
  return cgroup;
}

/** Freezes every process of a created or running container. */
export function pause(root: string, id: string): void {
  withContainer(root, id, ({ rec, status }) => {
    if (status !== 'running' && status !== 'created') throw new RuntimeError('container not running', { op: 'pause' });
    frozenCgroup(rec, 'pause').setFrozen(true);
  });
}

/** Thaws a paused container. */
export function resume(root: string, id: string): void {
  withContainer(root, id, ({ rec, status }) => {
    if (status !== 'paused') throw new RuntimeError('container not paused', { op: 'resume' });
    frozenCgroup(rec, 'resume').setFrozen(false);
  });
}
