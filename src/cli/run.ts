import { run } from '../runtime/container.js';
import { exactlyOne, parseArgs } from './args.js';
import type { Command } from './context.js';
import { createFlags } from './create.js';

export const runCommand: Command = {
  summary: 'create and start a container; in the foreground, exit with its status',
  usage: 'tsrt run [-b bundle] [-d] [--keep] [--pid-file file] [--console-socket path] [--no-pivot] [--no-new-keyring] [--preserve-fds N] <container-id>',
  run(argv, ctx) {
    const { flags, positional } = parseArgs(argv, [
      ...createFlags,
      { name: 'detach', short: 'd', kind: 'bool' },
      { name: 'keep', kind: 'bool' },
    ]);
    const status = run({
      root: ctx.root,
      id: exactlyOne('run', positional),
      bundle: (flags['bundle'] as string | undefined) ?? '.',
      pidFile: flags['pid-file'] as string | undefined,
      consoleSocket: flags['console-socket'] as string | undefined,
      noPivot: !!flags['no-pivot'],
      noNewKeyring: !!flags['no-new-keyring'],
      preserveFds: (flags['preserve-fds'] as number | undefined) ?? 0,
      detach: !!flags['detach'],
      keep: !!flags['keep'],
      warn: m => ctx.report.warn(m),
    });
    return status.code;
  },
};
