// Issue 13, finding 6: as root, the annotation org.tsrt.sif mounted any file on the node, and Pod annotations
// reach it: anyone who may create a Pod could run another user's 0600 image. The path was checked, then the
// loop device attached by name. Now tsrt opens the image once and checks it on the fd: a regular file, owned
// by root or by the bundle's owner, not writable by group or others, inside a directory the site config
// (tsrt.conf, root-owned and not writable by others) allows; none by default. The loop device is attached to
// that fd. TSRT_CONFIG names the config for these tests (default /etc/tsrt/tsrt.conf).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataType, FsType, PartType, SifImage } from '../../src/sif/index.js';
import { editConfig, errorMessage, hostMountsContaining, type Scope } from '../helpers.js';
import { multiUser } from '../multiuser-kit.js';
import { rtFiles, securityRoot } from '../security-kit.js';

const sec = securityRoot(t, 'issue13-finding6');
const mu = multiUser(t);
const { victim } = mu;

/** A SIF of a busybox rootfs whose /etc/greeting says `greeting`, at `file`. */
function makeSif(s: Scope, file: string, greeting: string): string {
  const tree = path.join(s.bundle(['true']), 'rootfs');
  fs.writeFileSync(path.join(tree, 'etc', 'greeting'), `${greeting}\n`);
  const sqfs = path.join(s.dir(), 'rootfs.sqfs');
  const r = spawnSync('/usr/bin/mksquashfs', [tree, sqfs, '-quiet', '-noappend', '-all-root'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mksquashfs: ${r.stderr}`);
  SifImage.create(file, [
    { dataType: DataType.Partition, data: { path: sqfs }, partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys } },
  ]).close();
  fs.chmodSync(file, 0o644);
  return file;
}

/** A site config with these lines, root-owned 0644 unless changed afterwards. */
function siteConfig(s: Scope, text: string): string {
  const file = path.join(s.dir(), 'tsrt.conf');
  fs.writeFileSync(file, text, { mode: 0o644 });
  return file;
}

/** Creates and runs a root bundle annotated with `image` under the given site config; the container cats /etc/greeting. */
function runAnnotated(s: Scope, image: string, config: string, edit?: (bundle: string) => void) {
  const bundle = s.bundle(['cat', '/etc/greeting'], spec => {
    spec.annotations = { ...spec.annotations, 'org.tsrt.sif': image };
  });
  edit?.(bundle);
  const id = s.id();
  const r = rtFiles(sec.root, s, ['run', '-b', bundle, id], { env: { ...process.env, TSRT_CONFIG: config }, timeout: 60_000 });
  return { ...r, id, bundle };
}

function refused(tt: any, r: ReturnType<typeof runAnnotated>, pattern: RegExp): void {
  tt.not(r.code, 0, 'refused');
  tt.notMatch(r.stdout, /private|outside/, "the image's files were never shown");
  tt.match(errorMessage(r.stderr), pattern, `the error says why: ${errorMessage(r.stderr)}`);
  tt.notOk(fs.existsSync(path.join(sec.root, r.id)), 'no state left');
  tt.same(hostMountsContaining(r.bundle), [], 'nothing mounted');
}

t.test(
  "finding 6: by default (no directory allowed) a root tsrt refuses org.tsrt.sif: another user's 0600 image stays unread",
  async tt => {
    const s = sec.scope(tt);
    const image = makeSif(s, path.join(mu.owned(victim, 0o755), 'private.sif'), "the victim's private image");
    mu.give(victim, image, 0o600);
    const r = runAnnotated(s, image, siteConfig(s, '# nothing allowed\n'));
    refused(tt, r, /\/annotations\/org\.tsrt\.sif: .*not in a directory.*allows.*sif annotation dir/);
    const none = runAnnotated(s, image, path.join(s.dir(), 'no-such-tsrt.conf'));
    refused(tt, none, /\/annotations\/org\.tsrt\.sif: .*not in a directory/);
  },
);

t.test("finding 6: in an allowed directory, only a regular file of root or of the bundle's owner, not writable by others", async tt => {
  const s = sec.scope(tt);
  const allowed = s.dir();
  const config = siteConfig(s, `# images the site publishes\nsif annotation dir = ${allowed}\n`);
  const mine = makeSif(s, path.join(allowed, 'site.sif'), 'the site image');

  tt.test('a root-owned 0644 image runs', async t3 => {
    const r = runAnnotated(s, mine, config);
    t3.equal(r.code, 0, r.stderr);
    t3.equal(r.stdout, 'the site image\n');
  });
  tt.test("another user's image is refused, even readable", async t3 => {
    const image = makeSif(s, path.join(allowed, 'victim.sif'), 'private to the victim');
    mu.give(victim, image, 0o600);
    refused(t3, runAnnotated(s, image, config), new RegExp(`${image} is owned by uid ${victim.uid}, neither root nor the bundle's owner`));
  });
  tt.test("an image of the bundle's owner runs", async t3 => {
    const image = makeSif(s, path.join(allowed, 'owner.sif'), "the bundle owner's image");
    mu.give(victim, image, 0o644);
    const r = runAnnotated(s, image, config, bundle => mu.give(victim, bundle));
    t3.equal(r.code, 0, r.stderr);
    t3.equal(r.stdout, "the bundle owner's image\n");
  });
  tt.test('an image writable by others is refused', async t3 => {
    const image = makeSif(s, path.join(allowed, 'open.sif'), 'anyone could have written this');
    fs.chmodSync(image, 0o666);
    refused(t3, runAnnotated(s, image, config), /writable by group or others/);
  });
  tt.test('an image outside the allowed directories is refused, named directly or through a symlink inside', async t3 => {
    const outside = makeSif(s, path.join(s.dir(), 'outside.sif'), 'outside the allowed directory');
    refused(t3, runAnnotated(s, outside, config), /not in a directory/);
    const link = path.join(allowed, 'link.sif');
    fs.symlinkSync(outside, link);
    refused(t3, runAnnotated(s, link, config), new RegExp(`${outside}.*not in a directory`));
  });
  tt.test('a FIFO is refused at once, never opened for reading', async t3 => {
    const fifo = path.join(allowed, 'fifo.sif');
    spawnSync('/usr/bin/mkfifo', [fifo]);
    refused(t3, runAnnotated(s, fifo, config), /not a regular file|not an image file/);
  });
});

t.test("finding 6: the site config must be root's and not writable by others; bad lines are named", async tt => {
  const s = sec.scope(tt);
  const allowed = s.dir();
  const image = makeSif(s, path.join(allowed, 'site.sif'), 'the site image');
  const open = siteConfig(s, `sif annotation dir = ${allowed}\n`);
  fs.chmodSync(open, 0o666);
  refused(tt, runAnnotated(s, image, open), new RegExp(`${open}.*writable by group or others`));
  const users = siteConfig(s, `sif annotation dir = ${allowed}\n`);
  mu.give(victim, users, 0o644);
  refused(tt, runAnnotated(s, image, users), new RegExp(`${users}.*owned by uid ${victim.uid}`));
  const typo = siteConfig(s, `sif annotation dirs = ${allowed}\n`);
  refused(tt, runAnnotated(s, image, typo), new RegExp(`${typo} line 1: unknown setting "sif annotation dirs"`));
  const relative = siteConfig(s, 'sif annotation dir = images\n');
  refused(tt, runAnnotated(s, image, relative), new RegExp(`${relative} line 1: .*absolute`));
});

t.test("finding 6: root.path naming an image (the bundle's own choice) needs no site config", async tt => {
  const s = sec.scope(tt);
  const bundle = s.bundle(['cat', '/etc/greeting']);
  makeSif(s, path.join(bundle, 'image.sif'), "the bundle's image");
  editConfig(bundle, spec => {
    spec.root = { path: 'image.sif', readonly: true };
  });
  const r = rtFiles(sec.root, s, ['run', '-b', bundle, s.id()], { env: { ...process.env, TSRT_CONFIG: siteConfig(s, '') } });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, "the bundle's image\n");
});
