// `key newpair|list|export|import|remove`: the user's local PGP keyrings (../keyring.ts), as Singularity
// manages them. There is no keyserver: keys go between people as exported files (and work with GnuPG).
import * as fs from 'node:fs';
import { armor, generateKey, userIdText } from '../../sif/pgp-keys.js';
import { type SingularityCommand } from '../command.js';
import { addKeys, chooseKey, describeKey, hex, keyringPath, loadKeyring, removeKey } from '../keyring.js';
import { ask } from '../prompt.js';
import { type FlagSpec, UsageError, boolFlag, intFlag, parseFlags, stringFlag, withUsage } from './sif-flags.js';
import { RuntimeError } from '../../errors.js';

const usage = `key <command> [options]

  newpair [-N|--name NAME] [-E|--email EMAIL] [-C|--comment TEXT] [-P|--password PASS] [-b|--bit-length N]
          create an RSA key pair (default 4096 bits) in your keyrings; what is not given is asked for
  list [-s|--secret]
          list the keys of your public (or secret) keyring
  export [-s|--secret] [-a|--armor] FILE
          write one key of your public (or secret) keyring to FILE (asking which when there are several)
  import FILE
          add the keys in FILE (armored or binary; a secret key also adds its public key)
  remove [-p|--public] [-s|--secret] [-b|--both] FINGERPRINT
          remove a key from your public keyring (--secret: the secret one, --both: both)
  The keyrings are pgp-public and pgp-secret in $SINGULARITY_SYPGPDIR (default ~/.singularity/sypgp).`;

function newpair(argv: string[]): number {
  const f = parseFlags(argv, {
    name: { short: 'N' },
    email: { short: 'E' },
    comment: { short: 'C' },
    password: { short: 'P' },
    'bit-length': { short: 'b' },
    push: { boolean: true },
  });
  if (f.args.length) throw new UsageError(`accepts 0 arg(s), received ${f.args.length}`);
  const bits = intFlag(f, 'bit-length') ?? 4096;
  if (bits < 1024 || bits > 16384) throw new RuntimeError(`--bit-length ${bits}: an RSA key is 1024 to 16384 bits`, { op: 'key newpair' });
  const name = stringFlag(f, 'name') ?? ask('Enter your name (e.g., John Doe) : ');
  if (!name.trim()) throw new RuntimeError('a key needs a name', { op: 'key newpair' });
  const email = stringFlag(f, 'email') ?? ask('Enter your email address (e.g., john.doe@example.com) : ');
  if (!/^[^@\s<>]+@[^@\s<>]+$/.test(email))
    throw new RuntimeError(`${JSON.stringify(email)} is not an email address`, { op: 'key newpair' });
  const comment = stringFlag(f, 'comment') ?? ask('Enter optional comment (e.g., development keys) : ');
  let password = stringFlag(f, 'password');
  if (password === undefined) {
    password = ask('Enter a passphrase : ', { secret: true });
    if (ask('Retype your passphrase : ', { secret: true }) !== password)
      throw new RuntimeError('the passphrases do not match', { op: 'key newpair' });
  }
  if (boolFlag(f, 'push')) process.stderr.write('WARNING: there is no keyserver to push to: the key stays in your local keyrings\n');
  process.stdout.write('Generating Entity and OpenPGP Key Pair... ');
  const key = generateKey({ userId: userIdText(name.trim(), comment.trim(), email.trim()), bits, passphrase: password });
  addKeys(key.secretKey);
  process.stdout.write(
    `done\nKey with fingerprint ${hex(key.fingerprint)} added to ${keyringPath('secret')} and ${keyringPath('public')}\n`,
  );
  return 0;
}

