// inspect: the image's metadata from /.singularity.d (or an app's from /scif/apps/NAME/scif).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type SingularityCommand, UsageError } from '../command.js';
import { conversionReporter } from '../action.js';
import { resolveImage } from '../image.js';
import { listApps } from '../host.js';
import { localImage } from '../registry/convert.js';
import { registryFlag, registryOptionsFromEnv, takeRegistryFlag } from '../registry/options.js';
import { RuntimeError } from '../../errors.js';

type Part = 'labels' | 'deffile' | 'runscript' | 'startscript' | 'test' | 'environment' | 'helpfile';

const SHORT: Record<string, Part> = {
  l: 'labels',
  d: 'deffile',
  r: 'runscript',
  s: 'startscript',
  t: 'test',
  e: 'environment',
  H: 'helpfile',
};
const LONG: Record<string, Part> = {
  labels: 'labels',
  deffile: 'deffile',
  runscript: 'runscript',
  startscript: 'startscript',
  test: 'test',
  environment: 'environment',
  helpfile: 'helpfile',
};
const ORDER: Part[] = ['labels', 'deffile', 'runscript', 'startscript', 'test', 'environment', 'helpfile'];

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

interface Metadata {
  labels: Record<string, string>;
  deffile?: string;
  runscript?: string;
  startscript?: string;
  test?: string;
  environment: Record<string, string>;
  helpfile?: string;
}

export function imageMetadata(rootfs: string, app?: string): Metadata {
  const base = app ? path.join(rootfs, 'scif', 'apps', app, 'scif') : path.join(rootfs, '.singularity.d');
  let labels: Record<string, string> = {};
  const labelText = read(path.join(base, 'labels.json'));
  if (labelText) {
    try {
      labels = JSON.parse(labelText) as Record<string, string>;
    } catch (e) {
      throw new RuntimeError(`${path.join(base, 'labels.json')} is not valid JSON: ${(e as Error).message}`, {
        op: 'inspect',
        path: path.join(base, 'labels.json'),
        cause: e,
      });
    }
  }
  const environment: Record<string, string> = {};
  const envDir = path.join(base, 'env');
  for (const f of (fs.existsSync(envDir) ? fs.readdirSync(envDir) : []).sort()) {
    const text = read(path.join(envDir, f));
    if (text !== undefined) environment[app ? `/scif/apps/${app}/scif/env/${f}` : `/.singularity.d/env/${f}`] = text;
  }
  return {
    labels,
    environment,
    deffile: app ? undefined : read(path.join(base, 'Singularity')),
    runscript: read(path.join(base, 'runscript')),
    startscript: read(path.join(base, 'startscript')),
    test: read(path.join(base, 'test')),
    helpfile: read(path.join(base, 'runscript.help')),
  };
}

function text(part: Part, m: Metadata): string {
  if (part === 'labels')
    return Object.entries(m.labels)
      .map(([k, v]) => `${k}: ${v}\n`)
      .join('');
  if (part === 'environment')
    return Object.entries(m.environment)
      .map(([f, t]) => `=== ${f} ===\n${t}${t.endsWith('\n') ? '' : '\n'}`)
      .join('\n');
  const t = m[part] ?? '';
  return t === '' || t.endsWith('\n') ? t : `${t}\n`;
}

export const inspectCommand: SingularityCommand = {
  summary: 'Show metadata for an image',
  usage:
    'singularity inspect [-l] [-d] [-r] [-s] [-t] [-e] [-H] [--list-apps] [--app NAME] [--all] [-j|--json] [--no-https] [--docker-login] <image|URI>',
  async run(argv, g) {
    const parts = new Set<Part>();
    const registry = registryOptionsFromEnv();
    let json = false;
    let listAppsOnly = false;
    let app: string | undefined;
    let image: string | undefined;
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === '-j' || a === '--json') json = true;
      else if (a === '--all') for (const p of ORDER) parts.add(p);
      else if (a === '--list-apps') listAppsOnly = true;
      else if (a === '--app') app = argv[++i];
      else if (a.startsWith('--app=')) app = a.slice(6);
      else if (registryFlag(a)) i = takeRegistryFlag(registry, argv, i)!;
      else if (a.startsWith('--') && LONG[a.slice(2)]) parts.add(LONG[a.slice(2)]!);
      else if (/^-[A-Za-z]+$/.test(a) && [...a.slice(1)].every(c => SHORT[c] || c === 'j')) {
        for (const c of a.slice(1))
          if (c === 'j') json = true;
          else parts.add(SHORT[c]!);
      } else if (a.startsWith('-')) {
        throw new UsageError(`unknown flag: ${a}`);
      } else image = a;
    }
    if (!image) throw new UsageError('requires exactly 1 arg(s), only received 0');
    const resolved = resolveImage(await localImage(image, registry, conversionReporter(g)), () => undefined);
    try {
      if (listAppsOnly) {
        process.stdout.write(
          listApps(resolved.rootfs)
            .map(a => `${a}\n`)
            .join(''),
        );
        return 0;
      }
      if (app && !listApps(resolved.rootfs).includes(app))
        throw new RuntimeError(`no app ${JSON.stringify(app)} in ${resolved.path}`, { op: 'app', path: resolved.path });
      if (parts.size === 0) parts.add('labels');
      const m = imageMetadata(resolved.rootfs, app);
      if (json) {
        const attributes: Record<string, unknown> = {};
        for (const p of ORDER) if (parts.has(p)) attributes[p] = m[p] ?? '';
        if (parts.size === ORDER.length)
          attributes['apps'] = Object.fromEntries(listApps(resolved.rootfs).map(a => [a, imageMetadata(resolved.rootfs, a)]));
        process.stdout.write(`${JSON.stringify({ data: { attributes }, type: 'container' }, null, 4)}\n`);
        return 0;
      }
      process.stdout.write(
        ORDER.filter(p => parts.has(p))
          .map(p => text(p, m))
          .join(parts.size > 1 ? '\n' : ''),
      );
      return 0;
    } finally {
      resolved.release();
    }
  },
};
