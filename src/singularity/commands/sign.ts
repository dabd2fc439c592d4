// `singularity sign` and `singularity verify` for SIF images. tsrt signs with DSSE envelopes and PEM keys
// (--key), or with PGP keys of the user's secret keyring (clear-signed messages naming the key's fingerprint);
// it verifies DSSE (--key / --certificate), PGP signatures against the local public keyring (the signer is
// found by its fingerprint there), and pre-3.6 SIFHASH signatures with --legacy-insecure.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { SingularityCommand } from '../command.js';
import { SifImage } from '../../sif/index.js';
import { IntegrityError, type PgpSigner, type VerifiedSignature, signImage, verifyImage } from '../../sif/integrity.js';
import { dataTypeName } from '../../sif/siftool-text.js';
import { isProtected, secretKeyOf } from '../../sif/pgp-keys.js';
import { chooseKey, hex, loadKeyring, trustedKeys } from '../keyring.js';
import { ask } from '../prompt.js';
import { type FlagSpec, UsageError, boolFlag, intFlag, intListFlag, parseFlags, withUsage } from './sif-flags.js';
import { RuntimeError } from '../../errors.js';

const targetFlags: Record<string, FlagSpec> = {
  'group-id': { short: 'g' },
  'sif-id': { short: 'i' },
  all: { short: 'a', boolean: true },
  key: {},
};

const signUsage = `sign [sign options...] <image path>

  -a, --all              sign every object individually
  -g, --group-id N       sign object group N (default: every group)
  -i, --sif-id N         sign object N only
      --key FILE         PEM private key (Ed25519, ECDSA or RSA) to sign with (a DSSE signature)
  -k, --keyidx N         the key of your PGP secret keyring to sign with (key list --secret numbers them)
  Without --key, the signature is a PGP one made with a key of your secret keyring (key newpair makes one);
  a passphrase-protected key asks for its passphrase.`;

const verifyUsage = `verify [verify options...] <image path>

  -a, --all              verify every object
  -g, --group-id N       verify object group N (default: every group)
  -i, --sif-id N         verify object N only
      --key FILE         PEM public (or private) key for DSSE signatures; repeatable
      --certificate FILE X.509 certificate whose key verifies DSSE signatures
      --legacy-insecure  verify pre-3.6 signatures (they do not cover the header or descriptors)
  -l, --local            only use the local PGP keyring (tsrt never contacts a keyserver)
  PGP signatures are checked against $SINGULARITY_SYPGPDIR/pgp-public (default ~/.singularity/sypgp).`;

