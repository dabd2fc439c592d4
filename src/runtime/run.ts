// run: create and start in one process, the init started over the sync socket instead of exec.fifo; in the
// foreground, the container's exit status is the caller's, and the container is deleted after it (unless kept).
import type { ExitStatus } from '../native.js';
import { launch, type CreateOptions } from './create.js';
import { runHooksWarning } from './hooks.js';
import { runStartHooks, waitForUserExec } from './start.js';
import { ociState } from './state.js';
import { destroy, teardown } from './teardown.js';

export interface RunOptions extends CreateOptions {
  detach?: boolean;
  keep?: boolean;
}

/** create + start in one process; in the foreground, wait and return the container's exit status. */
export function run(opts: RunOptions): ExitStatus {
  const { dir, rec, session } = launch(opts, 'socket', !opts.detach);
  try {
    runStartHooks(dir, rec, opts.warn, opts.debug);
  } catch (e) {
    session.release();
    throw e;
  }
  try {
    // The init's end of the socket closes at exec: an error message instead means exec itself failed.
    session.start(true);
  } catch (e) {
    session.reap();
    teardown(dir, rec, opts.warn, false);
    throw e;
  }
  if (rec.hooks?.poststart?.length) waitForUserExec(rec.pid);
  runHooksWarning('poststart', rec.hooks?.poststart, ociState(rec, 'running'), opts.warn);
  dir.unlock();
  if (opts.detach) {
    session.release();
    return { code: 0, signal: 0 };
  }
  const status = session.waitForeground();
  if (!opts.keep) destroy(dir, rec, opts.warn);
  return status;
}
