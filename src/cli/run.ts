import { run } from '../runtime/run.js';
import { parseArgs, type FlagSpec } from './args.js';
import type { Command } from './context.js';
import { createFlags, createOptions } from './create.js';

const runFlags: FlagSpec[] = [...createFlags, { name: 'detach', short: 'd', kind: 'bool' }, { name: 'keep', kind: 'bool' }];

export const runCommand: Command = {
  flags: runFlags,
  run(argv, ctx) {
    const { flags, positional } = parseArgs(argv, runFlags);
    const status = run({
      ...createOptions(flags, positional, 'run', ctx),
      detach: !!flags['detach'],
      keep: !!flags['keep'],
    });
    return status.code;
  },
};
