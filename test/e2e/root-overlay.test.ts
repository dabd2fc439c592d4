// mounts[] entry on "/": a filesystem mounted over the root (here an overlay whose lower layer is the bundle's
// rootfs) becomes the root for the mounts after it and for pivot_root, so writes and mount points land in
// its upper layer and the rootfs directory is left as it was (what tsrt-singularity builds on).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { editConfig, testScope, tsrt } from '../helpers.js';

const ROOT = '/run/tsrt-e2e-root-overlay';

t.test('an overlay mounted on / takes the writes and the later mount points', async t => {
  const s = testScope(t, ROOT, 'rootov');
  const layers = s.dir();
  for (const d of ['upper', 'work', 'data']) fs.mkdirSync(path.join(layers, d));
  fs.writeFileSync(path.join(layers, 'data/file'), 'bound');
  const bundle = s.bundle([
    'sh',
    '-c',
    'echo new > /written && cat /not/in/rootfs/file && grep " / " /proc/self/mountinfo | grep -c overlay',
  ]);
  editConfig(bundle, spec => {
    spec.root.readonly = false;
    spec.mounts.unshift({
      destination: '/',
      type: 'overlay',
      source: 'overlay',
      options: [`lowerdir=${path.join(bundle, 'rootfs')}`, `upperdir=${layers}/upper`, `workdir=${layers}/work`],
    });
    spec.mounts.push({ destination: '/not/in/rootfs', type: 'bind', source: `${layers}/data`, options: ['bind'] });
  });
  const r = tsrt(['run', '-b', bundle, s.id()], { root: ROOT });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'bound1\n');
  t.equal(fs.readFileSync(path.join(layers, 'upper/written'), 'utf8'), 'new\n', 'the write is in the upper layer');
  t.ok(fs.existsSync(path.join(layers, 'upper/not/in/rootfs')), 'the mount point was made in the upper layer');
  t.notOk(fs.existsSync(path.join(bundle, 'rootfs/written')), 'the rootfs is untouched');
  t.notOk(fs.existsSync(path.join(bundle, 'rootfs/not')));
});
