import { kill } from '../runtime/kill.js';
import { parseArgs, usageError } from './args.js';
import type { Command } from './context.js';

export const killCommand: Command = {
  summary: 'send a signal to the container init (SIGTERM by default)',
  usage: 'tsrt kill [--all] <container-id> [signal]',
  run(argv, ctx) {
    const { flags, positional } = parseArgs(argv, [{ name: 'all', short: 'a', kind: 'bool' }]);
    if (positional.length < 1 || positional.length > 2) throw usageError('"kill" requires a minimum of 1 and a maximum of 2 argument(s)');
    kill(ctx.root, positional[0]!, positional[1] ?? 'SIGTERM', !!flags['all']);
    return 0;
  },
};
