import { remove } from '../runtime/delete.js';
import { exactlyOne, parseArgs } from './args.js';
import type { Command } from './context.js';

export const deleteCommand: Command = {
  summary: 'delete a container and everything it holds',
  usage: 'tsrt delete [--force] <container-id>',
  run(argv, ctx) {
    const { flags, positional } = parseArgs(argv, [{ name: 'force', short: 'f', kind: 'bool' }]);
    remove(ctx.root, exactlyOne('delete', positional), !!flags['force'], m => ctx.report.warn(m));
    return 0;
  },
};
