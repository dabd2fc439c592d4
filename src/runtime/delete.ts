// delete: a stopped container's processes, host resources and state go; --force stops it first.
import { RuntimeError } from '../errors.js';
import { TSRT_TEXT_DELETE_NOT_STOPPED } from '../native-abi/abi.gen.js';
import { fill } from '../native-abi/text.js';
import { native } from '../native.js';
import { initPidfd, withLocked } from './container.js';
import { ContainerDir, notExist } from './state.js';
import { destroy, killAndWait } from './teardown.js';

export function remove(root: string, id: string, force: boolean, warn: (m: string) => void): void {
  const dir = new ContainerDir(root, id);
  if (!dir.exists() && !dir.settleWithoutRecord()) {
    if (force) return;
    throw notExist();
  }
  try {
    withLocked(dir, ({ rec, status }) => {
      if (rec.creating) {
        // A create that died half-way: its init (when it got that far) may still wait on the fifo, and may not
        // be in the cgroup yet. It has not exec'd, so it has no children: killing it alone is enough.
        const pidfd = rec.pid > 0 ? initPidfd(rec) : -1;
        if (pidfd >= 0) {
          native().pidfdSignal(pidfd, 9);
          native().pidfdExited(pidfd, 10_000);
          native().closeFd(pidfd);
        }
      } else if (status === 'running' || status === 'paused') {
        if (!force) throw new RuntimeError(fill(TSRT_TEXT_DELETE_NOT_STOPPED, id, status), { op: 'delete' });
        killAndWait(rec);
      } else if (status === 'created') {
        // The spec wants an error here; engines always follow with `delete --force`, which still works.
        if (!force) throw new RuntimeError(fill(TSRT_TEXT_DELETE_NOT_STOPPED, id, 'created'), { op: 'delete' });
        killAndWait(rec);
      }
      destroy(dir, rec, warn);
    });
  } catch (e) {
    // Removed by the command that held the lock before us.
    if (force && e instanceof RuntimeError && e.errno === 'ENOENT') return;
    throw e;
  }
}
