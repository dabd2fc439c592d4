// `singularity sif ...`: the embedded siftool. Same subcommands, argument order, flags and output as the
// reference, on top of src/sif.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SingularityCommand } from '../command.js';
import { ARCHES, DataType, type ObjectInput, SifImage } from '../../sif/index.js';
import { SBOM_FORMAT_NAMES, formatHeader, formatInfo, formatList } from '../../sif/siftool-text.js';
import { type FlagSpec, type ParsedFlags, UsageError, intFlag, parseFlags, stringFlag, withUsage } from './sif-flags.js';
import { RuntimeError } from '../../errors.js';

/** siftool's --datatype numbers, 1..11, in the order of the SIF data type values. */
const dataTypeByNumber = [0, ...Object.values(DataType)];

const usage = `sif <command> [flags] ...

Commands:
  header  <sif_path>                     display the global header
  list    <sif_path>                     list the data object descriptors
  info    <id> <sif_path>                display one descriptor
  dump    <id> <sif_path>                write an object's data to stdout
  new     <sif_path>                     create an empty SIF
  add     [flags] <sif_path> <object>    add a data object
  del     <id> <sif_path>                delete a data object
  setprim <id> <sif_path>                make a partition the primary system partition

add flags:
  --datatype N    1-Deffile 2-EnvVar 3-Labels 4-Partition 5-Signature 6-GenericJSON 7-Generic
                  8-CryptoMessage 9-SBOM 10-OCI.RootIndex 11-OCI.Blob (required)
  --parttype N    1-System 2-PrimSys 3-Data 4-Overlay (partitions)
  --partfs N      1-Squash 2-Ext3 3-ImmuObj 4-Raw (partitions)
  --partarch N    1-386 2-amd64 3-arm 4-arm64 5-ppc64 6-ppc64le 7-mips 8-mipsle 9-mips64 10-mips64le
                  11-s390x 12-riscv64 (partitions)
  --signhash N    1-SHA256 2-SHA384 3-SHA512 4-BLAKE2s_256 5-BLAKE2b_256 (signatures)
  --signentity H  40 hex digits of the signing key's fingerprint (signatures)
  --sbomformat F  ${SBOM_FORMAT_NAMES.slice(1).join(', ')} (SBOMs)
  --groupid N     object group (default 0: no group)
  --link N        id of the linked object
  --alignment N   data alignment (default 4096 for partitions, none otherwise)
  --filename S    object name (default: the input file's name)`;

const addFlagSpec: Record<string, FlagSpec> = Object.fromEntries(
  ['datatype', 'parttype', 'partfs', 'partarch', 'signhash', 'signentity', 'sbomformat', 'groupid', 'link', 'alignment', 'filename'].map(
    name => [name, {}],
  ),
);

function expectArgs(args: string[], n: number, what: string): void {
  if (args.length !== n) throw new UsageError(`requires exactly ${n} arg(s): ${what}`);
}

function parseId(s: string): number {
  if (!/^\d+$/.test(s) || Number(s) > 0xffffffff) throw new UsageError(`invalid object id "${s}"`);
  return Number(s);
}

