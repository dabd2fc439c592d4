// What each tsrt-singularity command module exports; main.ts only dispatches.
import { RuntimeError } from '../errors.js';

/** Global flags given before the command (singularity -d/-q/-s/-v ...). */
export interface GlobalOptions {
  debug: boolean;
  quiet: boolean;
  silent: boolean;
  verbose: boolean;
}

/** Where a command's warnings and -v messages go (reporter() in action.ts prints them as Singularity does). */
export interface Reporter {
  warn(m: string): void;
  info(m: string): void;
}

/**
 * A command line the command cannot parse (unknown flag, missing arguments). main.ts reports it the way
 * Singularity's cobra front end does: "Error for command ...", the usage, a pointer to --help, status 1
 * (FATAL and 255 are for what goes wrong after parsing).
 */
export class UsageError extends RuntimeError {
  constructor(message: string) {
    super(message, { op: 'usage' });
    this.name = 'UsageError';
  }
}

export interface SingularityCommand {
  /** One line for `tsrt-singularity help`. */
  summary: string;
  usage: string;
  /** Runs the command; the number is the process exit status. */
  run(argv: string[], globals: GlobalOptions): number | Promise<number>;
}
