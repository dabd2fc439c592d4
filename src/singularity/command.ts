// What each tsrt-singularity command module exports; main.ts only dispatches.

/** Global flags given before the command (singularity -d/-q/-s/-v ...). */
export interface GlobalOptions {
  debug: boolean;
  quiet: boolean;
  silent: boolean;
  verbose: boolean;
}

export interface SingularityCommand {
  /** One line for `tsrt-singularity help`. */
  summary: string;
  usage: string;
  /** Runs the command; the number is the process exit status. */
  run(argv: string[], globals: GlobalOptions): number | Promise<number>;
}
