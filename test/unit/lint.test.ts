// The linters the team agreed on: Biome over src/, test/ and hack/ with biome.jsonc's rules, clean on the tree
// (this test is how .ci/run runs `npm run lint`), and clang-format's styles for native/, checked in report-only
// mode until the tree is formatted once. Each check is also shown to fail on a file that breaks it.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';

import { REPO, tmpdir } from '../helpers.js';

const BIOME = path.join(REPO, 'node_modules', '.bin', 'biome');
const CLANG_FORMAT = '/usr/bin/clang-format';

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

t.test('clang-format: native/ has its styles, and a function out of style is told apart', async t => {
  if (!fs.existsSync(CLANG_FORMAT)) {
    t.fail(`${CLANG_FORMAT} is missing: hack/deps.sh installs clang-format`);
    return;
  }
  const kernelStyle = 'static int add(int a, int b)\n{\n\treturn a + b;\n}\n';
  const offStyle = 'static int add(int a,int b) {\n    return a+b;\n}\n';
  const check = (text: string, file: string, style = 'file') =>
    run(CLANG_FORMAT, ['--dry-run', '-Werror', `--style=${style}`, `--assume-filename=${file}`], REPO, text);
  t.equal(check(kernelStyle, 'native/executor/probe.c').code, 0, 'C in the kernel style passes native/.clang-format');
  const off = check(offStyle, 'native/executor/probe.c');
  t.not(off.code, 0, 'C out of style is reported');
  t.match(off.out, /code should be clang-formatted/);
  const cc = 'int Add(int a, int b) { return a + b; }\n';
  t.equal(check(cc, 'native/addon/probe.cc', 'file:native/addon/cc.clang-format').code, 0, 'C++ in Google style passes cc.clang-format');
  t.not(check(offStyle, 'native/addon/probe.cc', 'file:native/addon/cc.clang-format').code, 0, 'C++ out of style is reported');
});

t.test('the tree is written as its formatters write it (hack/check-format.sh --strict)', async t => {
  const r = run('/bin/bash', ['hack/check-format.sh', '--strict']);
  const m = /^check-format: (\d+) of (\d+) files differ from the formatters$/m.exec(r.out);
  t.ok(m, 'the summary line');
  t.ok(Number(m?.[2] ?? 0) > 200, `it looked at the sources and native/ (${m?.[2]} files)`);
  t.equal(r.code, 0, `no file differs: bash hack/check-format.sh --write formats them\n${r.out}`);
});
