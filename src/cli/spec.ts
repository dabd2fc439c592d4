import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import { specTemplate } from '../spec/template.js';
import { parseArgs, usageError, type FlagSpec } from './args.js';
import type { Command } from './context.js';

const specFlags: FlagSpec[] = [
  { name: 'bundle', short: 'b', kind: 'string' },
  { name: 'rootless', kind: 'bool' },
];

export const specCommand: Command = {
  flags: specFlags,
  run(argv) {
    const { flags, positional } = parseArgs(argv, specFlags);
    if (positional.length) throw usageError('"spec" takes no arguments');
    const file = path.join((flags['bundle'] as string | undefined) ?? '.', 'config.json');
    if (fs.existsSync(file)) throw new RuntimeError('File config.json exists. Remove it first.', { op: 'spec', path: file });
    const spec = specTemplate({
      rootless: !!flags['rootless'],
      uid: process.geteuid?.() ?? 0,
      gid: process.getegid?.() ?? 0,
    });
    fs.writeFileSync(file, `${JSON.stringify(spec, null, '\t')}\n`, { mode: 0o666 });
    return 0;
  },
};