function readPem(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new RuntimeError(
      `could not read ${what} ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      { op: 'read', path: file, errno: (e as NodeJS.ErrnoException).code ?? '', cause: e },
    );
  }
}

function loadKey(file: string, kind: 'private' | 'public'): crypto.KeyObject {
  const pem = readPem(file, 'key');
  try {
    return kind === 'private' ? crypto.createPrivateKey(pem) : crypto.createPublicKey(pem);
  } catch (e) {
    throw new RuntimeError(`${file} is not a PEM ${kind} key: ${(e as Error).message}`, { op: 'sign', path: file, cause: e });
  }
}

function oneImage(args: string[]): string {
  if (args.length !== 1) throw new UsageError(`requires exactly 1 arg(s), received ${args.length}`);
  return args[0]!;
}

function info(line: string): void {
  process.stderr.write(`INFO:    ${line}\n`);
}

/** The secret key of the user's PGP keyring to sign with, unlocked (its passphrase asked for when it has one). */
function pgpSigner(index: number | undefined): PgpSigner {
  const block = chooseKey(loadKeyring('secret'), 'secret', index, 'use');
  const passphrase = isProtected(block.primary) ? ask('Enter key passphrase : ', { secret: true }) : undefined;
  try {
    return { key: secretKeyOf(block.primary, passphrase), algo: block.algo, fingerprint: block.fingerprint };
  } catch (e) {
    throw new RuntimeError(`Failed to sign container: ${(e as Error).message}`, { op: 'sign', cause: e });
  }
}

function runSign(argv: string[]): number {
  const flags = parseFlags(argv, { ...targetFlags, keyidx: { short: 'k' } });
  const image = oneImage(flags.args);
  const keyFiles = flags.values.get('key') ?? [];
  const keys = keyFiles.map(f => loadKey(f, 'private'));
  const keyidx = intFlag(flags, 'keyidx');
  if (keyFiles.length && keyidx !== undefined) throw new UsageError('--key and --keyidx choose different kinds of key: give one');
  let pgp: PgpSigner | undefined;
  if (keyFiles.length) {
    info(`Signing image with key material from '${keyFiles.join("', '")}'`);
  } else {
    pgp = pgpSigner(keyidx);
    info(`Signing image with PGP key material (fingerprint ${hex(pgp.fingerprint)})`);
  }
  const img = SifImage.open(image, { writable: true });
  try {
    signImage(img, {
      keys,
      pgp,
      groupIds: intListFlag(flags, 'group-id'),
      objectIds: intListFlag(flags, 'sif-id'),
      all: boolFlag(flags, 'all'),
    });
  } catch (e) {
    if (e instanceof IntegrityError) throw new RuntimeError(`Failed to sign container: ${e.message}`, { op: 'sign', cause: e });
    throw e;
  } finally {
    img.close();
  }
  info(`Signature created and applied to image '${image}'`);
  return 0;
}

/**
 * One signature's report worded and aligned as Singularity's verify prints it (uncoloured, as it does when
 * stdout is not a terminal): the PGP signer from the local keyring, then the objects it covers. DSSE
 * signatures name no entity, so only their table is shown.
 */
function verifiedText(img: SifImage, v: VerifiedSignature): string {
  const lines: string[] = [];
  if (v.kind !== 'dsse') {
    const prefix = '[LOCAL]'.padEnd(18);
    lines.push(`${prefix} Signing entity: ${v.userIds[0] ?? ''}`);
    for (const fingerprint of v.signers) lines.push(`${prefix} Fingerprint: ${fingerprint}`);
  }
  if (v.objectIds.length) {
    lines.push('Objects verified:', `${'ID'.padEnd(4)}|${'GROUP'.padEnd(8)}|${'LINK'.padEnd(8)}|TYPE`, '-'.repeat(48));
    for (const id of v.objectIds) {
      const d = img.descriptor(id);
      const group = d.groupId === 0 ? 'NONE' : String(d.groupId);
      const link = d.linkedId === 0 ? 'NONE' : d.linkedToGroup ? `${d.linkedId} (G)` : String(d.linkedId);
      lines.push(`${String(id).padEnd(4)}|${group.padEnd(8)}|${link.padEnd(8)}|${dataTypeName(d.dataType)}`);
    }
  }
  return lines.map(l => `${l}\n`).join('');
}

function runVerify(argv: string[]): number {
  const flags = parseFlags(argv, {
    ...targetFlags,
    certificate: {},
    'legacy-insecure': { boolean: true },
    local: { short: 'l', boolean: true },
  });
  const image = oneImage(flags.args);
  const keyFiles = flags.values.get('key') ?? [];
  const certFiles = flags.values.get('certificate') ?? [];
  const keys = [
    ...keyFiles.map(f => loadKey(f, 'public')),
    ...certFiles.map(f => {
      try {
        return new crypto.X509Certificate(readPem(f, 'certificate')).publicKey;
      } catch (e) {
        throw new RuntimeError(`${f} is not a PEM certificate: ${(e as Error).message}`, { op: 'verify', path: f, cause: e });
      }
    }),
  ];
  const material = [...keyFiles, ...certFiles];
  info(material.length ? `Verifying image with key material from '${material.join("', '")}'` : 'Verifying image with PGP key material');
  const img = SifImage.open(image);
  try {
    const verified = verifyImage(img, {
      keys,
      pgpKeys: keys.length ? [] : trustedKeys(),
      groupIds: intListFlag(flags, 'group-id'),
      objectIds: intListFlag(flags, 'sif-id'),
      all: boolFlag(flags, 'all'),
      legacy: boolFlag(flags, 'legacy-insecure'),
    });
    for (const v of verified) process.stdout.write(verifiedText(img, v));
  } catch (e) {
    if (e instanceof IntegrityError) throw new RuntimeError(`Failed to verify container: ${e.message}`, { op: 'verify', cause: e });
    throw e;
  } finally {
    img.close();
  }
  info(`Verified signature(s) from image '${image}'`);
  return 0;
}

export const signCommand: SingularityCommand = {
  summary: 'Add digital signature(s) to an image',
  usage: signUsage,
  run: argv => withUsage(signUsage, () => runSign(argv)),
};

export const verifyCommand: SingularityCommand = {
  summary: 'Verify digital signature(s) within an image',
  usage: verifyUsage,
  run: argv => withUsage(verifyUsage, () => runVerify(argv)),
};
