// Issue 13, adversarial testing of the native core: every native file builds with gcc and with clang under
// native/hardening.mk's flags (-Wall -Wextra -Werror -Wformat-security, _FORTIFY_SOURCE=3, stack protector,
// stack clash protection, CET, full RELRO) with no warning, clang's static analyzer reports nothing in native/,
// and the addon the build made is linked with full RELRO. hack/check-native.sh does the work; this file runs it.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
t.setTimeout(30 * 60_000);

function check(step: string): { status: number | null; out: string } {
  const r = spawnSync('bash', [path.join(REPO, 'hack/check-native.sh'), step], {
    encoding: 'utf8',
    timeout: 25 * 60_000,
    maxBuffer: 64 << 20,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

t.test('every native file builds warning-free with the hardening flags, under gcc and clang', async tt => {
  const r = check('warnings');
  tt.equal(
    r.status,
    0,
    `hack/check-native.sh warnings exits 0\n${r.out
      .split('\n')
      .filter(l => /error|warning/.test(l))
      .slice(0, 20)
      .join('\n')}`,
  );
  tt.match(r.out, /warnings: gcc clean/, 'gcc');
  tt.match(r.out, /warnings: clang clean/, 'clang');
});

t.test("clang's static analyzer finds nothing in native/", async tt => {
  const r = check('analyze');
  const count = /analyzer: (\d+) findings/.exec(r.out);
  tt.ok(count, `the analyzer ran\n${r.out.slice(-2000)}`);
  tt.equal(
    Number(count?.[1]),
    0,
    `no findings\n${r.out
      .split('\n')
      .filter(l => /^native\//.test(l))
      .join('\n')}`,
  );
  tt.equal(r.status, 0, 'hack/check-native.sh analyze exits 0');
});

/** The ELF program headers and dynamic section of a built file. */
function readelf(file: string): string {
  const r = spawnSync('/usr/bin/readelf', ['-W', '-l', '-d', file], { encoding: 'utf8' });
  return r.stdout;
}

t.test('the built addon is linked with full RELRO', async tt => {
  // What native/hardening.mk's link flags add to the addon binding.gyp builds (node-gyp's own flags do not).
  const elf = readelf(path.join(REPO, 'build/Release/tsrt.node'));
  tt.match(elf, /GNU_RELRO/, 'a RELRO segment');
  tt.match(elf, /BIND_NOW/, 'bound now');
});
