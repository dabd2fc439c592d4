import { ACTION_FLAGS_USAGE, actionCommand } from '../action.js';

export const shellCommand = actionCommand(
  'shell',
  'Run a shell within a container',
  `singularity shell [shell options...] [-s PATH] <image|instance://name>\n  options: ${ACTION_FLAGS_USAGE}`,
  1,
);
