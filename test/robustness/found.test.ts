// Configs the fuzz suite found mishandled, kept as named cases through dist/tsrt create: each exits 1 with
// a clear one-line error, never hangs, and leaves nothing behind.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeBundle, tmpdir, tsrt, type Edit } from '../helpers.js';
import * as left from './fixtures/leftovers.js';

t.setTimeout(5 * 60_000);

if (process.geteuid?.() !== 0) {
  t.plan(0, 'these cases create containers as root');
  process.exit(0);
}

const ROOT = tmpdir('tsrt-found-root-');
const ID_PREFIX = `found${process.pid}-`;
const MARK = `found-${process.pid}`;
const bundles: string[] = [];
t.teardown(() => {
  for (const id of fs.existsSync(ROOT) ? fs.readdirSync(ROOT) : []) tsrt(['delete', '--force', id], { root: ROOT });
  for (const b of bundles) fs.rmSync(path.dirname(b), { recursive: true, force: true });
  fs.rmSync(ROOT, { recursive: true, force: true });
});

let n = 0;
function refused(t: Test, edit: Edit, message: RegExp): void {
  const bundle = makeBundle(['true'], { edit });
  bundles.push(bundle);
  const id = `${ID_PREFIX}${++n}`;
  const scope: left.Scope = { root: ROOT, idPrefix: ID_PREFIX, paths: [ROOT, path.dirname(bundle)], mark: MARK };
  const r = left.tsrtFiles(['create', '-b', bundle, id], {
    root: ROOT,
    env: { ...process.env, TSRT_ROBUST_MARK: MARK },
    timeoutMs: 60_000,
  });
  t.equal(r.signal, null, 'create finishes on its own (no timeout)');
  t.equal(r.code, 1, 'exits 1');
  t.equal(r.stderr.trimEnd().split('\n').length, 1, 'one error line');
  t.match(left.errorMessage(r.stderr), message);
  t.same(left.settled(scope), [], 'nothing left behind');
}

t.test('a seccomp profile that denies exit_group and the sync socket (noNewPrivileges): an error, not a hang', async t => {
  // The filter is loaded before the init reports ready: it can neither report nor exit, and used to spin.
  refused(
    t,
    spec => {
      spec.process.noNewPrivileges = true;
      spec.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ERRNO',
        architectures: ['SCMP_ARCH_X86_64'],
        syscalls: [{ names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW' }],
      };
    },
    /^unable to start container process: container init exited unexpectedly$/,
  );
});

t.test('a seccomp profile that denies sendto (noNewPrivileges): the init cannot report ready, so it gives up', async t => {
  // It used to go on to wait on exec.fifo while create waited for its "ready" forever.
  for (const errnoRet of [1, 0]) {
    refused(
      t,
      spec => {
        spec.process.noNewPrivileges = true;
        spec.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['sendto'], action: 'SCMP_ACT_ERRNO', errnoRet }] };
      },
      /^unable to start container process: container init exited unexpectedly$/,
    );
  }
});

t.test('relative linux.maskedPaths / readonlyPaths: refused by name, not as a refused plan', async t => {
  refused(
    t,
    spec => void (spec.linux.maskedPaths = ['proc/kcore']),
    /^config\.json: \/linux\/maskedPaths\/0: path must be absolute: "proc\/kcore"$/,
  );
  refused(t, spec => void (spec.linux.readonlyPaths = ['sys']), /^config\.json: \/linux\/readonlyPaths\/0: path must be absolute: "sys"$/);
});

t.test("a NUL inside a value, or a value beyond the kernel's limits: refused with the value or its field", async t => {
  refused(t, spec => void (spec.process.env = ['A=a\u0000b']), /^a value contains a NUL character: "A=a\\u0000b"$/);
  refused(
    t,
    spec => void (spec.process.args = ['true', 'y'.repeat(131_072)]),
    /^config\.json: \/process\/args\/1: a string of 131072 bytes is longer than the kernel takes for one argument or environment string \(MAX_ARG_STRLEN: 131072 bytes with its NUL\)$/,
  );
});

t.test('linux.resources.unified may not move a host process into the container', async t => {
  refused(
    t,
    spec => void (spec.linux.resources = { unified: { 'cgroup.procs': '1' } }),
    /^linux\.resources\.unified: "cgroup\.procs" moves or kills processes; it is not a resource$/,
  );
});
