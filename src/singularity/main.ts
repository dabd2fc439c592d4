// tsrt-singularity: Singularity's command line over the tsrt library. Commands live in commands/, one per
// module; this file parses the global flags, dispatches and maps errors to Singularity's "FATAL:" lines.
import { type GlobalOptions, type SingularityCommand, UsageError } from './command.js';
import { buildCommand } from './commands/build.js';
import { cacheCommand } from './commands/cache.js';
import { execCommand } from './commands/exec.js';
import { inspectCommand } from './commands/inspect.js';
import { instanceCommand } from './commands/instance.js';
import { pullCommand } from './commands/pull.js';
import { pushCommand } from './commands/push.js';
import { registryCommand } from './commands/registry.js';
import { runCommand } from './commands/run.js';
import { runHelpCommand } from './commands/run-help.js';
import { shellCommand } from './commands/shell.js';
import { sifCommand } from './commands/sif.js';
import { signCommand, verifyCommand } from './commands/sign.js';
import { testCommand } from './commands/test.js';

declare const TSRT_VERSION: string | undefined;
const VERSION = typeof TSRT_VERSION === 'string' ? TSRT_VERSION : '0.1.0';

const commands: Record<string, SingularityCommand> = {
  build: buildCommand,
  cache: cacheCommand,
  exec: execCommand,
  inspect: inspectCommand,
  instance: instanceCommand,
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

function help(): string {
  const lines = Object.entries(commands).sort(([a], [b]) => a.localeCompare(b))
    .map(([name, c]) => `  ${name.padEnd(12)}${c.summary}`).join('\n');
  return `Usage:\n  singularity [global options...] <command>\n\nAvailable Commands:\n${lines}\n\nGlobal Options:\n  -d, --debug     print debugging information (highest verbosity)\n  -q, --quiet     suppress normal output\n  -s, --silent    only print errors\n  -v, --verbose   print additional information\n      --version   version for singularity\n`;
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
    else if (flag === '--version') { process.stdout.write(`tsrt-singularity version ${VERSION}\n`); return 0; }
    else if (flag === '-h' || flag === '--help') { process.stdout.write(help()); return 0; }
    else { process.stderr.write(`Error: unknown flag: ${flag}\n`); return 255; }
  }
  const name = argv[i];
  if (name === undefined || name === 'help') {
    process.stdout.write(help());
    return name === undefined ? 1 : 0;
  }
  if (name === 'version') { process.stdout.write(`tsrt-singularity version ${VERSION}\n`); return 0; }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`Error: unknown command "${name}" for "singularity"\nRun 'singularity --help' for usage.\n`);
    return 255;
  }
  const args = argv.slice(i + 1);
  if (args[0] === '-h' || args[0] === '--help') { process.stdout.write(`Usage:\n  ${command.usage}\n`); return 0; }
  try {
    return await command.run(args, globals);
  } catch (e) {
    if (e instanceof UsageError) {
      const usage = command.usage.startsWith('singularity ') ? command.usage : `singularity ${command.usage}`;
      process.stderr.write(`Error for command ${JSON.stringify(name)}: ${e.message}\n\nUsage:\n  ${usage}\n\n` +
        "Run 'singularity --help' for more detailed usage information.\n");
      return 1;
    }
    process.stderr.write(`FATAL:   ${e instanceof Error ? e.message : String(e)}\n`);
    if (globals.debug && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return 255;
  }
}