function list(argv: string[]): number {
  const f = parseFlags(argv, { secret: { short: 's', boolean: true } });
  if (f.args.length) throw new UsageError(`accepts 0 arg(s), received ${f.args.length}`);
  const kind = boolFlag(f, 'secret') ? 'secret' : 'public';
  process.stdout.write(`${kind === 'public' ? 'Public' : 'Private'} key listing (${keyringPath(kind)}):\n\n`);
  process.stdout.write(
    loadKeyring(kind)
      .map((b, i) => describeKey(i, b))
      .join(''),
  );
  return 0;
}

function exportKey(argv: string[]): number {
  const f = parseFlags(argv, { secret: { short: 's', boolean: true }, armor: { short: 'a', boolean: true } });
  if (f.args.length !== 1) throw new UsageError(`requires exactly 1 arg(s), received ${f.args.length}`);
  const file = f.args[0]!;
  const kind = boolFlag(f, 'secret') ? 'secret' : 'public';
  if (fs.existsSync(file)) throw new RuntimeError(`${file} already exists`, { op: 'key export', path: file, errno: 'EEXIST' });
  const key = chooseKey(loadKeyring(kind), kind, undefined, 'export');
  const data = boolFlag(f, 'armor') ? Buffer.from(armor(kind === 'secret' ? 'PRIVATE KEY BLOCK' : 'PUBLIC KEY BLOCK', key.raw)) : key.raw;
  fs.writeFileSync(file, data, { mode: 0o600, flag: 'wx' });
  process.stdout.write(
    `${kind === 'secret' ? 'Private' : 'Public'} key with fingerprint ${hex(key.fingerprint)} correctly exported to file: ${file}\n`,
  );
  return 0;
}

function importKey(argv: string[]): number {
  const f = parseFlags(argv, {});
  if (f.args.length !== 1) throw new UsageError(`requires exactly 1 arg(s), received ${f.args.length}`);
  let data: Buffer;
  try {
    data = fs.readFileSync(f.args[0]!);
  } catch (e) {
    throw new RuntimeError(`cannot read ${f.args[0]}: ${(e as Error).message}`, { op: 'read', path: f.args[0], cause: e });
  }
  for (const b of addKeys(data, f.args[0]!)) {
    process.stdout.write(
      `Key with fingerprint ${hex(b.fingerprint)} successfully added to the ${b.secret ? 'secret and public keyrings' : 'public keyring'}\n`,
    );
  }
  return 0;
}

function remove(argv: string[]): number {
  const spec: Record<string, FlagSpec> = {
    public: { short: 'p', boolean: true },
    secret: { short: 's', boolean: true },
    both: { short: 'b', boolean: true },
  };
  const f = parseFlags(argv, spec);
  if (f.args.length !== 1) throw new UsageError(`requires exactly 1 arg(s), received ${f.args.length}`);
  const fingerprint = f.args[0]!;
  if (!/^[0-9A-Fa-f]{40}$/.test(fingerprint))
    throw new RuntimeError(`${JSON.stringify(fingerprint)} is not a key fingerprint (40 hexadecimal digits, as key list shows)`, {
      op: 'key remove',
    });
  const both = boolFlag(f, 'both');
  const kinds = both ? (['public', 'secret'] as const) : boolFlag(f, 'secret') ? (['secret'] as const) : (['public'] as const);
  const removed = kinds.filter(kind => removeKey(kind, fingerprint));
  if (removed.length === 0)
    throw new RuntimeError(`no key matching the fingerprint ${fingerprint.toUpperCase()} found`, { op: 'key remove' });
  return 0;
}

export const keyCommand: SingularityCommand = {
  summary: 'Manage OpenPGP keys for signing and verifying images',
  usage,
  run: argv =>
    withUsage(usage, () => {
      const [sub, ...rest] = argv;
      switch (sub) {
        case 'newpair':
          return newpair(rest);
        case 'list':
          return list(rest);
        case 'export':
          return exportKey(rest);
        case 'import':
          return importKey(rest);
        case 'remove':
          return remove(rest);
        default:
          throw new UsageError(sub === undefined ? 'missing command' : `unknown command "${sub}"`);
      }
    }),
};
