import { reporter } from '../action.js';
import { type GlobalOptions, type SingularityCommand, UsageError } from '../command.js';
import { listInstances, monitorInstance, startInstance, stopInstance, type InstanceRecord } from '../instance.js';
import { parseActionArgs } from '../options.js';
import { RuntimeError } from '../../errors.js';

const USAGE = `singularity instance start [-q] [start options...] <image> <name> [startscript args...]
  singularity instance list [-j|--json] [name glob]
  singularity instance stop [-a|--all] [-s|--signal SIG] [-F|--force] [-t|--timeout SEC] [name]`;

function globMatch(glob: string, name: string): boolean {
  const re = new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(name);
}

function list(argv: string[]): number {
  const json = argv.includes('-j') || argv.includes('--json');
  const glob = argv.find(a => !a.startsWith('-')) ?? '*';
  const found = listInstances().filter(i => globMatch(glob, i.name));
  if (json) {
    const instances = found.map(i => ({
      instance: i.name,
      pid: i.pid,
      ip: '',
      img: i.image,
      logErrPath: i.logErrPath,
      logOutPath: i.logOutPath,
    }));
    process.stdout.write(`${JSON.stringify({ instances }, null, 4)}\n`);
    return 0;
  }
  process.stdout.write(`${'INSTANCE NAME'.padEnd(16)}${'PID'.padEnd(9)}${'IP'.padEnd(16)}IMAGE\n`);
  for (const i of found) process.stdout.write(`${i.name.padEnd(16)}${String(i.pid).padEnd(9)}${''.padEnd(16)}${i.image}\n`);
  return 0;
}

async function stop(argv: string[], g: GlobalOptions): Promise<number> {
  let all = false;
  let signal = 'SIGTERM';
  let timeout = 10;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-a' || a === '--all') all = true;
    else if (a === '-F' || a === '--force') signal = 'SIGKILL';
    else if (a === '-s' || a === '--signal') signal = argv[++i] ?? '';
    else if (a.startsWith('--signal=')) signal = a.slice(9);
    else if (a === '-t' || a === '--timeout') timeout = Number(argv[++i]);
    else if (a.startsWith('-')) throw new UsageError(`unknown flag: ${a}`);
    else names.push(a);
  }
  const sig = /^\d+$/.test(signal)
    ? Number(signal)
    : signal.toUpperCase().startsWith('SIG')
      ? signal.toUpperCase()
      : `SIG${signal.toUpperCase()}`;
  if (typeof sig === 'string' && !(sig in (await import('node:os')).constants.signals))
    throw new RuntimeError(`invalid signal ${signal}`, { op: 'instance stop' });
  if (!Number.isFinite(timeout) || timeout < 0) throw new RuntimeError('--timeout needs a number of seconds', { op: 'instance stop' });
  if (!all && names.length === 0) throw new RuntimeError('instance stop needs an instance name or --all', { op: 'instance stop' });
  let targets: InstanceRecord[];
  if (all) {
    targets = listInstances();
  } else {
    targets = [];
    for (const n of names) {
      const matches = listInstances().filter(i => globMatch(n, i.name));
      if (matches.length === 0) throw new RuntimeError(`no instance found with name ${n}`, { op: 'instance stop' });
      targets.push(...matches);
    }
  }
  for (const rec of targets) {
    if (!g.silent && !g.quiet) process.stderr.write(`INFO:    Stopping ${rec.name} instance of ${rec.image} (PID=${rec.pid})\n`);
    await stopInstance(rec, sig, timeout);
  }
  return 0;
}

export const instanceCommand: SingularityCommand = {
  summary: 'Manage containers running as services',
  usage: USAGE,
  async run(argv, g) {
    const [sub, ...rest] = argv;
    const r = reporter(g);
    switch (sub) {
      case 'start': {
        const quiet = g.quiet || g.silent || parseActionArgs(rest).options.quiet;
        const code = await startInstance(rest, r, quiet);
        // Singularity confirms a start at its default verbosity, as it does a stop; -q after `start` too silences it.
        if (code === 0 && !quiet) process.stderr.write('INFO:    instance started successfully\n');
        return code;
      }
      case 'list':
        return list(rest);
      case 'stop':
        return stop(rest, g);
      case '__monitor':
        return monitorInstance(rest, r);
      default:
        throw new UsageError(`unknown instance command ${JSON.stringify(sub ?? '')}`);
    }
  },
};
