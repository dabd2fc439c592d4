// The linter the team agreed on: Biome over src/, test/ and hack/ with biome.jsonc's rules, clean on the tree
// (this test is how .ci/run runs `npm run lint`), and shown to fail on a file that breaks a rule.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';

import { REPO, tmpdir } from '../helpers.js';

const BIOME = path.join(REPO, 'node_modules', '.bin', 'biome');

function run(cmd: string, args: string[], cwd = REPO, input?: string) {
  const r = spawnSync(cmd, args, { cwd, input, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

t.test('npm run lint: Biome finds nothing in the tree', async t => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  t.equal(pkg.scripts.lint, 'biome lint --error-on-warnings .', 'the lint script');
  const r = run(BIOME, ['lint', '--error-on-warnings', '--max-diagnostics=50', '.']);
  t.equal(r.code, 0, r.code === 0 ? 'clean' : `lint findings:\n${r.out}`);
  t.match(r.out, /Checked [1-9]\d* files/, 'it checked the tree');
});

t.test('the rules are on: a finding in src/ fails, an explicit any is allowed in test/ only', async t => {
  const dir = tmpdir('tsrt-lint-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.copyFileSync(path.join(REPO, 'biome.jsonc'), path.join(dir, 'biome.jsonc'));
  fs.mkdirSync(path.join(dir, 'src'));
  fs.mkdirSync(path.join(dir, 'test'));
  fs.writeFileSync(path.join(dir, 'src', 'probe.ts'), 'export function f(x: any): number {\n  const unused = 1;\n  return x;\n}\n');
  fs.writeFileSync(path.join(dir, 'test', 'probe.ts'), 'export function f(x: any): number {\n  return x;\n}\n');
  const r = run(BIOME, ['lint', '--error-on-warnings', '.'], dir);
  t.not(r.code, 0, 'lint fails');
  t.match(r.out, /src\/probe\.ts:1:\d+ lint\/suspicious\/noExplicitAny/, 'any in src/');
  t.match(r.out, /src\/probe\.ts:2:\d+ lint\/correctness\/noUnusedVariables/, 'an unused variable');
  t.notMatch(r.out, /test\/probe\.ts/, 'nothing in test/');
});
