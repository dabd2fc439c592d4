// Making OpenPGP (RFC 4880) keys and signatures, the counterpart of ./pgp.ts: RSA key pairs as Singularity's
// `key newpair` makes them (a primary key that certifies and signs, one user id, a positive self-certification),
// secret keys kept plain or protected by a passphrase (iterated and salted S2K, AES in CFB mode, SHA-1 check),
// reading secret keys GnuPG or Singularity exported (RSA, EdDSA, ECDSA), ASCII armor, and the clear-signed
// messages SIF signature objects hold.
import * as crypto from 'node:crypto';
import { canonicalText, crc24, dearmor, fingerprintOf, packets, parsePublicKey, readMpi } from './pgp.js';

export const TAG = { signature: 2, secretKey: 5, publicKey: 6, secretSubkey: 7, userId: 13, publicSubkey: 14 } as const;
const ALGO_RSA = 1;
const ALGO_EDDSA = 22;
const HASH_SHA256 = 8;
const SIG_TEXT = 0x01;
const SIG_POSITIVE_CERT = 0x13;
/** AES-128/192/256 by OpenPGP symmetric algorithm id. */
const CIPHERS: Record<number, { name: string; keyLength: number }> = {
  7: { name: 'aes-128-cfb', keyLength: 16 },
  8: { name: 'aes-192-cfb', keyLength: 24 },
  9: { name: 'aes-256-cfb', keyLength: 32 },
};
const S2K_HASHES: Record<number, string> = { 2: 'sha1', 8: 'sha256', 9: 'sha384', 10: 'sha512', 11: 'sha224' };

// ---- encoding ----

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** A multiprecision integer: bit count, then the bytes without leading zeros. */
function mpi(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  const bits = v.length === 0 ? 0 : (v.length - 1) * 8 + (32 - Math.clz32(v[0]!));
  return Buffer.concat([u16(bits), v]);
}

/** A packet with a new-format header. */
export function packet(tag: number, body: Buffer): Buffer {
  let len: Buffer;
  if (body.length < 192) len = Buffer.from([body.length]);
  else if (body.length < 8384) len = Buffer.from([((body.length - 192) >> 8) + 192, (body.length - 192) & 0xff]);
  else len = Buffer.concat([Buffer.from([255]), u32(body.length)]);
  return Buffer.concat([Buffer.from([0xc0 | tag]), len, body]);
}

function subpacket(type: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([data.length + 1, type]), data]);
}

/** ASCII armor of a binary block: `kind` is "PUBLIC KEY BLOCK", "PRIVATE KEY BLOCK" or "SIGNATURE". */
export function armor(kind: string, data: Buffer): string {
  const lines = data.toString('base64').match(/.{1,64}/g) ?? [];
  const crc = Buffer.from([(crc24(data) >> 16) & 0xff, (crc24(data) >> 8) & 0xff, crc24(data) & 0xff]).toString('base64');
  return `-----BEGIN PGP ${kind}-----\n\n${lines.join('\n')}\n=${crc}\n-----END PGP ${kind}-----\n`;
}

// ---- big integers (RSA's CRT values) ----

const big = (b: Buffer): bigint => (b.length ? BigInt(`0x${b.toString('hex')}`) : 0n);

