// Issue 18, "no arbitrary limits": tsrt refused more than 4096 mounts, arguments or seccomp rules and any
// string over 4096 bytes, where runc runs whatever the kernel takes. Each test runs the same bundle under tsrt
// and, in the same test, under runc (/usr/sbin/runc) when it is installed; where the kernel itself refuses,
// both fail (with runc's exit status) and tsrt's error names the config field and the kernel's limit.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../../src/native.js';
import { planSeccomp } from '../../src/plan/seccomp.js';
import { REPO, e2eFile, lastErrorMessage, type Edit, type Scope } from '../helpers.js';

const { ROOT, scope, rt } = e2eFile(t, {
  name: 'limits',
  idPrefix: 'lim',
  needsRoot: 'limit tests run containers as root',
  timeoutMinutes: 15,
});
const RUNC = '/usr/sbin/runc';
const hasRunc = fs.existsSync(RUNC);
if (!hasRunc) t.comment(`${RUNC} is not installed: tsrt only, no comparison`);

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function runTsrt(s: Scope, bundle: string): Outcome {
  const r = rt(['run', '-b', bundle, s.id()], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

function runRunc(s: Scope, bundle: string): Outcome {
  const root = s.dir();
  const id = s.id('runc');
  const r = spawnSync(RUNC, ['--root', root, 'run', '-b', bundle, id], {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 300_000,
    maxBuffer: 64 << 20,
  });
  spawnSync(RUNC, ['--root', root, 'delete', '--force', id], { stdio: 'ignore' });
  return { code: r.status ?? -1, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '' };
}

/** The bundle's process output under tsrt, and under runc when it is here: both must be `expected`. */
function runsUnderBoth(tt: Test, s: Scope, args: string[], edit: Edit, expected: string): string {
  const bundle = s.bundle(args, edit);
  const mine = runTsrt(s, bundle);
  tt.equal(mine.code, 0, `tsrt runs it: ${lastErrorMessage(mine.stderr) ?? mine.stderr.slice(0, 500)}`);
  tt.equal(mine.stdout, expected, 'tsrt: the process saw all of it');
  if (hasRunc) {
    const theirs = runRunc(s, bundle);
    tt.equal(theirs.code, 0, `runc runs it too: ${theirs.stderr.slice(0, 500)}`);
    tt.equal(theirs.stdout, expected, 'runc: the same output');
  }
  return bundle;
}

/** Where the kernel refuses: both fail with the same status, tsrt with `message` (naming the field and the limit). */
function refusedByBoth(tt: Test, s: Scope, args: string[], edit: Edit, message: string | RegExp, runcSays: RegExp): string {
  const bundle = s.bundle(args, edit);
  const mine = runTsrt(s, bundle);
  tt.not(mine.code, 0, 'tsrt fails');
  if (typeof message === 'string') tt.equal(lastErrorMessage(mine.stderr), message, "tsrt names the field and the kernel's limit");
  else tt.match(lastErrorMessage(mine.stderr) ?? mine.stderr, message, "tsrt names the field and the kernel's limit");
  if (hasRunc) {
    const theirs = runRunc(s, bundle);
    tt.equal(mine.code, theirs.code, `the same exit status as runc's (${theirs.code})`);
    tt.match(theirs.stderr, runcSays, "runc meets the kernel's refusal too");
  }
  tt.same(
    fs.readdirSync(ROOT).filter(d => !d.startsWith('.')),
    [],
    'tsrt left no state behind',
  );
  return bundle;
}

/**
 * Removes the directories a long path made in a bundle's rootfs before the scope's teardown, whose rmSync
 * stops at PATH_MAX (rm walks below it by fd).
 */
function removeDeep(tt: Test, bundle: string, top: string): void {
  tt.teardown(() => void spawnSync('/usr/bin/rm', ['-rf', '--one-file-system', path.join(bundle, 'rootfs', top)]));
}

/** A path of exactly `bytes` bytes: components of 200 bytes. */
function longPath(bytes: number): string {
  let p = '';
  while (p.length < bytes) p += `/${'d'.repeat(Math.min(200, Math.max(1, bytes - p.length - 1)))}`;
  return p.slice(0, bytes);
}

t.test('10,000 mounts', async tt => {
  const s = scope(tt);
  const source = s.dir();
  fs.writeFileSync(path.join(source, 'f'), 'bound\n');
  runsUnderBoth(
    tt,
    s,
    ['sh', '-c', 'grep -c " /m/" /proc/self/mountinfo; cat /m/9999/f'],
    spec => {
      for (let i = 0; i < 10_000; i++) spec.mounts.push({ destination: `/m/${i}`, type: 'bind', source, options: ['rbind'] });
    },
    '10000\nbound\n',
  );
});

t.test('100,000 arguments within ARG_MAX', async tt => {
  const s = scope(tt);
  // 99,996 one-byte arguments after sh -c '...' sh: about 1 MB with their pointers, under the 2 MiB that an
  // 8 MiB stack allows.
  runsUnderBoth(tt, s, ['sh', '-c', 'echo $# ${99996}', 'sh', ...Array.from({ length: 99_995 }, () => 'a'), 'z'], () => {}, '99996 z\n');
});

t.test("an environment string of MAX_ARG_STRLEN runs; one byte more is the kernel's E2BIG", async tt => {
  const s = scope(tt);
  // 131071 bytes and the NUL: the most execve takes for one string.
  const value = 'v'.repeat(131_071 - 'BIG='.length);
  runsUnderBoth(
    tt,
    s,
    ['sh', '-c', 'echo ${#BIG}'],
    spec => {
      spec.process.env.push(`BIG=${value}`);
    },
    `${value.length}\n`,
  );
  refusedByBoth(
    tt,
    s,
    ['sh', '-c', 'echo ${#BIG}'],
    spec => {
      spec.process.env.push(`BIG=${value}v`);
    },
    'config.json: /process/env/2: a string of 131072 bytes is longer than the kernel takes for one argument or environment string (MAX_ARG_STRLEN: 131072 bytes with its NUL)',
    /argument list too long/,
  );
});

t.test("a 4095-byte path: as cwd it runs; 4096 bytes is the kernel's PATH_MAX", async tt => {
  const s = scope(tt);
  const cwd = longPath(4095);
  const top = cwd.split('/')[1]!;
  removeDeep(
    tt,
    runsUnderBoth(
      tt,
      s,
      ['sh', '-c', 'pwd | wc -c'],
      spec => {
        spec.process.cwd = cwd;
      },
      '4096\n',
    ),
    top,
  );
  removeDeep(
    tt,
    refusedByBoth(
      tt,
      s,
      ['true'],
      spec => {
        spec.process.cwd = longPath(4096);
      },
      'config.json: /process/cwd: a path of 4096 bytes is longer than the kernel takes (PATH_MAX: 4096 bytes with its NUL)',
      /file name too long/,
    ),
    top,
  );
  // A 4095-byte mount destination is within PATH_MAX, but below the rootfs its host path is not: the kernel
  // refuses to name it, under runc as under tsrt.
  const source = s.dir();
  const bundle = s.bundle(['true'], spec => {
    spec.mounts.push({ destination: cwd, type: 'bind', source, options: ['rbind'] });
  });
  removeDeep(tt, bundle, top);
  const mine = runTsrt(s, bundle);
  tt.not(mine.code, 0, 'tsrt: a 4095-byte bind destination fails');
  tt.match(
    lastErrorMessage(mine.stderr),
    /^unable to start container process: error during container init: error mounting "\/d+\/.*": file name too long$/s,
    'as the kernel says',
  );
  if (hasRunc) {
    const theirs = runRunc(s, bundle);
    tt.equal(theirs.code, mine.code, 'runc fails the same way');
    tt.match(theirs.stderr, /file name too long/);
  }
});

/** BPF instructions of a filter as libseccomp compiles it (the program tsrt would load). */
function instructions(seccomp: any): number {
  return native().compileSeccomp(planSeccomp(seccomp).filter).length / 8;
}

t.test("5,000 seccomp rules: the kernel's BPF_MAXINSNS decides, not a rule count", async tt => {
  const s = scope(tt);
  const profile = JSON.parse(fs.readFileSync(path.join(REPO, 'test/e2e/fixtures/runtime-tools-default.config.json'), 'utf8')).linux.seccomp;
  const names: string[] = profile.syscalls.filter((r: any) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r: any) => r.names);
  // 5,000 rules that libseccomp merges per syscall (the allow-list of runtime-tools' profile, repeated), and
  // 5,000 rules on arguments that it cannot merge.
  const sets = {
    merged: {
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: Array.from({ length: 5000 }, (_, i) => ({ names: [names[i % names.length]], action: 'SCMP_ACT_ALLOW' })),
    },
    distinct: {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: Array.from({ length: 5000 }, (_, i) => ({
        names: ['personality'],
        action: 'SCMP_ACT_ERRNO',
        args: [{ index: 0, value: 100_000 + i, op: 'SCMP_CMP_EQ' }],
      })),
    },
  };
  for (const [name, seccomp] of Object.entries(sets)) {
    const n = instructions(seccomp);
    const edit: Edit = spec => {
      spec.linux.seccomp = seccomp;
    };
    if (n <= 4096) {
      tt.comment(`${name}: 5000 rules compile to ${n} BPF instructions, within BPF_MAXINSNS: the container runs`);
      runsUnderBoth(tt, s, ['echo', 'filtered'], edit, 'filtered\n');
    } else {
      tt.comment(`${name}: 5000 rules compile to ${n} BPF instructions, over BPF_MAXINSNS: the kernel refuses the filter`);
      refusedByBoth(
        tt,
        s,
        ['echo', 'filtered'],
        edit,
        `config.json: /linux/seccomp/syscalls: the 5000 rules compile to a filter of ${n} BPF instructions; the kernel loads at most 4096 (BPF_MAXINSNS)`,
        /error loading seccomp filter: invalid argument/,
      );
    }
  }
});
