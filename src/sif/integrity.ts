/**
 * SIF signatures as sylabs/sif v2's pkg/integrity makes them: the image-metadata JSON that covers the header, the
 * descriptors and the data of an object group; DSSE envelopes signed with PEM keys (Ed25519, ECDSA, RSA);
 * verification of DSSE, PGP clear-signed and legacy (SIFHASH) signatures.
 *
 *   signImage(img, { keys: [privateKey] })                        // every object group
 *   signImage(img, { keys, groupIds: [1] }) / { objectIds: [2] } / { all: true }
 *   verifyImage(img, { keys: [publicKey] })                       // throws IntegrityError on any failure
 *   verifyImage(img, { pgpKeys: readKeyring(...), legacy: true })
 */
import * as crypto from 'node:crypto';
import { DataType, type Descriptor, HashType, type SifImage } from './index.js';
import { type PgpPublicKey, verifyClearSigned } from './pgp.js';
import { clearSign } from './pgp-keys.js';

export const DSSE_PAYLOAD_TYPE = 'application/vnd.sylabs.sif-metadata+json';

export class IntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IntegrityError';
  }
}

const DIGEST_ALGOS: Record<string, string> = {
  sha224: 'sha224',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
  sha512_224: 'sha512-224',
  sha512_256: 'sha512-256',
};

/** SIF descriptor hash types to node hash names (BLAKE2s-256 has no node equivalent). */
const SIF_HASHES: Record<number, string> = {
  [HashType.SHA256]: 'sha256',
  [HashType.SHA384]: 'sha384',
  [HashType.SHA512]: 'sha512',
  [HashType.BLAKE2B]: 'blake2b512',
};

export function headerDigest(img: SifImage, algo = 'sha256'): string {
  const raw = img.readAt(0, 64);
  const covered = Buffer.concat([raw.subarray(0, 32), raw.subarray(32, 42), raw.subarray(42, 45), raw.subarray(48, 64)]);
  return `${algo}:${crypto.createHash(DIGEST_ALGOS[algo]!).update(covered).digest('hex')}`;
}

/** Digest of the descriptor fields that must not change, with the id made relative to the group's first id. */
export function descriptorDigest(d: Descriptor, minId: number, algo = 'sha256'): string {
  const b = Buffer.alloc(557);
  b.writeInt32LE(d.dataType, 0);
  b[4] = d.used ? 1 : 0;
  b.writeUInt32LE(d.id - minId, 5);
  b.writeUInt32LE(d.linkedToGroup ? (d.linkedId | 0xf0000000) >>> 0 : d.linkedId, 9);
  b.writeBigInt64LE(BigInt(d.size), 13);
  b.writeBigInt64LE(BigInt(d.createdAt), 21);
  b.writeBigInt64LE(BigInt(d.uid), 29);
  b.writeBigInt64LE(BigInt(d.gid), 37);
  Buffer.from(d.name, 'utf8').copy(b, 45, 0, 128);
  d.extra.copy(b, 173, 0, 384);
  return `${algo}:${crypto.createHash(DIGEST_ALGOS[algo]!).update(b).digest('hex')}`;
}

export function objectDigest(img: SifImage, id: number, algo = 'sha256'): string {
  const h = crypto.createHash(DIGEST_ALGOS[algo]!);
  img.forEachObjectChunk(id, c => h.update(c));
  return `${algo}:${h.digest('hex')}`;
}

/** The smallest object id in d's group (or d's own id when ungrouped): signatures number objects from it. */
function minIdOf(img: SifImage, d: Descriptor): number {
  if (d.groupId === 0) return d.id;
  return Math.min(...img.group(d.groupId).map(x => x.id));
}

interface MetadataObject {
  relativeId: number;
  descriptorDigest: string;
  objectDigest: string;
}
interface ImageMetadata {
  version: number;
  header: { digest: string };
  objects: MetadataObject[];
}

/** The signed JSON for objects (all from one group), compact and in Go's field order. */
export function imageMetadata(img: SifImage, objects: Descriptor[], algo = 'sha256'): string {
  const minId = minIdOf(img, objects[0]!);
  const meta: ImageMetadata = {
    version: 1,
    header: { digest: headerDigest(img, algo) },
    objects: objects.map(d => ({
      relativeId: d.id - minId,
      descriptorDigest: descriptorDigest(d, minId, algo),
      objectDigest: objectDigest(img, d.id, algo),
    })),
  };
  return JSON.stringify(meta);
}

