// kill: a signal to the container's init, or with --all to every process of the container.
import { RuntimeError, describeErrno, errnoName } from '../errors.js';
import { TSRT_TEXT_NOT_RUNNING } from '../native-abi/abi.gen.js';
import { native } from '../native.js';
import { cgroupOf, containerPids, initPidfd, withContainer } from './container.js';
import { parseSignal } from './signals.js';

export function kill(root: string, id: string, signal: string, all: boolean): void {
  const sig = parseSignal(signal);
  withContainer(root, id, ({ rec, status }) => {
    const cgroup = cgroupOf(rec);
    if (status === 'stopped') {
      if (!all) throw new RuntimeError(TSRT_TEXT_NOT_RUNNING, { op: 'kill' });
      // As runc: the init is gone but what it left in the cgroup (daemonized children) still gets the signal.
      if (cgroup?.pids().length) cgroup.signalAll(sig);
      return;
    }
    const a = native();
    if (all && cgroup) {
      // The cgroup holds every process of the container, with or without a pid namespace of its own.
      cgroup.signalAll(sig);
      return;
    }
    const pidfd = initPidfd(rec);
    if (pidfd < 0) throw new RuntimeError(TSRT_TEXT_NOT_RUNNING, { op: 'kill' });
    const r = a.pidfdSignal(pidfd, sig);
    a.closeFd(pidfd);
    if (r < 0) {
      const errno = errnoName(-r);
      if (errno === 'ESRCH') throw new RuntimeError(TSRT_TEXT_NOT_RUNNING, { op: 'kill', errno });
      throw new RuntimeError(`kill container: ${describeErrno(errno) ?? errno}`, { op: 'kill', errno });
    }
    if (all) {
      for (const pid of containerPids(rec).slice(1)) {
        const fd = a.pidfdOpen(pid);
        if (fd >= 0) {
          a.pidfdSignal(fd, sig);
          a.closeFd(fd);
        }
      }
    }
  });
}
