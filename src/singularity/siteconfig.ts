// The site configuration: singularity.conf (and the GPU library lists) in /etc/tsrt-singularity, written by the
// administrator, read by every command, in Singularity's `key = value` syntax. Only root may point tsrt-singularity
// at another file (`--config FILE`, or $TSRT_SINGULARITY_CONFDIR): for anyone else the site's own file is the
// one that applies. `singularity buildcfg` prints where it is.
//
// The directives honoured are the ones that restrict what a container gets or add binds to it (sitepolicy.ts
// applies them); the ones that would grant something (allow setuid, root default capabilities, allow net users,
// ...) are read and ignored, because tsrt-singularity never runs with more than the user's own rights: a site
// file can never let a user do more than the kernel lets them do anyway.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type BindSpec, parseBinds } from './options.js';
import { RuntimeError } from '../errors.js';

export const DEFAULT_CONFIG_DIR = '/etc/tsrt-singularity';
export const CONFIG_FILE_NAME = 'singularity.conf';

type OverlayMode = 'yes' | 'no' | 'try' | 'driver';

export interface SiteConfig {
  /** The file the values come from, and whether it exists (without it every directive has its default). */
  file: string;
  present: boolean;
  bindPath: BindSpec[];
  mountHome: boolean;
  mountTmp: boolean;
  mountHostfs: boolean;
  userBindControl: boolean;
  enableOverlay: OverlayMode;
  /** `config resolv_conf`: bind the host's /etc/resolv.conf. */
  configResolvConf: boolean;
  limitContainerPaths: string[];
  limitContainerOwners: string[];
  limitContainerGroups: string[];
  allowContainer: { sif: boolean; squashfs: boolean; extfs: boolean; dir: boolean; encrypted: boolean };
  memoryFsType: 'tmpfs' | 'ramfs';
  ldconfigPath?: string;
  /** `sandbox cache max size`: the most a user's cache of unpacked images may hold, in bytes (0: no limit). */
  sandboxCacheMaxSize?: number;
}

let configFileOverride: string | undefined;

/**
 * Root of the host, not root of a user namespace: a user who made one (unshare -r) is uid 0 there, and could then
 * name a configuration of their own.
 */
function isRoot(): boolean {
  if (process.geteuid?.() !== 0) return false;
  try {
    return fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/).join(' ') === '0 0 4294967295';
  } catch {
    return false;
  }
}

/** `--config FILE`: root's way to use another file (a user would be choosing their own policy). */
export function useConfigFile(file: string): void {
  if (!isRoot())
    throw new RuntimeError(`--config is only for root: the site configuration is ${path.join(DEFAULT_CONFIG_DIR, CONFIG_FILE_NAME)}`, {
      op: 'config',
      path: file,
    });
  configFileOverride = path.resolve(file);
  cached = undefined;
}

/** Where the site's files live: /etc/tsrt-singularity, or $TSRT_SINGULARITY_CONFDIR when root runs us. */
export function configDir(): string {
  const env = process.env['TSRT_SINGULARITY_CONFDIR'];
  return env && isRoot() ? env : DEFAULT_CONFIG_DIR;
}

export function configFile(): string {
  return configFileOverride ?? path.join(configDir(), CONFIG_FILE_NAME);
}

/** A config file this program cannot use: named by file and line, and nothing runs (the site's policy is unknown). */
export class SiteConfigError extends RuntimeError {
  constructor(message: string) {
    super(message, { op: 'site config' });
    this.name = 'SiteConfigError';
  }
}

const BOOL_KEYS = {
  'mount home': 'mountHome',
  'mount tmp': 'mountTmp',
  'mount hostfs': 'mountHostfs',
  'user bind control': 'userBindControl',
  'config resolv_conf': 'configResolvConf',
} as const;
const ALLOW_KEYS = {
  'allow container sif': 'sif',
  'allow container squashfs': 'squashfs',
  'allow container extfs': 'extfs',
  'allow container dir': 'dir',
  'allow container encrypted': 'encrypted',
} as const;
const LIST_KEYS = {
  'limit container paths': 'limitContainerPaths',
  'limit container owners': 'limitContainerOwners',
  'limit container groups': 'limitContainerGroups',
} as const;

