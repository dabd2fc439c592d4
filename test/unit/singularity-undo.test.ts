// The session's undo list (src/singularity/undo.ts): what a tsrt-singularity session made is undone newest
// first, every step even when one fails (an image left mounted or an overlay lock left behind would outlive
// the session), and the first failure is reported once all have run.
import t from 'tap';

import { Undo } from '../../src/singularity/undo.js';

t.test('steps run newest first, once', async t => {
  const undo = new Undo();
  const ran: string[] = [];
  for (const name of ['image', 'overlay', 'lock', 'session dir']) undo.push(() => ran.push(name));
  undo.run();
  t.same(ran, ['session dir', 'lock', 'overlay', 'image']);
  undo.run();
  t.equal(ran.length, 4, 'a second run has nothing left to do');
});

t.test('a failing step does not stop the others; the first failure is thrown after', async t => {
  const undo = new Undo();
  const ran: string[] = [];
  undo.push(() => ran.push('image'));
  undo.push(() => {
    throw new Error('umount: busy');
  });
  undo.push(() => ran.push('lock'));
  undo.push(() => {
    throw new Error('rm: busy');
  });
  t.throws(() => undo.run(), { message: 'rm: busy' });
  t.same(ran, ['lock', 'image'], 'the steps before and after the failures ran');
});
