import { pause } from '../runtime/pause.js';
import { exactlyOne, parseArgs } from './args.js';
import type { Command } from './context.js';

export const pauseCommand: Command = {
  flags: [],
  run(argv, ctx) {
    pause(ctx.root, exactlyOne('pause', parseArgs(argv, []).positional));
    return 0;
  },
};
