import { create } from '../runtime/container.js';
import { exactlyOne, parseArgs, type FlagSpec } from './args.js';
import type { Command } from './context.js';

export const createFlags: FlagSpec[] = [
  { name: 'bundle', short: 'b', kind: 'string' },
  { name: 'console-socket', kind: 'string' },
  { name: 'pid-file', kind: 'string' },
  { name: 'no-pivot', kind: 'bool' },
  { name: 'no-new-keyring', kind: 'bool' },
  { name: 'preserve-fds', kind: 'int' },
];

export const createCommand: Command = {
  summary: 'create a container',
  usage: 'tsrt create [-b bundle] [--console-socket path] [--pid-file file] [--no-pivot] [--no-new-keyring] [--preserve-fds N] <container-id>',
  run(argv, ctx) {
    const { flags, positional } = parseArgs(argv, createFlags);
    const id = exactlyOne('create', positional);
    create({
      root: ctx.root,
      id,
      bundle: (flags['bundle'] as string | undefined) ?? '.',
      pidFile: flags['pid-file'] as string | undefined,
      consoleSocket: flags['console-socket'] as string | undefined,
      noPivot: !!flags['no-pivot'],
      noNewKeyring: !!flags['no-new-keyring'],
      preserveFds: (flags['preserve-fds'] as number | undefined) ?? 0,
      warn: m => ctx.report.warn(m),
    });
    return 0;
  },
};
