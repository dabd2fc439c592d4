// The slice of OpenPGP (RFC 4880) needed to verify the clear-signed messages that Singularity stores in SIF
// signature objects: ASCII armor, packet framing, v4 RSA/ECDSA/EdDSA public keys and their fingerprints, and
// v4 signatures over canonical text. Making keys and signatures is ./pgp-keys.ts.
import * as crypto from 'node:crypto';

export interface PgpPublicKey {
  /** 20-byte v4 fingerprint of this key. */
  fingerprint: Buffer;
  /** Fingerprint of the primary key this key belongs to (itself for a primary key). */
  primaryFingerprint: Buffer;
  /** User IDs of the primary key ("Name <email>"). */
  userIds: string[];
  key: crypto.KeyObject;
}

export interface ClearSigned {
  /** The signed text exactly as it appears after dash-unescaping, lines joined with \n. */
  text: string;
  signature: Buffer;
}

export interface PgpSignature {
  version: number;
  sigType: number;
  pubkeyAlgo: number;
  hashAlgo: number;
  /** The bytes hashed after the data: version .. hashed subpackets. */
  hashedPart: Buffer;
  issuerFingerprint?: Buffer;
  issuerKeyId?: Buffer;
  /** Algorithm-specific MPIs. */
  mpis: Buffer[];
}

export const HASH_NAMES: Record<number, string> = { 2: 'sha1', 8: 'sha256', 9: 'sha384', 10: 'sha512', 11: 'sha224' };

export function crc24(data: Buffer): number {
  let crc = 0xb704ce;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

/** Decodes an ASCII-armored block (the base64 body and its CRC); returns undefined for binary input. */
export function dearmor(text: string): Buffer | undefined {
  const m = /-----BEGIN PGP [A-Z ]+-----\r?\n([\s\S]*?)-----END PGP [A-Z ]+-----/.exec(text);
  if (!m) return undefined;
  const lines = m[1]!.split(/\r?\n/);
  // Armor headers (Version:, Comment:) end at the first empty line.
  const blank = lines.findIndex(l => l.trim() === '');
  const body = lines
    .slice(blank + 1)
    .map(l => l.trim())
    .filter(l => l !== '');
  const crcLine = body.length && body[body.length - 1]!.startsWith('=') ? body.pop()!.slice(1) : undefined;
  const data = Buffer.from(body.join(''), 'base64');
  if (crcLine !== undefined && Buffer.from(crcLine, 'base64').readUIntBE(0, 3) !== crc24(data)) {
    throw new Error('PGP armor checksum mismatch');
  }
  return data;
}

/** Splits binary OpenPGP data into (tag, body) packets, old and new framing. */
export function packets(data: Buffer): Array<{ tag: number; body: Buffer; raw: Buffer }> {
  const out: Array<{ tag: number; body: Buffer; raw: Buffer }> = [];
  let p = 0;
  while (p < data.length) {
    const start = p;
    const ctb = data[p++]!;
    if (!(ctb & 0x80)) throw new Error('malformed OpenPGP packet header');
    let tag: number;
    let len: number;
    if (ctb & 0x40) {
      tag = ctb & 0x3f;
      const first = data[p++]!;
      if (first < 192) len = first;
      else if (first < 224) len = ((first - 192) << 8) + data[p++]! + 192;
      else if (first === 255) {
        len = data.readUInt32BE(p);
        p += 4;
      } else throw new Error('partial-length OpenPGP packets are not supported');
    } else {
      tag = (ctb >> 2) & 0x0f;
      const lenType = ctb & 3;
      if (lenType === 0) len = data[p++]!;
      else if (lenType === 1) {
        len = data.readUInt16BE(p);
        p += 2;
      } else if (lenType === 2) {
        len = data.readUInt32BE(p);
        p += 4;
      } else len = data.length - p;
    }
    if (p + len > data.length) throw new Error('truncated OpenPGP packet');
    out.push({ tag, body: data.subarray(p, p + len), raw: data.subarray(start, p + len) });
    p += len;
  }
  return out;
}

export function readMpi(buf: Buffer, p: number): [Buffer, number] {
  const bits = buf.readUInt16BE(p);
  const len = (bits + 7) >> 3;
  return [buf.subarray(p + 2, p + 2 + len), p + 2 + len];
}

const b64url = (b: Buffer): string => b.toString('base64url');

/** Curve OIDs (RFC 6637 / draft-bis) to JWK curve names. */
const CURVES: Record<string, { crv: string; size: number }> = {
  '2a8648ce3d030107': { crv: 'P-256', size: 32 },
  '2b81040022': { crv: 'P-384', size: 48 },
  '2b81040023': { crv: 'P-521', size: 66 },
};
const ED25519_OID = '2b06010401da470f01';

/** Parses the public part of a v4 key packet (public or secret, primary or sub); returns it and its length. */
export function parsePublicKey(body: Buffer): { key: crypto.KeyObject; publicLength: number } {
  if (body[0] !== 4) throw new Error(`unsupported OpenPGP key version ${body[0]}`);
  const algo = body[5]!;
  let p = 6;
  if (algo === 1 || algo === 2 || algo === 3) {
    const [n, p1] = readMpi(body, p);
    const [e, p2] = readMpi(body, p1);
    p = p2;
    return { key: crypto.createPublicKey({ key: { kty: 'RSA', n: b64url(n), e: b64url(e) }, format: 'jwk' }), publicLength: p };
  }
  if (algo === 19 || algo === 22) {
    const oidLen = body[p]!;
    const oid = body.subarray(p + 1, p + 1 + oidLen).toString('hex');
    const [point, p2] = readMpi(body, p + 1 + oidLen);
    p = p2;
    if (algo === 22 && oid === ED25519_OID) {
      // Native EdDSA points carry a 0x40 prefix before the 32-byte key.
      const x = point[0] === 0x40 ? point.subarray(1) : point;
      return { key: crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(x) }, format: 'jwk' }), publicLength: p };
    }
    const curve = CURVES[oid];
    if (algo === 19 && curve && point[0] === 4) {
      const x = point.subarray(1, 1 + curve.size);
      const y = point.subarray(1 + curve.size);
      return {
        key: crypto.createPublicKey({ key: { kty: 'EC', crv: curve.crv, x: b64url(x), y: b64url(y) }, format: 'jwk' }),
        publicLength: p,
      };
    }
    throw new Error(`unsupported OpenPGP curve ${oid}`);
  }
  throw new Error(`unsupported OpenPGP public key algorithm ${algo}`);
}

