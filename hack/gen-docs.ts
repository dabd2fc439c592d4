// Build step (hack/build.sh, run by Bun): the man pages into dist/man/ and the bash completion scripts
// into dist/completion/, from the tables --help reads. Usage: gen-docs.ts OUTDIR VERSION DATE
import * as fs from 'node:fs';
import * as path from 'node:path';
import { singularityCompletion, tsrtCompletion } from '../src/manual/completion.js';
import { manPages } from '../src/manual/pages.js';

const [outdir, version, date] = process.argv.slice(2);
if (!outdir || !version || !date || !/^\d{4}-\d{2}-\d{2}$/.test(date)) {
  process.stderr.write('usage: gen-docs.ts OUTDIR VERSION YYYY-MM-DD\n');
  process.exit(2);
}
const man = path.join(outdir, 'man');
const completion = path.join(outdir, 'completion');
// Whole directories are replaced, so a verb that is gone leaves no page behind.
fs.rmSync(man, { recursive: true, force: true });
fs.rmSync(completion, { recursive: true, force: true });
fs.mkdirSync(man, { recursive: true });
fs.mkdirSync(completion, { recursive: true });
const pages = manPages({ version, date });
for (const p of pages) fs.writeFileSync(path.join(man, p.file), p.roff);
fs.writeFileSync(path.join(completion, 'tsrt'), tsrtCompletion());
fs.writeFileSync(path.join(completion, 'tsrt-singularity'), singularityCompletion());
process.stdout.write(`${pages.length} man pages, 2 completion scripts\n`);
