import { features } from '../runtime/features.js';
import { parseArgs, usageError } from './args.js';
import type { Command } from './context.js';
import { out } from './report.js';

export const featuresCommand: Command = {
  flags: [],
  run(argv, ctx) {
    const { positional } = parseArgs(argv, []);
    if (positional.length) throw usageError('"features" takes no arguments');
    out(`${JSON.stringify(features(ctx.version, ctx.commit), null, 4)}\n`);
    return 0;
  },
};
