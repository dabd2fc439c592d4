// hack/check-paths.mjs, the CI check that nothing in the repository reaches outside it: each rule on a small
// tree that breaks it (the finding names file, line and rule), the look-alikes it must leave alone (container
// paths, traversal payloads of the security tests, the runtime-spec's documents, here-documents), and the
// repository itself, which must have no finding.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkPaths, listFiles, machinePaths } from '../../hack/check-paths.mjs';
import { REPO } from '../helpers.js';

/** A scratch tree (not a git checkout: the checker walks it) holding `files`; returns its findings. */
function findingsOf(files: Record<string, string>): string[] {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-check-paths-'));
  try {
    for (const [f, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
      fs.writeFileSync(path.join(root, f), text);
    }
    return checkPaths(root).map(x => `${x.file}:${x.line}: ${x.rule}`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const bad: Array<[string, Record<string, string>, string[]]> = [
  [
    '../shared beside the checkout, as a path and as join arguments',
    {
      'test/a.test.ts': "const F = path.resolve(REPO, '..', 'shared', 'fixtures');\nconst G = '../shared/docs/x.json';\n",
    },
    ['test/a.test.ts:1: shared', 'test/a.test.ts:1: above-root', 'test/a.test.ts:2: shared'],
  ],
  [
    'a URL resolved from the file that climbs above the root',
    {
      'test/unit/a.test.ts': "const dir = new URL('../../../elsewhere/configs/', import.meta.url);\n",
    },
    ['test/unit/a.test.ts:1: above-root'],
  ],
  [
    'an import and a script-relative path above the root',
    {
      'src/a.ts': "import { x } from '../../other/x.js';\n",
      'hack/a.sh': '#!/usr/bin/env bash\nsource "$(dirname "$0")/../../other/env.sh"\n',
    },
    ['hack/a.sh:2: above-root', 'src/a.ts:1: above-root'],
  ],
  [
    'a markdown link and a comment citing files outside the repository',
    {
      'docs/a.md': 'See [the notes](../../notes/engines.md).\n',
      'src/b.ts': '// as ../../notes/x.txt says\nexport const b = 1;\n',
    },
    ['docs/a.md:1: above-root', 'docs/a.md:1: cited-outside', 'docs/a.md:1: missing-doc', 'src/b.ts:1: cited-outside'],
  ],
  [
    '/work, a path of the machine',
    {
      'test/oci-validation/README.md': 'Scores: `/work/shared/docs/oci-validation.md`.\n',
    },
    ['test/oci-validation/README.md:1: machine-path'],
  ],
  [
    'a comment citing a document the repository does not have',
    {
      'test/e2e/a.test.ts': "// the engines' argv (engines.md §3)\n",
    },
    ['test/e2e/a.test.ts:1: missing-doc'],
  ],
  [
    'docker and runc run by name, in TypeScript and in a script',
    {
      'test/a.test.ts': "spawnSync('docker', ['ps']);\nexecFileSync('runc', ['features']);\n",
      'hack/a.sh': '#!/bin/sh\nid=$(docker run -d x)\nif true; then podman ps; fi\n',
    },
    ['hack/a.sh:2: engine-by-name', 'hack/a.sh:3: engine-by-name', 'test/a.test.ts:1: engine-by-name', 'test/a.test.ts:2: engine-by-name'],
  ],
];

for (const [name, files, expected] of bad) {
  t.test(`flagged: ${name}`, async t => {
    t.same(findingsOf(files).sort(), expected.sort());
  });
}

t.test("left alone: container paths, traversal payloads, the runtime-spec's documents, here-documents, functions", async t => {
  t.same(
    findingsOf({
      'test/unit/plan.test.ts': "{ destination: '/shared/../shared', type: 'bind', source: '/srv/shared' },\n",
      'test/security/x.test.ts':
        "const link = `../../../../../../..${canary.dir}/x`;\nconst probe = 'cat ../../../host-marker';\nspec.process.cwd = '/srv/deep/er';\n",
      'src/c.ts': '// the seccomp listener hand-off of runtime-spec config-linux.md, and state.md "ContainerProcessState"\n',
      'src/d.ts': "import { e } from '../e.js';\n// ${layers}/work is the overlay's work dir\n",
      'src/e.ts': 'export const e = 1;\n',
      'hack/d.sh':
        '#!/usr/bin/env bash\ndocker() { /usr/bin/docker "$@"; }\ndocker ps\ncat > x <<EOF\nruntime = "runc"\nrunc = ["/usr/sbin/runc"]\nEOF\npackages+=(podman conmon)\n',
      'README.md': 'Runs `/usr/bin/docker run` (see [the tests](test/unit/plan.test.ts)).\n',
    }),
    [],
  );
});

t.test('machine paths: /work, the checkout itself, and its parent unless a generic one', async t => {
  t.same(machinePaths('/srv/build-7/tsrt'), ['/work', '/srv/build-7/tsrt', '/srv/build-7']);
  t.same(machinePaths('/root/tsrt'), ['/work', '/root/tsrt'], '/root says nothing of one machine');
});

t.test('the repository has no path that leaves it', async t => {
  const files = listFiles(REPO);
  t.ok(
    files.some(f => f.startsWith('src/')) && files.some(f => f.startsWith('test/')) && files.some(f => f.startsWith('hack/')),
    `src/, test/ and hack/ are checked (${files.length} files)`,
  );
  t.same(
    checkPaths(REPO, files).map(f => `${f.file}:${f.line}: ${f.rule}: ${f.text}`),
    [],
  );
});
