// sign and verify: the reference's signed fixtures verify (DSSE, PGP, legacy), what we sign verifies with the
// fixture public keys, and tampering or the wrong key fails with a message naming what broke and exit 255.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SifImage } from '../../src/sif/index.js';
import { IMAGES, KEYS, singularity } from '../sif-helpers.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-sign-test-'));
t.teardown(() => fs.rmSync(scratch, { recursive: true, force: true }));
const key = (name: string): string => path.join(KEYS, name);
const fixture = (name: string): string => path.join(IMAGES, name);

/** A PGP keyring holding the fixtures' public key, exported by gpg the way a user would. */
const sypgp = path.join(scratch, 'sypgp');
fs.mkdirSync(sypgp, { mode: 0o700 });
const gpgHome = path.join(scratch, 'gnupg');
fs.mkdirSync(gpgHome, { mode: 0o700 });
spawnSync('gpg', ['--homedir', gpgHome, '--batch', '--quiet', '--import', key('private.asc')]);
fs.writeFileSync(path.join(sypgp, 'pgp-public'), spawnSync('gpg', ['--homedir', gpgHome, '--batch', '--export', '--armor']).stdout);
const withKeyring = { env: { ...process.env, SINGULARITY_SYPGPDIR: sypgp } };
const noKeyring = { env: { ...process.env, SINGULARITY_SYPGPDIR: path.join(scratch, 'empty') } };

/** A writable copy of a fixture. */
function copyOf(name: string): string {
  const file = path.join(scratch, `${Math.random().toString(36).slice(2)}-${name}`);
  fs.copyFileSync(fixture(name), file);
  fs.chmodSync(file, 0o644);
  return file;
}

function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] = b[0]! ^ 0xff;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

t.test("the reference's DSSE signatures verify with the Ed25519 and RSA keys that made them", async t => {
  for (const name of ['one-group-signed-dsse.sif', 'two-groups-signed-dsse.sif']) {
    for (const k of ['ed25519-public.pem', 'rsa-public.pem']) {
      const r = singularity(['verify', '--key', key(k), fixture(name)]);
      t.equal(r.code, 0, `${name} with ${k}`);
      t.match(r.stderr, `Verified signature(s) from image '${fixture(name)}'`);
      t.notMatch(r.stdout, 'Signing entity', 'a DSSE signature names no PGP entity');
    }
  }
  const two = singularity(['verify', '--key', key('ed25519-public.pem'), fixture('two-groups-signed-dsse.sif')]);
  const table = (...rows: string[]): string =>
    ['Objects verified:', 'ID  |GROUP   |LINK    |TYPE', '-'.repeat(48), ...rows].join('\n') + '\n';
  t.equal(
    two.stdout,
    table('1   |1       |NONE    |FS', '2   |1       |NONE    |FS') + table('3   |2       |NONE    |FS'),
    'one table of verified objects per signature, as Singularity prints it',
  );
  const wrong = singularity(['verify', '--key', key('ecdsa-public.pem'), fixture('one-group-signed-dsse.sif')]);
  t.equal(wrong.code, 255, 'a key that did not sign fails');
  t.match(wrong.stderr, /FATAL: +Failed to verify container: signature object 3 \(group 1\): no given key verifies the DSSE signature/);
  const noKey = singularity(['verify', fixture('one-group-signed-dsse.sif')], noKeyring);
  t.equal(noKey.code, 255);
  t.match(noKey.stderr, 'give the public key with --key');
});

t.test("the reference's PGP signatures verify against the local keyring", async t => {
  for (const name of ['one-group-signed-pgp.sif', 'two-groups-signed-pgp.sif']) {
    const r = singularity(['verify', fixture(name)], withKeyring);
    t.equal(r.code, 0, name);
    t.match(
      r.stdout,
      [
        `${'[LOCAL]'.padEnd(18)} Signing entity: Unit Test <unit@test.com>`,
        `${'[LOCAL]'.padEnd(18)} Fingerprint: 12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84`,
        'Objects verified:',
        'ID  |GROUP   |LINK    |TYPE',
        '-'.repeat(48),
        '1   |1       |NONE    |FS',
      ].join('\n'),
      `${name}: Singularity's signer lines and object table`,
    );
  }
  const missing = singularity(['verify', fixture('one-group-signed-pgp.sif')], noKeyring);
  t.equal(missing.code, 255, 'unknown signer fails');
  t.match(missing.stderr, 'signing key 12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84 is not in the keyring');
});

