// run-help: the image's (or an app's) %help text; of a docker:// or oras:// image too, pulled into the cache as
// exec would.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { conversionReporter } from '../action.js';
import { type SingularityCommand, UsageError } from '../command.js';
import { resolveImage } from '../image.js';
import { listApps } from '../host.js';
import { localImage } from '../registry/convert.js';
import { registryFlag, registryOptionsFromEnv, takeRegistryFlag } from '../registry/options.js';
import { RuntimeError } from '../../errors.js';

export const runHelpCommand: SingularityCommand = {
  summary: 'Show the user-defined help for an image',
  usage: 'singularity run-help [--app NAME] [--no-https] [--docker-login] <image|URI>',
  async run(argv, g) {
    const registry = registryOptionsFromEnv();
    let app: string | undefined;
    let image: string | undefined;
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === '--app') app = argv[++i];
      else if (a.startsWith('--app=')) app = a.slice(6);
      else if (registryFlag(a)) i = takeRegistryFlag(registry, argv, i)!;
      else if (a.startsWith('-')) throw new UsageError(`unknown flag: ${a}`);
      else image = a;
    }
    if (!image) throw new UsageError('requires exactly 1 arg(s), only received 0');
    const resolved = resolveImage(await localImage(image, registry, conversionReporter(g)), () => undefined);
    try {
      if (app && !listApps(resolved.rootfs).includes(app))
        throw new RuntimeError(`no app ${JSON.stringify(app)} in ${resolved.path}`, { op: 'app', path: resolved.path });
      const file = app
        ? path.join(resolved.rootfs, 'scif', 'apps', app, 'scif', 'runscript.help')
        : path.join(resolved.rootfs, '.singularity.d', 'runscript.help');
      let help: string;
      try {
        help = fs.readFileSync(file, 'utf8');
      } catch {
        process.stdout.write(app ? `No help sections were defined for ${app}\n` : 'No help sections were defined for this image\n');
        return 0;
      }
      process.stdout.write(help.endsWith('\n') ? help : `${help}\n`);
      return 0;
    } finally {
      resolved.release();
    }
  },
};
