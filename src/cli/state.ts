import { state } from '../runtime/container.js';
import { exactlyOne, parseArgs } from './args.js';
import type { Command } from './context.js';
import { out } from './report.js';

export const stateCommand: Command = {
  flags: [],
  run(argv, ctx) {
    const id = exactlyOne('state', parseArgs(argv, []).positional);
    out(`${JSON.stringify(state(ctx.root, id), null, 2)}\n`);
    return 0;
  },
};
