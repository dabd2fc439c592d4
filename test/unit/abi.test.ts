// native/generated/tsrt-abi.h, native/generated/tsrt-exec-abi.h and src/native-abi/abi.gen.ts, all generated
// from src/native-abi/table.ts, say the same: a C program that includes the front door's header, and one that
// includes the executor's plan.h and sync.h (which include theirs), print every name the TS module exports, as
// the TS module has it. Needs a build (npm run build) and a C compiler (hack/deps.sh).
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as abi from '../../src/native-abi/abi.gen.js';
import { flatten } from '../../src/native-abi/flatten.js';
import { ABI, EXEC_ABI } from '../../src/native-abi/table.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HEADER = path.join(REPO, 'native/generated/tsrt-abi.h');
const EXEC_HEADER = path.join(REPO, 'native/generated/tsrt-exec-abi.h');
const EXECUTOR = path.join(REPO, 'native/executor');

/** What the executor's header holds: the scalars of the executor's groups (their lists are TS's alone). */
const EXEC_SCALARS = new Set(EXEC_ABI.flatMap(g => flatten(g).scalars.map(([name]) => name)));
/** The executor groups' lists, in the TS module only. */
const EXEC_LISTS = new Set(EXEC_ABI.flatMap(g => flatten(g).strings.map(([name]) => name)));
const isExec = (name: string): boolean =>
  EXEC_SCALARS.has(name) || EXEC_LISTS.has(name) || (name.endsWith('_COUNT') && EXEC_LISTS.has(name.slice(0, -6)));

/** Strings as hex of their UTF-8 bytes, so a newline or a quote in a text cannot blur a line. */
const hex = (s: string): string => Buffer.from(s).toString('hex');

/** The module's exports a header defines: the front door's (`frontdoor`) or the executor's. */
function exported(header: 'frontdoor' | 'exec'): [string, unknown][] {
  return Object.entries(abi).filter(([name]) => (header === 'exec' ? EXEC_SCALARS.has(name) : !isExec(name)));
}

function expected(header: 'frontdoor' | 'exec' = 'frontdoor'): string[] {
  const lines: string[] = [];
  for (const [name, v] of exported(header)) {
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

function cProgram(header: 'frontdoor' | 'exec' = 'frontdoor'): string {
  const body: string[] = [];
  for (const [name, v] of exported(header)) {
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
  const includes = header === 'exec' ? '#include "plan.h"\n#include "sync.h"\n' : '#include "tsrt-abi.h"\n';
  return (
    `#include <stdio.h>\n${includes}` +
    `__attribute__((unused)) static void hex(const char *s) { for (; *s; s++) printf("%02x", (unsigned char)*s); }\n` +
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

/** Builds the executor-side dump against plan.h and sync.h in `executorDir` and returns its lines. */
function execDump(tt: Test, executorDir: string): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-abi-'));
  tt.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'dump.c'), cProgram('exec'));
  const cc = spawnSync('cc', ['-Wall', '-Werror', '-I', executorDir, '-o', path.join(dir, 'dump'), path.join(dir, 'dump.c')], {
    encoding: 'utf8',
  });
  tt.equal(cc.status, 0, `the executor-side dump program compiles: ${cc.stderr}`);
  const run = spawnSync(path.join(dir, 'dump'), { encoding: 'utf8' });
  tt.equal(run.status, 0);
  return run.stdout.trimEnd().split('\n');
}

t.test("the executor's plan.h and sync.h see the table's values, as the TS module has them", async tt => {
  tt.ok(fs.existsSync(EXEC_HEADER), 'the executor header was generated (npm run build)');
  const out = execDump(tt, EXECUTOR);
  tt.same(out, expected('exec'), 'every plan, step, flag, limit and message constant as the executor sees it');
  // Each group is there: a group left out of the header would shrink both sides alike.
  for (const name of [
    'TSRT_PLAN_MAGIC',
    'TSRT_PATH_MAX',
    'TSRT_DETAIL_MAX',
    'STEP_SETATTR',
    'MF_DEFERRED',
    'PF_EXEC',
    'MSG_START',
    'S_LOOPBACK',
  ])
    tt.ok(
      out.some(l => l.startsWith(`${name}=`)),
      name,
    );
});

t.test('the executor header is scalars only: nothing the sealed static executor would have to link or include', async tt => {
  const lines = fs.readFileSync(EXEC_HEADER, 'utf8').split('\n');
  const other = lines.filter(l => l !== '' && !/^(\/\*.*\*\/|#ifndef \w+|#define \w+( (0x[0-9a-f]+|\d+)u?)?|#endif)$/.test(l));
  tt.same(other, [], 'only comments, the include guard and numeric #defines');
});

t.test('every executor step id has its text for the error message', async tt => {
  const ids = flatten(EXEC_ABI.find(g => g.prefix === 'S_')!).scalars;
  tt.equal(abi.S_TEXT.length, ids.length, 'one text per step id');
  tt.same(
    ids.map(([, v]) => v),
    ids.map((_, i) => i),
    'the ids count from 0 in the order of the texts',
  );
  tt.equal(abi.S_TEXT[abi.S_MOUNT], 'error mounting');
  tt.equal(abi.S_TEXT[abi.S_EXEC_LOOKUP], 'exec');
});

t.test('an executor header that disagrees is caught: the check is not vacuous', async tt => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-abi-'));
  tt.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // plan.h and sync.h find the header beside their directory, as in the tree.
  fs.mkdirSync(path.join(dir, 'executor'));
  fs.mkdirSync(path.join(dir, 'generated'));
  for (const h of ['plan.h', 'sync.h']) fs.copyFileSync(path.join(EXECUTOR, h), path.join(dir, 'executor', h));
  const wrong = fs.readFileSync(EXEC_HEADER, 'utf8').replace(/#define PF_EXEC 0x[0-9a-f]+u/, '#define PF_EXEC 0x40000u');
  fs.writeFileSync(path.join(dir, 'generated', 'tsrt-exec-abi.h'), wrong);
  const out = execDump(tt, path.join(dir, 'executor'));
  tt.notSame(out, expected('exec'), 'a changed plan flag in the header shows');
  tt.ok(out.includes(`PF_EXEC=${0x40000}`));
});
