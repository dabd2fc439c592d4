// PGP keys and signatures as the unprivileged test user: key newpair/list/export/import/remove on the user's own
// keyrings, sign with a key of the secret keyring (plain or passphrase-protected, chosen by index or asked for),
// and verify, which finds the signer in the public keyring by the fingerprint the signature names. GnuPG (run by
// root in a scratch home) is the reference: it reads our keys and signatures, and its keys sign SIFs here.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { tmpdir } from '../helpers.js';
import { kit, sandbox, sif, type SingOptions } from '../singularity-run-kit.js';
import { sifObjects } from '../singbuild-kit.js';

t.setTimeout(10 * 60_000);
const k = kit(t);
const image = sandbox(k, { runscript: 'echo signed image runs as $(id -u)' });

/** A fresh keyring directory of the user's, and tsrt-singularity run with it. */
function keyring(): { dir: string; sing: (args: string[], o?: SingOptions) => ReturnType<typeof k.sing> } {
  const dir = path.join(k.dir('singrun-keys-'), 'sypgp');
  return { dir, sing: (args, o = {}) => k.sing(args, { ...o, env: { SINGULARITY_SYPGPDIR: dir, ...o.env } }) };
}

const NEWPAIR = ['key', 'newpair', '-N', 'Test User', '-E', 'test@example.org', '-C', 'tsrt tests', '-b', '2048'];

/** The fingerprint `key newpair` reported. */
function fingerprintOf(stdout: string): string {
  return /Key with fingerprint ([0-9A-F]{40}) added/.exec(stdout)?.[1] ?? '';
}

/** GnuPG as root in a scratch home (its agent stopped at the end). */
function gnupg(tt: { teardown(fn: () => void): void }) {
  const home = tmpdir('tsrt-gnupg-');
  fs.chmodSync(home, 0o700);
  const gpg = (args: string[], input?: string) =>
    spawnSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
      env: { ...process.env, GNUPGHOME: home },
      encoding: 'utf8',
      input,
    });
  tt.teardown(() => {
    spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: home } });
    fs.rmSync(home, { recursive: true, force: true });
  });
  return { home, gpg };
}

/** Copies a file somewhere the test user can read it. */
function forUser(file: string): string {
  const to = path.join(k.dir('singrun-keyfile-'), path.basename(file));
  fs.copyFileSync(file, to);
  fs.chownSync(to, k.user.uid, k.user.gid);
  return to;
}

t.test("key newpair makes an RSA pair in the user's keyrings; key list shows it (public and secret)", async t => {
  const kr = keyring();
  const r = kr.sing([...NEWPAIR, '-P', '']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^Generating Entity and OpenPGP Key Pair\.\.\. done\n/);
  const fp = fingerprintOf(r.stdout);
  t.match(fp, /^[0-9A-F]{40}$/);
  for (const [flags, title, file] of [
    [[], 'Public', 'pgp-public'],
    [['--secret'], 'Private', 'pgp-secret'],
  ] as const) {
    const list = kr.sing(['key', 'list', ...flags]);
    t.equal(list.code, 0, list.stderr);
    t.match(
      list.stdout,
      new RegExp(
        `^${title} key listing \\(${path.join(kr.dir, file)}\\):\n\n0\\)  User: {14}Test User \\(tsrt tests\\) <test@example\\.org>\n` +
          ` {4}Creation time: {5}\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\+0000 UTC\n {4}Fingerprint: {7}${fp}\n {4}Length \\(in bits\\): {2}2048\n\n$`,
      ),
    );
    t.equal(fs.statSync(path.join(kr.dir, file)).mode & 0o777, 0o600, `${file} is the user's alone`);
  }
  t.equal(fs.statSync(kr.dir).mode & 0o777, 0o700);
});

