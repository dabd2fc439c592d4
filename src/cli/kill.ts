import { kill } from '../runtime/kill.js';
import { parseArgs, usageError, type FlagSpec } from './args.js';
import type { Command } from './context.js';

const killFlags: FlagSpec[] = [{ name: 'all', short: 'a', kind: 'bool' }];

export const killCommand: Command = {
  flags: killFlags,
  run(argv, ctx) {
    const { flags, positional } = parseArgs(argv, killFlags);
    if (positional.length < 1 || positional.length > 2) throw usageError('"kill" requires a minimum of 1 and a maximum of 2 argument(s)');
    kill(ctx.root, positional[0]!, positional[1] ?? 'SIGTERM', !!flags['all']);
    return 0;
  },
};
