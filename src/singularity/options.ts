// The action flags shared by exec, run, shell, test and instance start, parsed the way Singularity's cobra
// command line takes them: flags before the image, `--flag value` or `--flag=value`, short flags, repeatable
// lists. Each flag can also come from SINGULARITY_<KEY> / APPTAINER_<KEY> in the environment.

import { UsageError } from './command.js';
import { emptyRegistryOptions, REGISTRY_FLAGS, registryOptionsFromEnv, type RegistryOptions } from './registry/options.js';
import { RuntimeError } from '../errors.js';

export interface BindSpec {
  source: string;
  destination: string;
  readonly: boolean;
}

export interface OverlaySpec {
  path: string;
  readonly: boolean;
}

export interface ActionOptions {
  binds: BindSpec[];
  contain: boolean;
  cleanenv: boolean;
  env: string[];
  envFiles: string[];
  home?: { source: string; destination: string };
  noHome: boolean;
  pwd?: string;
  writable: boolean;
  writableTmpfs: boolean;
  overlays: OverlaySpec[];
  pid: boolean;
  ipc: boolean;
  uts: boolean;
  hostname?: string;
  /** -n/--net: a network namespace of the container's own; --network names how it is connected. */
  net: boolean;
  network?: string;
  networkArgs: string[];
  /** --dns: the name servers of the container's /etc/resolv.conf. */
  dns: string[];
  fakeroot: boolean;
  /** --sharens: share a user namespace with the job's other ranks (./sharens.ts); undefined: only under MPI or Slurm. */
  sharens?: boolean;
  /** -q/--quiet after the command (`instance start -q`), as the global -q before it. */
  quiet: boolean;
  noMount: Set<string>;
  scratch: string[];
  workdir?: string;
  nv: boolean;
  rocm: boolean;
  app?: string;
  shell?: string;
  /** How a docker:// or oras:// image is fetched (--no-https, --docker-login, ...). */
  registry: RegistryOptions;
}

type Kind = 'bool' | 'string' | 'strings';
interface FlagDef {
  long: string;
  short?: string;
  kind: Kind;
  /** The SINGULARITY_<env> / APPTAINER_<env> variable that sets it. */
  env?: string[];
  apply(o: ActionOptions, value: string): void;
  /** A boolean given as false (--flag=false, SINGULARITY_FLAG=0), for the ones whose default is not simply off. */
  off?(o: ActionOptions): void;
}

export { UsageError };

/** src[:dst[:ro|rw]], comma lists allowed: Singularity's -B grammar. */
export function parseBinds(value: string): BindSpec[] {
  return value
    .split(',')
    .filter(s => s !== '')
    .map(item => {
      const parts = item.split(':');
      // A flag that parses but names a bad bind is Singularity's FATAL, not a usage error.
      if (parts.length > 3) throw new RuntimeError(`invalid bind specification "${item}": expected src[:dst[:ro|rw]]`, { op: 'bind' });
      const source = parts[0]!;
      let destination = source;
      let opts = '';
      if (parts.length === 2 && (parts[1] === 'ro' || parts[1] === 'rw')) opts = parts[1];
      else if (parts.length >= 2) destination = parts[1]!;
      if (parts.length === 3) opts = parts[2]!;
      if (opts !== '' && opts !== 'ro' && opts !== 'rw') {
        throw new RuntimeError(`invalid bind option "${opts}" in "${item}": only ro and rw are supported`, { op: 'bind' });
      }
      if (!source.startsWith('/') || !destination.startsWith('/')) {
        throw new RuntimeError(`invalid bind specification "${item}": source and destination must be absolute paths`, { op: 'bind' });
      }
      return { source, destination, readonly: opts === 'ro' };
    });
}

/** Docker's --mount syntax, bind mounts only (as Singularity's native runtime accepts). */
export function parseMount(value: string): BindSpec {
  const fields = new Map<string, string>();
  let readonly = false;
  for (const field of value.split(',')) {
    const eq = field.indexOf('=');
    const key = eq < 0 ? field : field.slice(0, eq);
    const val = eq < 0 ? '' : field.slice(eq + 1);
    if (key === 'ro' || key === 'readonly') readonly = val === '' || val === 'true';
    else fields.set(key, val);
  }
  const type = fields.get('type') ?? 'bind';
  if (type !== 'bind') throw new RuntimeError(`--mount "${value}": only type=bind is supported`, { op: 'mount' });
  const source = fields.get('source') ?? fields.get('src');
  const destination = fields.get('destination') ?? fields.get('dst') ?? fields.get('target');
  if (!source || !destination) throw new RuntimeError(`--mount "${value}": source and destination are required`, { op: 'mount' });
  return { source, destination, readonly };
}

