// tsrt: the command table and runc's global flags. Each verb lives in its own module and does one thing.
import { RuntimeError } from '../errors.js';
import { TSRT_EXIT_FAILURE, TSRT_EXIT_OK, TSRT_TEXT_DEBUG_ARGV, TSRT_TEXT_SPEC_VERSION, TSRT_TEXT_VERSION } from '../native-abi/abi.gen.js';
import { fill } from '../native-abi/text.js';
import { defaultRoot } from '../runtime/state.js';
import { parseArgs, usageError, type FlagSpec } from './args.js';
import type { Command, Context } from './context.js';
import { createCommand } from './create.js';
import { deleteCommand } from './delete.js';
import { eventsCommand } from './events.js';
import { execCommand } from './exec.js';
import { featuresCommand } from './features.js';
import { asksForHelp, programHelp, verbHelp } from './help.js';
import { killCommand } from './kill.js';
import { listCommand } from './list.js';
import type { Verb } from './manual.js';
import { pauseCommand } from './pause.js';
import { psCommand } from './ps.js';
import { Reporter, out, writeFd, type LogFormat } from './report.js';
import { resumeCommand } from './resume.js';
import { runCommand } from './run.js';
import { specCommand } from './spec.js';
import { startCommand } from './start.js';
import { stateCommand } from './state.js';
import { updateCommand } from './update.js';
import { runAsStateRootOwner } from './as-owner.js';

declare const TSRT_VERSION: string | undefined;
declare const TSRT_COMMIT: string | undefined;

export const VERSION = typeof TSRT_VERSION === 'string' ? TSRT_VERSION : '0.1.0';
const COMMIT = typeof TSRT_COMMIT === 'string' ? TSRT_COMMIT : 'unknown';
const SPEC_VERSION = TSRT_TEXT_SPEC_VERSION;

export const commands: Record<Verb, Command> = {
  create: createCommand,
  start: startCommand,
  state: stateCommand,
  kill: killCommand,
  delete: deleteCommand,
  run: runCommand,
  exec: execCommand,
  list: listCommand,
  pause: pauseCommand,
  resume: resumeCommand,
  update: updateCommand,
  ps: psCommand,
  events: eventsCommand,
  spec: specCommand,
  features: featuresCommand,
};

export const globalFlags: FlagSpec[] = [
  { name: 'root', kind: 'string' },
  { name: 'log', kind: 'string' },
  { name: 'log-format', kind: 'string' },
  { name: 'debug', kind: 'bool' },
  { name: 'systemd-cgroup', kind: 'bool' },
  { name: 'cgroup-manager', kind: 'string' },
  { name: 'rootless', kind: 'string' },
  { name: 'criu', kind: 'string' },
  { name: 'version', short: 'v', kind: 'bool' },
  { name: 'help', short: 'h', kind: 'bool' },
];

function verbNamed(name: string): Verb {
  if (!Object.hasOwn(commands, name)) throw usageError(`No help topic for '${name}'`);
  return name as Verb;
}

/** Splits argv into global flags and the command: globals come first, as with runc. */
function splitGlobals(argv: string[]): { globals: string[]; rest: string[] } {
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-')) {
    const body = argv[i]!.replace(/^--?/, '');
    const spec = globalFlags.find(f => f.name === body || f.short === body);
    i += spec && spec.kind !== 'bool' && !body.includes('=') ? 2 : 1;
  }
  return { globals: argv.slice(0, i), rest: argv.slice(i) };
}

export function main(argv: string[]): number {
  const { globals, rest } = splitGlobals(argv);
  let report = new Reporter(undefined, 'text', false);
  try {
    const { flags } = parseArgs(globals, globalFlags);
    const format = (flags['log-format'] as string | undefined) ?? 'text';
    if (format !== 'text' && format !== 'json') throw usageError(`invalid log-format: ${format}`);
    report = new Reporter(flags['log'] as string | undefined, format as LogFormat, !!flags['debug']);
    if (flags['version']) {
      out(fill(TSRT_TEXT_VERSION, VERSION, COMMIT, SPEC_VERSION));
      return TSRT_EXIT_OK;
    }
    const name = rest[0];
    if (name === 'help' && rest[1] !== undefined) {
      const verb = verbNamed(rest[1]);
      out(verbHelp(verb, commands[verb]));
      return 0;
    }
    if (flags['help'] || !name || name === 'help') {
      out(programHelp(VERSION, commands, globalFlags));
      return name || flags['help'] ? 0 : 1;
    }
    const verb = verbNamed(name);
    const command = commands[verb];
    const rootless = (flags['rootless'] as string | undefined) ?? 'auto';
    if (!['auto', 'true', 'false'].includes(rootless)) throw usageError(`invalid --rootless value: ${rootless}`);
    const manager = (flags['cgroup-manager'] as string | undefined) ?? (flags['systemd-cgroup'] ? 'systemd' : 'cgroupfs');
    if (!['cgroupfs', 'systemd', 'disabled'].includes(manager))
      throw usageError(`invalid --cgroup-manager value: ${manager} (cgroupfs, systemd or disabled)`);
    let root = flags['root'] as string | undefined;
    if (name !== 'spec' && name !== 'features') {
      const status = runAsStateRootOwner(root, argv);
      if (status !== undefined) return status;
    }
    const ctx: Context = {
      // Worked out when a verb first needs it: spec and features run without a state directory.
      get root() {
        root ??= defaultRoot();
        return root;
      },
      report,
      cgroupManager: manager as Context['cgroupManager'],
      rootless: rootless as Context['rootless'],
      version: VERSION,
      commit: COMMIT,
    };
    const args = rest.slice(1);
    if (asksForHelp(command, args)) {
      out(verbHelp(verb, command));
      return 0;
    }
    report.debug(fill(TSRT_TEXT_DEBUG_ARGV, argv.join(' ')));
    return command.run(args, ctx);
  } catch (e) {
    if (e instanceof RuntimeError) {
      report.error(e.message);
    } else {
      report.error(e instanceof Error ? e.message : String(e));
      if (process.env['TSRT_DEBUG_STACK']) writeFd(2, `${(e as Error).stack}\n`);
    }
    return TSRT_EXIT_FAILURE;
  }
}
