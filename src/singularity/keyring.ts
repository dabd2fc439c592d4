// The user's local PGP keyrings, where Singularity keeps them: pgp-public and pgp-secret (binary OpenPGP key
// blocks, one after another) in $SINGULARITY_SYPGPDIR (or $APPTAINER_SYPGPDIR), by default ~/.singularity/sypgp.
// The directory is the user's own (0700, checked before use); files are written whole and renamed into place.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type KeyBlock, keyBlocks, publicBlock } from '../sif/pgp-keys.js';
import { readKeyring, type PgpPublicKey } from '../sif/pgp.js';
import { askNumber } from './prompt.js';
import { RuntimeError } from '../errors.js';

export type KeyringKind = 'public' | 'secret';

export function keyringDir(): string {
  return process.env['SINGULARITY_SYPGPDIR'] || process.env['APPTAINER_SYPGPDIR'] || path.join(os.homedir(), '.singularity', 'sypgp');
}

export function keyringPath(kind: KeyringKind): string {
  return path.join(keyringDir(), kind === 'public' ? 'pgp-public' : 'pgp-secret');
}

/** The keyring directory, made 0700 when missing; refused when someone else could change what is in it. */
function ownDir(): string {
  const dir = keyringDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.geteuid?.() || (st.mode & 0o022) !== 0) {
    throw new RuntimeError(`the keyring directory ${dir} must be a directory of yours that only you can write to`, {
      op: 'keyring',
      path: dir,
    });
  }
  return dir;
}

function readFile(kind: KeyringKind): Buffer {
  try {
    return fs.readFileSync(keyringPath(kind));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw new RuntimeError(`cannot read the ${kind} keyring ${keyringPath(kind)}: ${(e as Error).message}`, {
      op: 'read',
      path: keyringPath(kind),
      cause: e,
    });
  }
}

export function loadKeyring(kind: KeyringKind): KeyBlock[] {
  return keyBlocks(readFile(kind));
}

/** The public keys the verify command trusts. */
export function trustedKeys(): PgpPublicKey[] {
  const data = readFile('public');
  return data.length ? readKeyring(data) : [];
}

function store(kind: KeyringKind, blocks: Buffer[]): void {
  const dir = ownDir();
  const file = keyringPath(kind);
  const tmp = fs.mkdtempSync(path.join(dir, '.update-'));
  try {
    fs.writeFileSync(path.join(tmp, 'keyring'), Buffer.concat(blocks), { mode: 0o600 });
    fs.renameSync(path.join(tmp, 'keyring'), file);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export const hex = (fingerprint: Buffer): string => fingerprint.toString('hex').toUpperCase();

/** Adds keys: a secret key goes to pgp-secret and its public form to pgp-public. Refuses one already there. */
export function addKeys(data: Buffer, from = 'the input'): KeyBlock[] {
  let blocks: KeyBlock[];
  try {
    blocks = keyBlocks(data);
  } catch (e) {
    throw new RuntimeError(`${from} is not OpenPGP key data: ${(e as Error).message}`, { op: 'key import', cause: e });
  }
  if (blocks.length === 0) throw new RuntimeError(`no OpenPGP key found in ${from}`, { op: 'key import' });
  const pub = loadKeyring('public');
  const sec = loadKeyring('secret');
  for (const b of blocks) {
    const there = (b.secret ? sec : pub).find(k => k.fingerprint.equals(b.fingerprint));
    if (there)
      throw new RuntimeError(
        `the key with fingerprint ${hex(b.fingerprint)} already belongs to the ${b.secret ? 'secret' : 'public'} keyring`,
        { op: 'key import' },
      );
  }
  const secret = blocks.filter(b => b.secret);
  if (secret.length) store('secret', [...sec.map(k => k.raw), ...secret.map(b => b.raw)]);
  const newPublic = blocks.filter(b => !pub.some(k => k.fingerprint.equals(b.fingerprint)));
  store('public', [...pub.map(k => k.raw), ...newPublic.map(b => (b.secret ? publicBlock(b) : b.raw))]);
  return blocks;
}

/** Removes the key with this fingerprint from one keyring; false when it has none. */
export function removeKey(kind: KeyringKind, fingerprint: string): boolean {
  const blocks = loadKeyring(kind);
  const kept = blocks.filter(b => hex(b.fingerprint) !== fingerprint.toUpperCase().replace(/\s/g, ''));
  if (kept.length === blocks.length) return false;
  store(
    kind,
    kept.map(b => b.raw),
  );
  return true;
}

/** Go's time.Time String() in UTC, as Singularity prints a key's creation time. */
function goTime(seconds: number): string {
  return `${new Date(seconds * 1000)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '')} +0000 UTC`;
}

/** One entry of `key list`, laid out as Singularity's tabwriter lays it out. */
export function describeKey(index: number, b: KeyBlock): string {
  const rows: [string, string][] = [
    ...b.userIds.map(u => ['User:', u] as [string, string]),
    ['Creation time:', goTime(b.created)],
    ['Fingerprint:', hex(b.fingerprint)],
    ['Length (in bits):', String(b.bits)],
  ];
  const first = `${index})`.padEnd(Math.max(2, String(index).length + 1) + 2);
  return `${rows.map(([k, v], i) => `${i === 0 ? first : ' '.repeat(first.length)}${k.padEnd(19)}${v}`).join('\n')}\n\n`;
}

/** The key to use: the only one, the one at `index`, or the one the user picks from the listing. */
export function chooseKey(blocks: KeyBlock[], kind: KeyringKind, index: number | undefined, what: string): KeyBlock {
  if (blocks.length === 0)
    throw new RuntimeError(
      `the ${kind} keyring ${keyringPath(kind)} has no keys: create one with "singularity key newpair" or import one with "singularity key import"`,
      { op: 'key', path: keyringPath(kind) },
    );
  if (index !== undefined) {
    const b = blocks[index];
    if (!b) throw new RuntimeError(`there is no key #${index} in the ${kind} keyring (it has ${blocks.length})`, { op: 'key' });
    return b;
  }
  if (blocks.length === 1) return blocks[0]!;
  process.stdout.write(blocks.map((b, i) => describeKey(i, b)).join(''));
  return blocks[askNumber(0, blocks.length - 1, `Enter # of ${kind === 'public' ? 'public' : 'private'} key to ${what} : `)]!;
}