function parseOverlay(value: string): OverlaySpec {
  const ro = value.endsWith(':ro');
  return { path: ro ? value.slice(0, -3) : value.replace(/:rw$/, ''), readonly: ro };
}

const flags: FlagDef[] = [
  { long: 'bind', short: 'B', kind: 'strings', env: ['BIND', 'BINDPATH'], apply: (o, v) => o.binds.push(...parseBinds(v)) },
  { long: 'mount', kind: 'strings', env: ['MOUNT'], apply: (o, v) => o.binds.push(parseMount(v)) },
  {
    long: 'contain',
    short: 'c',
    kind: 'bool',
    env: ['CONTAIN'],
    apply: o => {
      o.contain = true;
    },
  },
  {
    long: 'containall',
    short: 'C',
    kind: 'bool',
    env: ['CONTAINALL'],
    apply: o => {
      o.contain = true;
      o.pid = true;
      o.ipc = true;
      o.cleanenv = true;
    },
  },
  {
    long: 'cleanenv',
    short: 'e',
    kind: 'bool',
    env: ['CLEANENV'],
    apply: o => {
      o.cleanenv = true;
    },
  },
  { long: 'env', kind: 'strings', apply: (o, v) => o.env.push(...v.split(',')) },
  { long: 'env-file', kind: 'string', env: ['ENV_FILE'], apply: (o, v) => o.envFiles.push(v) },
  {
    long: 'home',
    short: 'H',
    kind: 'string',
    apply: (o, v) => {
      const [source, destination] = v.split(':');
      if (!source?.startsWith('/')) throw new UsageError(`--home "${v}": expected an absolute src[:dst]`);
      o.home = { source, destination: destination || source };
    },
  },
  {
    long: 'no-home',
    kind: 'bool',
    env: ['NO_HOME'],
    apply: o => {
      o.noHome = true;
    },
  },
  {
    long: 'pwd',
    kind: 'string',
    env: ['TARGET_PWD'],
    apply: (o, v) => {
      o.pwd = v;
    },
  },
  {
    long: 'cwd',
    kind: 'string',
    apply: (o, v) => {
      o.pwd = v;
    },
  },
  {
    long: 'writable',
    short: 'w',
    kind: 'bool',
    env: ['WRITABLE'],
    apply: o => {
      o.writable = true;
    },
  },
  {
    long: 'writable-tmpfs',
    kind: 'bool',
    env: ['WRITABLE_TMPFS'],
    apply: o => {
      o.writableTmpfs = true;
    },
  },
  { long: 'overlay', short: 'o', kind: 'strings', env: ['OVERLAY', 'OVERLAYIMAGE'], apply: (o, v) => o.overlays.push(parseOverlay(v)) },
  {
    long: 'pid',
    short: 'p',
    kind: 'bool',
    env: ['PID', 'UNSHARE_PID'],
    apply: o => {
      o.pid = true;
    },
  },
  {
    long: 'ipc',
    short: 'i',
    kind: 'bool',
    env: ['IPC', 'UNSHARE_IPC'],
    apply: o => {
      o.ipc = true;
    },
  },
  {
    long: 'uts',
    kind: 'bool',
    env: ['UTS', 'UNSHARE_UTS'],
    apply: o => {
      o.uts = true;
    },
  },
  {
    long: 'hostname',
    kind: 'string',
    env: ['HOSTNAME'],
    apply: (o, v) => {
      o.hostname = v;
      o.uts = true;
    },
  },
  {
    long: 'net',
    short: 'n',
    kind: 'bool',
    env: ['NET', 'UNSHARE_NET'],
    apply: o => {
      o.net = true;
    },
  },
  {
    long: 'network',
    kind: 'string',
    env: ['NETWORK'],
    apply: (o, v) => {
      o.network = v;
      o.net = true;
    },
  },
  {
    long: 'network-args',
    kind: 'strings',
    env: ['NETWORK_ARGS'],
    apply: (o, v) =>
      o.networkArgs.push(
        ...v
          .split(',')
          .map(a => a.trim())
          .filter(Boolean),
      ),
  },
  {
    long: 'dns',
    kind: 'string',
    env: ['DNS'],
    apply: (o, v) => {
      o.dns = v
        .split(',')
        .map(a => a.trim())
        .filter(Boolean);
    },
  },
  {
    long: 'quiet',
    short: 'q',
    kind: 'bool',
    apply: o => {
      o.quiet = true;
    },
  },
  {
    long: 'sharens',
    kind: 'bool',
    env: ['SHARENS'],
    apply: o => {
      o.sharens = true;
    },
    off: o => {
      o.sharens = false;
    },
  },
  {
    long: 'fakeroot',
    short: 'f',
    kind: 'bool',
    env: ['FAKEROOT'],
    apply: o => {
      o.fakeroot = true;
    },
  },
  // Every container here runs in a user namespace already: -u only confirms it.
  { long: 'userns', short: 'u', kind: 'bool', env: ['USERNS'], apply: () => undefined },
  {
    long: 'no-mount',
    kind: 'strings',
    env: ['NO_MOUNT'],
    apply: (o, v) => {
      for (const m of v.split(',')) o.noMount.add(m.trim());
    },
  },
  { long: 'scratch', short: 'S', kind: 'strings', env: ['SCRATCH', 'SCRATCHDIR'], apply: (o, v) => o.scratch.push(...v.split(',')) },
  {
    long: 'workdir',
    short: 'W',
    kind: 'string',
    env: ['WORKDIR'],
    apply: (o, v) => {
      o.workdir = v;
    },
  },
  {
    long: 'nv',
    kind: 'bool',
    env: ['NV'],
    apply: o => {
      o.nv = true;
    },
  },
  {
    long: 'rocm',
    kind: 'bool',
    env: ['ROCM'],
    apply: o => {
      o.rocm = true;
    },
  },
  {
    long: 'app',
    kind: 'string',
    env: ['APP'],
    apply: (o, v) => {
      o.app = v;
    },
  },
  {
    long: 'shell',
    short: 's',
    kind: 'string',
    apply: (o, v) => {
      o.shell = v;
    },
  },
  ...REGISTRY_FLAGS.map(
    (f): FlagDef => ({ long: f.long, kind: f.takesValue ? 'string' : 'bool', apply: (o, v) => f.apply(o.registry, v) }),
  ),
];

