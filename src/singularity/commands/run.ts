import { ACTION_FLAGS_USAGE, actionCommand } from '../action.js';

export const runCommand = actionCommand(
  'run',
  'Run the user-defined default command within a container',
  `singularity run [run options...] <image|instance://name> [args...]\n  options: ${ACTION_FLAGS_USAGE}`,
  1,
);
