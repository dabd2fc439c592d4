// `push IMG.sif oras://REGISTRY/REPO[:TAG]`: see ../registry/push.ts.
import { type SingularityCommand, UsageError } from '../command.js';
import { pushOras } from '../registry/push.js';
import { REGISTRY_FLAG_SPEC, registryOptions } from '../registry/options.js';
import { unsupportedSource } from '../registry/source.js';
import { parseFlags } from './sif-flags.js';
import { RuntimeError } from '../../errors.js';

export const pushCommand: SingularityCommand = {
  summary: 'Upload a SIF image to an OCI registry (oras://)',
  usage: 'singularity push [--no-https] [--docker-login] [--authfile FILE] <image.sif> oras://REGISTRY/REPO[:TAG]',
  async run(argv, g) {
    const flags = parseFlags(argv, { 'allow-unsigned': { short: 'U', boolean: true }, ...REGISTRY_FLAG_SPEC });
    if (flags.args.length !== 2) throw new UsageError(`requires exactly 2 arg(s), received ${flags.args.length}`);
    const [file, target] = flags.args as [string, string];
    const unsupported = unsupportedSource(target);
    if (unsupported) throw new RuntimeError(unsupported, { op: 'push' });
    if (target.startsWith('docker://')) {
      throw new RuntimeError(
        `${target}: docker:// takes OCI images (SingularityCE's OCI-SIF); push a SIF to an OCI registry with oras:// instead`,
        { op: 'push' },
      );
    }
    const m = /^oras:\/\/(.+)$/.exec(target);
    if (!m) throw new RuntimeError(`${target}: push takes an oras://REGISTRY/REPO[:TAG] destination`, { op: 'push' });
    const quiet = g.quiet || g.silent;
    const digest = await pushOras(file, m[1]!, registryOptions(flags), quiet);
    if (!quiet) process.stderr.write(`INFO:    Upload complete (${digest})\n`);
    return 0;
  },
};
