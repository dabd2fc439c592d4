// runc update: new resources from -r FILE (or - for stdin), else from runc 1.1's flags. A JSON document
// replaces the flags entirely, as in runc; fields left out keep their current values.
import * as fs from 'node:fs';
import { RuntimeError, SpecError } from '../errors.js';
import { update } from '../runtime/update.js';
import type { LinuxResources } from '../spec/types.gen.js';
import { parseJson, validateConfig } from '../spec/validate.js';
import { exactlyOne, parseArgs, usageError, type FlagSpec, type FlagValues } from './args.js';
import type { Command } from './context.js';

const flags: FlagSpec[] = [
  { name: 'resources', short: 'r', kind: 'string' },
  { name: 'blkio-weight', kind: 'string' },
  { name: 'cpu-period', kind: 'string' },
  { name: 'cpu-quota', kind: 'string' },
  { name: 'cpu-burst', kind: 'string' },
  { name: 'cpu-share', kind: 'string' },
  { name: 'cpu-rt-period', kind: 'string' },
  { name: 'cpu-rt-runtime', kind: 'string' },
  { name: 'cpu-idle', kind: 'string' },
  { name: 'cpuset-cpus', kind: 'string' },
  { name: 'cpuset-mems', kind: 'string' },
  { name: 'kernel-memory', kind: 'string' },
  { name: 'kernel-memory-tcp', kind: 'string' },
  { name: 'memory', kind: 'string' },
  { name: 'memory-reservation', kind: 'string' },
  { name: 'memory-swap', kind: 'string' },
  { name: 'pids-limit', kind: 'string' },
  { name: 'l3-cache-schema', kind: 'string' },
  { name: 'mem-bw-schema', kind: 'string' },
];

/** docker's RAMInBytes: "64m", "1.5g", "512KiB", "1024"; binary multipliers. */
export function ramInBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(text);
  if (!m) throw new Error(`invalid size: '${text}'`);
  const power = m[2] ? 'kmgtp'.indexOf(m[2].toLowerCase()) + 1 : 0;
  return Math.floor(Number(m[1]) * 1024 ** power);
}

function integer(name: string, text: string, signed: boolean): number {
  if (!(signed ? /^-?\d+$/ : /^\d+$/).test(text)) {
    throw usageError(`invalid value for ${name}: strconv.Parse${signed ? 'Int' : 'Uint'}: parsing ${JSON.stringify(text)}: invalid syntax`);
  }
  return Number(text);
}

/** The resources the flags describe (runc 1.1's update flags and their parsing). */
export function resourcesFromFlags(f: FlagValues): LinuxResources {
  const r: LinuxResources = {};
  const str = (name: string): string | undefined => {
    const v = f[name] as string | undefined;
    return v === undefined || v === '' ? undefined : v;
  };
  const cpu: NonNullable<LinuxResources['cpu']> = {};
  const memory: NonNullable<LinuxResources['memory']> = {};
  const bw = str('blkio-weight');
  if (bw !== undefined && integer('blkio-weight', bw, false) !== 0) r.blockIO = { weight: Number(bw) };
  if (str('cpuset-cpus')) cpu.cpus = str('cpuset-cpus')!;
  if (str('cpuset-mems')) cpu.mems = str('cpuset-mems')!;
  const unsigned: [string, 'period' | 'burst' | 'realtimePeriod' | 'shares'][] = [
    ['cpu-period', 'period'],
    ['cpu-burst', 'burst'],
    ['cpu-rt-period', 'realtimePeriod'],
    ['cpu-share', 'shares'],
  ];
  for (const [name, field] of unsigned) if (str(name) !== undefined) cpu[field] = integer(name, str(name)!, false);
  const signed: [string, 'quota' | 'realtimeRuntime' | 'idle'][] = [
    ['cpu-quota', 'quota'],
    ['cpu-rt-runtime', 'realtimeRuntime'],
    ['cpu-idle', 'idle'],
  ];
  for (const [name, field] of signed) if (str(name) !== undefined) cpu[field] = integer(name, str(name)!, true);
  const sizes: [string, 'limit' | 'swap' | 'reservation' | 'kernel' | 'kernelTCP'][] = [
    ['memory', 'limit'],
    ['memory-swap', 'swap'],
    ['memory-reservation', 'reservation'],
    ['kernel-memory', 'kernel'],
    ['kernel-memory-tcp', 'kernelTCP'],
  ];
  for (const [name, field] of sizes) {
    const v = str(name);
    if (v === undefined) continue;
    try {
      memory[field] = v === '-1' ? -1 : ramInBytes(v);
    } catch (e) {
      throw usageError(`invalid value for ${name}: ${(e as Error).message}`);
    }
  }
  // Unlimited memory with no word on swap means unlimited swap too (runc keeps v1's behaviour).
  if (memory.limit === -1 && memory.swap === undefined) memory.swap = -1;
  if (Object.keys(cpu).length) r.cpu = cpu;
  if (Object.keys(memory).length) r.memory = memory;
  const pids = str('pids-limit');
  if (pids !== undefined && integer('pids-limit', pids, true) !== 0) r.pids = { limit: Number(pids) };
  return r;
}

/** A resources document (-r), checked against the runtime-spec schema of linux.resources. */
function resourcesFromFile(file: string): LinuxResources {
  const name = file === '-' ? 'standard input' : file;
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new RuntimeError(
      `open ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`,
      { op: 'update', path: file },
    );
  }
  const doc = parseJson(text, name);
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new SpecError(`${name}: /: must be object`);
  try {
    validateConfig({ ociVersion: '1.2.0', linux: { resources: doc } });
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    throw new SpecError(
      e.message.replace(/^config\.json: \/linux\/resources/, `${name}: `).replace(/: \/?: /, ': /: '),
      e.path.replace(/^\/linux\/resources/, ''),
    );
  }
  return doc as LinuxResources;
}

export const updateCommand: Command = {
  flags,
  run(argv, ctx) {
    const { flags: f, positional } = parseArgs(argv, flags);
    const id = exactlyOne('update', positional);
    const file = f['resources'] as string | undefined;
    const resources = file ? resourcesFromFile(file) : resourcesFromFlags(f);
    if (!file && (f['l3-cache-schema'] || f['mem-bw-schema'])) {
      // Intel RDT lives in resctrl, not in cgroups; tsrt does not manage it (linux.intelRdt is refused too).
      const what = f['l3-cache-schema'] ? 'Intel RDT/CAT: l3 cache schema' : 'Intel RDT/MBA: memory bandwidth schema';
      throw new RuntimeError(
        fs.existsSync('/sys/fs/resctrl/schemata') ? `${what}: Intel RDT is not supported by this tsrt build` : `${what} is not enabled`,
        { op: 'update' },
      );
    }
    update(ctx.root, id, resources);
    return 0;
  },
};
