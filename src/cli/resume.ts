import { resume } from '../runtime/pause.js';
import { exactlyOne, parseArgs } from './args.js';
import type { Command } from './context.js';

export const resumeCommand: Command = {
  summary: 'resume all processes of a paused container',
  usage: 'tsrt resume <container-id>',
  run(argv, ctx) {
    resume(ctx.root, exactlyOne('resume', parseArgs(argv, []).positional));
    return 0;
  },
};