t.test('legacy signatures verify only with --legacy-insecure', async t => {
  const cases: Array<[string, string[]]> = [
    ['one-group-signed-legacy.sif', []],
    ['one-group-signed-legacy-group.sif', []],
    ['one-group-signed-legacy-all.sif', ['--all']],
    ['two-groups-signed-legacy.sif', []],
    ['two-groups-signed-legacy-group.sif', []],
    ['two-groups-signed-legacy-all.sif', ['--all']],
  ];
  for (const [name, flags] of cases) {
    t.equal(singularity(['verify', '--legacy-insecure', ...flags, fixture(name)], withKeyring).code, 0, `${name} ${flags.join(' ')}`);
    const strict = singularity(['verify', fixture(name)], withKeyring);
    t.equal(strict.code, 255, `${name} without --legacy-insecure`);
    t.match(strict.stderr, 'no signature found');
  }
  const tampered = copyOf('one-group-signed-legacy.sif');
  flipByte(tampered, 36864);
  const r = singularity(['verify', '--legacy-insecure', tampered], withKeyring);
  t.equal(r.code, 255);
  t.match(r.stderr, 'the signed data was modified since signing');
});

t.test('sign then verify, per key type (--key)', async t => {
  for (const [priv, pub] of [
    ['ed25519-private.pem', 'ed25519-public.pem'],
    ['rsa-private.pem', 'rsa-public.pem'],
    ['ecdsa-private.pem', 'ecdsa-public.pem'],
  ] as const) {
    const file = copyOf('two-groups.sif');
    const s = singularity(['sign', '--key', key(priv), file]);
    t.equal(s.code, 0, `sign with ${priv}`);
    t.match(s.stderr, `Signature created and applied to image '${file}'`);
    const sigs = SifImage.open(file)
      .descriptors()
      .filter(d => d.signature);
    t.same(
      sigs.map(d => [d.groupId, d.linkedToGroup, d.linkedId]),
      [
        [0, true, 1],
        [0, true, 2],
      ],
      'one ungrouped signature per group, linked to it',
    );
    t.equal(singularity(['verify', '--key', key(pub), file]).code, 0, `verify with ${pub}`);
    const other = pub === 'rsa-public.pem' ? 'ed25519-public.pem' : 'rsa-public.pem';
    t.equal(singularity(['verify', '--key', key(other), file]).code, 255, `${other} does not verify it`);
  }
});

t.test('groups, objects and --all', async t => {
  const file = copyOf('two-groups.sif');
  t.equal(singularity(['sign', '--key', key('ed25519-private.pem'), '-g', '2', file]).code, 0);
  const pub = ['--key', key('ed25519-public.pem')];
  t.equal(singularity(['verify', ...pub, '--group-id', '2', file]).code, 0, 'the signed group verifies');
  const unsigned = singularity(['verify', ...pub, '-g', '1', file]);
  t.equal(unsigned.code, 255, 'the unsigned group does not');
  t.match(unsigned.stderr, 'object group 1: no signature found');
  t.equal(singularity(['verify', ...pub, file]).code, 255, 'by default every group must be signed');
  t.equal(singularity(['sign', '--key', key('ed25519-private.pem'), '--sif-id', '1', file]).code, 0);
  t.equal(singularity(['verify', ...pub, '-i', '1', file]).code, 0, 'an object signature verifies that object');
  t.equal(singularity(['verify', ...pub, '-i', '3', file]).code, 0, 'an object covered by its group signature');
  t.equal(singularity(['verify', ...pub, '-i', '2', file]).code, 255, 'an uncovered object fails');
  const all = copyOf('two-groups.sif');
  t.equal(singularity(['sign', '--key', key('ecdsa-private.pem'), '--all', all]).code, 0);
  t.same(
    SifImage.open(all)
      .descriptors()
      .filter(d => d.signature)
      .map(d => [d.linkedToGroup, d.linkedId]),
    [
      [false, 1],
      [false, 2],
      [false, 3],
    ],
    '--all signs each object',
  );
  t.equal(singularity(['verify', '--key', key('ecdsa-public.pem'), '--all', all]).code, 0);
  const bad = singularity(['sign', '--key', key('ed25519-private.pem'), '-g', '7', copyOf('two-groups.sif')]);
  t.equal(bad.code, 255);
  t.match(bad.stderr, 'object group 7 does not exist');
});

