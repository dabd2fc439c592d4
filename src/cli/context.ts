import type { FlagSpec } from './args.js';
import type { Reporter } from './report.js';

/** What every verb gets from the global flags. */
export interface Context {
  root: string;
  report: Reporter;
  /** --systemd-cgroup / --cgroup-manager: who manages the container's cgroup ('disabled': nobody). */
  cgroupManager: 'cgroupfs' | 'systemd' | 'disabled';
  rootless: 'auto' | 'true' | 'false';
  /** This build's version and commit (for `features`). */
  version: string;
  commit: string;
}

/** A verb; its summary, usage and flag descriptions are in manual.ts. */
export interface Command {
  /** Every flag the verb's parser accepts (help and the man pages list them). */
  flags: FlagSpec[];
  /** Flags end at the first argument: what follows is the container's command (exec) or ps's options. */
  stopAtPositional?: boolean;
  /** Runs the verb; the number is the process exit status. */
  run(argv: string[], ctx: Context): number;
}
