// A %labels line that names a key and no value builds (as in Singularity and Apptainer) and records the label
// with an empty value: seen by the unprivileged test user through inspect and from inside the container.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { kit } from '../singularity-run-kit.js';

t.setTimeout(5 * 60_000);
const k = kit(t);

t.test('%labels: "KEY" alone is KEY with an empty value', async t => {
  const dir = k.dir('singbuild-labels-');
  fs.writeFileSync(path.join(dir, 'image.def'), 'Bootstrap: busybox\n%labels\n    Flagged\n    Author Jane Doe\n');
  fs.chownSync(path.join(dir, 'image.def'), k.user.uid, k.user.gid);
  const built = k.sing(['build', 'image.sif', 'image.def'], { cwd: dir });
  t.equal(built.code, 0, built.stderr);
  const inspect = k.sing(['inspect', '--json', 'image.sif'], { cwd: dir });
  const labels = JSON.parse(inspect.stdout).data.attributes.labels;
  t.equal(labels.Flagged, '', 'an empty value');
  t.equal(labels.Author, 'Jane Doe');
  t.match(k.sing(['inspect', 'image.sif'], { cwd: dir }).stdout, /^Flagged: \n/m);
  const inside = k.sing(['exec', 'image.sif', 'cat', '/.singularity.d/labels.json'], { cwd: dir });
  t.equal(inside.code, 0, inside.stderr);
  t.equal(JSON.parse(inside.stdout).Flagged, '', "the image's labels.json, read inside the container");
});
