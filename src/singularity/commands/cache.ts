// `cache list` and `cache clean`: the image cache (../registry/cache.ts), with Singularity's wording, and the
// types tsrt-singularity adds to it: unpacked sandboxes (never removed while a run uses one) and the packages
// bootstrap builds downloaded.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatSize } from '../../oci-dist/progress.js';
import { openPrivateDir } from '../../private-dir.js';
import { removeSandboxEntry, sweepSandboxCache } from '../../sif/unpack-cache.js';
import { type SingularityCommand, UsageError } from '../command.js';
import { ALL_TYPES, cacheRoot, leftovers, listEntries, typePath, type CacheEntry, type CacheType } from '../registry/cache.js';
import { boolFlag, intFlag, parseFlags, stringFlag } from './sif-flags.js';
import { RuntimeError } from '../../errors.js';

const TYPE_NAMES = 'library, oci, shub, blob, net, oras, sandbox, bootstrap, all';
const USAGE =
  'singularity cache list [-T|--type TYPES] [-v|--verbose]\n  singularity cache clean [-T|--type TYPES] [-D|--days N] [-n|--dry-run] [-f|--force]\n' +
  `  TYPES: a comma list of ${TYPE_NAMES}\n` +
  '  sandbox: images unpacked for runs that cannot mount them (kept while in use; limited by\n' +
  '  SINGULARITY_SANDBOX_CACHE_MAXSIZE and singularity.conf\'s "sandbox cache max size", 10 GiB by default)';

/** `oci` is the oci-tmp directory (SIFs converted from OCI images), as in Singularity's --type. */
function parseTypes(text: string | undefined): CacheType[] {
  const names = (text ?? 'all')
    .split(',')
    .map(s => s.trim())
    .filter(Boolean);
  if (names.includes('all')) return ALL_TYPES;
  return names.map(n => {
    const type = n === 'oci' ? 'oci-tmp' : n === 'blobs' ? 'blob' : n;
    if (!(ALL_TYPES as string[]).includes(type)) throw new UsageError(`invalid cache type ${JSON.stringify(n)} (valid: ${TYPE_NAMES})`);
    return type as CacheType;
  });
}

/** The cache root when it exists (checked as private), else undefined: an absent cache is an empty one. */
function existingRoot(): string | undefined {
  const dir = openPrivateDir(cacheRoot(), {
    what: 'cache directory',
    fix: 'remove it or chmod go-w it, or set SINGULARITY_CACHEDIR to a directory of your own',
  });
  dir?.close();
  return dir ? cacheRoot() : undefined;
}

const sum = (es: CacheEntry[]) => es.reduce((n, e) => n + e.size, 0);

/**
 * Singularity's summary line for its own types, then a line for each of ours that holds something or was asked
 * for with --type (a plain `cache list` prints what Singularity's does when there is nothing of ours).
 */
function summary(types: CacheType[], entries: CacheEntry[], named: boolean): string[] {
  const of = (pick: (t: CacheType) => boolean) => entries.filter(e => pick(e.type));
  const ours = (t: CacheType) => t === 'sandbox' || t === 'bootstrap';
  const blobs = of(t => t === 'blob');
  const files = of(t => t !== 'blob' && !ours(t));
  const parts: string[] = [];
  if (types.some(t => t !== 'blob' && !ours(t))) parts.push(` ${files.length} container file(s) using ${formatSize(sum(files))}`);
  if (types.includes('blob')) parts.push(` ${blobs.length} oci blob file(s) using ${formatSize(sum(blobs))}`);
  const out = parts.length ? [`There are${parts.join(' and')} of space`] : [];
  const ourLine = (type: CacheType, what: string) => {
    const es = of(t => t === type);
    if (types.includes(type) && (named || es.length)) out.push(`There are ${es.length} ${what} using ${formatSize(sum(es))} of space`);
  };
  ourLine('sandbox', 'unpacked image sandbox(es)');
  ourLine('bootstrap', 'bootstrap package cache(s)');
  return out;
}

