// runc ps: `ps [-f table|json] <id> [ps options]`. Flags end at the container id, so everything after it
// (-o pid,comm, -aux) goes to the host's ps.
import { containerProcesses, psTable } from '../runtime/ps.js';
import { parseArgs, usageError, type FlagSpec } from './args.js';
import type { Command } from './context.js';
import { out } from './report.js';

const psFlags: FlagSpec[] = [{ name: 'format', short: 'f', kind: 'string' }];

export const psCommand: Command = {
  flags: psFlags,
  stopAtPositional: true,
  run(argv, ctx) {
    const { flags, positional } = parseArgs(argv, psFlags, true);
    if (positional.length < 1) throw usageError('"ps" requires a minimum of 1 argument(s)');
    const [id, ...psArgs] = positional as [string, ...string[]];
    const pids = containerProcesses(ctx.root, id);
    const format = (flags['format'] as string | undefined) ?? 'table';
    if (format === 'json') {
      // Go encodes runc's empty (nil) pid list as null; engines read either.
      out(`${pids.length ? JSON.stringify(pids) : 'null'}\n`);
      return 0;
    }
    if (format !== 'table') throw usageError('invalid format option');
    out(psTable(pids, psArgs));
    return 0;
  },
};