t.test('tampering is detected and named', async t => {
  const signed = copyOf('one-group.sif');
  t.equal(singularity(['sign', '--key', key('rsa-private.pem'), signed]).code, 0);
  const pub = ['--key', key('rsa-public.pem')];
  const cases: Array<[string, (file: string) => void, string]> = [
    ['object data', f => flipByte(f, 36864 + 10), 'the data of object 2 was modified since signing'],
    ['descriptor name', f => flipByte(f, 4096 + 585 + 73), 'the descriptor of object 2 was modified since signing'],
    ['header id', f => flipByte(f, 50), 'the image header was modified since signing'],
    [
      'signature bytes',
      f => {
        const img = SifImage.open(f);
        const sig = img.descriptors().find(d => d.signature)!;
        const env = JSON.parse(img.readObject(sig.id).toString());
        const raw = Buffer.from(env.signatures[0].sig, 'base64');
        raw[5] ^= 1;
        const patched = Buffer.from(JSON.stringify({ ...env, signatures: [{ ...env.signatures[0], sig: raw.toString('base64') }] }));
        img.close();
        const fd = fs.openSync(f, 'r+');
        fs.writeSync(fd, patched, 0, patched.length, sig.offset);
        fs.closeSync(fd);
      },
      'no given key verifies the DSSE signature',
    ],
  ];
  for (const [what, tamper, message] of cases) {
    const file = path.join(scratch, `tamper-${what.replace(/ /g, '-')}.sif`);
    fs.copyFileSync(signed, file);
    tamper(file);
    const r = singularity(['verify', ...pub, file]);
    t.equal(r.code, 255, `${what}: exit 255`);
    t.match(r.stderr, message, `${what}: ${message}`);
  }
  const added = path.join(scratch, 'added.sif');
  fs.copyFileSync(signed, added);
  const extra = path.join(scratch, 'extra.bin');
  fs.writeFileSync(extra, 'more');
  t.equal(singularity(['sif', 'add', '--datatype', '7', '--groupid', '1', added, extra]).code, 0);
  const r = singularity(['verify', ...pub, added]);
  t.equal(r.code, 255, 'an object added to a signed group');
  t.match(r.stderr, "differ from the group's objects");
});

t.test('bad keys and arguments', async t => {
  const file = copyOf('one-group.sif');
  // Without --key the signature is a PGP one, from a keyring that here has no key.
  const emptyKeyring = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-sypgp-'));
  t.teardown(() => fs.rmSync(emptyKeyring, { recursive: true, force: true }));
  const noKey = singularity(['sign', file], { env: { ...process.env, SINGULARITY_SYPGPDIR: emptyKeyring } });
  t.equal(noKey.code, 255);
  t.match(noKey.stderr, `the secret keyring ${emptyKeyring}/pgp-secret has no keys: create one with "singularity key newpair"`);
  const pubAsPriv = singularity(['sign', '--key', key('rsa-public.pem'), file]);
  t.equal(pubAsPriv.code, 255);
  t.match(pubAsPriv.stderr, 'is not a PEM private key');
  const missing = singularity(['verify', '--key', path.join(scratch, 'nope.pem'), file]);
  t.equal(missing.code, 255);
  t.match(missing.stderr, 'could not read key');
  t.same(SifImage.open(file).descriptors().length, 2, 'failed signs leave the image unchanged');
  const usage = singularity(['verify', '--bogus', file]);
  t.equal(usage.code, 1, 'a usage error, as in Singularity');
  t.match(usage.stderr, 'Error for command "verify": unknown flag: --bogus');
});
