// imageRootfsSource: which bundles take their root filesystem from an image file. The org.tsrt.sif annotation
// names the image for a pod's containers; containerd's CRI copies a Pod's annotations into its sandbox's
// config.json too, and the sandbox (pause) keeps the directory rootfs of its own image.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { imageRootfsSource } from '../../src/runtime/image-rootfs.js';

const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-image-source-'));
t.teardown(() => fs.rmSync(bundle, { recursive: true, force: true }));
fs.mkdirSync(path.join(bundle, 'rootfs'));
fs.writeFileSync(path.join(bundle, 'image.sif'), 'SIF_MAGIC is not checked for an annotated image');
// As root the annotation needs a site config allowing the image's directory (test/security/issue13-finding6-*).
fs.writeFileSync(path.join(bundle, 'tsrt.conf'), `sif annotation dir = ${bundle}\n`, { mode: 0o644 });
process.env['TSRT_CONFIG'] = path.join(bundle, 'tsrt.conf');

/** The source found (its fd, opened for the mount, closed here). */
function source(s: any) {
  const found = imageRootfsSource(bundle, s);
  if (found) fs.closeSync(found.fd);
  return found && { image: found.image, field: found.field };
}

const spec = (annotations: Record<string, string>): any => ({ ociVersion: '1.0.2', root: { path: 'rootfs' }, annotations });

t.test('annotations org.tsrt.sif names the image, relative to the bundle', async t => {
  t.same(source(spec({ 'org.tsrt.sif': 'image.sif' })), { image: path.join(bundle, 'image.sif'), field: '/annotations/org.tsrt.sif' });
});

t.test('annotations org.tsrt.sif in a CRI pod container (io.kubernetes.cri.container-type=container)', async t => {
  t.same(source(spec({ 'org.tsrt.sif': 'image.sif', 'io.kubernetes.cri.container-type': 'container' })), {
    image: path.join(bundle, 'image.sif'),
    field: '/annotations/org.tsrt.sif',
  });
});

t.test('annotations org.tsrt.sif in a CRI sandbox (io.kubernetes.cri.container-type=sandbox) keeps root.path', async t => {
  t.equal(source(spec({ 'org.tsrt.sif': 'image.sif', 'io.kubernetes.cri.container-type': 'sandbox' })), undefined);
});

t.test('annotations org.tsrt.sif naming a missing file is an error naming the field', async t => {
  t.throws(() => imageRootfsSource(bundle, spec({ 'org.tsrt.sif': 'missing.sif' })), {
    message: /\/annotations\/org\.tsrt\.sif: image .*missing\.sif does not exist/,
  });
});
