import { run } from '../runtime/run.js';
import { parseArgs } from './args.js';
import type { Command } from './context.js';
import { createFlags, createOptions } from './create.js';

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
      ...createOptions(flags, positional, 'run', ctx),
      detach: !!flags['detach'],
      keep: !!flags['keep'],
    });
    return status.code;
  },
};