export function fingerprintOf(publicPart: Buffer): Buffer {
  const head = Buffer.from([0x99, publicPart.length >> 8, publicPart.length & 0xff]);
  return crypto.createHash('sha1').update(head).update(publicPart).digest();
}

/** Reads every key (primary and subkeys) from armored or binary keyring data; secret keys count by their public part. */
export function readKeyring(data: Buffer): PgpPublicKey[] {
  const text = data.toString('latin1');
  const blocks: Buffer[] = [];
  const armorRe = /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g;
  for (const m of text.matchAll(armorRe)) blocks.push(dearmor(m[0])!);
  if (blocks.length === 0) blocks.push(data);
  const keys: PgpPublicKey[] = [];
  for (const block of blocks) {
    let primary: PgpPublicKey | undefined;
    for (const { tag, body } of packets(block)) {
      if (tag === 6 || tag === 5 || tag === 14 || tag === 7) {
        let parsed: ReturnType<typeof parsePublicKey>;
        try {
          parsed = parsePublicKey(body);
        } catch {
          continue;
        }
        const fingerprint = fingerprintOf(body.subarray(0, parsed.publicLength));
        const isPrimary = tag === 6 || tag === 5;
        const entry: PgpPublicKey = {
          fingerprint,
          primaryFingerprint: isPrimary || !primary ? fingerprint : primary.fingerprint,
          userIds: isPrimary || !primary ? [] : primary.userIds,
          key: parsed.key,
        };
        if (isPrimary) primary = entry;
        keys.push(entry);
      } else if (tag === 13 && primary) {
        primary.userIds.push(body.toString('utf8'));
      }
    }
  }
  return keys;
}

/** Splits a clear-signed message into its text and binary signature. */
export function parseClearSigned(message: string): ClearSigned {
  const begin = '-----BEGIN PGP SIGNED MESSAGE-----';
  const start = message.indexOf(begin);
  if (start < 0) throw new Error('not a PGP clear-signed message');
  const sigStart = message.indexOf('\n-----BEGIN PGP SIGNATURE-----', start);
  if (sigStart < 0) throw new Error('clear-signed message has no signature block');
  const head = message.slice(start + begin.length, sigStart + 1).replace(/^\r?\n/, '');
  // Armor headers ("Hash: SHA256") end at the first empty line; the text follows.
  const blank = head.search(/\r?\n\r?\n/);
  const afterHeaders = blank < 0 ? '' : head.slice(head.indexOf('\n', blank + 1) + 1);
  // The line break before the signature block belongs to the armor, not to the text.
  const body = afterHeaders.replace(/\r?\n$/, '');
  const text = body
    .split(/\r?\n/)
    .map(l => (l.startsWith('- ') ? l.slice(2) : l))
    .join('\n');
  const signature = dearmor(message.slice(sigStart + 1));
  if (!signature) throw new Error('clear-signed message has a malformed signature block');
  return { text, signature };
}

