// The container's environment and the action script, in Singularity's order: host environment (or the
// clean list) < the image's /.singularity.d/env scripts < SINGULARITYENV_*/APPTAINERENV_* < --env-file < --env.
// The image scripts can only run inside the container, so the overrides are applied by a small sh script
// that sources them first, then exports the overrides, then execs the action.
import * as fs from 'node:fs';
import type { ActionOptions } from './options.js';
import { RuntimeError } from '../errors.js';

export type Action = 'exec' | 'run' | 'shell' | 'test' | 'start';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** What --cleanenv still passes (both cases of the proxy variables). */
const ALWAYS_PASSED = ['TERM', 'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy', 'ftp_proxy'];
/** Set by the runtime or refused as overrides: SINGULARITYENV_HOME would break the home mount. */
const REFUSED_OVERRIDES = new Set(['HOME', 'SINGULARITY_SHELL', 'SINGULARITY_APPNAME', 'APPTAINER_SHELL', 'APPTAINER_APPNAME']);
const PREFIXES = ['SINGULARITYENV_', 'APPTAINERENV_'];

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function isRuntimeVariable(key: string): boolean {
  return key.startsWith('SINGULARITY') || key.startsWith('APPTAINER');
}

/** The environment the action script starts with (before the image's scripts run). */
export function baseEnvironment(hostEnv: NodeJS.ProcessEnv, o: ActionOptions, vars: Record<string, string>): string[] {
  const env = new Map<string, string>();
  if (o.cleanenv) {
    for (const key of ALWAYS_PASSED.flatMap(k => [k, k.toUpperCase()])) {
      const v = hostEnv[key];
      if (v !== undefined) env.set(key, v);
    }
    env.set('LANG', 'C');
  } else {
    for (const [key, value] of Object.entries(hostEnv)) {
      if (value === undefined || isRuntimeVariable(key)) continue;
      if (key === 'PATH' || key === 'HOME' || key === 'LD_LIBRARY_PATH' || key === 'PS1' || key === 'PWD' || key === 'OLDPWD') continue;
      env.set(key, value);
    }
  }
  env.set('PATH', DEFAULT_PATH);
  for (const [k, v] of Object.entries(vars)) env.set(k, v);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/** KEY=VALUE lines of an --env-file: comments and blank lines skipped, one level of quotes removed. */
export function parseEnvFile(file: string): [string, string][] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new RuntimeError(`could not read --env-file ${file}: ${(e as Error).message}`, {
      op: 'read',
      path: file,
      errno: (e as NodeJS.ErrnoException).code ?? '',
      cause: e,
    });
  }
  const out: [string, string][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim().replace(/^export\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new RuntimeError(`--env-file ${file}: "${raw}" is not KEY=VALUE`, { op: 'env-file', path: file });
    let value = line.slice(eq + 1);
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]!)) value = value.slice(1, -1);
    out.push([line.slice(0, eq), value]);
  }
  return out;
}

function parseAssignment(item: string, where: string): [string, string] {
  const eq = item.indexOf('=');
  if (eq <= 0) throw new RuntimeError(`${where}: "${item}" is not KEY=VALUE`, { op: 'env' });
  return [item.slice(0, eq), item.slice(eq + 1)];
}

/** Overrides in increasing precedence; later entries win. */
export function environmentOverrides(hostEnv: NodeJS.ProcessEnv, o: ActionOptions, warn: (m: string) => void): [string, string][] {
  const out: [string, string][] = [];
  // APPTAINERENV_ comes after SINGULARITYENV_ (Apptainer gives its own prefix precedence over the legacy one).
  for (const prefix of PREFIXES) {
    for (const [key, value] of Object.entries(hostEnv)) {
      if (value !== undefined && key.startsWith(prefix) && key.length > prefix.length) out.push([key.slice(prefix.length), value]);
    }
  }
  for (const file of o.envFiles) out.push(...parseEnvFile(file));
  for (const item of o.env) out.push(parseAssignment(item, '--env'));
  return out.filter(([key]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      warn(`skipping environment variable "${key}": not a valid name`);
      return false;
    }
    if (REFUSED_OVERRIDES.has(key)) {
      warn(`overriding ${key} environment variable with ${key} is not permitted`);
      return false;
    }
    return true;
  });
}

