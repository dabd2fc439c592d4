// SIF's on-disk layout as sylabs/sif v2 defines it: sizes, magic, the data/fs/partition type codes, arch codes,
// and the header and descriptor structures (decoded), with the inputs and options the writer takes.
import { RuntimeError } from '../errors.js';

export const HEADER_SIZE = 128;
export const DESCRIPTOR_SIZE = 585;
export const EXTRA_SIZE = 384;
export const NAME_SIZE = 128;
export const LAUNCH_SCRIPT_SIZE = 32;
export const DEFAULT_DESCRIPTORS_OFFSET = 4096;
export const DEFAULT_DESCRIPTORS_TOTAL = 48;
export const DEFAULT_PARTITION_ALIGNMENT = 4096;
export const SIF_MAGIC = 'SIF_MAGIC';
export const SIF_VERSION = '01';
export const DEFAULT_LAUNCH_SCRIPT = '#!/usr/bin/env run-singularity\n';
/** GroupID/LinkedID values carry this bit when they name a group rather than an object. */
export const GROUP_MASK = 0xf0000000;
/** Go's zero time.Time as unix seconds: what deterministic images store for every timestamp. */
export const ZERO_TIME = -62135596800;

export const DataType = {
  Deffile: 0x4001,
  EnvVar: 0x4002,
  Labels: 0x4003,
  Partition: 0x4004,
  Signature: 0x4005,
  GenericJSON: 0x4006,
  Generic: 0x4007,
  CryptoMessage: 0x4008,
  SBOM: 0x4009,
  OCIRootIndex: 0x400a,
  OCIBlob: 0x400b,
} as const;

export const FsType = { Squashfs: 1, Ext3: 2, ImmuObj: 3, Raw: 4, EncryptedSquashfs: 5 } as const;
export const PartType = { System: 1, PrimSys: 2, Data: 3, Overlay: 4 } as const;
export const HashType = { SHA256: 1, SHA384: 2, SHA512: 3, BLAKE2S: 4, BLAKE2B: 5 } as const;
export const FormatType = { OpenPGP: 1, PEM: 2 } as const;
export const MessageType = { ClearSignature: 0x100, RSAOAEP: 0x200 } as const;
export const SBOMFormat = {
  CycloneDXJSON: 1,
  CycloneDXXML: 2,
  GitHubJSON: 3,
  SPDXJSON: 4,
  SPDXRDF: 5,
  SPDXTagValue: 6,
  SPDXYAML: 7,
  SyftJSON: 8,
} as const;

/** Header/partition arch codes, indexed by their number; names are Go's GOARCH values. */
export const ARCHES = [
  'unknown',
  '386',
  'amd64',
  'arm',
  'arm64',
  'ppc64',
  'ppc64le',
  'mips',
  'mipsle',
  'mips64',
  'mips64le',
  's390x',
  'riscv64',
  'loong64',
] as const;

/** "02" -> "amd64"; unrecognised codes come back as "unknown". */
export function archName(code: string): string {
  const n = /^\d\d$/.test(code) ? Number(code) : -1;
  return ARCHES[n] ?? 'unknown';
}

/** "amd64" -> "02"; also accepts node's process.arch spellings (x64, ia32). */
export function archCode(name: string): string {
  const goName = name === 'x64' ? 'amd64' : name === 'ia32' ? '386' : name === 'loong64' ? 'loong64' : name;
  const n = ARCHES.indexOf(goName as (typeof ARCHES)[number]);
  if (n < 0) throw new RuntimeError(`unknown SIF architecture "${name}"`, { op: 'sif' });
  return String(n).padStart(2, '0');
}

/** The host's architecture as a Go name, for partitions added without an explicit arch. */
export function hostArch(): string {
  return archName(archCode(process.arch));
}

export interface SifHeader {
  launchScript: string;
  magic: string;
  version: string;
  /** Two-digit ASCII code, "00" when no primary partition is set. */
  arch: string;
  /** 16 raw UUID bytes. */
  id: Buffer;
  createdAt: number;
  modifiedAt: number;
  descriptorsFree: number;
  descriptorsTotal: number;
  descriptorsOffset: number;
  descriptorsSize: number;
  dataOffset: number;
  dataSize: number;
}

export interface PartitionInfo {
  fsType: number;
  partType: number;
  /** Go arch name (amd64, arm64, ...). */
  arch: string;
}

export interface SignatureInfo {
  hashType: number;
  /** 256 bytes; the first 20 are a PGP v4 fingerprint, all zero for DSSE. */
  entity: Buffer;
}

export interface CryptoMessageInfo {
  formatType: number;
  messageType: number;
}

export interface Descriptor {
  dataType: number;
  used: boolean;
  id: number;
  /** Group number without the mask; 0 = not in a group. */
  groupId: number;
  /** Linked object id (0 = none), or linked group number when linkedToGroup. */
  linkedId: number;
  linkedToGroup: boolean;
  offset: number;
  size: number;
  sizeWithPadding: number;
  createdAt: number;
  modifiedAt: number;
  uid: number;
  gid: number;
  name: string;
  /** The raw 384 Extra bytes; the typed views below decode them. */
  extra: Buffer;
  partition?: PartitionInfo;
  signature?: SignatureInfo;
  cryptoMessage?: CryptoMessageInfo;
  sbomFormat?: number;
  /** OCIRootIndex/OCIBlob digest, "sha256:<hex>". */
  ociDigest?: string;
}

export type ObjectData = Buffer | { path: string };

export interface ObjectInput {
  dataType: number;
  data: ObjectData;
  name?: string;
  /** Default 1; 0 puts the object in no group. */
  groupId?: number;
  /** Link to another object by id. */
  linkedId?: number;
  /** Link to a group instead (mutually exclusive with linkedId). */
  linkedGroup?: number;
  /** Byte alignment of the data offset; default 4096 for partitions, 1 otherwise. */
  alignment?: number;
  partition?: { fsType: number; partType: number; arch?: string };
  signature?: { hashType: number; entity?: Buffer };
  cryptoMessage?: CryptoMessageInfo;
  sbomFormat?: number;
  /** OCIRootIndex/OCIBlob digest; computed from the data (sha256) when omitted. */
  ociDigest?: string;
  /** Raw Extra bytes for types whose layout the caller builds itself; overrides the typed fields. */
  extra?: Buffer;
  /** Object timestamp; defaults to the image operation's time. */
  time?: number;
}

export interface CreateOptions {
  launchScript?: string;
  /** 16 bytes; a random v4 UUID by default, all zero when deterministic. */
  id?: Buffer;
  /** Image timestamps in unix seconds; now by default, Go's zero time when deterministic. */
  time?: number;
  deterministic?: boolean;
  descriptorsTotal?: number;
  descriptorsOffset?: number;
}

export interface ModifyOptions {
  /** Timestamp for ModifiedAt (and new objects' CreatedAt); now by default. */
  time?: number;
}

export interface DeleteOptions extends ModifyOptions {
  /** Overwrite the object's bytes with zeros. */
  zero?: boolean;
  /** Truncate the file to the end of the furthest remaining object. */
  compact?: boolean;
}