function bytes(n: bigint): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, 'hex');
}

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [a % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

const b64 = (b: Buffer): string => b.toString('base64url');

// ---- keys ----

export interface PgpSecretKey {
  fingerprint: Buffer;
  /** Fingerprint of the primary key it belongs to. */
  primaryFingerprint: Buffer;
  algo: number;
  key: crypto.KeyObject;
}

export interface GeneratedKey {
  /** Transferable public key: public key, user id, self-signature packets. */
  publicKey: Buffer;
  /** Transferable secret key: the same with the secret key packet. */
  secretKey: Buffer;
  fingerprint: Buffer;
}

export function userIdText(name: string, comment: string, email: string): string {
  return `${name}${comment ? ` (${comment})` : ''}${email ? ` <${email}>` : ''}`;
}

/** Hashed subpackets, then the signature packet over `data` (everything before the signature's own trailer). */
function signaturePacket(
  type: number,
  key: crypto.KeyObject,
  algo: number,
  issuer: Buffer,
  created: number,
  extraHashed: Buffer[],
  data: Buffer,
): Buffer {
  const hashed = Buffer.concat([subpacket(2, u32(created)), ...extraHashed, subpacket(33, Buffer.concat([Buffer.from([4]), issuer]))]);
  const head = Buffer.concat([Buffer.from([4, type, algo, HASH_SHA256]), u16(hashed.length), hashed]);
  const trailer = Buffer.concat([Buffer.from([4, 0xff]), u32(head.length)]);
  const signed = Buffer.concat([data, head, trailer]);
  const digest = crypto.createHash('sha256').update(signed).digest();
  let mpis: Buffer[];
  if (algo === ALGO_RSA) {
    mpis = [crypto.sign('sha256', signed, { key, padding: crypto.constants.RSA_PKCS1_PADDING })];
  } else if (algo === ALGO_EDDSA) {
    // OpenPGP's legacy EdDSA signs the digest, not the data.
    const raw = crypto.sign(null, digest, key);
    mpis = [raw.subarray(0, 32), raw.subarray(32)];
  } else {
    const raw = crypto.sign('sha256', signed, { key, dsaEncoding: 'ieee-p1363' });
    mpis = [raw.subarray(0, raw.length / 2), raw.subarray(raw.length / 2)];
  }
  const unhashed = subpacket(16, issuer.subarray(12));
  return packet(TAG.signature, Buffer.concat([head, u16(unhashed.length), unhashed, digest.subarray(0, 2), ...mpis.map(mpi)]));
}

/** The iterated and salted S2K count an octet encodes (RFC 4880 3.7.1.3). */
function s2kCount(c: number): number {
  return (16 + (c & 15)) << ((c >> 4) + 6);
}

/** A key from a passphrase by S2K: `type` 0 simple, 1 salted, 3 iterated and salted. */
function s2kKey(type: number, hash: string, salt: Buffer, count: number, passphrase: string, length: number): Buffer {
  const pass = Buffer.from(passphrase, 'utf8');
  const input = type === 0 ? pass : Buffer.concat([salt, pass]);
  const total = type === 3 ? Math.max(count, input.length) : input.length;
  const out: Buffer[] = [];
  for (let ctx = 0; Buffer.concat(out).length < length; ctx++) {
    // Each further hash context starts with one more zero octet.
    const h = crypto.createHash(hash).update(Buffer.alloc(ctx));
    let done = 0;
    while (done + input.length <= total) {
      h.update(input);
      done += input.length;
    }
    if (done < total) h.update(input.subarray(0, total - done));
    out.push(h.digest());
  }
  return Buffer.concat(out).subarray(0, length);
}

const S2K_COUNT_OCTET = 0xee; // 31457280 octets hashed: GnuPG's order of magnitude

/** The secret part of a secret key packet: plain (usage 0) or passphrase-protected (usage 254, AES-256). */
function secretPart(secretMpis: Buffer, passphrase: string): Buffer {
  if (!passphrase) {
    let sum = 0;
    for (const b of secretMpis) sum = (sum + b) & 0xffff;
    return Buffer.concat([Buffer.from([0]), secretMpis, u16(sum)]);
  }
  const salt = crypto.randomBytes(8);
  const iv = crypto.randomBytes(16);
  const key = s2kKey(3, 'sha256', salt, s2kCount(S2K_COUNT_OCTET), passphrase, 32);
  const plain = Buffer.concat([secretMpis, crypto.createHash('sha1').update(secretMpis).digest()]);
  const cipher = crypto.createCipheriv('aes-256-cfb', key, iv);
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([Buffer.from([254, 9, 3, HASH_SHA256]), salt, Buffer.from([S2K_COUNT_OCTET]), iv, encrypted]);
}

/** A new RSA key pair for `userId`, created at `created` (unix seconds), its secret part under `passphrase`. */
export function generateKey(o: { userId: string; bits: number; passphrase: string; created?: number }): GeneratedKey {
  const created = o.created ?? Math.floor(Date.now() / 1000);
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: o.bits, publicExponent: 0x10001 });
  const jwk = privateKey.export({ format: 'jwk' });
  const f = (s?: string): Buffer => Buffer.from(s ?? '', 'base64url');
  const pubBody = Buffer.concat([Buffer.from([4]), u32(created), Buffer.from([ALGO_RSA]), mpi(f(jwk.n)), mpi(f(jwk.e))]);
  const fingerprint = fingerprintOf(pubBody);
  // OpenPGP wants p < q and u = p^-1 mod q.
  let [p, q] = [big(f(jwk.p)), big(f(jwk.q))];
  if (p > q) [p, q] = [q, p];
  const secretMpis = Buffer.concat([mpi(f(jwk.d)), mpi(bytes(p)), mpi(bytes(q)), mpi(bytes(modInverse(p, q)))]);
  const uid = Buffer.from(o.userId, 'utf8');
  const certified = Buffer.concat([Buffer.from([0x99]), u16(pubBody.length), pubBody, Buffer.from([0xb4]), u32(uid.length), uid]);
  const selfSig = signaturePacket(
    SIG_POSITIVE_CERT,
    privateKey,
    ALGO_RSA,
    fingerprint,
    created,
    [
      subpacket(27, Buffer.from([0x03])), // certify and sign
      subpacket(11, Buffer.from([9, 8, 7])), // AES-256, -192, -128
      subpacket(21, Buffer.from([8, 10, 9])), // SHA-256, -512, -384
      subpacket(30, Buffer.from([0x01])), // modification detection
    ],
    certified,
  );
  const rest = Buffer.concat([packet(TAG.userId, uid), selfSig]);
  return {
    publicKey: Buffer.concat([packet(TAG.publicKey, pubBody), rest]),
    secretKey: Buffer.concat([packet(TAG.secretKey, Buffer.concat([pubBody, secretPart(secretMpis, o.passphrase)])), rest]),
    fingerprint,
  };
}

