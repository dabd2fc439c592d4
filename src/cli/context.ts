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

export interface Command {
  /** One line for `tsrt --help`. */
  summary: string;
  usage: string;
  /** Runs the verb; the number is the process exit status. */
  run(argv: string[], ctx: Context): number;
}
