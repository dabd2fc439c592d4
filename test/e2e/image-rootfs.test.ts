// An image as the bundle's root (root.path naming a SIF), as create plans it: the plan is made before the image
// is mounted, for the directory the image will be mounted on. Unprivileged and read-only, an image no FUSE tool
// can mount is unpacked into the user's sandbox cache instead, somewhere else: the container must still run in
// the image, not in the empty mount point it was planned for.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TSRT, e2eFile, hostMountsContaining } from '../helpers.js';
import { userSifBundle } from '../sif-helpers.js';

e2eFile(t, { name: 'image-rootfs', idPrefix: 'imgroot', needsRoot: 'image rootfs tests need root', timeoutMinutes: 10 });

t.test('an unprivileged read-only SIF root that only unpacking can open runs from where it was unpacked', async tt => {
  const { user, home, bundle } = userSifBundle(tt, 'tsrt-image-rootfs-', ['sh', '-c', 'cat /etc/greeting']);
  // A PATH with unsquashfs but neither squashfuse nor fuse2fs: the image can only be unpacked.
  const tools = path.join(home, 'tools');
  fs.mkdirSync(tools, { mode: 0o755 });
  for (const tool of ['unsquashfs', 'chmod']) {
    const found = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map(d => path.join(d, tool)).find(p => fs.existsSync(p));
    if (!found) throw new Error(`${tool} is not installed`);
    fs.symlinkSync(found, path.join(tools, tool));
  }
  const root = path.join(home, 'state');
  const env = { ...process.env, XDG_CACHE_HOME: path.join(home, 'cache') };
  const r = spawnSync(
    '/usr/sbin/runuser',
    ['-u', user.name, '--', '/usr/bin/env', `PATH=${tools}`, TSRT, '--debug', '--root', root, 'run', '-b', bundle, 'imgroot-unpacked'],
    {
      encoding: 'utf8',
      env,
      timeout: 120_000,
    },
  );
  tt.match(r.stderr, /extracted sandbox/, 'the image was unpacked, not mounted');
  tt.equal(r.status, 0, r.stderr);
  tt.equal(r.stdout, 'hello from the SIF\n', 'the container ran in the image');
  tt.same(hostMountsContaining(home), [], 'nothing left mounted');
  tt.same(fs.readdirSync(root), [], 'no state left');
});
