// update: new resource limits for a live container's cgroup, merged into those in force and recorded.
import { RuntimeError } from '../errors.js';
import type { LinuxResources } from '../spec/types.gen.js';
import { cgroupOf, withContainer } from './container.js';

/** Changes the resources of a live container; what is not given stays as it is. */
export function update(root: string, id: string, change: LinuxResources): void {
  withContainer(root, id, ({ dir, rec, status }) => {
    if (status === 'stopped') throw new RuntimeError('container not running', { op: 'update' });
    const cgroup = cgroupOf(rec);
    if (!cgroup) {
      throw new RuntimeError(
        `cannot update container ${id}: it has no cgroup${rec.rootless ? ' (unprivileged, without a delegated cgroup)' : ''}`,
        { op: 'update' },
      );
    }
    cgroup.update(change);
    rec.cgroup = cgroup.record;
    dir.save(rec);
  });
}
