import * as fs from 'node:fs';
import * as os from 'node:os';
import { spawnSync } from 'node:child_process';
import { selfArgv } from '../self.js';

/**
 * Root acting on a state root that an unprivileged user owns (Slurm runs RunTimeQuery, RunTimeKill and
 * RunTimeDelete as root on the --root of the job's user, as its oci.conf recipe for runc does) re-runs the
 * command as that user. Everything in that directory was written by the user, hooks and pids included: read
 * and acted on by root, a planted record would run a hook or signal a process with root's privileges. As the
 * owner, the command can do nothing the user could not do by running it. Returns the exit status to end with,
 * or undefined when the command is to run here (not root, no --root, or root's own directory).
 */
export function runAsStateRootOwner(root: string | undefined, argv: string[]): number | undefined {
  if (root === undefined || process.geteuid!() !== 0) return undefined;
  let st: fs.Stats;
  try {
    st = fs.lstatSync(root);
  } catch {
    return undefined;
  }
  // A symlink, or a directory of root's, is the core's to verify or refuse as it would anyway.
  if (!st.isDirectory() || st.uid === 0) return undefined;
  const [cmd, pre] = selfArgv();
  // The directory's group is the primary group its owner made it with (the core makes it as that user).
  const r = spawnSync(cmd, [...pre, ...argv], { stdio: 'inherit', uid: st.uid, gid: st.gid });
  if (r.error) throw r.error;
  if (r.signal) {
    process.kill(process.pid, r.signal);
    return 128 + os.constants.signals[r.signal];
  }
  return r.status ?? 1;
}