export function emptyOptions(): ActionOptions {
  return {
    binds: [],
    contain: false,
    cleanenv: false,
    env: [],
    envFiles: [],
    noHome: false,
    writable: false,
    writableTmpfs: false,
    overlays: [],
    pid: false,
    ipc: false,
    uts: false,
    net: false,
    networkArgs: [],
    dns: [],
    fakeroot: false,
    quiet: false,
    noMount: new Set(),
    scratch: [],
    nv: false,
    rocm: false,
    registry: emptyRegistryOptions(),
  };
}

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);

/**
 * Parses action flags up to the first positional argument (the image); returns the options and the rest
 * (image and command, untouched: flags after the image belong to the command).
 */
export function parseActionArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): { options: ActionOptions; rest: string[] } {
  const o = emptyOptions();
  o.registry = registryOptionsFromEnv(env);
  for (const def of flags) {
    for (const key of def.env ?? []) {
      const value = env[`APPTAINER_${key}`] ?? env[`SINGULARITY_${key}`];
      if (value === undefined || value === '') continue;
      if (def.kind === 'bool') {
        if (TRUE_WORDS.has(value.toLowerCase())) def.apply(o, value);
        else def.off?.(o);
      } else {
        def.apply(o, value);
      }
    }
  }
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    let name: string;
    let inline: string | undefined;
    let def: FlagDef | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      def = flags.find(f => f.long === name);
    } else {
      name = arg.slice(1, 2);
      inline = arg.length > 2 ? arg.slice(2).replace(/^=/, '') : undefined;
      def = flags.find(f => f.short === name);
    }
    if (!def) throw new UsageError(`unknown flag: ${arg}`);
    if (def.kind === 'bool') {
      if (inline === undefined || TRUE_WORDS.has(inline.toLowerCase())) def.apply(o, 'true');
      else def.off?.(o);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`flag needs an argument: ${arg}`);
    def.apply(o, value);
  }
  return { options: o, rest: argv.slice(i) };
}