/** The values of every directive: the ones in force without a file (present false), or before a file's lines. */
export function defaults(file: string, present: boolean): SiteConfig {
  return {
    file,
    present,
    // Singularity's default list applies only when there is no file at all: a file without `bind path` lines
    // means no such binds.
    bindPath: present
      ? []
      : [
          { source: '/etc/localtime', destination: '/etc/localtime', readonly: true },
          { source: '/etc/hosts', destination: '/etc/hosts', readonly: true },
        ],
    mountHome: true,
    mountTmp: true,
    mountHostfs: false,
    userBindControl: true,
    enableOverlay: 'yes',
    configResolvConf: true,
    limitContainerPaths: [],
    limitContainerOwners: [],
    limitContainerGroups: [],
    allowContainer: { sif: true, squashfs: true, extfs: true, dir: true, encrypted: true },
    memoryFsType: 'tmpfs',
  };
}

const UNITS: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** A size as singularity.conf gives sizes: MiB by default (as `sessiondir max size`), or with a K, M, G or T suffix. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)\s*(?:([KMGT])(?:i?B)?)?$/i.exec(text.trim());
  return m ? Number(m[1]) * UNITS[(m[2] ?? 'M').toUpperCase()]! : undefined;
}

/** Parses singularity.conf text: `key = value` lines, `#` comments, comma lists, the first of repeated scalars wins. */
export function parseSiteConfig(text: string, file: string): SiteConfig {
  const c = defaults(file, true);
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const m = /^\s*([A-Za-z_ -]+?)\s*=\s*(.*?)\s*$/.exec(raw);
    if (!m || m[2] === '') return;
    const key = m[1]!.toLowerCase();
    const value = m[2]!;
    const where = `${file} line ${i + 1}`;
    const choice = <T extends string>(allowed: readonly T[]): T => {
      if (!(allowed as readonly string[]).includes(value))
        throw new SiteConfigError(`${where}: "${key}" must be ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
      return value as T;
    };
    const first = !seen.has(key);
    seen.add(key);
    const list = value
      .split(',')
      .map(v => v.trim())
      .filter(v => v !== '');
    if (key in BOOL_KEYS) {
      const yes = choice(['yes', 'no'] as const) === 'yes';
      if (first) c[BOOL_KEYS[key as keyof typeof BOOL_KEYS]] = yes;
    } else if (key in ALLOW_KEYS) {
      const yes = choice(['yes', 'no'] as const) === 'yes';
      if (first) c.allowContainer[ALLOW_KEYS[key as keyof typeof ALLOW_KEYS]] = yes;
    } else if (key in LIST_KEYS) {
      c[LIST_KEYS[key as keyof typeof LIST_KEYS]].push(...list.filter(v => v !== 'NULL'));
    } else if (key === 'bind path') {
      try {
        c.bindPath.push(...list.flatMap(parseBinds));
      } catch (e) {
        throw new SiteConfigError(`${where}: ${(e as Error).message}`);
      }
    } else if (key === 'enable overlay') {
      const mode = choice(['yes', 'no', 'try', 'driver'] as const);
      if (first) c.enableOverlay = mode;
    } else if (key === 'memory fs type') {
      const type = choice(['tmpfs', 'ramfs'] as const);
      if (first) c.memoryFsType = type;
    } else if (key === 'ldconfig path') {
      if (first) c.ldconfigPath = value;
    } else if (key === 'sandbox cache max size') {
      const size = parseSize(value);
      if (size === undefined)
        throw new SiteConfigError(`${where}: "${key}" must be a size in MiB (or with a K, M, G or T suffix), got ${JSON.stringify(value)}`);
      if (first) c.sandboxCacheMaxSize = size;
    }
  });
  return c;
}

let cached: SiteConfig | undefined;

/** The site configuration in force (read once per command); throws SiteConfigError for a file it cannot use. */
export function siteConfig(): SiteConfig {
  if (cached) return cached;
  const file = configFile();
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new SiteConfigError(`cannot read the site configuration ${file}: ${(e as Error).message}`);
    cached = defaults(file, false);
    return cached;
  }
  let text: string;
  try {
    // Whoever can write the file sets the policy: only root may.
    const st = fs.fstatSync(fd);
    if (st.uid !== 0 || (st.mode & 0o022) !== 0 || !st.isFile()) {
      throw new SiteConfigError(`the site configuration ${file} must be a regular file owned by root and writable only by root`);
    }
    text = fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
  cached = parseSiteConfig(text, file);
  return cached;
}
