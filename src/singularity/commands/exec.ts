import { ACTION_FLAGS_USAGE, actionCommand } from '../action.js';

export const execCommand = actionCommand(
  'exec',
  'Run a command within a container',
  `singularity exec [exec options...] <image|instance://name> <command> [args...]\n  options: ${ACTION_FLAGS_USAGE}`,
  2,
);