t.test("sign with the keyring's key; verify names the signer found by its fingerprint; GnuPG agrees", async t => {
  const kr = keyring();
  const fp = fingerprintOf(kr.sing([...NEWPAIR, '-P', '']).stdout);
  const file = sif(k, image);
  const signed = kr.sing(['sign', file]);
  t.equal(signed.code, 0, signed.stderr);
  t.match(signed.stderr, `INFO:    Signing image with PGP key material (fingerprint ${fp})`);
  const sig = sifObjects(file).objects.find(o => o.dataType === 0x4005)!;
  t.equal(sig.signature?.entity.subarray(0, 20).toString('hex').toUpperCase(), fp, "the signature object names the key's fingerprint");
  const verified = kr.sing(['verify', file]);
  t.equal(verified.code, 0, verified.stderr);
  t.match(
    verified.stdout,
    `[LOCAL]            Signing entity: Test User (tsrt tests) <test@example.org>\n[LOCAL]            Fingerprint: ${fp}\nObjects verified:\n`,
  );
  t.match(verified.stderr, `INFO:    Verified signature(s) from image '${file}'`);
  // GnuPG reads the exported public key and the signature object.
  const exported = path.join(k.dir('singrun-export-'), 'pub.asc');
  t.equal(kr.sing(['key', 'export', '--armor', exported]).code, 0);
  t.match(fs.readFileSync(exported, 'utf8'), /^-----BEGIN PGP PUBLIC KEY BLOCK-----\n/);
  const { gpg } = gnupg(t);
  t.equal(gpg(['--import', exported]).status, 0);
  const dump = spawnSync('runuser', [
    '-u',
    k.user.name,
    '--',
    path.join(path.dirname(new URL(import.meta.url).pathname), '../../dist/tsrt-singularity'),
    'sif',
    'dump',
    String(sig.id),
    file,
  ]).stdout.toString();
  const check = gpg(['--verify'], dump);
  t.equal(check.status, 0, check.stderr);
  t.match(check.stderr, /Good signature from "Test User \(tsrt tests\) <test@example\.org>"/);
  const run = k.sing(['run', file]);
  t.equal(run.stdout, `signed image runs as ${k.user.uid}\n`, 'the signed image runs');
});

t.test("another user's keyring: verify fails naming the key until it is imported, and again once removed", async t => {
  const alice = keyring();
  const fp = fingerprintOf(alice.sing([...NEWPAIR, '-P', '']).stdout);
  const file = sif(k, image);
  t.equal(alice.sing(['sign', file]).code, 0);
  const exported = path.join(k.dir('singrun-export-'), 'alice.pub');
  t.equal(alice.sing(['key', 'export', exported]).code, 0);
  const bob = keyring();
  const unknown = bob.sing(['verify', file]);
  t.equal(unknown.code, 255);
  t.match(unknown.stderr, `signing key ${fp} is not in the keyring`);
  const imported = bob.sing(['key', 'import', exported]);
  t.equal(imported.code, 0, imported.stderr);
  t.equal(imported.stdout, `Key with fingerprint ${fp} successfully added to the public keyring\n`);
  t.equal(bob.sing(['verify', file]).code, 0, 'verifies once the key is in the keyring');
  const again = bob.sing(['key', 'import', exported]);
  t.equal(again.code, 255);
  t.match(again.stderr, `the key with fingerprint ${fp} already belongs to the public keyring`);
  t.equal(bob.sing(['key', 'remove', fp.toLowerCase()]).code, 0);
  t.equal(bob.sing(['verify', file]).code, 255, 'and fails again once removed');
  const gone = bob.sing(['key', 'remove', fp]);
  t.equal(gone.code, 255);
  t.match(gone.stderr, `no key matching the fingerprint ${fp} found`);
  t.equal(bob.sing(['key', 'list']).stdout, `Public key listing (${path.join(bob.dir, 'pgp-public')}):\n\n`);
});

t.test('a passphrase-protected key: the passphrase is asked for; a wrong one fails and signs nothing', async t => {
  const kr = keyring();
  const made = kr.sing([...NEWPAIR, '-P', 'sesame']);
  t.equal(made.code, 0, made.stderr);
  t.match(
    fs.readFileSync(path.join(kr.dir, 'pgp-secret')).toString('latin1'),
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the S2K usage bytes of an OpenPGP secret key packet
    /\xfe\x09\x03/,
    'protected: AES-256 with an iterated and salted S2K',
  );
  const file = sif(k, image);
  const wrong = kr.sing(['sign', file], { input: 'open\n' });
  t.equal(wrong.code, 255);
  t.match(wrong.stderr, 'Enter key passphrase : ');
  t.match(wrong.stderr, 'FATAL:   Failed to sign container: wrong passphrase for the secret key');
  t.notOk(
    sifObjects(file).objects.some(o => o.dataType === 0x4005),
    'nothing signed',
  );
  const right = kr.sing(['sign', file], { input: 'sesame\n' });
  t.equal(right.code, 0, right.stderr);
  t.equal(kr.sing(['verify', file]).code, 0);
  // The same questions newpair asks when flags do not answer them (here from a pipe).
  const asked = keyring();
  const r = asked.sing(['key', 'newpair', '-b', '2048'], { input: 'Piped User\npiped@example.org\n\npw\npw\n' });
  t.equal(r.code, 0, r.stderr);
  t.match(asked.sing(['key', 'list']).stdout, 'User:              Piped User <piped@example.org>');
  const mismatch = keyring().sing(['key', 'newpair', '-b', '2048'], { input: 'X\nx@example.org\n\npw\nother\n' });
  t.match(mismatch.stderr, 'FATAL:   the passphrases do not match');
});