/** Thrown for a protected secret key without (or with a wrong) passphrase; the caller may ask and retry. */
export class PassphraseError extends Error {}

/** Whether a secret key packet's secret part is passphrase-protected. */
export function isProtected(body: Buffer): boolean {
  return body[parsePublicKey(body).publicLength] !== 0;
}

/** The secret MPIs of a secret key packet, decrypted with `passphrase` when protected. */
function secretMpis(body: Buffer, publicLength: number, passphrase: string | undefined): Buffer {
  const usage = body[publicLength]!;
  if (usage === 0) return body.subarray(publicLength + 1, body.length - 2);
  if (usage !== 254 && usage !== 255) throw new Error(`unsupported secret key protection (usage ${usage})`);
  let p = publicLength + 1;
  const cipher = CIPHERS[body[p++]!];
  if (!cipher) throw new Error(`unsupported secret key cipher ${body[p - 1]} (AES keys only)`);
  const type = body[p++]!;
  const hash = S2K_HASHES[body[p++]!];
  if (!hash || (type !== 0 && type !== 1 && type !== 3)) throw new Error('unsupported secret key S2K');
  const salt = type === 0 ? Buffer.alloc(0) : body.subarray(p, (p += 8));
  const count = type === 3 ? s2kCount(body[p++]!) : 0;
  const iv = body.subarray(p, (p += 16));
  if (passphrase === undefined) throw new PassphraseError('the secret key is protected by a passphrase');
  const key = s2kKey(type, hash, salt, count, passphrase, cipher.keyLength);
  const d = crypto.createDecipheriv(cipher.name, key, iv);
  const plain = Buffer.concat([d.update(body.subarray(p)), d.final()]);
  const data = plain.subarray(0, plain.length - (usage === 254 ? 20 : 2));
  const check = plain.subarray(data.length);
  let ok: boolean;
  if (usage === 254) {
    ok = crypto.createHash('sha1').update(data).digest().equals(check);
  } else {
    let sum = 0;
    for (const b of data) sum = (sum + b) & 0xffff;
    ok = check.readUInt16BE(0) === sum;
  }
  if (!ok) throw new PassphraseError('wrong passphrase for the secret key');
  return data;
}

