import { RuntimeError } from '../errors.js';
import { exec, parseUserSpec, type ProcessOverrides } from '../runtime/exec.js';
import { parseArgs, usageError, type FlagSpec } from './args.js';
import type { Command } from './context.js';

const execFlags: FlagSpec[] = [
  { name: 'console-socket', kind: 'string' },
  { name: 'cwd', kind: 'string' },
  { name: 'env', short: 'e', kind: 'strings' },
  { name: 'tty', short: 't', kind: 'bool' },
  { name: 'user', short: 'u', kind: 'string' },
  { name: 'additional-gids', short: 'g', kind: 'ints' },
  { name: 'process', short: 'p', kind: 'string' },
  { name: 'detach', short: 'd', kind: 'bool' },
  { name: 'pid-file', kind: 'string' },
  { name: 'process-label', kind: 'string' },
  { name: 'apparmor', kind: 'string' },
  { name: 'no-new-privs', kind: 'bool' },
  { name: 'cap', short: 'c', kind: 'strings' },
  { name: 'preserve-fds', kind: 'int' },
  { name: 'cgroup', kind: 'strings' },
  { name: 'ignore-paused', kind: 'bool' },
];

/** runc exits 255 when exec fails; a program that cannot be found or run gets a shell's 127 or 126. */
function failureCode(e: RuntimeError): number {
  if (e.op !== 'exec-lookup') return 255;
  return e.errno === 'ENOENT' || e.errno === 'ENOTDIR' ? 127 : 126;
}

export const execCommand: Command = {
  flags: execFlags,
  stopAtPositional: true,
  run(argv, ctx) {
    // Flags come before the id; everything after it is the command, flags included, with no need for "--".
    const { flags, positional } = parseArgs(argv, execFlags, true);
    if (positional.length < 1) throw usageError('"exec" requires a minimum of 1 argument(s)');
    const [id, ...rest] = positional as [string, ...string[]];
    const command = rest[0] === '--' ? rest.slice(1) : rest;
    try {
      const gids = (flags['additional-gids'] as number[] | undefined) ?? [];
      const outOfRange = gids.find(g => g < 0 || g > 4294967295);
      if (outOfRange !== undefined) throw new RuntimeError(`additional-gids must be a positive number ${outOfRange}`, { op: 'exec' });
      const overrides: ProcessOverrides = {
        args: command,
        cwd: flags['cwd'] as string | undefined,
        env: flags['env'] as string[] | undefined,
        tty: !!flags['tty'],
        user: flags['user'] !== undefined && flags['user'] !== '' ? parseUserSpec(flags['user'] as string) : undefined,
        additionalGids: gids,
        caps: flags['cap'] as string[] | undefined,
        noNewPrivs: flags['no-new-privs'] as boolean | undefined,
        apparmor: flags['apparmor'] as string | undefined,
        processLabel: flags['process-label'] as string | undefined,
      };
      const status = exec({
        root: ctx.root,
        id,
        processFile: (flags['process'] as string | undefined) || undefined,
        overrides,
        detach: !!flags['detach'],
        consoleSocket: (flags['console-socket'] as string | undefined) || undefined,
        pidFile: (flags['pid-file'] as string | undefined) || undefined,
        preserveFds: (flags['preserve-fds'] as number | undefined) ?? 0,
        cgroups: flags['cgroup'] as string[] | undefined,
        ignorePaused: !!flags['ignore-paused'],
      });
      return status.code;
    } catch (e) {
      if (!(e instanceof RuntimeError)) throw e;
      ctx.report.error(`exec failed: ${e.message}`);
      return failureCode(e);
    }
  },
};