function addInput(flags: ParsedFlags, objectPath: string): ObjectInput {
  const dataType = dataTypeByNumber[intFlag(flags, 'datatype') ?? 0];
  if (!dataType) throw new RuntimeError('--datatype flag is required with a valid range', { op: 'sif add' });
  const groupId = intFlag(flags, 'groupid') ?? 0;
  const input: ObjectInput = {
    dataType,
    data: { path: objectPath },
    groupId,
    name: stringFlag(flags, 'filename') ?? path.basename(objectPath),
  };
  const link = intFlag(flags, 'link');
  if (link !== undefined) input.linkedId = link;
  const alignment = intFlag(flags, 'alignment');
  if (alignment !== undefined) input.alignment = alignment;
  if (dataType === DataType.Partition) {
    const partType = intFlag(flags, 'parttype') ?? 0;
    const fsType = intFlag(flags, 'partfs') ?? 0;
    const arch = intFlag(flags, 'partarch') ?? 0;
    if (!partType || !fsType || !arch) {
      throw new RuntimeError('with partition datatype, --partfs, --parttype and --partarch must be passed', { op: 'sif add' });
    }
    input.partition = { fsType, partType, arch: ARCHES[arch] ?? 'unknown' };
  } else if (dataType === DataType.Signature) {
    const entity = stringFlag(flags, 'signentity') ?? '';
    if (!/^([0-9a-fA-F]{2})*$/.test(entity)) throw new RuntimeError('failed to decode signing entity fingerprint', { op: 'sif add' });
    if (entity.length !== 40)
      throw new RuntimeError(`invalid signing entity fingerprint length: got ${entity.length / 2}, want 20`, { op: 'sif add' });
    const hashType = intFlag(flags, 'signhash') ?? 0;
    if (hashType < 1 || hashType > 5) throw new RuntimeError(`invalid hash type: ${hashType}`, { op: 'sif add' });
    input.signature = { hashType, entity: Buffer.from(entity, 'hex') };
  } else if (dataType === DataType.SBOM) {
    const format = stringFlag(flags, 'sbomformat');
    if (!format) throw new RuntimeError('with SBOM datatype, --sbomformat must be passed', { op: 'sif add' });
    const n = SBOM_FORMAT_NAMES.indexOf(format === 'github' ? 'github-json' : format);
    if (n < 1) throw new RuntimeError(`invalid SBOM format: ${format}`, { op: 'sif add' });
    input.sbomFormat = n;
  }
  return input;
}

function withImage<T>(file: string, writable: boolean, fn: (img: SifImage) => T): T {
  const img = SifImage.open(file, { writable });
  try {
    return fn(img);
  } finally {
    img.close();
  }
}

function runSif(argv: string[]): number {
  const [sub, ...rest] = argv;
  const out = (s: string): void => {
    process.stdout.write(s);
  };
  const flags = parseFlags(rest, sub === 'add' ? addFlagSpec : {});
  const { args } = flags;
  switch (sub) {
    case 'header':
      expectArgs(args, 1, '<sif_path>');
      withImage(args[0]!, false, img => out(formatHeader(img.header)));
      return 0;
    case 'list':
      expectArgs(args, 1, '<sif_path>');
      withImage(args[0]!, false, img => out(formatList(img.descriptors())));
      return 0;
    case 'info':
      expectArgs(args, 2, '<id> <sif_path>');
      withImage(args[1]!, false, img => out(formatInfo(img.descriptor(parseId(args[0]!)))));
      return 0;
    case 'dump':
      expectArgs(args, 2, '<id> <sif_path>');
      withImage(args[1]!, false, img => img.forEachObjectChunk(parseId(args[0]!), c => fs.writeSync(1, c)));
      return 0;
    case 'new':
      expectArgs(args, 1, '<sif_path>');
      SifImage.create(args[0]!, []).close();
      return 0;
    case 'add': {
      expectArgs(args, 2, '<sif_path> <object_path>');
      const input = addInput(flags, args[1]!);
      if (!fs.existsSync(args[1]!))
        throw new RuntimeError(`open ${args[1]}: no such file or directory`, { op: 'open', path: args[1], errno: 'ENOENT' });
      withImage(args[0]!, true, img => img.addObject(input));
      return 0;
    }
    case 'del':
      expectArgs(args, 2, '<id> <sif_path>');
      withImage(args[1]!, true, img => img.deleteObject(parseId(args[0]!)));
      return 0;
    case 'setprim':
      expectArgs(args, 2, '<id> <sif_path>');
      withImage(args[1]!, true, img => img.setPrimaryPartition(parseId(args[0]!)));
      return 0;
    default:
      throw new UsageError(sub === undefined ? 'missing command' : `unknown command "${sub}"`);
  }
}

export const sifCommand: SingularityCommand = {
  summary: 'Manipulate Singularity Image Format (SIF) images',
  usage,
  run: argv => withUsage(usage, () => runSif(argv)),
};
