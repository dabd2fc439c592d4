// Rootless podman runs its runtime as uid 0 in a user namespace it made: where tsrt keeps state without --root
// ($XDG_RUNTIME_DIR/tsrt there, /run/tsrt for the real root) and --rootless auto (cgroups it may not make are skipped).
import t from 'tap';
import { inUserNamespace } from '../../src/runtime/host.js';
import { defaultRoot, rootlessMode } from '../../src/runtime/state.js';

const initialNs = () => false;
const usersNs = () => true;

t.test('root in the initial user namespace: /run/tsrt, whatever XDG_RUNTIME_DIR says', async t => {
  t.equal(defaultRoot({}, 0, initialNs), '/run/tsrt');
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '/run/user/0', USER: 'tsrtuser' }, 0, initialNs), '/run/tsrt');
});

t.test('root in a user namespace with XDG_RUNTIME_DIR (rootless podman): the user\'s runtime dir', async t => {
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '/run/user/1001', USER: 'tsrtuser' }, 0, usersNs), '/run/user/1001/tsrt');
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '/run/user/1001' }, 0, usersNs), '/run/user/1001/tsrt', 'USER unset');
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '/run/user/0', USER: 'root' }, 0, usersNs), '/run/tsrt',
    'USER=root: the real root inside a container keeps /run/tsrt');
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '', USER: 'tsrtuser' }, 0, usersNs), '/run/tsrt', 'podman\'s empty XDG_RUNTIME_DIR= for root');
});

t.test('an unprivileged user: $XDG_RUNTIME_DIR/tsrt, else a per-uid dir in /tmp', async t => {
  t.equal(defaultRoot({ XDG_RUNTIME_DIR: '/run/user/1001' }, 1001, initialNs), '/run/user/1001/tsrt');
  t.equal(defaultRoot({}, 1001, initialNs), '/tmp/tsrt-1001');
});

t.test('inUserNamespace reads the uid map: only the identity map of every id is the initial namespace', async t => {
  t.equal(inUserNamespace('         0          0 4294967295\n'), false);
  t.equal(inUserNamespace('         0       1001          1\n         1     100000      65536\n'), true);
  t.equal(inUserNamespace('         0          0      65536\n'), true);
});

t.test('--rootless auto: unprivileged, or root in a user namespace; true and false are taken as said', async t => {
  t.equal(rootlessMode('auto', 0, initialNs), false, 'the real root');
  t.equal(rootlessMode('auto', 0, usersNs), true, 'root in a user\'s namespace (rootless podman)');
  t.equal(rootlessMode('auto', 1001, initialNs), true, 'an unprivileged user');
  t.equal(rootlessMode('true', 0, initialNs), true);
  t.equal(rootlessMode('false', 1001, initialNs), false);
});
