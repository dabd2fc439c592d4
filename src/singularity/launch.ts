// The action commands' foreground container: a session (session.ts: the image, the spec, the session
// directory), run in-process with the tsrt library, unprivileged, in a user namespace, then removed.
import { run as runContainer } from '../index.js';
import { prepare, removeSession, stateRoot, type LaunchRequest } from './session.js';

/** Runs an action in the foreground and returns its exit status (128+N when a signal ended it). */
export function launch(req: LaunchRequest): number {
  const session = prepare(req);
  try {
    // No cgroup: Singularity makes one only to apply resource limits, which these actions do not take; making
    // it cost every exec a directory in each hierarchy and the kernel's wait on the first cgroup.procs write.
    const status = runContainer({ root: stateRoot(), id: session.id, bundle: session.dir, cgroupManager: 'disabled', warn: req.warn });
    return status.code;
  } finally {
    removeSession(session);
  }
}