function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

function sshString(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

function sshMpint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const trimmed = b.subarray(i);
  return sshString(trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

const SSH_CURVES: Record<string, string> = { 'P-256': 'nistp256', 'P-384': 'nistp384', 'P-521': 'nistp521' };

/** OpenSSH-style key id: SHA256 over the SSH wire-format public key, unpadded base64. */
export function keyId(key: crypto.KeyObject): string {
  const pub = key.type === 'private' ? crypto.createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' });
  const f = (s?: string): Buffer => Buffer.from(s ?? '', 'base64url');
  let wire: Buffer;
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') wire = Buffer.concat([sshString('ssh-ed25519'), sshString(f(jwk.x))]);
  else if (jwk.kty === 'RSA') wire = Buffer.concat([sshString('ssh-rsa'), sshMpint(f(jwk.e)), sshMpint(f(jwk.n))]);
  else if (jwk.kty === 'EC' && SSH_CURVES[jwk.crv!]) {
    const curve = SSH_CURVES[jwk.crv!]!;
    const point = Buffer.concat([Buffer.from([4]), f(jwk.x), f(jwk.y)]);
    wire = Buffer.concat([sshString(`ecdsa-sha2-${curve}`), sshString(curve), sshString(point)]);
  } else {
    throw new IntegrityError(`unsupported key type ${jwk.kty}${jwk.crv ? ` ${jwk.crv}` : ''}: use Ed25519, ECDSA or RSA`);
  }
  return `SHA256:${crypto.createHash('sha256').update(wire).digest('base64').replace(/=+$/, '')}`;
}

/** Ed25519 signs the message itself; ECDSA (DER) and RSA (PKCS#1 v1.5) sign its SHA-256, as sigstore does. */
function hashFor(key: crypto.KeyObject): string | null {
  return key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
}

export interface DsseEnvelope {
  payloadType: string;
  payload: string;
  signatures: Array<{ keyid: string; sig: string }>;
}

export function dsseSign(payload: Buffer, keys: crypto.KeyObject[]): string {
  const message = pae(DSSE_PAYLOAD_TYPE, payload);
  const envelope: DsseEnvelope = {
    payloadType: DSSE_PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: keys.map(k => ({ keyid: keyId(k), sig: crypto.sign(hashFor(k), message, k).toString('base64') })),
  };
  return JSON.stringify(envelope);
}

function parseDsse(data: Buffer): DsseEnvelope | undefined {
  try {
    const env = JSON.parse(data.toString('utf8')) as DsseEnvelope;
    return env && env.payloadType === DSSE_PAYLOAD_TYPE && Array.isArray(env.signatures) ? env : undefined;
  } catch {
    return undefined;
  }
}

/** Returns the payload when at least one signature verifies with one of keys; throws otherwise. */
export function dsseVerify(env: DsseEnvelope, keys: crypto.KeyObject[]): { payload: Buffer; keyIds: string[] } {
  if (keys.length === 0) throw new IntegrityError('the signature is a DSSE envelope: give the public key with --key');
  const payload = Buffer.from(env.payload, 'base64');
  const message = pae(env.payloadType, payload);
  const keyIds: string[] = [];
  for (const s of env.signatures) {
    const sig = Buffer.from(s.sig, 'base64');
    for (const k of keys) {
      const pub = k.type === 'private' ? crypto.createPublicKey(k) : k;
      let ok = false;
      try {
        ok = crypto.verify(hashFor(pub), message, pub, sig);
      } catch {
        ok = false;
      }
      if (ok) keyIds.push(keyId(pub));
    }
  }
  if (keyIds.length === 0) {
    const ids = env.signatures.map(s => s.keyid).join(', ');
    throw new IntegrityError(`no given key verifies the DSSE signature (signed by ${ids})`);
  }
  return { payload, keyIds };
}

const isSignature = (d: Descriptor): boolean => d.dataType === DataType.Signature;

function isLegacyContent(data: Buffer): boolean {
  return data.includes('SIFHASH:');
}

/** A PGP secret key to sign with: the signature is a clear-signed message naming its fingerprint. */
export interface PgpSigner {
  key: crypto.KeyObject;
  /** OpenPGP public key algorithm id (1 RSA, 19 ECDSA, 22 EdDSA). */
  algo: number;
  fingerprint: Buffer;
}

export interface SignOptions {
  /** DSSE signing keys; or `pgp` instead. */
  keys: crypto.KeyObject[];
  pgp?: PgpSigner;
  /** Sign these groups (default: every group, when no objectIds/all either). */
  groupIds?: number[];
  /** Sign these objects individually. */
  objectIds?: number[];
  /** Sign every non-signature object individually. */
  all?: boolean;
  digest?: string;
  time?: number;
}

/** Adds one DSSE (or PGP clear-signed) signature object per target; returns the new descriptors. */
export function signImage(img: SifImage, opts: SignOptions): Descriptor[] {
  if (opts.keys.length === 0 && !opts.pgp) throw new IntegrityError('no signing key given');
  const targets: Array<{ objects: Descriptor[]; link: { linkedGroup: number } | { linkedId: number } }> = [];
  const signable = img.descriptors().filter(d => !isSignature(d));
  if (opts.all || opts.objectIds?.length) {
    const ids = opts.all ? signable.map(d => d.id) : opts.objectIds!;
    for (const id of ids) {
      const d = img.descriptor(id);
      if (isSignature(d)) throw new IntegrityError(`object ${id} is a signature and cannot be signed`);
      targets.push({ objects: [d], link: { linkedId: id } });
    }
  } else {
    const groups = opts.groupIds?.length ? opts.groupIds : img.groupIds();
    for (const g of groups) {
      const objects = img.group(g).filter(d => !isSignature(d));
      if (objects.length === 0) throw new IntegrityError(`object group ${g} does not exist`);
      targets.push({ objects, link: { linkedGroup: g } });
    }
  }
  if (targets.length === 0) throw new IntegrityError('the image has no objects to sign');
  const deterministic = img.header.id.equals(Buffer.alloc(16)) && img.header.createdAt === -62135596800;
  const time = opts.time ?? (deterministic ? -62135596800 : undefined);
  const pgp = opts.pgp;
  const payloads = targets.map(t => {
    const metadata = imageMetadata(img, t.objects, opts.digest);
    return pgp ? clearSign(metadata, pgp.key, pgp.algo, pgp.fingerprint) : dsseSign(Buffer.from(metadata), opts.keys);
  });
  return targets.map((t, i) =>
    img.addObject(
      {
        dataType: DataType.Signature,
        data: Buffer.from(payloads[i]!),
        groupId: 0,
        ...t.link,
        // A PGP signature names its key's fingerprint; a DSSE envelope names its keys itself.
        signature: { hashType: HashType.SHA256, entity: pgp?.fingerprint },
        time,
      },
      { time },
    ),
  );
}

export interface VerifyOptions {
  /** DSSE verification keys (public or private). */
  keys?: crypto.KeyObject[];
  /** PGP keyring for clear-signed signatures. */
  pgpKeys?: PgpPublicKey[];
  groupIds?: number[];
  objectIds?: number[];
  /** Verify every non-signature object. */
  all?: boolean;
  /** Accept only pre-3.6 SIFHASH signatures (they cover data only, not descriptors or header). */
  legacy?: boolean;
}

export interface VerifiedSignature {
  /** The signature object's id. */
  signatureId: number;
  /** What it covers: "group 1" or "object 2". */
  target: string;
  kind: 'dsse' | 'pgp' | 'legacy';
  /** Key ids (DSSE) or the PGP primary key fingerprint. */
  signers: string[];
  /** User ids of a PGP signer. */
  userIds: string[];
  /** Object ids whose data and descriptors the signature covers. */
  objectIds: number[];
}

function checkMetadata(img: SifImage, payload: Buffer, members: Descriptor[], subset: boolean, where: string): number[] {
  let meta: ImageMetadata;
  try {
    meta = JSON.parse(payload.toString('utf8')) as ImageMetadata;
  } catch {
    throw new IntegrityError(`${where}: the signed metadata is not valid JSON`);
  }
  if (meta.version !== 1 || !meta.header || !Array.isArray(meta.objects)) {
    throw new IntegrityError(`${where}: unsupported signed metadata version ${String(meta.version)}`);
  }
  const algo = meta.header.digest.split(':')[0]!;
  if (!DIGEST_ALGOS[algo]) throw new IntegrityError(`${where}: unsupported digest algorithm ${algo}`);
  if (headerDigest(img, algo) !== meta.header.digest) {
    throw new IntegrityError(`${where}: the image header was modified since signing`);
  }
  const minId = minIdOf(img, members[0]!);
  const signedIds = meta.objects.map(o => o.relativeId + minId);
  if (!subset) {
    const current = members.map(d => d.id).sort((a, b) => a - b);
    const signed = [...signedIds].sort((a, b) => a - b);
    if (current.join(',') !== signed.join(',')) {
      throw new IntegrityError(
        `${where}: the signed objects (${signed.join(', ')}) differ from the group's objects (${current.join(', ')})`,
      );
    }
  }
  for (const o of meta.objects) {
    const id = o.relativeId + minId;
    const d = img.descriptors().find(x => x.id === id);
    if (!d || isSignature(d)) throw new IntegrityError(`${where}: signed object ${id} is missing from the image`);
    if (descriptorDigest(d, minId, algo) !== o.descriptorDigest) {
      throw new IntegrityError(`${where}: the descriptor of object ${id} was modified since signing`);
    }
    if (objectDigest(img, id, algo) !== o.objectDigest) {
      throw new IntegrityError(`${where}: the data of object ${id} was modified since signing`);
    }
  }
  return signedIds;
}

/**
 * Verifies the requested groups/objects (default: every group); every signature that covers a target must
 * verify. Throws IntegrityError naming the object group or object and the reason.
 */
export function verifyImage(img: SifImage, opts: VerifyOptions = {}): VerifiedSignature[] {
  const all = img.descriptors();
  const stray = all.find(d => d.groupId === 0 && !isSignature(d));
  if (stray) throw new IntegrityError(`object ${stray.id}: non-signature object not associated with an object group`);
  const signatures = all.filter(isSignature);
  const results: VerifiedSignature[] = [];
  const done = new Map<number, VerifiedSignature>();
  const verifySig = (sig: Descriptor, members: Descriptor[], subset: boolean, target: string): VerifiedSignature => {
    // A group signature covers several targets of --all: check it once, report it once.
    const seen = done.get(sig.id);
    if (seen) return seen;
    const v = checkSignature(sig, members, subset, target);
    done.set(sig.id, v);
    results.push(v);
    return v;
  };
  const checkSignature = (sig: Descriptor, members: Descriptor[], subset: boolean, target: string): VerifiedSignature => {
    const where = `signature object ${sig.id} (${target})`;
    const data = img.readObject(sig.id);
    const text = data.toString('utf8');
    if (opts.legacy) return verifyLegacy(img, sig, text, opts.pgpKeys ?? [], where, target);
    const env = parseDsse(data);
    if (env) {
      const { payload, keyIds } = wrap(where, () => dsseVerify(env, opts.keys ?? []));
      const objectIds = checkMetadata(img, payload, members, subset, where);
      return { signatureId: sig.id, target, kind: 'dsse', signers: keyIds, userIds: [], objectIds };
    }
    if (text.includes('-----BEGIN PGP SIGNED MESSAGE-----')) {
      const v = wrap(where, () => verifyClearSigned(text, opts.pgpKeys ?? []));
      const entity = sig.signature!.entity.subarray(0, 20);
      if (!entity.equals(v.signer.primaryFingerprint)) {
        throw new IntegrityError(
          `${where}: the descriptor names key ${entity.toString('hex').toUpperCase()} but ${v.signer.primaryFingerprint.toString('hex').toUpperCase()} signed`,
        );
      }
      const objectIds = checkMetadata(img, Buffer.from(v.text, 'utf8'), members, subset, where);
      return {
        signatureId: sig.id,
        target,
        kind: 'pgp',
        signers: [v.signer.primaryFingerprint.toString('hex').toUpperCase()],
        userIds: v.signer.userIds,
        objectIds,
      };
    }
    throw new IntegrityError(`${where}: unknown signature format`);
  };
  const matching = (pred: (s: Descriptor) => boolean): Descriptor[] =>
    signatures.filter(pred).filter(s => isLegacyContent(img.readObject(s.id)) === !!opts.legacy);

  const kind = opts.legacy ? 'legacy ' : '';
  const groupSigs = (g: number): Descriptor[] => matching(s => s.linkedToGroup && s.linkedId === g);
  const objectSigs = (id: number): Descriptor[] => matching(s => !s.linkedToGroup && s.linkedId === id);
  const verifyGroup = (g: number): void => {
    const members = img.group(g).filter(d => !isSignature(d));
    if (members.length === 0) throw new IntegrityError(`object group ${g} does not exist`);
    const sigs = groupSigs(g);
    if (sigs.length === 0) throw new IntegrityError(`object group ${g}: no ${kind}signature found`);
    for (const s of sigs) verifySig(s, members, false, `group ${g}`);
  };
  const verifyObject = (id: number): void => {
    const d = img.descriptor(id);
    const own = objectSigs(id);
    if (own.length) {
      for (const s of own) verifySig(s, [d], true, `object ${id}`);
      return;
    }
    const viaGroup = d.groupId === 0 ? [] : groupSigs(d.groupId);
    if (viaGroup.length === 0) throw new IntegrityError(`object ${id}: no ${kind}signature found`);
    const members = img.group(d.groupId).filter(x => !isSignature(x));
    for (const s of viaGroup) {
      const v = verifySig(s, members, false, `group ${d.groupId}`);
      if (!v.objectIds.includes(id)) throw new IntegrityError(`object ${id}: not covered by signature object ${s.id}`);
    }
  };

  if (opts.objectIds?.length) opts.objectIds.forEach(verifyObject);
  else if (opts.groupIds?.length) opts.groupIds.forEach(verifyGroup);
  else if (opts.legacy) {
    // Pre-3.6 Singularity signed the primary partition (or its group) by default, and with --all every
    // object of that group.
    const primary = img.primaryPartition();
    if (!primary) throw new IntegrityError('the image has no primary partition to verify');
    const targets = opts.all ? img.group(primary.groupId).filter(d => !isSignature(d)) : [primary];
    for (const d of targets) verifyObject(d.id);
  } else if (opts.all) {
    for (const d of all) if (!isSignature(d)) verifyObject(d.id);
  } else {
    const groups = img.groupIds();
    if (groups.length === 0) throw new IntegrityError('the image has no object groups to verify');
    groups.forEach(verifyGroup);
  }
  return results;
}

function wrap<T>(where: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new IntegrityError(`${where}: ${(e as Error).message}`);
  }
}

function verifyLegacy(
  img: SifImage,
  sig: Descriptor,
  text: string,
  keyring: PgpPublicKey[],
  where: string,
  target: string,
): VerifiedSignature {
  const v = wrap(where, () => verifyClearSigned(text, keyring));
  const m = /^SIFHASH:\n([0-9a-f]+)\n?$/.exec(v.text);
  if (!m) throw new IntegrityError(`${where}: not a legacy SIFHASH signature`);
  const algo = SIF_HASHES[sig.signature!.hashType];
  if (!algo) throw new IntegrityError(`${where}: unsupported hash type ${sig.signature!.hashType}`);
  // Legacy signatures cover object data only: one object, or every object of the group concatenated.
  const covered = sig.linkedToGroup ? img.group(sig.linkedId).filter(d => !isSignature(d)) : [img.descriptor(sig.linkedId)];
  const h = crypto.createHash(algo);
  for (const d of covered) img.forEachObjectChunk(d.id, c => h.update(c));
  if (h.digest('hex') !== m[1]) throw new IntegrityError(`${where}: the signed data was modified since signing`);
  return {
    signatureId: sig.id,
    target,
    kind: 'legacy',
    signers: [v.signer.primaryFingerprint.toString('hex').toUpperCase()],
    userIds: v.signer.userIds,
    objectIds: covered.map(d => d.id),
  };
}
