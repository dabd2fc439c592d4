// hack/install.sh into a staging DESTDIR: the tree it makes (files, modes, links, the list --uninstall reads),
// a reinstall and an uninstall that leave exactly what they should, and the refusals: an install dir another
// user can write or own (R9), a file in the way that is not ours. The site config examples it installs parse,
// and package.json names every man page the build writes (for an npm install).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';

import { parseSiteConfig as parseTsrtConfig } from '../../src/runtime/site-config.js';
import { defaults, parseSiteConfig as parseSingularityConfig } from '../../src/singularity/siteconfig.js';
import { REPO, testUser, tmpdir } from '../helpers.js';

const INSTALL = path.join(REPO, 'hack', 'install.sh');
const PAGES = fs.readdirSync(path.join(REPO, 'dist', 'man')).sort();
const isRoot = process.getuid?.() === 0;

function install(destdir: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('/bin/bash', [INSTALL, ...args], { env: { ...process.env, DESTDIR: destdir }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Every entry below dir: relative path, then "dir", "MODE file" or "link -> TARGET". */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = path.join(rel, name);
      const st = fs.lstatSync(path.join(dir, r));
      if (st.isSymbolicLink()) out.push(`${r} link -> ${fs.readlinkSync(path.join(dir, r))}`);
      else if (st.isDirectory()) {
        out.push(`${r} dir ${(st.mode & 0o7777).toString(8)}`);
        walk(r);
      } else out.push(`${r} ${(st.mode & 0o7777).toString(8)} file`);
    }
  };
  walk('');
  return out;
}