export function parseSignature(data: Buffer): PgpSignature {
  const sig = packets(data).find(p => p.tag === 2);
  if (!sig) throw new Error('no OpenPGP signature packet');
  const b = sig.body;
  if (b[0] !== 4) throw new Error(`unsupported OpenPGP signature version ${b[0]}`);
  const hashedLen = b.readUInt16BE(4);
  const hashedPart = b.subarray(0, 6 + hashedLen);
  const result: PgpSignature = {
    version: 4,
    sigType: b[1]!,
    pubkeyAlgo: b[2]!,
    hashAlgo: b[3]!,
    hashedPart,
    mpis: [],
  };
  const subpackets = (area: Buffer): void => {
    let p = 0;
    while (p < area.length) {
      let len = area[p++]!;
      if (len >= 192 && len < 255) len = ((len - 192) << 8) + area[p++]! + 192;
      else if (len === 255) {
        len = area.readUInt32BE(p);
        p += 4;
      }
      const type = area[p]! & 0x7f;
      const content = area.subarray(p + 1, p + len);
      if (type === 33 && content[0] === 4) result.issuerFingerprint = Buffer.from(content.subarray(1, 21));
      if (type === 16) result.issuerKeyId = Buffer.from(content);
      p += len;
    }
  };
  subpackets(b.subarray(6, 6 + hashedLen));
  let p = 6 + hashedLen;
  const unhashedLen = b.readUInt16BE(p);
  subpackets(b.subarray(p + 2, p + 2 + unhashedLen));
  p += 2 + unhashedLen + 2; // skip the 16-bit hash prefix
  while (p < b.length) {
    const [mpi, next] = readMpi(b, p);
    result.mpis.push(mpi);
    p = next;
  }
  return result;
}

/** Signature type 0x01 signs canonical text: CRLF line ends, trailing blanks removed from each line. */
export function canonicalText(text: string): Buffer {
  return Buffer.from(
    text
      .split('\n')
      .map(l => l.replace(/[ \t\r]+$/, ''))
      .join('\r\n'),
    'utf8',
  );
}

function signedData(sig: PgpSignature, text: string): Buffer {
  const data = sig.sigType === 0x01 ? canonicalText(text) : Buffer.from(text, 'utf8');
  const trailer = Buffer.alloc(6);
  trailer[0] = 4;
  trailer[1] = 0xff;
  trailer.writeUInt32BE(sig.hashedPart.length, 2);
  return Buffer.concat([data, sig.hashedPart, trailer]);
}

function padTo(b: Buffer, size: number): Buffer {
  return b.length >= size ? b : Buffer.concat([Buffer.alloc(size - b.length), b]);
}

function verifyWith(sig: PgpSignature, key: crypto.KeyObject, data: Buffer): boolean {
  const hash = HASH_NAMES[sig.hashAlgo];
  if (!hash) throw new Error(`unsupported OpenPGP hash algorithm ${sig.hashAlgo}`);
  if (sig.pubkeyAlgo === 1 || sig.pubkeyAlgo === 3) {
    return crypto.verify(hash, data, { key, padding: crypto.constants.RSA_PKCS1_PADDING }, sig.mpis[0]!);
  }
  if (sig.pubkeyAlgo === 19) {
    const size = Math.ceil(
      (key.asymmetricKeyDetails?.namedCurve === 'secp521r1' ? 521 : key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 384 : 256) / 8,
    );
    const raw = Buffer.concat([padTo(sig.mpis[0]!, size), padTo(sig.mpis[1]!, size)]);
    return crypto.verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, raw);
  }
  if (sig.pubkeyAlgo === 22) {
    const digest = crypto.createHash(hash).update(data).digest();
    const raw = Buffer.concat([padTo(sig.mpis[0]!, 32), padTo(sig.mpis[1]!, 32)]);
    return crypto.verify(null, digest, key, raw);
  }
  throw new Error(`unsupported OpenPGP signature algorithm ${sig.pubkeyAlgo}`);
}

export interface PgpVerification {
  text: string;
  /** The key that made the signature. */
  signer: PgpPublicKey;
}

/**
 * Verifies a clear-signed message against a keyring. Throws an Error that says why: unknown signer (with its
 * fingerprint or key id), or a signature that does not match the text.
 */
export function verifyClearSigned(message: string, keyring: PgpPublicKey[]): PgpVerification {
  const { text, signature } = parseClearSigned(message);
  const sig = parseSignature(signature);
  const candidates = keyring.filter(k => {
    if (sig.issuerFingerprint) return k.fingerprint.equals(sig.issuerFingerprint);
    if (sig.issuerKeyId) return k.fingerprint.subarray(12).equals(sig.issuerKeyId);
    return true;
  });
  const issuer = sig.issuerFingerprint?.toString('hex').toUpperCase() ?? sig.issuerKeyId?.toString('hex').toUpperCase() ?? 'unknown';
  if (candidates.length === 0) throw new Error(`signing key ${issuer} is not in the keyring`);
  const data = signedData(sig, text);
  for (const k of candidates) {
    if (verifyWith(sig, k.key, data)) return { text, signer: k };
  }
  throw new Error(`PGP signature by ${issuer} does not match the signed data`);
}
