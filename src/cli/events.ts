// runc events: `events [--stats] [--interval 5s] <id>`: JSON lines on stdout, one per event.
import * as fs from 'node:fs';
import { events, formatEvent, parseGoDuration } from '../runtime/events.js';
import { exactlyOne, parseArgs, usageError, type FlagSpec } from './args.js';
import type { Command } from './context.js';

/** Writes one event line; false once nobody reads stdout any more (the stream then ends). */
function emitLine(text: string): boolean {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      return false;
    }
  }
  return true;
}

const eventsFlags: FlagSpec[] = [
  { name: 'interval', kind: 'string' },
  { name: 'stats', kind: 'bool' },
];

export const eventsCommand: Command = {
  flags: eventsFlags,
  run(argv, ctx) {
    const { flags, positional } = parseArgs(argv, eventsFlags);
    const interval = (flags['interval'] as string | undefined) ?? '5s';
    let intervalNs: number;
    try {
      intervalNs = parseGoDuration(interval);
    } catch {
      throw usageError(`invalid value ${JSON.stringify(interval)} for flag -interval: parse error`);
    }
    const id = exactlyOne('events', positional);
    events(ctx.root, id, { intervalNs, statsOnly: !!flags['stats'], emit: e => emitLine(formatEvent(e)) });
    return 0;
  },
};
