// Issue 13, finding 4 (R9): an unprivileged tsrt put the mount points of an image root filesystem (a SIF as
// root.path or org.tsrt.sif) in <tmpdir>/tsrt-images when XDG_RUNTIME_DIR was unset (Slurm's oci.conf runs
// tsrt so), under predictable names (<id>-<hash of the state dir>) in a directory whoever came first owned.
// Now they live in the container's own state directory, below the verified state root.
import t from 'tap';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TSRT, hostMountsContaining } from '../helpers.js';
import { multiUser, sifBundleOf } from '../multiuser-kit.js';

const mu = multiUser(t);
const { victim, attacker } = mu;

t.test(
  "finding 4: names another user planted in the temp dir's tsrt-images neither block nor receive the victim's image mounts",
  async tt => {
    // The node's temp dir (TMPDIR, like /tmp): the attacker made tsrt-images there first, world-writable, and
    // the victim's next mount point in it (the name is predictable from the --root and the container id).
    const tmp = mu.shared('tsrt-mu-tmp-');
    const images = path.join(tmp, 'tsrt-images');
    const root = path.join(mu.owned(victim, 0o700, 'tsrt-mu-state-'), 'state');
    const id = 'slurm-job-1';
    const stateDir = path.join(root, id);
    const planted = path.join(images, `${id}-${createHash('sha256').update(stateDir).digest('hex').slice(0, 12)}`);
    fs.mkdirSync(planted, { recursive: true });
    mu.give(attacker, images, 0o777);
    mu.give(attacker, planted, 0o777);
    const before = fs.readdirSync(images);

    const bundle = sifBundleOf(mu, victim, ['cat', '/etc/greeting']);
    const cache = mu.owned(victim, 0o700, 'tsrt-mu-cache-');
    // As Slurm's RunTimeRun runs it: an explicit --root, no XDG_RUNTIME_DIR.
    const r = mu.as(victim, [TSRT, '--root', root, 'run', '-b', bundle, id], { env: { TMPDIR: tmp, XDG_CACHE_HOME: cache } });
    tt.equal(r.code, 0, `the victim's container runs: ${r.stderr}`);
    tt.equal(r.stdout, 'hello from the SIF\n', "from the victim's own image");
    tt.same(fs.readdirSync(images), before, "nothing of the victim's appeared in the shared tsrt-images");
    tt.same(fs.readdirSync(planted), [], 'nor in the planted mount point');
    tt.same(hostMountsContaining(tmp), [], 'nothing is mounted below the temp dir');
    tt.notOk(fs.existsSync(stateDir), 'the container and its mount points are gone after run');
  },
);
