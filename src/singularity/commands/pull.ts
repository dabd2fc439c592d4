// `pull [OUTPUT] URI`: an image from a registry (docker://, oras://) or a local OCI archive or layout, as a SIF
// (or --sandbox directory) in the current directory. The SIF comes through the user's cache, as Singularity's
// does: converted once, copied out on every pull.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nodeCrypto } from '../../lazy-crypto.js';
import { parseReference } from '../../oci-dist/reference.js';
import { type SingularityCommand, UsageError } from '../command.js';
import { reporter } from '../action.js';
import { convertToSif, localImage } from '../registry/convert.js';
import { REGISTRY_FLAG_SPEC, registryOptions } from '../registry/options.js';
import { imageUri, unsupportedSource, type ImageUri } from '../registry/source.js';
import { boolFlag, parseFlags, stringFlag } from './sif-flags.js';
import { RuntimeError } from '../../errors.js';

const USAGE =
  'singularity pull [--name NAME] [--dir DIR] [-F|--force] [--sandbox] [--arch ARCH] [--disable-cache] [--no-https] [--docker-login] [--authfile FILE] [OUTPUT] <URI>\n' +
  '  URI: docker://[REGISTRY/]REPO[:TAG|@DIGEST], oras://REGISTRY/REPO[:TAG], docker-archive:FILE, oci-archive:FILE[:TAG], oci:DIR[:TAG]';

/** Singularity's default file name: the last name component and the tag, `alpine_3.19.sif`. */
export function defaultName(uri: ImageUri, sandbox: boolean): string {
  let base: string;
  if (uri.transport === 'docker' || uri.transport === 'oras') {
    const ref = parseReference(uri.name.replace(/^\/\//, ''));
    base = `${ref.repository.split('/').pop()}_${ref.tag ?? ref.digest!.replace(/^[a-z0-9]+:/, '')}`;
  } else {
    const colon = uri.name.lastIndexOf(':');
    const tag = colon > 0 && !fs.existsSync(uri.name) ? uri.name.slice(colon + 1) : undefined;
    const file = tag !== undefined ? uri.name.slice(0, colon) : uri.name;
    base = `${path.basename(file).replace(/\.(tar|tar\.gz|tgz)$/, '')}_${tag ?? 'latest'}`;
  }
  return sandbox ? base : `${base}.sif`;
}

/** Copies the cached SIF to dest through a temporary name, so dest is whole or untouched. */
function copyOut(sif: string, dest: string): void {
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.pull-${nodeCrypto().randomBytes(6).toString('hex')}`);
  try {
    fs.copyFileSync(sif, tmp, fs.constants.COPYFILE_EXCL);
    fs.chmodSync(tmp, 0o755);
    fs.rmSync(dest, { recursive: true, force: true });
    fs.renameSync(tmp, dest);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

export const pullCommand: SingularityCommand = {
  summary: 'Pull an image from a registry (docker://, oras://) or an OCI archive into a local SIF',
  usage: USAGE,
  async run(argv, g) {
    const flags = parseFlags(argv, {
      name: {},
      dir: {},
      force: { short: 'F', boolean: true },
      sandbox: { boolean: true },
      arch: {},
      'allow-unsigned': { short: 'U', boolean: true },
      library: {},
      ...REGISTRY_FLAG_SPEC,
    });
    if (flags.args.length < 1 || flags.args.length > 2)
      throw new UsageError(`requires 1 or 2 arg(s) (OUTPUT and URI), received ${flags.args.length}`);
    const source = flags.args[flags.args.length - 1]!;
    const unsupported = unsupportedSource(source);
    if (unsupported) throw new RuntimeError(unsupported, { op: 'pull' });
    const uri = imageUri(source);
    if (!uri)
      throw new RuntimeError(
        `${source}: pull takes a URI (docker://, oras://, docker-archive:, oci-archive: or oci:); a local image needs no pull`,
        { op: 'pull' },
      );
    if (stringFlag(flags, 'library') !== undefined)
      throw new RuntimeError(unsupportedSource('library://')!.replace(/^library:\/\/: /, '--library: '), { op: 'pull' });
    const o = registryOptions(flags);
    o.arch = stringFlag(flags, 'arch');
    const sandbox = boolFlag(flags, 'sandbox');
    const name = flags.args.length === 2 ? flags.args[0]! : (stringFlag(flags, 'name') ?? defaultName(uri, sandbox));
    const dest = path.resolve(stringFlag(flags, 'dir') ?? '.', name);
    if (fs.existsSync(dest) && !boolFlag(flags, 'force'))
      throw new RuntimeError(`Image file already exists: "${name}" - will not overwrite`, { op: 'pull', path: dest, errno: 'EEXIST' });
    if (!fs.existsSync(path.dirname(dest)))
      throw new RuntimeError(`the directory of ${dest} does not exist`, { op: 'pull', path: path.dirname(dest), errno: 'ENOENT' });
    const quiet = g.quiet || g.silent;
    const r = {
      quiet,
      info: (m: string) => {
        if (!quiet) process.stderr.write(`INFO:    ${m}\n`);
      },
      warn: reporter(g).warn,
    };
    if (sandbox) {
      if (uri.transport === 'oras')
        throw new RuntimeError('--sandbox: an oras:// image is a SIF; pull it, then build a sandbox from it', { op: 'pull' });
      fs.rmSync(dest, { recursive: true, force: true });
      await convertToSif(uri.transport === 'docker' ? `docker://${uri.name}` : source, dest, o, r, true);
      return 0;
    }
    copyOut(await localImage(source, o, r), dest);
    return 0;
  },
};
