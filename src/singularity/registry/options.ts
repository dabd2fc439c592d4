// The registry flags every command that takes an image source shares (pull, build, push, exec/run/shell,
// inspect), with Singularity's names and environment variables, and where credentials come from, in order:
// --docker-username/--docker-password (or SINGULARITY_DOCKER_USERNAME/_PASSWORD, APPTAINER_ first, plain
// DOCKER_ last), then --docker-login's prompt, then --authfile, else ~/.singularity/docker-config.json (what
// `registry login` writes) and the user's Docker config ($DOCKER_CONFIG/config.json, ~/.docker/config.json).
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Credentials } from '../../oci-dist/auth.js';
import type { ClientOptions } from '../../oci-dist/client.js';
import { findCredentials } from '../../oci-dist/credentials.js';
import type { FlagSpec, ParsedFlags } from '../commands/sif-flags.js';
import { RuntimeError } from '../../errors.js';

export interface RegistryOptions {
  noHttps: boolean;
  dockerLogin: boolean;
  username?: string;
  password?: string;
  authFile?: string;
  /** --arch: the platform to take from an image index (the host's by default). */
  arch?: string;
  disableCache: boolean;
}

export function emptyRegistryOptions(): RegistryOptions {
  return { noHttps: false, dockerLogin: false, disableCache: false };
}

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);

