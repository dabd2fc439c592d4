import { create, type CreateOptions } from '../runtime/create.js';
import { rootlessMode } from '../runtime/state.js';
import { exactlyOne, parseArgs, type FlagSpec, type FlagValues } from './args.js';
import type { Command, Context } from './context.js';

export const createFlags: FlagSpec[] = [
  { name: 'bundle', short: 'b', kind: 'string' },
  { name: 'console-socket', kind: 'string' },
  { name: 'pid-file', kind: 'string' },
  { name: 'no-pivot', kind: 'bool' },
  { name: 'no-new-keyring', kind: 'bool' },
  { name: 'preserve-fds', kind: 'int' },
];

/** The options create and run share, from their parsed flags. */
export function createOptions(flags: FlagValues, positional: string[], verb: string, ctx: Context): CreateOptions {
  return {
    root: ctx.root,
    id: exactlyOne(verb, positional),
    bundle: (flags['bundle'] as string | undefined) ?? '.',
    pidFile: flags['pid-file'] as string | undefined,
    consoleSocket: flags['console-socket'] as string | undefined,
    noPivot: !!flags['no-pivot'],
    noNewKeyring: !!flags['no-new-keyring'],
    preserveFds: (flags['preserve-fds'] as number | undefined) ?? 0,
    cgroupManager: ctx.cgroupManager,
    rootless: rootlessMode(ctx.rootless),
    warn: m => ctx.report.warn(m),
    debug: m => ctx.report.debug(m),
  };
}

export const createCommand: Command = {
  flags: createFlags,
  run(argv, ctx) {
    const { flags, positional } = parseArgs(argv, createFlags);
    create(createOptions(flags, positional, 'create', ctx));
    return 0;
  },
};
