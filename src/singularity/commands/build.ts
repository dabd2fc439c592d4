// `build DEST SPEC`: see ../build/build.ts. Flags follow Singularity's (short forms included).
import * as fs from 'node:fs';
import * as os from 'node:os';
import { build, BuildInterrupted } from '../build/build.js';
import { type SingularityCommand, UsageError } from '../command.js';
import { registryFlag, registryOptionsFromEnv } from '../registry/options.js';
import { RuntimeError } from '../../errors.js';

const USAGE = `build [-s|--sandbox] [-f|--fakeroot] [--ignore-subuid] [-F|--force] [-T|--notest] [--section S] [--build-arg K=V] [--build-arg-file FILE] [--arch ARCH] [--no-https] [--docker-login] [--authfile FILE] [--disable-cache] DEST SPEC
  As a user other than root, a build is always a fakeroot build (-f is implied): root in a user namespace,
  with your /etc/subuid and /etc/subgid ranges behind the other ids when you have them (--ignore-subuid: never),
  otherwise with your own id as the only one. SOURCE_DATE_EPOCH makes the SIF reproducible.`;

/** KEY=VALUE lines of a --build-arg-file (blank and # lines skipped). */
function readBuildArgFile(file: string, into: Map<string, string>): void {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new RuntimeError(`--build-arg-file ${file}: ${(e as Error).message}`, { op: 'read', path: file, cause: e });
  }
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq <= 0)
      throw new RuntimeError(`--build-arg-file ${file} line ${i + 1}: expected KEY=VALUE, got ${JSON.stringify(line)}`, {
        op: 'build',
        path: file,
      });
    into.set(line.slice(0, eq), line.slice(eq + 1));
  });
}

export const buildCommand: SingularityCommand = {
  summary: 'Build a SIF image or sandbox directory from a definition file or another image',
  usage: USAGE,
  async run(argv, globals) {
    const positional: string[] = [];
    const buildArgs = new Map<string, string>();
    const sections: string[] = [];
    let sandbox = false;
    let ignoreSubuid = false;
    let force = false;
    let notest = false;
    const registry = registryOptionsFromEnv();
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
      const name = eq > 0 ? arg.slice(0, eq) : arg;
      const value = () => {
        if (eq > 0) return arg.slice(eq + 1);
        const next = argv[++i];
        if (next === undefined) throw new UsageError(`flag needs an argument: ${name}`);
        return next;
      };
      if (name === '-s' || name === '--sandbox') sandbox = true;
      // Implied for users, meaningless for root: accepted for the command lines that give it.
      else if (name === '-f' || name === '--fakeroot') continue;
      else if (name === '--ignore-subuid') ignoreSubuid = true;
      else if (name === '-F' || name === '--force') force = true;
      else if (name === '-T' || name === '--notest') notest = true;
      else if (name === '--section')
        sections.push(
          ...value()
            .split(',')
            .map(s => s.trim().replace(/^%/, ''))
            .filter(Boolean),
        );
      else if (name === '--build-arg') {
        const kv = value();
        const at = kv.indexOf('=');
        if (at <= 0) throw new RuntimeError(`--build-arg ${JSON.stringify(kv)}: expected KEY=VALUE`, { op: 'build' });
        buildArgs.set(kv.slice(0, at), kv.slice(at + 1));
      } else if (name === '--build-arg-file') readBuildArgFile(value(), buildArgs);
      else if (name === '--arch') registry.arch = value();
      else if (registryFlag(name)) {
        const flag = registryFlag(name)!;
        flag.apply(registry, flag.takesValue ? value() : 'true');
      } else if (name === '--') {
        positional.push(...argv.slice(i + 1));
        i = argv.length;
      } else if (name.startsWith('-') && name !== '-') throw new UsageError(`unknown flag: ${name}`);
      else positional.push(arg);
    }
    if (positional.length !== 2) throw new UsageError(`requires exactly 2 arg(s) (DEST and SPEC), received ${positional.length}`);
    const quiet = globals.quiet || globals.silent;
    try {
      await build({
        dest: positional[0]!,
        spec: positional[1]!,
        sandbox,
        ignoreSubuid,
        force,
        notest,
        sections: sections.length ? sections : undefined,
        buildArgs,
        quiet,
        registry,
        info: m => {
          if (!quiet) process.stderr.write(`INFO:    ${m}\n`);
        },
        warn: m => {
          if (!globals.silent) process.stderr.write(`WARNING: ${m}\n`);
        },
      });
    } catch (e) {
      if (!(e instanceof BuildInterrupted)) throw e;
      process.stderr.write(`FATAL:   ${e.message}\n`);
      return 128 + os.constants.signals[e.signal];
    }
    return 0;
  },
};
