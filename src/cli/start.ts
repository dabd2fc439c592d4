import { start } from '../runtime/start.js';
import { exactlyOne, parseArgs } from './args.js';
import type { Command } from './context.js';

export const startCommand: Command = {
  flags: [],
  run(argv, ctx) {
    const id = exactlyOne('start', parseArgs(argv, []).positional);
    start(
      ctx.root,
      id,
      m => ctx.report.warn(m),
      m => ctx.report.debug(m),
    );
    return 0;
  },
};