/** The first of APPTAINER_KEY, SINGULARITY_KEY (and KEY itself when `bare`) that is set. */
function envValue(env: NodeJS.ProcessEnv, key: string, bare = false): string | undefined {
  for (const name of [`APPTAINER_${key}`, `SINGULARITY_${key}`, ...(bare ? [key] : [])]) {
    const v = env[name];
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

/** What the environment sets; flags given on the command line are applied on top. */
export function registryOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): RegistryOptions {
  const o = emptyRegistryOptions();
  const flag = (key: string) => TRUE_WORDS.has((envValue(env, key) ?? '').toLowerCase());
  o.noHttps = flag('NOHTTPS') || flag('NO_HTTPS');
  o.dockerLogin = flag('DOCKER_LOGIN');
  o.disableCache = flag('DISABLE_CACHE');
  o.username = envValue(env, 'DOCKER_USERNAME', true);
  o.password = envValue(env, 'DOCKER_PASSWORD', true);
  o.authFile = envValue(env, 'AUTH_FILE');
  return o;
}

export interface RegistryFlag {
  long: string;
  takesValue: boolean;
  apply(o: RegistryOptions, value: string): void;
}

/** The flags, for the commands' own parsers; --nohttps is Singularity's older spelling of --no-https. */
export const REGISTRY_FLAGS: RegistryFlag[] = [
  {
    long: 'no-https',
    takesValue: false,
    apply: o => {
      o.noHttps = true;
    },
  },
  {
    long: 'nohttps',
    takesValue: false,
    apply: o => {
      o.noHttps = true;
    },
  },
  {
    long: 'docker-login',
    takesValue: false,
    apply: o => {
      o.dockerLogin = true;
    },
  },
  {
    long: 'docker-username',
    takesValue: true,
    apply: (o, v) => {
      o.username = v;
    },
  },
  {
    long: 'docker-password',
    takesValue: true,
    apply: (o, v) => {
      o.password = v;
    },
  },
  {
    long: 'authfile',
    takesValue: true,
    apply: (o, v) => {
      o.authFile = v;
    },
  },
  {
    long: 'disable-cache',
    takesValue: false,
    apply: o => {
      o.disableCache = true;
    },
  },
];

/** The flag named `--long` (or `--long=value`), if it is a registry flag. */
export function registryFlag(arg: string): RegistryFlag | undefined {
  const m = /^--([^=]+)/.exec(arg);
  return m ? REGISTRY_FLAGS.find(f => f.long === m[1]) : undefined;
}

/**
 * Applies argv[i] to `o` when it is a registry flag (its value inline or the next argument); the index of the
 * last argument it took, or undefined when argv[i] is no registry flag.
 */
export function takeRegistryFlag(o: RegistryOptions, argv: string[], i: number): number | undefined {
  const a = argv[i]!;
  const flag = registryFlag(a);
  if (!flag) return undefined;
  const eq = a.indexOf('=');
  if (!flag.takesValue) flag.apply(o, 'true');
  else if (eq > 0) flag.apply(o, a.slice(eq + 1));
  else flag.apply(o, argv[++i] ?? '');
  return i;
}

/** Where `registry login` keeps credentials (and where pulls look first). */
export function singularityAuthFile(): string {
  return path.join(os.homedir(), '.singularity', 'docker-config.json');
}

function dockerAuthFile(env: NodeJS.ProcessEnv): string {
  return path.join(env['DOCKER_CONFIG'] || path.join(os.homedir(), '.docker'), 'config.json');
}

/**
 * Asks each question on stderr and reads one line of stdin for it: a terminal's echo is off for secret ones;
 * a non-terminal stdin (a script, a test) just gives the lines in order.
 */
export async function ask(questions: { text: string; secret: boolean }[]): Promise<string[]> {
  const readline = await import('node:readline');
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const answers: string[] = [];
  try {
    for (const q of questions) {
      process.stderr.write(q.text);
      const tty = q.secret && process.stdin.isTTY;
      if (tty) spawnSync('stty', ['-echo'], { stdio: ['inherit', 'ignore', 'ignore'] });
      try {
        const next = await lines.next();
        if (next.done) throw new RuntimeError(`no answer on standard input to ${JSON.stringify(q.text.trim())}`, { op: 'prompt' });
        answers.push(String(next.value));
      } finally {
        if (tty) {
          spawnSync('stty', ['echo'], { stdio: ['inherit', 'ignore', 'ignore'] });
          process.stderr.write('\n');
        }
      }
    }
  } finally {
    rl.close();
  }
  return answers;
}

let prompted: Credentials | undefined;

/** --docker-login: the username (unless given) and the password, asked once per process. */
async function promptCredentials(username: string | undefined): Promise<Credentials> {
  if (prompted) return prompted;
  const password = { text: 'Enter Docker Password: ', secret: true };
  const answers = await ask(username !== undefined ? [password] : [{ text: 'Enter Docker Username: ', secret: false }, password]);
  prompted = { username: username ?? answers[0]!, password: answers[answers.length - 1]! };
  return prompted;
}

/** The credentials for `registry`, from the first source that has some (see the top of this file). */
export async function credentialsFor(
  registry: string,
  o: RegistryOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Credentials | undefined> {
  if (o.dockerLogin) return promptCredentials(o.username);
  if (o.username !== undefined || o.password !== undefined) return { username: o.username ?? '', password: o.password ?? '' };
  const files = o.authFile ? [o.authFile] : [singularityAuthFile(), dockerAuthFile(env)];
  return findCredentials(files, registry)?.credentials;
}

export const LOGIN_HINT =
  'log in with `singularity registry login`, or give --docker-login, or SINGULARITY_DOCKER_USERNAME and SINGULARITY_DOCKER_PASSWORD';

/** What the OCI client needs for this registry. */
export async function clientOptions(registry: string, o: RegistryOptions): Promise<ClientOptions> {
  return { plainHttp: o.noHttps, credentials: await credentialsFor(registry, o), loginHint: LOGIN_HINT };
}

/** The registry flags in the form the commands' flag parser (commands/sif-flags.ts) takes. */
export const REGISTRY_FLAG_SPEC: Record<string, FlagSpec> = Object.fromEntries(
  REGISTRY_FLAGS.map(f => [f.long, { boolean: !f.takesValue }]),
);

/** The environment's registry settings with the parsed command-line flags on top. */
export function registryOptions(flags: ParsedFlags, env: NodeJS.ProcessEnv = process.env): RegistryOptions {
  const o = registryOptionsFromEnv(env);
  for (const f of REGISTRY_FLAGS) for (const v of flags.values.get(f.long) ?? []) if (f.takesValue || v !== 'false') f.apply(o, v);
  return o;
}
