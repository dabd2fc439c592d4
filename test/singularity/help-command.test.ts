// `singularity help COMMAND` prints that command's help, the same text as `COMMAND --help`, as the
// unprivileged test user would ask for it.
import t from 'tap';

import { kit } from '../singularity-run-kit.js';

const k = kit(t);

t.test("help COMMAND prints the command's summary and usage, as COMMAND --help does", async t => {
  for (const name of ['build', 'exec', 'instance', 'sign', 'sif']) {
    const help = k.sing(['help', name]);
    t.equal(help.code, 0, help.stderr);
    t.match(help.stdout, new RegExp(`^[^\\n]+\\n\\nUsage:\\n  singularity ${name} `), `help ${name}: the summary, then the usage`);
    t.equal(k.sing([name, '--help']).stdout, help.stdout, `${name} --help prints the same`);
  }
  t.match(k.sing(['help', 'build']).stdout, /--fakeroot/, "build's own flags are listed");
});

t.test('help alone prints the command list; help of an unknown command is an error', async t => {
  const all = k.sing(['help']);
  t.equal(all.code, 0);
  t.match(all.stdout, /Available Commands:\n[\s\S]*  build /);
  const unknown = k.sing(['help', 'nosuch']);
  t.equal(unknown.code, 255);
  t.match(unknown.stderr, /unknown command "nosuch" for "singularity help"/);
  t.equal(unknown.stdout, '');
});
