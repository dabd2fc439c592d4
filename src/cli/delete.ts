import { remove } from '../runtime/delete.js';
import { exactlyOne, parseArgs, type FlagSpec } from './args.js';
import type { Command } from './context.js';

const deleteFlags: FlagSpec[] = [{ name: 'force', short: 'f', kind: 'bool' }];

export const deleteCommand: Command = {
  flags: deleteFlags,
  run(argv, ctx) {
    const { flags, positional } = parseArgs(argv, deleteFlags);
    remove(ctx.root, exactlyOne('delete', positional), !!flags['force'], m => ctx.report.warn(m));
    return 0;
  },
};
