// `npm pack` gives a package that installs: a global install of the tarball into a fresh prefix (offline: the
// package has no runtime dependencies, the bundles carry everything) links both commands and every man page,
// the installed tsrt runs, and the library entry point loads.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';

import { REPO, tmpdir } from '../helpers.js';

const dir = tmpdir('tsrt-npm-pack-');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
// npm writes its cache and logs under HOME: a directory of the test's, so the run leaves nothing behind.
const env = { ...process.env, HOME: dir, npm_config_cache: path.join(dir, 'cache'), npm_config_update_notifier: 'false' };
const npm = (args: string[], cwd: string) => spawnSync('/usr/bin/npm', args, { cwd, env, encoding: 'utf8', timeout: 300_000 });

t.test('npm pack, then npm install -g of the tarball into a prefix', async t => {
  const pack = npm(['pack', '--silent', '--pack-destination', dir], REPO);
  t.equal(pack.status, 0, `npm pack exits 0 ${pack.stderr}`);
  const tarball = path.join(dir, pack.stdout.trim().split('\n').pop()!);
  t.ok(fs.existsSync(tarball), `the tarball ${path.basename(tarball)}`);

  const prefix = path.join(dir, 'prefix');
  const inst = npm(['install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, tarball], dir);
  t.equal(inst.status, 0, `npm install -g exits 0 ${inst.stderr}`);

  t.same(
    fs.readdirSync(path.join(prefix, 'bin')).sort(),
    ['tsrt', 'tsrt-singularity'],
    'bin: the two commands, no singularity name unless asked',
  );
  const v = spawnSync(path.join(prefix, 'bin', 'tsrt'), ['--version'], { encoding: 'utf8' });
  t.match(v.stdout, /^tsrt version /, 'the installed tsrt runs');
  const s = spawnSync(path.join(prefix, 'bin', 'tsrt-singularity'), ['--version'], { encoding: 'utf8' });
  t.equal(s.status, 0, 'the installed tsrt-singularity runs');

  const pages = fs.readdirSync(path.join(REPO, 'dist', 'man')).sort();
  for (const section of ['1', '8']) {
    const want = pages.filter(p => p.endsWith(`.${section}`));
    t.same(fs.readdirSync(path.join(prefix, 'share', 'man', `man${section}`)).sort(), want, `share/man/man${section}: every page`);
  }

  const pkgDir = path.join(prefix, 'lib', 'node_modules', 'tsrt');
  const lib = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(path.join(pkgDir, 'dist', 'index.js'))}); console.log(typeof m.buildPlan)`,
    ],
    { encoding: 'utf8' },
  );
  t.equal(lib.status, 0, `the library loads ${lib.stderr}`);
  t.equal(lib.stdout.trim(), 'function', 'and exports buildPlan');
  t.ok(fs.existsSync(path.join(pkgDir, 'docs', 'examples', 'tsrt.conf')), 'the site config examples are in the package');
  t.ok(fs.existsSync(path.join(pkgDir, 'dist', 'completion', 'tsrt')), 'the completion scripts are in the package');
});
