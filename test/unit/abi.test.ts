// native/generated/tsrt-abi.h and src/native-abi/abi.gen.ts, both generated from src/native-abi/table.ts, say
// the same: a C program that includes the header prints every name the TS module exports, as the TS module
// has it. Needs a build (npm run build) and a C compiler (hack/deps.sh).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as abi from '../../src/native-abi/abi.gen.js';
import { ABI } from '../../src/native-abi/table.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HEADER = path.join(REPO, 'native/generated/tsrt-abi.h');

/** Strings as hex of their UTF-8 bytes, so a newline or a quote in a text cannot blur a line. */
const hex = (s: string): string => Buffer.from(s).toString('hex');

function expected(): string[] {
  const lines: string[] = [];
  for (const [name, v] of Object.entries(abi)) {
    if (name.endsWith('_COUNT') && Array.isArray((abi as Record<string, unknown>)[name.slice(0, -6)])) continue;
    if (Array.isArray(v)) {
      lines.push(`${name}#${v.length}`);
      for (const [i, x] of (v as (string | number)[]).entries()) lines.push(`${name}[${i}]=${typeof x === 'string' ? hex(x) : x}`);
    } else {
      lines.push(`${name}=${typeof v === 'string' ? hex(v) : v}`);
    }
  }
  return lines;
}

function cProgram(): string {
  const body: string[] = [];
  for (const [name, v] of Object.entries(abi)) {
    if (name.endsWith('_COUNT') && Array.isArray((abi as Record<string, unknown>)[name.slice(0, -6)])) continue;
    if (Array.isArray(v)) {
      body.push(`printf("${name}#%d\\n", (int)${name}_COUNT);`);
      const str = typeof v[0] === 'string';
      body.push(
        `for (int i = 0; i < (int)${name}_COUNT; i++) { printf("${name}[%d]=", i); ${str ? `hex(${name}[i]);` : `printf("%lld", (long long)${name}[i]);`} printf("\\n"); }`,
      );
    } else if (typeof v === 'string') {
      body.push(`printf("${name}="); hex(${name}); printf("\\n");`);
    } else {
      body.push(`printf("${name}=%lld\\n", (long long)${name});`);
    }
  }
  return (
    `#include <stdio.h>\n#include "tsrt-abi.h"\n` +
    `static void hex(const char *s) { for (; *s; s++) printf("%02x", (unsigned char)*s); }\n` +
    `int main(void) {\n${body.join('\n')}\nreturn 0;\n}\n`
  );
}

t.test('the generated header and TS module hold the same names and values', async tt => {
  tt.ok(fs.existsSync(HEADER), 'the header was generated (npm run build)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-abi-'));
  tt.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'dump.c'), cProgram());
  const cc = spawnSync(
    'cc',
    ['-Wall', '-Werror', '-Wno-unused-const-variable', '-I', path.dirname(HEADER), '-o', path.join(dir, 'dump'), path.join(dir, 'dump.c')],
    { encoding: 'utf8' },
  );
  tt.equal(cc.status, 0, `the dump program compiles: ${cc.stderr}`);
  const run = spawnSync(path.join(dir, 'dump'), { encoding: 'utf8' });
  tt.equal(run.status, 0);
  tt.same(run.stdout.trimEnd().split('\n'), expected(), 'every constant and list as C sees it');
});

t.test('every constant of the table reaches both languages', async tt => {
  for (const g of ABI) {
    for (const name of Object.keys(g.constants ?? {})) tt.ok(`${g.prefix}${name}` in abi, `${g.prefix}${name}`);
    for (const name of Object.keys(g.strings ?? {})) tt.ok(`${g.prefix}${name}` in abi, `${g.prefix}${name}`);
    for (const [name] of g.layout ?? []) tt.ok(`${g.prefix}OFF_${name}` in abi, `${g.prefix}OFF_${name}`);
    for (const name of g.slots ?? []) tt.ok(`${g.prefix}SLOT_${name}` in abi, `${g.prefix}SLOT_${name}`);
  }
});

t.test('a header that disagrees is caught: the check is not vacuous', async tt => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-abi-'));
  tt.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const wrong = fs.readFileSync(HEADER, 'utf8').replace(/#define TSRT_LCR_VERSION \d+/, '#define TSRT_LCR_VERSION 999');
  fs.writeFileSync(path.join(dir, 'tsrt-abi.h'), wrong);
  fs.writeFileSync(path.join(dir, 'dump.c'), cProgram());
  const cc = spawnSync('cc', ['-I', dir, '-o', path.join(dir, 'dump'), path.join(dir, 'dump.c')], { encoding: 'utf8' });
  tt.equal(cc.status, 0, cc.stderr);
  const out = spawnSync(path.join(dir, 'dump'), { encoding: 'utf8' }).stdout.trimEnd().split('\n');
  tt.notSame(out, expected(), 'a changed version in the header shows');
  tt.ok(out.includes('TSRT_LCR_VERSION=999'));
});