export interface ScriptInput {
  action: Action;
  overrides: [string, string][];
  app?: string;
  /** The shell for `shell` (--shell or $SINGULARITY_SHELL). */
  shell?: string;
  /** Host libraries bound into /.singularity.d/libs (--nv, --rocm). */
  libs: boolean;
  prompt: string;
}

/** The sh program that prepares the environment inside the container and then runs the action. */
export function actionScript(s: ScriptInput): string {
  const lines = ['for __f in /.singularity.d/env/*.sh; do [ -f "$__f" ] && . "$__f"; done'];
  if (s.app) {
    const dir = `/scif/apps/${s.app}`;
    lines.push(
      `for __f in ${dir}/scif/env/*.sh; do [ -f "$__f" ] && . "$__f"; done`,
      `export PATH="${dir}/bin:$PATH" LD_LIBRARY_PATH="${dir}/lib\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"`,
      `export SCIF_APPNAME=${shellQuote(s.app)} SCIF_APPROOT=${dir} SCIF_APPBIN=${dir}/bin SCIF_APPDATA=/scif/data/${shellQuote(s.app)}`,
    );
  }
  let prepend = '';
  let append = '';
  for (const [key, value] of s.overrides) {
    if (key === 'PREPEND_PATH') prepend = value;
    else if (key === 'APPEND_PATH') append = value;
    else lines.push(`export ${key}=${shellQuote(value)}`);
  }
  if (prepend) lines.push(`PATH=${shellQuote(prepend)}:"$PATH"`);
  if (append) lines.push(`PATH="$PATH":${shellQuote(append)}`);
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a line of the container's shell environment script, expanded by that shell
  if (s.libs) lines.push('export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/.singularity.d/libs"');
  lines.push('unset __f', 'export PATH');
  lines.push(...actionLines(s));
  return lines.join('\n');
}

function actionLines(s: ScriptInput): string[] {
  const scif = s.app ? `/scif/apps/${s.app}/scif` : undefined;
  switch (s.action) {
    case 'exec':
      return ['exec "$@"'];
    case 'run': {
      const runscript = scif ? `${scif}/runscript` : '/.singularity.d/runscript';
      return [
        `for __r in ${runscript}${scif ? '' : ' /singularity'}; do`,
        '  if [ -f "$__r" ]; then if [ -x "$__r" ]; then exec "$__r" "$@"; else exec /bin/sh "$__r" "$@"; fi; fi',
        'done',
        'echo "No runscript found in the container, executing /bin/sh" >&2',
        'exec /bin/sh "$@"',
      ];
    }
    case 'test': {
      const test = scif ? `${scif}/test` : '/.singularity.d/test';
      return [`if [ -f ${test} ]; then exec /bin/sh ${test} "$@"; fi`, 'echo "No test found in the container" >&2', 'exit 0'];
    }
    case 'shell': {
      const prompt = shellQuote(s.prompt);
      const lines = [`export PS1=${prompt}`];
      if (s.shell) return [...lines, `exec ${shellQuote(s.shell)} "$@"`];
      return [
        ...lines,
        // A user's bashrc must not silently replace the prompt: PROMPT_COMMAND sets it again.
        `if [ -x /bin/bash ]; then export PROMPT_COMMAND="PS1=${prompt.replace(/"/g, '\\"')}; unset PROMPT_COMMAND"; exec /bin/bash --norc "$@"; fi`,
        'exec /bin/sh "$@"',
      ];
    }
    case 'start': {
      const start = scif ? `${scif}/startscript` : '/.singularity.d/startscript';
      // This shell stays as the instance's PID 1: it reaps children and a SIGTERM (instance stop) ends it.
      return [
        "trap 'exit 0' TERM INT HUP",
        `if [ -f ${start} ]; then /bin/sh ${start} "$@" & fi`,
        'while :; do sleep 3600 & wait $!; done',
      ];
    }
  }
}
