// Rootless podman runs its runtime as uid 0 in a user namespace it made: where tsrt keeps state without --root
// ($XDG_RUNTIME_DIR/tsrt there, /run/tsrt for the real root) and --rootless auto (cgroups it may not make are skipped).
import t from 'tap';
import { inUserNamespace } from '../../src/runtime/host.js';
import { RuntimeError } from '../../src/errors.js';
import { defaultRoot, rootlessMode } from '../../src/runtime/state.js';

const initialNs = () => false;
const usersNs = () => true;
/** $XDG_RUNTIME_DIR taken as given (its checks are the multi-user tests' business: test/security/issue13-finding2-*). */
const asGiven = (env: NodeJS.ProcessEnv, fix: string): string => {
  if (!env['XDG_RUNTIME_DIR']) throw new RuntimeError(`XDG_RUNTIME_DIR is not set: ${fix}`);
  return env['XDG_RUNTIME_DIR'];
};
const root = (env: NodeJS.ProcessEnv, euid: number, userns: () => boolean): string => defaultRoot(env, euid, userns, asGiven);

t.test('root in the initial user namespace: /run/tsrt, whatever XDG_RUNTIME_DIR says', async t => {
  t.equal(root({}, 0, initialNs), '/run/tsrt');
  t.equal(root({ XDG_RUNTIME_DIR: '/run/user/0', USER: 'tsrtuser' }, 0, initialNs), '/run/tsrt');
});

t.test("root in a user namespace with XDG_RUNTIME_DIR (rootless podman): the user's runtime dir", async t => {
  t.equal(root({ XDG_RUNTIME_DIR: '/run/user/1001', USER: 'tsrtuser' }, 0, usersNs), '/run/user/1001/tsrt');
  t.equal(root({ XDG_RUNTIME_DIR: '/run/user/1001' }, 0, usersNs), '/run/user/1001/tsrt', 'USER unset');
  t.equal(
    root({ XDG_RUNTIME_DIR: '/run/user/0', USER: 'root' }, 0, usersNs),
    '/run/tsrt',
    'USER=root: the real root inside a container keeps /run/tsrt',
  );
  t.equal(root({ XDG_RUNTIME_DIR: '', USER: 'tsrtuser' }, 0, usersNs), '/run/tsrt', "podman's empty XDG_RUNTIME_DIR= for root");
});

t.test('an unprivileged user: $XDG_RUNTIME_DIR/tsrt, else refused (no fixed name in /tmp), naming both ways out', async t => {
  t.equal(root({ XDG_RUNTIME_DIR: '/run/user/1001' }, 1001, initialNs), '/run/user/1001/tsrt');
  t.throws(() => root({}, 1001, initialNs), /XDG_RUNTIME_DIR is not set: .*set XDG_RUNTIME_DIR .*mode 0700, or pass --root DIR/);
  t.throws(() => root({ XDG_RUNTIME_DIR: '' }, 1001, initialNs), /XDG_RUNTIME_DIR is not set/);
});

t.test('inUserNamespace reads the uid map: only the identity map of every id is the initial namespace', async t => {
  t.equal(inUserNamespace('         0          0 4294967295\n'), false);
  t.equal(inUserNamespace('         0       1001          1\n         1     100000      65536\n'), true);
  t.equal(inUserNamespace('         0          0      65536\n'), true);
});

t.test('--rootless auto: unprivileged, or root in a user namespace; true and false are taken as said', async t => {
  t.equal(rootlessMode('auto', 0, initialNs), false, 'the real root');
  t.equal(rootlessMode('auto', 0, usersNs), true, "root in a user's namespace (rootless podman)");
  t.equal(rootlessMode('auto', 1001, initialNs), true, 'an unprivileged user');
  t.equal(rootlessMode('true', 0, initialNs), true);
  t.equal(rootlessMode('false', 1001, initialNs), false);
});