function expectedTree(prefix: string, singularity: boolean): string[] {
  const p = prefix.replace(/^\//, '');
  const dirs = [
    'bin',
    'share',
    'share/bash-completion',
    'share/bash-completion/completions',
    'share/doc',
    'share/doc/tsrt',
    'share/doc/tsrt/examples',
    'share/man',
    'share/man/man1',
    'share/man/man8',
    'share/tsrt',
  ];
  const entries = [
    ...p.split('/').map((_, i, a) => `${a.slice(0, i + 1).join('/')} dir 755`),
    ...dirs.map(d => `${p}/${d} dir 755`),
    `${p}/bin/tsrt 755 file`,
    `${p}/bin/tsrt-core 755 file`,
    `${p}/bin/tsrt-singularity 755 file`,
    `${p}/share/bash-completion/completions/tsrt 644 file`,
    `${p}/share/bash-completion/completions/tsrt-singularity 644 file`,
    `${p}/share/doc/tsrt/examples/singularity.conf 644 file`,
    `${p}/share/doc/tsrt/examples/tsrt.conf 644 file`,
    ...PAGES.map(f => `${p}/share/man/man${f.slice(-1)}/${f} 644 file`),
    `${p}/share/tsrt/installed 644 file`,
  ];
  if (singularity) {
    entries.push(
      `${p}/bin/run-singularity 755 file`,
      `${p}/bin/singularity link -> tsrt-singularity`,
      `${p}/share/bash-completion/completions/singularity link -> tsrt-singularity`,
      `${p}/share/man/man1/singularity.1 link -> tsrt-singularity.1`,
    );
  }
  return entries.sort();
}

t.test('install into a DESTDIR: the binaries, every man page, completion and the examples, nothing else', async t => {
  const dest = tmpdir('tsrt-install-');
  t.teardown(() => fs.rmSync(dest, { recursive: true, force: true }));
  const r = install(dest, ['/opt/tsrt']);
  t.equal(r.code, 0, `install exits 0 (${r.stderr.trim()})`);
  t.same(tree(dest), expectedTree('/opt/tsrt', false), 'the tree');
  for (const bin of ['tsrt', 'tsrt-singularity']) {
    t.ok(
      fs.readFileSync(path.join(dest, 'opt/tsrt/bin', bin)).equals(fs.readFileSync(path.join(REPO, 'dist', bin))),
      `bin/${bin} is dist/${bin}`,
    );
  }
  const v = spawnSync(path.join(dest, 'opt/tsrt/bin/tsrt'), ['--version'], { encoding: 'utf8' });
  t.match(v.stdout, /^tsrt version /, 'the installed tsrt runs');
  const manifest = fs.readFileSync(path.join(dest, 'opt/tsrt/share/tsrt/installed'), 'utf8');
  t.match(manifest, /^file \/opt\/tsrt\/bin\/tsrt$/m, 'the list names the installed paths, not the staged ones');
  t.notMatch(manifest, dest, 'no DESTDIR in the list');
});

t.test(
  '--singularity adds run-singularity and the singularity names; a reinstall without it takes them away; --uninstall leaves nothing',
  async t => {
    const dest = tmpdir('tsrt-install-');
    t.teardown(() => fs.rmSync(dest, { recursive: true, force: true }));
    t.equal(install(dest, ['--singularity', '/usr']).code, 0, 'install --singularity');
    t.same(tree(dest), expectedTree('/usr', true), 'the tree with the singularity names');
    const run = fs.readFileSync(path.join(dest, 'usr/bin/run-singularity'), 'utf8');
    t.match(run, /^#!\/bin\/sh/, 'run-singularity is the script images name');
    t.equal(install(dest, ['/usr']).code, 0, 'reinstall without --singularity');
    t.same(tree(dest), expectedTree('/usr', false), 'the singularity names are gone');
    const r = install(dest, ['--uninstall', '/usr']);
    t.equal(r.code, 0, `uninstall exits 0 (${r.stderr.trim()})`);
    t.same(tree(dest), [], 'everything the install made is gone, its directories too');
    t.equal(install(dest, ['--uninstall', '/usr']).code, 1, 'a second uninstall finds nothing to remove');
  },
);

t.test('an uninstall keeps a directory something else has put files in', async t => {
  const dest = tmpdir('tsrt-install-');
  t.teardown(() => fs.rmSync(dest, { recursive: true, force: true }));
  t.equal(install(dest, ['/usr']).code, 0, 'install');
  fs.writeFileSync(path.join(dest, 'usr/bin/other'), '');
  t.equal(install(dest, ['--uninstall', '/usr']).code, 0, 'uninstall');
  t.same(tree(dest), ['usr dir 755', 'usr/bin dir 755', 'usr/bin/other 644 file'], 'only the other file and its directories stay');
});

t.test('a file in the way that the install did not put there is not replaced', async t => {
  const dest = tmpdir('tsrt-install-');
  t.teardown(() => fs.rmSync(dest, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dest, 'usr/bin'), { recursive: true });
  fs.writeFileSync(path.join(dest, 'usr/bin/singularity'), '#!/bin/sh\necho the real one\n');
  const r = install(dest, ['--singularity', '/usr']);
  t.equal(r.code, 1, 'install fails');
  t.match(r.stderr, `install: ${dest}/usr/bin/singularity exists and was not installed by hack/install.sh`);
  t.equal(fs.readFileSync(path.join(dest, 'usr/bin/singularity'), 'utf8'), '#!/bin/sh\necho the real one\n', 'it is untouched');
});

t.test('R9: an install dir, or one above it, that another user can write is refused before anything is written', async t => {
  const base = tmpdir('tsrt-install-');
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
  const me = process.getuid!();
  for (const mode of [0o777, 0o775, 0o757]) {
    const dest = fs.mkdtempSync(path.join(base, 'd'));
    fs.mkdirSync(path.join(dest, 'usr/share'), { recursive: true });
    fs.chmodSync(path.join(dest, 'usr'), mode);
    const r = install(dest, ['/usr']);
    t.equal(r.code, 1, `mode ${mode.toString(8)} where bin/ would be made: refused`);
    t.match(
      r.stderr,
      `${dest}/usr/bin would be made in ${dest}/usr (owner uid ${me}, mode ${mode.toString(8)}), which another user can write`,
    );
    t.same(tree(dest), [`usr dir ${mode.toString(8)}`, 'usr/share dir 755'], 'nothing written');
  }
  let dest = fs.mkdtempSync(path.join(base, 'd'));
  fs.mkdirSync(path.join(dest, 'usr/bin'), { recursive: true });
  fs.chmodSync(path.join(dest, 'usr'), 0o777);
  let r = install(dest, ['/usr']);
  t.equal(r.code, 1, 'an existing install dir in a world-writable one: refused');
  t.match(r.stderr, `${dest}/usr/bin lies in ${dest}/usr (owner uid ${me}, mode 777), where another user can replace it`);
  t.same(tree(dest), ['usr dir 777', 'usr/bin dir 755'], 'nothing written');
  dest = fs.mkdtempSync(path.join(base, 'd'));
  fs.mkdirSync(path.join(dest, 'usr/bin'), { recursive: true });
  fs.chmodSync(path.join(dest, 'usr/bin'), 0o777);
  r = install(dest, ['/usr']);
  t.equal(r.code, 1, 'an install dir that is world-writable: refused');
  t.match(r.stderr, `${dest}/usr/bin (owner uid ${me}, mode 777) can be written by another user`);
  t.same(tree(dest), ['usr dir 755', 'usr/bin dir 777'], 'nothing written');
});

t.test('R9: no directory of the install is made in a sticky world-writable one (/tmp), an existing own one there is fine', async t => {
  const base = tmpdir('tsrt-install-');
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
  const sticky = path.join(base, 'tmp');
  fs.mkdirSync(sticky);
  fs.chmodSync(sticky, 0o1777);
  const r = install(path.join(sticky, 'stage'), ['/usr']);
  t.equal(r.code, 1, 'a DESTDIR to be made in the sticky directory: refused');
  t.match(r.stderr, `${sticky}/stage would be made in ${sticky} (owner uid ${process.getuid!()}, mode 1777), which another user can write`);
  t.same(fs.readdirSync(sticky), [], 'nothing made');
  fs.mkdirSync(path.join(sticky, 'stage'), { mode: 0o700 });
  t.equal(install(path.join(sticky, 'stage'), ['/usr']).code, 0, 'an existing DESTDIR of ours in it: installed');
});

t.test(
  'R9: an install dir owned by another user, or reached through their symlink, is refused',
  { skip: isRoot ? false : 'needs root to give a directory to another user' },
  async t => {
    const user = testUser();
    const base = tmpdir('tsrt-install-');
    t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
    const dest = path.join(base, 'stage');
    fs.mkdirSync(path.join(dest, 'usr/share'), { recursive: true });
    fs.chownSync(path.join(dest, 'usr/share'), user.uid, user.gid);
    let r = install(dest, ['/usr']);
    t.equal(r.code, 1, 'a directory of the test user on the way: refused');
    t.match(
      r.stderr,
      `${dest}/usr/share/man would be made in ${dest}/usr/share (owner uid ${user.uid}, mode 755), which another user can write`,
    );
    t.same(tree(dest), ['usr dir 755', 'usr/share dir 755'], 'nothing written');

    // The user's symlink in a sticky directory could be turned elsewhere between the check and the install.
    const sticky = path.join(base, 'tmp');
    fs.mkdirSync(sticky);
    fs.chmodSync(sticky, 0o1777);
    const own = path.join(base, 'own');
    fs.mkdirSync(own);
    fs.symlinkSync(own, path.join(sticky, 'link'));
    fs.lchownSync(path.join(sticky, 'link'), user.uid, user.gid);
    r = install(path.join(sticky, 'link'), ['/usr']);
    t.equal(r.code, 1, "the test user's symlink in a sticky directory: refused");
    t.match(r.stderr, `${sticky}/link lies in ${sticky} (owner uid 0, mode 1777), where another user can replace it`);
    t.same(fs.readdirSync(own), [], 'nothing written where it pointed');
    fs.lchownSync(path.join(sticky, 'link'), 0, 0);
    r = install(path.join(sticky, 'link'), ['/usr']);
    t.equal(r.code, 0, `root's own symlink there: installed through it (${r.stderr.trim()})`);
    t.ok(fs.existsSync(path.join(own, 'usr/bin/tsrt')), 'into its target');
  },
);

t.test('PREFIX and DESTDIR must be absolute, without . or .. components', async t => {
  for (const [env, args, why] of [
    ['', ['usr'], 'PREFIX must be an absolute path'],
    ['', ['/usr/../etc'], 'PREFIX must not hold . or .. components'],
    ['stage', ['/usr'], 'DESTDIR must be an absolute path'],
    ['/tmp/./x', ['/usr'], 'DESTDIR must not hold . or .. components'],
  ] as const) {
    const r = install(env, [...args]);
    t.equal(r.code, 2, `${env || '(no DESTDIR)'} ${args.join(' ')}: usage error`);
    t.match(r.stderr, why);
  }
});

t.test('the tsrt.conf example allows nothing as it is, and its commented line is a valid setting', async t => {
  const text = fs.readFileSync(path.join(REPO, 'docs/examples/tsrt.conf'), 'utf8');
  t.same(parseTsrtConfig(text, 'tsrt.conf').sifAnnotationDirs, [], 'as installed: no directory');
  const uncommented = text.replace(/^#(?=\S+ [^:]* = )/gm, '');
  t.same(parseTsrtConfig(uncommented, 'tsrt.conf').sifAnnotationDirs, ['/srv/images'], 'its example line');
});

t.test(
  'the singularity.conf example, copied as it is, changes nothing: every directive holds the value in force without a file',
  async t => {
    const text = fs.readFileSync(path.join(REPO, 'docs/examples/singularity.conf'), 'utf8');
    const parsed = parseSingularityConfig(text, 'singularity.conf');
    t.same({ ...parsed, present: false }, defaults('singularity.conf', false));
    const keys = [...text.matchAll(/^#?([a-z_ ]+?) = /gm)].map(m => m[1]);
    t.same(
      [...new Set(keys)].sort(),
      [
        'allow container dir',
        'allow container encrypted',
        'allow container extfs',
        'allow container sif',
        'allow container squashfs',
        'bind path',
        'config resolv_conf',
        'enable overlay',
        'ldconfig path',
        'limit container groups',
        'limit container owners',
        'limit container paths',
        'memory fs type',
        'mount home',
        'mount hostfs',
        'mount tmp',
        'user bind control',
      ],
      'it shows every directive siteconfig.ts honours',
    );
    const uncommented = parseSingularityConfig(text.replace(/^#(?=[a-z_ ]+ = )/gm, ''), 'singularity.conf');
    t.equal(uncommented.ldconfigPath, '/sbin/ldconfig', 'the commented ldconfig path parses');
  },
);

t.test('package.json lists every man page the build writes, for an npm install to link', async t => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  t.same([...pkg.man].sort(), PAGES.map(f => `dist/man/${f}`).sort());
});
