// The executor's /proc/self/mountinfo parser (--no-pivot detaches by it) on its own: the lines the kernel
// writes, octal escapes, and lines that are not mountinfo; then fuzzed under ASan and UBSan (R10: the text
// names paths other users chose). The harness includes native/executor/mountinfo.c, built here with cc.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, tmpdir } from '../helpers.js';

t.setTimeout(5 * 60_000);
const dir = tmpdir('tsrt-mountinfo-');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const harness = path.join(dir, 'mountinfo-harness');
const cc = spawnSync(
  'cc',
  [
    '-fsanitize=address,undefined',
    '-fno-sanitize-recover=all',
    '-g',
    '-D_GNU_SOURCE',
    '-o',
    harness,
    path.join(REPO, 'test/unit/fixtures/mountinfo-harness.c'),
  ],
  { encoding: 'utf8' },
);
if (cc.status !== 0) {
  t.fail(`cc failed: ${cc.stderr}`);
  process.exit(1);
}

function parse(lines: string[]): string[] {
  const r = spawnSync(harness, ['parse'], { input: `${lines.join('\n')}\n`, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`harness: ${r.stderr}`);
  return r.stdout.trimEnd().split('\n');
}

t.test("the kernel's lines: id, root, mount point and type, optional fields skipped", async t => {
  t.same(
    parse([
      '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
      '25 1 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw',
      '40 25 0:35 / /proc/sys/fs/binfmt_misc rw,relatime shared:13 master:2 propagate_from:1 - autofs systemd-1 rw,fd=29',
      '41 23 0:36 / /sys rw - sysfs sysfs rw',
    ]),
    ['36|/mnt1|/mnt2|ext3', '25|/|/proc|proc', '40|/|/proc/sys/fs/binfmt_misc|autofs', '41|/|/sys|sysfs'],
  );
});

t.test('octal escapes in paths are undone (space, tab, backslash), anything else is left', async t => {
  t.same(
    parse(['7 1 0:1 /a\\040b /x\\134y\\011z rw - tmpfs t rw', '8 1 0:1 / /\\04 rw - tmpfs t rw', '9 1 0:1 / /\\400 rw - tmpfs t rw']),
    ['7|/a b|/x\\y\tz|tmpfs', '8|/|/\\04|tmpfs', '9|/|/\\400|tmpfs'],
  );
});

t.test('not mountinfo: no separator, no type after it, a separator before the optional fields, a bad id', async t => {
  t.same(
    parse([
      '',
      '36 35 98:0 /mnt1 /mnt2 rw master:1 ext3 /dev/root rw',
      '36 35 98:0 /mnt1 /mnt2 rw -',
      '36 35 - ext3 /dev/root rw',
      'x6 35 98:0 / /mnt rw - ext3 a rw',
      '99999999999999999999 35 98:0 / /mnt rw - ext3 a rw',
      `${'1 '.repeat(80)}- ext3 a rw`,
    ]),
    ['-', '-', '-', '-', '-', '-', '-'],
  );
});

t.test('fuzz: 50,000 random and mutated lines, every one exactly as long as it says, under ASan and UBSan', async t => {
  const seed = String(Math.floor(Math.random() * 2 ** 31));
  t.comment(`seed ${seed}`);
  const r = spawnSync(harness, ['fuzz', seed, '50000'], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, `the harness ran clean (seed ${seed}): ${r.stderr.slice(0, 2000)}`);
  t.equal(r.stdout.trim(), 'fuzzed 50000');
});
