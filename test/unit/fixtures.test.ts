// The data the tests read lives in test/fixtures/, each directory with its provenance and a SHA256SUMS of its
// files: a file missing, changed or not listed fails here, before any test that reads it can skip or mislead.
import t from 'tap';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, fixture } from '../helpers.js';

/** Every regular file below dir, as paths relative to it. */
function filesBelow(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter(f => fs.statSync(path.join(dir, f)).isFile())
    .sort();
}

/** The lines of a `sha256sum` listing: relative path -> digest. */
function readSums(file: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) throw new Error(`${file}: not a sha256sum line: ${line}`);
    sums.set(m[2]!, m[1]!);
  }
  return sums;
}

const DIRS = ['sif', 'engine-configs'];

for (const name of DIRS) {
  t.test(`test/fixtures/${name}: every file listed in SHA256SUMS, present and unchanged`, async t => {
    const dir = fixture(name);
    const sums = readSums(fixture(name, 'SHA256SUMS'));
    t.ok(sums.size > 0, 'SHA256SUMS lists files');
    t.ok(fs.existsSync(path.join(dir, 'PROVENANCE.md')), 'PROVENANCE.md says where they come from');
    for (const [file, digest] of sums) {
      const p = path.join(dir, file);
      t.ok(fs.existsSync(p), `${file} is present`);
      if (fs.existsSync(p)) t.equal(createHash('sha256').update(fs.readFileSync(p)).digest('hex'), digest, `${file} is unchanged`);
    }
    const unlisted = filesBelow(dir).filter(f => !sums.has(f) && !['SHA256SUMS', 'PROVENANCE.md', 'LICENSE.md'].includes(f));
    t.same(unlisted, [], 'every data file is listed');
  });
}

t.test('a missing fixture is an error naming it, never a skip', async t => {
  t.throws(() => fixture('sif', 'no-such-image.sif'), /^missing fixture test\/fixtures\/sif\/no-such-image\.sif: /);
  t.equal(fixture('sif'), path.join(REPO, 'test', 'fixtures', 'sif'));
});
