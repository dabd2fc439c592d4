import { resume } from '../runtime/pause.js';
import { exactlyOne, parseArgs } from './args.js';
import type { Command } from './context.js';

export const resumeCommand: Command = {
  flags: [],
  run(argv, ctx) {
    resume(ctx.root, exactlyOne('resume', parseArgs(argv, []).positional));
    return 0;
  },
};
