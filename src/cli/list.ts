import { state } from '../runtime/container.js';
import { listIds } from '../runtime/state.js';
import { parseArgs, usageError, type FlagSpec } from './args.js';
import type { Command } from './context.js';
import { out } from './report.js';

/** Go's tabwriter as runc configures it (minwidth 12, padding 3): every column as wide as its widest cell. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(12, ...rows.map(r => r[c]!.length + 3)));
  return rows.map(r => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('')).join('\n') + '\n';
}

const listFlags: FlagSpec[] = [
  { name: 'format', short: 'f', kind: 'string' },
  { name: 'quiet', short: 'q', kind: 'bool' },
];

export const listCommand: Command = {
  flags: listFlags,
  run(argv, ctx) {
    const { flags, positional } = parseArgs(argv, listFlags);
    if (positional.length) throw usageError('"list" takes no arguments');
    const format = (flags['format'] as string | undefined) ?? 'table';
    if (format !== 'table' && format !== 'json') throw usageError(`invalid format option "${format}"`);
    const states = listIds(ctx.root).flatMap(id => {
      try {
        return [state(ctx.root, id)];
      } catch {
        return []; // deleted while we listed
      }
    });
    if (flags['quiet']) {
      out(states.map(s => `${s.id}\n`).join(''));
    } else if (format === 'json') {
      out(`${JSON.stringify(states)}\n`);
    } else {
      const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']];
      for (const s of states) {
        rows.push([s.id, String(s.pid), s.status, s.bundle, s.created, s.owner || 'root']);
      }
      out(table(rows));
    }
    return 0;
  },
};
