// Human-readable views of SIF headers and descriptors, worded and aligned exactly as the reference siftool
// prints them (`sif header`, `sif list`, `sif info`), so scripts that parse its output keep working.
import { DataType, type Descriptor, type SifHeader, archName } from './layout.js';

const dataTypeNames: Record<number, string> = {
  [DataType.Deffile]: 'Def.FILE',
  [DataType.EnvVar]: 'Env.Vars',
  [DataType.Labels]: 'JSON.Labels',
  [DataType.Partition]: 'FS',
  [DataType.Signature]: 'Signature',
  [DataType.GenericJSON]: 'JSON.Generic',
  [DataType.Generic]: 'Generic/Raw',
  [DataType.CryptoMessage]: 'Cryptographic Message',
  [DataType.SBOM]: 'SBOM',
  [DataType.OCIRootIndex]: 'OCI.RootIndex',
  [DataType.OCIBlob]: 'OCI.Blob',
};
const fsTypeNames = ['', 'Squashfs', 'Ext3', 'Archive', 'Raw', 'Encrypted squashfs'];
const partTypeNames = ['', 'System', '*System', 'Data', 'Overlay'];
/** Go's crypto.Hash names for the SIF hash type numbers. */
const hashTypeNames = ['', 'SHA-256', 'SHA-384', 'SHA-512', 'BLAKE2s-256', 'BLAKE2b-256'];
const formatTypeNames = ['', 'OpenPGP', 'PEM'];
export const SBOM_FORMAT_NAMES = [
  '',
  'cyclonedx-json',
  'cyclonedx-xml',
  'github-json',
  'spdx-json',
  'spdx-rdf',
  'spdx-tag-value',
  'spdx-yaml',
  'syft-json',
];

export const dataTypeName = (t: number): string => dataTypeNames[t] ?? 'Unknown';
export const fsTypeName = (t: number): string => fsTypeNames[t] || 'Unknown';
export const partTypeName = (t: number): string => partTypeNames[t] || 'Unknown';
export const hashTypeName = (t: number): string => hashTypeNames[t] || 'Unknown';
export const formatTypeName = (t: number): string => formatTypeNames[t] || 'Unknown';
export const messageTypeName = (t: number): string => (t === 0x100 ? 'Clear Signature' : t === 0x200 ? 'RSA-OAEP' : 'Unknown');
export const sbomFormatName = (t: number): string => SBOM_FORMAT_NAMES[t] || 'unknown';

/** Go's zero time.Time: siftool leaves such timestamps out. */
const GO_ZERO_TIME = -62135596800;

