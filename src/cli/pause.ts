import { pause } from '../runtime/pause.js';
import { exactlyOne, parseArgs } from './args.js';
import type { Command } from './context.js';

export const pauseCommand: Command = {
  summary: 'suspend all processes of a container (cgroup freezer)',
  usage: 'tsrt pause <container-id>',
  run(argv, ctx) {
    pause(ctx.root, exactlyOne('pause', parseArgs(argv, []).positional));
    return 0;
  },
};