function list(argv: string[]): number {
  const flags = parseFlags(argv, { type: { short: 'T' }, verbose: { short: 'v', boolean: true } });
  if (flags.args.length) throw new UsageError(`unexpected argument ${JSON.stringify(flags.args[0])}`);
  const types = parseTypes(stringFlag(flags, 'type'));
  const root = existingRoot();
  const entries = root ? listEntries(root, types) : [];
  const out: string[] = [];
  const row = (name: string, date: string, size: string, type: string) =>
    `${name.slice(0, 22).padEnd(24)} ${date.padEnd(22)} ${size.padEnd(16)} ${type}`;
  if (boolFlag(flags, 'verbose')) {
    out.push(row('NAME', 'DATE CREATED', 'SIZE', 'TYPE'));
    for (const e of entries) {
      const d = e.mtime;
      const pad = (n: number) => String(n).padStart(2, '0');
      const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
      out.push(row(e.name, date, formatSize(e.size), e.type));
    }
    out.push('');
  }
  out.push(...summary(types, entries, stringFlag(flags, 'type') !== undefined), `Total space used: ${formatSize(sum(entries))}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

async function confirmed(): Promise<boolean> {
  process.stdout.write(
    'This will delete everything in your cache (containers from all sources, OCI blobs and unpacked sandboxes not in use).\n' +
      'Hint: You can see exactly what would be deleted by canceling and using the --dry-run option.\nDo you want to continue? [y/N] ',
  );
  const readline = await import('node:readline');
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  try {
    const next = await rl[Symbol.asyncIterator]().next();
    return !next.done && String(next.value).trim().toLowerCase() === 'y';
  } finally {
    rl.close();
  }
}

/** Removes one entry; false when a sandbox is in use (kept, not an error). */
function remove(root: string, e: CacheEntry): boolean {
  if (e.type === 'sandbox') return removeSandboxEntry(typePath(root, 'sandbox'), e.name);
  fs.rmSync(e.path, { recursive: true, force: true });
  return true;
}

/** What interrupted runs left in a type's directory, which is never an entry of its own. */
function removeLeftovers(root: string, type: CacheType, days: number): void {
  if (type === 'sandbox') sweepSandboxCache(typePath(root, 'sandbox'));
  for (const file of leftovers(root, type)) fs.rmSync(file, { recursive: true, force: true });
  // Interrupted downloads are kept for resuming; cleaning blobs drops them too.
  if (type === 'blob' && days === 0) fs.rmSync(path.join(root, 'blob', '.partial'), { recursive: true, force: true });
}

async function clean(argv: string[], quiet: boolean): Promise<number> {
  const flags = parseFlags(argv, {
    type: { short: 'T' },
    days: { short: 'D' },
    'dry-run': { short: 'n', boolean: true },
    force: { short: 'f', boolean: true },
  });
  if (flags.args.length) throw new UsageError(`unexpected argument ${JSON.stringify(flags.args[0])}`);
  const types = parseTypes(stringFlag(flags, 'type'));
  const days = intFlag(flags, 'days') ?? 0;
  if (days < 0) throw new UsageError(`--days ${days}: must be 0 or more`);
  const dryRun = boolFlag(flags, 'dry-run');
  const info = (m: string) => {
    if (!quiet) process.stderr.write(`INFO:    ${m}\n`);
  };
  if (dryRun) process.stdout.write('User requested a dry run. Not actually deleting any data!\n');
  if (!dryRun && !boolFlag(flags, 'force') && !(await confirmed())) {
    info('Handle cleanup canceled');
    return 0;
  }
  const root = existingRoot();
  const cutoff = Date.now() - days * 24 * 3600 * 1000;
  let failed = 0;
  for (const type of types) {
    const entries = root ? listEntries(root, [type]) : [];
    if (entries.length === 0) info(`No cached files to remove at ${typePath(root ?? cacheRoot(), type)}`);
    for (const e of entries) {
      // A sandbox's date is its last use: --days keeps the ones used since.
      if (days > 0 && e.mtime.getTime() > cutoff) continue;
      if (dryRun) {
        info(`Removing ${type} cache entry: ${e.name}`);
        continue;
      }
      try {
        info(
          remove(root!, e)
            ? `Removing ${type} cache entry: ${e.name}`
            : `Keeping ${type} cache entry ${e.name}: a running container uses it`,
        );
      } catch (err) {
        process.stderr.write(`ERROR:   Could not remove cache entry '${e.name}': ${(err as Error).message}\n`);
        failed++;
      }
    }
    if (root && !dryRun) removeLeftovers(root, type, days);
  }
  if (failed) throw new RuntimeError(`could not clean cache: failed to remove ${failed} cache entries`, { op: 'cache clean' });
  return 0;
}

export const cacheCommand: SingularityCommand = {
  summary: 'Manage the local cache of pulled images, OCI blobs and unpacked sandboxes',
  usage: USAGE,
  async run(argv, g) {
    const [sub, ...rest] = argv;
    if (sub === 'list') return list(rest);
    if (sub === 'clean') return clean(rest, g.quiet || g.silent);
    throw new UsageError(
      sub === undefined ? 'requires a subcommand: list or clean' : `unknown subcommand ${JSON.stringify(sub)} (list, clean)`,
    );
  },
};