/** A unix time the way Go prints time.Time.UTC() with %v (a time past JavaScript's dates as its raw seconds). */
export function goTime(seconds: number): string {
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) return `${seconds} seconds since 1970 UTC`;
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} +0000 UTC`;
}

/** Sizes as siftool shows them: "707 B", "27 KiB" (rounded to whole units). */
export function readableSize(size: number): string {
  if (size > -1024 && size < 1024) return `${size} B`;
  const units = 'KMGTPE';
  let div = 1024;
  let exp = 0;
  for (let n = Math.trunc(size / 1024); n <= -1024 || n >= 1024; n = Math.trunc(n / 1024)) {
    div *= 1024;
    exp++;
  }
  return `${Math.round(size / div)} ${units[exp]}iB`;
}

/** Lays out rows of cells like Go's text/tabwriter: every column but the last padded to its widest cell. */
function tabulate(rows: string[][], padding: number): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.slice(0, -1).forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length + padding);
    });
  }
  return rows
    .map(row =>
      row
        .map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]!) : cell))
        .join('')
        .concat('\n'),
    )
    .join('');
}

const uuidString = (id: Buffer): string => {
  const h = id.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

export function formatHeader(h: SifHeader): string {
  const rows: string[][] = [];
  if (h.launchScript !== '') rows.push(['Launch Script:', h.launchScript.replace(/\n$/, '')]);
  rows.push(['Version:', h.version]);
  if (archName(h.arch) !== 'unknown') rows.push(['Primary Architecture:', archName(h.arch)]);
  if (!h.id.equals(Buffer.alloc(16))) rows.push(['ID:', uuidString(h.id)]);
  if (h.createdAt !== GO_ZERO_TIME) rows.push(['Created At:', goTime(h.createdAt)]);
  if (h.modifiedAt !== GO_ZERO_TIME) rows.push(['Modified At:', goTime(h.modifiedAt)]);
  rows.push(
    ['Descriptors Free:', String(h.descriptorsFree)],
    ['Descriptors Total:', String(h.descriptorsTotal)],
    ['Descriptors Offset:', String(h.descriptorsOffset)],
    ['Descriptors Size:', readableSize(h.descriptorsSize)],
    ['Data Offset:', String(h.dataOffset)],
    ['Data Size:', readableSize(h.dataSize)],
  );
  return tabulate(rows, 1);
}

/** The type column of `sif list`: the data type plus its Extra summary. */
export function typeSummary(d: Descriptor): string {
  const name = dataTypeName(d.dataType);
  if (d.partition) {
    return `${name} (${fsTypeName(d.partition.fsType)}/${partTypeName(d.partition.partType)}/${d.partition.arch})`;
  }
  if (d.signature) return `${name} (${hashTypeName(d.signature.hashType)})`;
  if (d.cryptoMessage) {
    return `${name} (${formatTypeName(d.cryptoMessage.formatType)}/${messageTypeName(d.cryptoMessage.messageType)})`;
  }
  if (d.sbomFormat !== undefined) return `${name} (${sbomFormatName(d.sbomFormat)})`;
  return name;
}

const RULE = '-'.repeat(78);

export function formatList(descriptors: Descriptor[]): string {
  const lines = [
    RULE,
    `${'ID'.padEnd(4)} ${'|GROUP'.padEnd(8)} ${'|LINK'.padEnd(8)} ${'|SIF POSITION (start-end)'.padEnd(26)} |TYPE`,
    RULE,
  ];
  for (const d of descriptors) {
    const group = d.groupId === 0 ? 'NONE' : String(d.groupId);
    const link =
      d.linkedId === 0 ? 'NONE'.padEnd(7) : d.linkedToGroup ? `${String(d.linkedId).padEnd(3)} (G)` : String(d.linkedId).padEnd(7);
    const position = `|${d.offset}-${d.offset + d.size} `;
    lines.push(`${String(d.id).padEnd(4)} |${group.padEnd(7)} |${link} ${position.padEnd(26)} |${typeSummary(d)}`);
  }
  return lines.map(l => `${l}\n`).join('');
}

export function formatInfo(d: Descriptor): string {
  const rows: string[][] = [
    ['', 'Data Type:', dataTypeName(d.dataType)],
    ['', 'ID:', String(d.id)],
    ['', 'Group ID:', d.groupId === 0 ? 'NONE' : String(d.groupId)],
    ['', 'Linked ID:', d.linkedId === 0 ? 'NONE' : d.linkedToGroup ? `${d.linkedId} (G)` : String(d.linkedId)],
    ['', 'Offset:', String(d.offset)],
    ['', 'Size:', String(d.size)],
  ];
  if (d.createdAt !== GO_ZERO_TIME) rows.push(['', 'Created At:', goTime(d.createdAt)]);
  if (d.modifiedAt !== GO_ZERO_TIME) rows.push(['', 'Modified At:', goTime(d.modifiedAt)]);
  if (d.name !== '') rows.push(['', 'Name:', d.name]);
  if (d.partition) {
    rows.push(
      ['', 'Filesystem Type:', fsTypeName(d.partition.fsType)],
      ['', 'Partition Type:', partTypeName(d.partition.partType)],
      ['', 'Architecture:', d.partition.arch],
    );
  } else if (d.signature) {
    rows.push(['', 'Hash Type:', hashTypeName(d.signature.hashType)]);
    const fingerprint = d.signature.entity.subarray(0, 20);
    if (!fingerprint.equals(Buffer.alloc(20))) rows.push(['', 'Entity:', fingerprint.toString('hex').toUpperCase()]);
  } else if (d.cryptoMessage) {
    rows.push(
      ['', 'Format Type:', formatTypeName(d.cryptoMessage.formatType)],
      ['', 'Message Type:', messageTypeName(d.cryptoMessage.messageType)],
    );
  } else if (d.sbomFormat !== undefined) {
    rows.push(['', 'Format:', sbomFormatName(d.sbomFormat)]);
  } else if (d.ociDigest !== undefined) {
    rows.push(['', 'Digest:', d.ociDigest]);
  }
  return tabulate(rows, 2);
}
