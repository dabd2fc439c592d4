import { ACTION_FLAGS_USAGE, actionCommand } from '../action.js';

export const testCommand = actionCommand(
  'test',
  'Run the user-defined tests within a container',
  `singularity test [exec options...] <image>\n  options: ${ACTION_FLAGS_USAGE}`,
  1,
);