t.test('GnuPG keys: a secret key exported by gpg is imported (with its public key) and signs; key export --secret', async t => {
  const { gpg } = gnupg(t);
  t.equal(gpg(['--quick-gen-key', 'Ed Gpg <ed@example.org>', 'ed25519', 'sign', 'never']).status, 0);
  const exported = gpg(['--armor', '--export-secret-keys', 'ed@example.org']).stdout;
  const gpgFp = /fpr:+([0-9A-F]{40}):/.exec(gpg(['--with-colons', '--fingerprint', 'ed@example.org']).stdout)?.[1];
  const file = path.join(tmpdir('tsrt-gpgkey-'), 'ed.asc');
  t.teardown(() => fs.rmSync(path.dirname(file), { recursive: true, force: true }));
  fs.writeFileSync(file, exported);
  const kr = keyring();
  kr.sing([...NEWPAIR, '-P', '']);
  const imported = kr.sing(['key', 'import', forUser(file)]);
  t.equal(imported.code, 0, imported.stderr);
  t.equal(imported.stdout, `Key with fingerprint ${gpgFp} successfully added to the secret and public keyrings\n`);
  const image2 = sif(k, image);
  // Two secret keys: which one is asked for, or chosen with --keyidx.
  const chosen = kr.sing(['sign', image2], { input: '1\n' });
  t.equal(chosen.code, 0, chosen.stderr);
  t.match(chosen.stdout, /0\)  User: +Test User[\s\S]*1\)  User: +Ed Gpg <ed@example\.org>/);
  t.match(chosen.stderr, 'Enter # of private key to use : ');
  const verified = kr.sing(['verify', image2]);
  t.equal(verified.code, 0, verified.stderr);
  t.match(verified.stdout, `Fingerprint: ${gpgFp}`);
  const byIndex = sif(k, image);
  t.equal(kr.sing(['sign', '--keyidx', '1', byIndex]).code, 0);
  t.match(kr.sing(['verify', byIndex]).stdout, `Signing entity: Ed Gpg <ed@example.org>`);
  const secretOut = path.join(k.dir('singrun-export-'), 'secret.gpg');
  const ex = kr.sing(['key', 'export', '--secret', secretOut], { input: '1\n' });
  t.equal(ex.code, 0, ex.stderr);
  t.equal(fs.statSync(secretOut).mode & 0o777, 0o600);
  const reimport = gnupg(t);
  const back = reimport.gpg(['--import', secretOut]);
  t.equal(back.status, 0, back.stderr);
  t.match(reimport.gpg(['--list-secret-keys', '--with-colons']).stdout, `fpr:::::::::${gpgFp}:`, 'gpg reads the secret key we export');
});

t.test('bad key input is refused clearly', async t => {
  const kr = keyring();
  const junk = path.join(k.dir('singrun-junk-'), 'junk');
  fs.writeFileSync(junk, 'not a key\n');
  const notKey = kr.sing(['key', 'import', junk]);
  t.equal(notKey.code, 255);
  t.equal(notKey.stderr, `FATAL:   ${junk} is not OpenPGP key data: malformed OpenPGP packet header\n`);
  const empty0 = path.join(k.dir('singrun-junk-'), 'empty.asc');
  fs.writeFileSync(empty0, '');
  t.match(kr.sing(['key', 'import', empty0]).stderr, `FATAL:   no OpenPGP key found in ${empty0}`);
  t.match(kr.sing(['key', 'remove', 'ABCD']).stderr, 'is not a key fingerprint (40 hexadecimal digits');
  const empty = kr.sing(['sign', sif(k, image)]);
  t.equal(empty.code, 255);
  t.match(empty.stderr, 'has no keys: create one with "singularity key newpair"');
  t.match(
    kr.sing([...NEWPAIR.slice(0, 2), '-N', 'X', '-E', 'not-an-email', '-C', '', '-P', '']).stderr,
    '"not-an-email" is not an email address',
  );
});