/** A usable private key from a secret key packet (RSA, EdDSA or ECDSA). */
export function secretKeyOf(body: Buffer, passphrase?: string): crypto.KeyObject {
  const { key: pub, publicLength } = parsePublicKey(body);
  const algo = body[5]!;
  const m = secretMpis(body, publicLength, passphrase);
  const jwk = pub.export({ format: 'jwk' });
  if (algo === ALGO_RSA || algo === 2 || algo === 3) {
    const [d, p1] = readMpi(m, 0);
    const [p, p2] = readMpi(m, p1);
    const [q] = readMpi(m, p2);
    const [D, P, Q] = [big(d), big(p), big(q)];
    return crypto.createPrivateKey({
      key: {
        ...jwk,
        d: b64(d),
        p: b64(p),
        q: b64(q),
        dp: b64(bytes(D % (P - 1n))),
        dq: b64(bytes(D % (Q - 1n))),
        qi: b64(bytes(modInverse(Q, P))),
      },
      format: 'jwk',
    });
  }
  const [secret] = readMpi(m, 0);
  const size = algo === ALGO_EDDSA ? 32 : Buffer.from(jwk.x!, 'base64url').length;
  const padded = Buffer.concat([Buffer.alloc(Math.max(0, size - secret.length)), secret]);
  return crypto.createPrivateKey({ key: { ...jwk, d: b64(padded) }, format: 'jwk' });
}

/** Signs `text` as a clear-signed message (canonical text, SHA-256), the form SIF signature objects hold. */
export function clearSign(
  text: string,
  key: crypto.KeyObject,
  algo: number,
  fingerprint: Buffer,
  created = Math.floor(Date.now() / 1000),
): string {
  const sig = signaturePacket(SIG_TEXT, key, algo, fingerprint, created, [], canonicalText(text));
  const escaped = text
    .split('\n')
    .map(l => (l.startsWith('-') ? `- ${l}` : l))
    .join('\n');
  return `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n${escaped}\n${armor('SIGNATURE', sig)}`;
}

/** One transferable key of a keyring: its primary key packet first, then user ids, signatures and subkeys. */
export interface KeyBlock {
  raw: Buffer;
  /** The primary key's (public or secret) packet body. */
  primary: Buffer;
  secret: boolean;
  fingerprint: Buffer;
  algo: number;
  created: number;
  bits: number;
  userIds: string[];
  /** Packets in order, for conversions. */
  packets: Array<{ tag: number; body: Buffer; raw: Buffer }>;
}

function keyBits(body: Buffer): number {
  const algo = body[5]!;
  if (algo === ALGO_RSA || algo === 2 || algo === 3) return readMpi(body, 6)[0].length * 8;
  if (algo === ALGO_EDDSA) return 255;
  const { key } = parsePublicKey(body);
  return key.asymmetricKeyDetails?.namedCurve === 'secp521r1' ? 521 : key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 384 : 256;
}

/** Splits binary or armored keyring data into transferable keys (unparsable primaries are skipped). */
export function keyBlocks(data: Buffer): KeyBlock[] {
  const text = data.toString('latin1');
  const armored = [...text.matchAll(/-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g)];
  const sources = armored.length ? armored.map(m => dearmor(m[0])!) : [data];
  const blocks: KeyBlock[] = [];
  for (const source of sources) {
    let current: KeyBlock | undefined;
    for (const pk of packets(source)) {
      if (pk.tag === TAG.publicKey || pk.tag === TAG.secretKey) {
        let publicLength: number;
        try {
          publicLength = parsePublicKey(pk.body).publicLength;
        } catch {
          current = undefined;
          continue;
        }
        current = {
          raw: pk.raw,
          primary: pk.body,
          secret: pk.tag === TAG.secretKey,
          fingerprint: fingerprintOf(pk.body.subarray(0, publicLength)),
          algo: pk.body[5]!,
          created: pk.body.readUInt32BE(1),
          bits: keyBits(pk.body),
          userIds: [],
          packets: [pk],
        };
        blocks.push(current);
      } else if (current) {
        current.raw = Buffer.concat([current.raw, pk.raw]);
        current.packets.push(pk);
        if (pk.tag === TAG.userId) current.userIds.push(pk.body.toString('utf8'));
      }
    }
  }
  return blocks;
}

/** The public form of a secret key block: secret key packets become public ones, with only their public part. */
export function publicBlock(b: KeyBlock): Buffer {
  return Buffer.concat(
    b.packets.map(pk => {
      if (pk.tag !== TAG.secretKey && pk.tag !== TAG.secretSubkey) return pk.raw;
      let publicLength: number;
      try {
        publicLength = parsePublicKey(pk.body).publicLength;
      } catch {
        return Buffer.alloc(0);
      }
      return packet(pk.tag === TAG.secretKey ? TAG.publicKey : TAG.publicSubkey, pk.body.subarray(0, publicLength));
    }),
  );
}
