// exec, run, shell and test share everything but the action: flags, the image or instance://NAME, messages.
import type { GlobalOptions, Reporter, SingularityCommand } from './command.js';
import type { Action } from './environment.js';
import { joinInstance } from './instance.js';
import { launch } from './launch.js';
import { parseActionArgs, UsageError } from './options.js';
import { localImage, type Reporting } from './registry/convert.js';

export function reporter(g: GlobalOptions): Reporter {
  return {
    warn: m => {
      if (!g.silent) process.stderr.write(`WARNING: ${m}\n`);
    },
    info: m => {
      if (g.verbose || g.debug) process.stderr.write(`INFO:    ${m}\n`);
    },
  };
}

/** What converting a docker:// (or other OCI) image says: Singularity shows it unless -q or -s. */
export function conversionReporter(g: GlobalOptions): Reporting {
  const quiet = g.quiet || g.silent;
  return {
    quiet,
    info: m => {
      if (!quiet) process.stderr.write(`INFO:    ${m}\n`);
    },
    warn: reporter(g).warn,
  };
}

const INSTANCE_PREFIX = 'instance://';

export const ACTION_FLAGS_USAGE =
  '[-B src[:dst[:ro|rw]]] [--mount spec] [-c|-C] [-e] [--env K=V] [--env-file F] [-H src[:dst]] [--no-home] [--pwd DIR] ' +
  '[-w|--writable-tmpfs|-o DIR[:ro]] [-p] [-i] [--uts] [--hostname H] [-n|--net] [--network none|pasta] ' +
  '[--network-args portmap=HOST:CONTAINER/tcp] [--dns IP,...] [-f] [-u] [-q] [--sharens[=false]] [--no-mount LIST] [-S DIR] [-W DIR] [--nv] [--rocm] [--app NAME]';

export function actionCommand(action: Exclude<Action, 'start'>, summary: string, usage: string, minArgs: number): SingularityCommand {
  return {
    summary,
    usage,
    async run(argv: string[], g: GlobalOptions): Promise<number> {
      const r = reporter(g);
      const { options, rest } = parseActionArgs(argv);
      if (options.shell !== undefined && action !== 'shell')
        throw new UsageError('unknown flag: --shell (only the shell command takes it)');
      if (rest.length < minArgs) throw new UsageError(`requires at least ${minArgs} arg(s), only received ${rest.length}`);
      const [image, ...args] = rest as [string, ...string[]];
      if (image.startsWith(INSTANCE_PREFIX)) return joinInstance(image.slice(INSTANCE_PREFIX.length), action, args, options, r);
      return launch({
        image: await localImage(image, options.registry, conversionReporter({ ...g, quiet: g.quiet || options.quiet })),
        action,
        args,
        options,
        ...r,
      });
    },
  };
}
