// tsrt-singularity: Singularity's command line over the tsrt library. Commands live in commands/, one per
// module; this file parses the global flags, dispatches and maps errors to Singularity's "FATAL:" lines.
import { type GlobalOptions, type SingularityCommand, UsageError } from './command.js';
import { buildCommand } from './commands/build.js';
import { buildcfgCommand } from './commands/buildcfg.js';
import { cacheCommand } from './commands/cache.js';
import { execCommand } from './commands/exec.js';
import { inspectCommand } from './commands/inspect.js';
import { instanceCommand } from './commands/instance.js';
import { keyCommand } from './commands/key.js';
import { overlayCommand } from './commands/overlay.js';
import { pullCommand } from './commands/pull.js';
import { pushCommand } from './commands/push.js';
import { registryCommand } from './commands/registry.js';
import { runCommand } from './commands/run.js';
import { runHelpCommand } from './commands/run-help.js';
import { shellCommand } from './commands/shell.js';
import { sifCommand } from './commands/sif.js';
import { signCommand, verifyCommand } from './commands/sign.js';
import { testCommand } from './commands/test.js';
import { useConfigFile } from './siteconfig.js';

declare const TSRT_VERSION: string | undefined;
const VERSION = typeof TSRT_VERSION === 'string' ? TSRT_VERSION : '0.1.0';

export const commands: Record<string, SingularityCommand> = {
  build: buildCommand,
  buildcfg: buildcfgCommand,
  cache: cacheCommand,
  exec: execCommand,
  inspect: inspectCommand,
  instance: instanceCommand,
  key: keyCommand,
  overlay: overlayCommand,
  pull: pullCommand,
  push: pushCommand,
  registry: registryCommand,
  'run-help': runHelpCommand,
  run: runCommand,
  shell: shellCommand,
  sif: sifCommand,
  sign: signCommand,
  test: testCommand,
  verify: verifyCommand,
};

/** What the man page says of the program as a whole (the commands speak for themselves through their usage). */
export const programDoc = {
  summary: "Singularity's command line over the tsrt runtime",
  description: `tsrt-singularity runs SIF images and sandbox directories the way Singularity (and Apptainer) do: run, exec, shell, test and instances, with the same flags, environment variables (SINGULARITY_* and APPTAINER_*) and messages, over the tsrt library instead of a setuid starter. It also builds images from definition files, pulls and pushes them (docker://, oras://), signs and verifies them, and edits SIF files.

Installed as singularity (hack/install.sh --singularity), it takes Singularity's place for users and scripts; run-singularity beside it is what an image's "#!/usr/bin/env run-singularity" line runs.`,
  exitStatus: [
    "0: done; run, exec and test end with the status of the container's process",
    '1: the command line could not be parsed (the error, the usage, and a pointer to --help on stderr)',
    '255: the command failed (a FATAL: line on stderr)',
  ],
};

/** The flags given before the command; help, the man page and completion list them from here. */
export const globalOptions: { long: string; short?: string; arg?: string; text: string }[] = [
  { long: 'debug', short: 'd', text: 'print debugging information (highest verbosity)' },
  { long: 'quiet', short: 'q', text: 'suppress normal output' },
  { long: 'silent', short: 's', text: 'only print errors' },
  { long: 'verbose', short: 'v', text: 'print additional information' },
  { long: 'config', short: 'c', arg: 'F', text: 'use site configuration file F (root only; buildcfg shows the default)' },
  { long: 'version', text: 'version for singularity' },
  { long: 'help', short: 'h', text: 'help for singularity' },
];

function help(): string {
  const lines = Object.entries(commands)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, c]) => `  ${name.padEnd(12)}${c.summary}`)
    .join('\n');
  const options = globalOptions
    .map(o => `  ${o.short ? `-${o.short}, ` : '    '}${`--${o.long}${o.arg ? ` ${o.arg}` : ''}`.padEnd(12)}${o.text}`)
    .join('\n');
  return `Usage:\n  singularity [global options...] <command>\n\nAvailable Commands:\n${lines}\n\nGlobal Options:\n${options}\n`;
}

/** `help COMMAND`: that command's usage, as `COMMAND --help` prints it. */
function commandHelp(name: string): number {
  const command = commands[name];
  if (!command) {
    process.stderr.write(`Error: unknown command "${name}" for "singularity help"\nRun 'singularity --help' for usage.\n`);
    return 255;
  }
  process.stdout.write(usageText(command));
  return 0;
}

/** The usage line(s), always starting with the program name (command modules write it with or without). */
export function usage(command: SingularityCommand): string {
  return command.usage.startsWith('singularity ') ? command.usage : `singularity ${command.usage}`;
}

function usageText(command: SingularityCommand): string {
  return `${command.summary}\n\nUsage:\n  ${usage(command)}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const globals: GlobalOptions = { debug: false, quiet: false, silent: false, verbose: false };
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith('-'); i++) {
    const flag = argv[i]!;
    if (flag === '-d' || flag === '--debug') globals.debug = true;
    else if (flag === '-q' || flag === '--quiet') globals.quiet = true;
    else if (flag === '-s' || flag === '--silent') globals.silent = true;
    else if (flag === '-v' || flag === '--verbose') globals.verbose = true;
    else if (flag === '--version') {
      process.stdout.write(`tsrt-singularity version ${VERSION}\n`);
      return 0;
    } else if (flag === '-h' || flag === '--help') {
      process.stdout.write(help());
      return 0;
    } else if (flag === '-c' || flag === '--config' || flag.startsWith('--config=')) {
      const file = flag.startsWith('--config=') ? flag.slice(9) : argv[++i];
      if (!file) {
        process.stderr.write(`Error: flag needs an argument: ${flag}\n`);
        return 255;
      }
      try {
        useConfigFile(file);
      } catch (e) {
        process.stderr.write(`FATAL:   ${(e as Error).message}\n`);
        return 255;
      }
    } else {
      process.stderr.write(`Error: unknown flag: ${flag}\n`);
      return 255;
    }
  }
  const name = argv[i];
  if (name === undefined || (name === 'help' && argv[i + 1] === undefined)) {
    process.stdout.write(help());
    return name === undefined ? 1 : 0;
  }
  if (name === 'help') return commandHelp(argv[i + 1]!);
  if (name === 'version') {
    process.stdout.write(`tsrt-singularity version ${VERSION}\n`);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`Error: unknown command "${name}" for "singularity"\nRun 'singularity --help' for usage.\n`);
    return 255;
  }
  const args = argv.slice(i + 1);
  if (args[0] === '-h' || args[0] === '--help') {
    process.stdout.write(usageText(command));
    return 0;
  }
  try {
    return await command.run(args, globals);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(
        `Error for command ${JSON.stringify(name)}: ${e.message}\n\nUsage:\n  ${usage(command)}\n\n` +
          "Run 'singularity --help' for more detailed usage information.\n",
      );
      return 1;
    }
    process.stderr.write(`FATAL:   ${e instanceof Error ? e.message : String(e)}\n`);
    if (globals.debug && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return 255;
  }
}
