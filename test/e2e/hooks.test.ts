// OCI hooks: prestart and createRuntime during create (before pivot_root) in the runtime's namespaces,
// createContainer during create and startContainer at start inside the container's namespaces, poststart
// after start, poststop at delete; each gets the state JSON on stdin. Configs older than runtime-spec 1.0.2
// get that version's prestart timing: after `start` is called, before the user program.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeBundle, tmpdir, tsrt, uniqueId, waitFor } from '../helpers.js';

const root = tmpdir('tsrt-hooks-root-');
/** The container inherits create's stdio: a pipe would keep the test waiting until the container exits. */
const detached = { root, stdio: 'ignore' as const };
const logDir = tmpdir('tsrt-hooks-log-');
const hookScript = path.join(logDir, 'hook.sh');
fs.writeFileSync(hookScript, '#!/bin/sh\nstate=$(cat)\nprintf "%s %s\\n" "$1" "$state" >> "$HOOK_LOG"\nexit ${HOOK_EXIT:-0}\n', {
  mode: 0o755,
});

function hook(kind: string, log: string, extraEnv: string[] = []) {
  return { path: hookScript, args: ['hook.sh', kind], env: [`HOOK_LOG=${log}`, ...extraEnv] };
}

function entries(log: string): { kind: string; state: any }[] {
  if (!fs.existsSync(log)) return [];
  return fs
    .readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map(line => {
      const i = line.indexOf(' ');
      return { kind: line.slice(0, i), state: JSON.parse(line.slice(i + 1)) };
    });
}

t.test('hooks run in lifecycle order with the container state on stdin', async t => {
  const log = path.join(logDir, 'order.log');
  const id = uniqueId('hooks');
  const bundle = makeBundle(['sleep', '30'], {
    edit: spec => {
      spec.ociVersion = '1.2.0';
      spec.hooks = {
        prestart: [hook('prestart', log)],
        createRuntime: [hook('createRuntime', log)],
        poststart: [hook('poststart', log)],
        poststop: [hook('poststop', log)],
      };
    },
  });
  t.teardown(() => tsrt(['delete', '--force', id], { root }));
  t.equal(tsrt(['create', '-b', bundle, id], detached).code, 0, 'create');
  t.same(
    entries(log).map(e => e.kind),
    ['prestart', 'createRuntime'],
    'prestart then createRuntime during create',
  );
  const first = entries(log)[0]!.state;
  t.equal(first.id, id, 'state names the container');
  t.ok(first.pid > 0, 'state carries the init pid');
  t.equal(first.bundle, bundle, 'state carries the bundle');
  t.equal(tsrt(['start', id], { root }).code, 0, 'start');
  t.same(
    entries(log).map(e => e.kind),
    ['prestart', 'createRuntime', 'poststart'],
    'poststart after start',
  );
  t.equal(entries(log)[2]!.state.status, 'running', 'poststart sees a running container');
  t.equal(tsrt(['kill', id, 'KILL'], { root }).code, 0, 'kill');
  // A plain delete is only allowed once the container has stopped, and SIGKILL is not instantaneous.
  t.ok(
    waitFor(() => /"status": "stopped"/.test(tsrt(['state', id], { root }).stdout), 200),
    'the process dies',
  );
  t.equal(tsrt(['delete', id], { root }).code, 0, 'delete');
  const all = entries(log);
  t.equal(all.at(-1)!.kind, 'poststop', 'poststop at delete');
  t.equal(all.at(-1)!.state.status, 'stopped', 'poststop sees a stopped container');
});

t.test('a failing createRuntime hook fails create and leaves nothing behind', async t => {
  const log = path.join(logDir, 'fail.log');
  const id = uniqueId('hookfail');
  const bundle = makeBundle(['true'], {
    edit: spec => {
      spec.hooks = { createRuntime: [hook('createRuntime', log, ['HOOK_EXIT=3'])] };
    },
  });
  const r = tsrt(['create', '-b', bundle, id], { root });
  t.equal(r.code, 1, 'create fails');
  t.match(r.stderr, /error running createRuntime hook #0: exit status 3/, 'the error names the hook and its status');
  t.notOk(fs.existsSync(path.join(root, id)), 'no state dir left');
  t.match(tsrt(['state', id], { root }).stderr, /container does not exist/, 'the container does not exist');
});

t.test('a hook that outlives its timeout is killed and fails create', async t => {
  const id = uniqueId('hooktimeout');
  const bundle = makeBundle(['true'], {
    edit: spec => {
      spec.ociVersion = '1.1.0';
      spec.hooks = { prestart: [{ path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 }] };
    },
  });
  const r = tsrt(['create', '-b', bundle, id], { root });
  t.equal(r.code, 1, 'create fails');
  t.match(r.stderr, /prestart hook #0: timeout/, 'the error says the hook timed out');
  t.notOk(fs.existsSync(path.join(root, id)), 'no state dir left');
});

t.test('a failing poststart hook is a warning: the container keeps running', async t => {
  const log = path.join(logDir, 'poststart.log');
  const id = uniqueId('poststart');
  const bundle = makeBundle(['sleep', '30'], {
    edit: spec => {
      spec.hooks = { poststart: [hook('poststart', log, ['HOOK_EXIT=1'])] };
    },
  });
  t.teardown(() => tsrt(['delete', '--force', id], { root }));
  t.equal(tsrt(['create', '-b', bundle, id], detached).code, 0, 'create');
  const r = tsrt(['start', id], { root });
  t.equal(r.code, 0, 'start still succeeds');
  t.match(r.stderr, /level=warning.*poststart hook #0/, 'the failure is logged as a warning');
  t.match(tsrt(['state', id], { root }).stdout, /"status": "running"/, 'the container runs');
});

const NS = ['mnt', 'uts', 'pid', 'net', 'ipc'];

function nsOf(pid: number | string): Record<string, string> {
  return Object.fromEntries(NS.map(n => [n, fs.readlinkSync(`/proc/${pid}/ns/${n}`)]));
}

/** A shell line that records the namespaces and the state the hook sees. */
function nsProbe(out: string): string {
  return `{ for n in ${NS.join(' ')}; do printf '%s=%s\\n' $n "$(readlink /proc/self/ns/$n)"; done; printf 'hostname=%s\\n' "$(hostname)"; printf 'state=%s\\n' "$(cat)"; } > ${out}`;
}

function probeResult(file: string): { ns: Record<string, string>; hostname: string; state: any } {
  const kv = Object.fromEntries(
    fs
      .readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { ns: Object.fromEntries(NS.map(n => [n, kv[n]!])), hostname: kv.hostname!, state: JSON.parse(kv.state!) };
}

t.test('createContainer hooks run inside the container namespaces during create', async t => {
  const out = path.join(logDir, 'createContainer.out');
  const id = uniqueId('createcontainer');
  const bundle = makeBundle(['sleep', '30'], {
    edit: spec => {
      spec.hostname = 'hooked';
      spec.hooks = { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', nsProbe(out)] }] };
    },
  });
  t.teardown(() => tsrt(['delete', '--force', id], { root }));
  t.equal(tsrt(['create', '-b', bundle, id], detached).code, 0, 'create');
  const pid = JSON.parse(tsrt(['state', id], { root }).stdout).pid;
  const seen = probeResult(out);
  t.same(seen.ns, nsOf(pid), 'the hook shares every namespace of the container init');
  t.not(seen.ns.mnt, nsOf('self').mnt, "not the runtime's mount namespace");
  t.equal(seen.hostname, 'hooked', 'the container hostname is already set');
  t.equal(seen.state.status, 'creating', 'state says creating');
  t.equal(seen.state.id, id, 'state names the container');
  t.equal(seen.state.pid, pid, 'state carries the init pid (host view)');
});

t.test('startContainer hooks run inside the container at start, resolved in its root', async t => {
  const id = uniqueId('startcontainer');
  const bundle = makeBundle(['sh', '-c', 'cat /started > /seen-by-process'], {
    edit: spec => {
      spec.root.readonly = false;
      spec.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', `${nsProbe('/started')}; echo $$ >> /started`] }] };
    },
  });
  const rootfs = path.join(bundle, 'rootfs');
  t.teardown(() => tsrt(['delete', '--force', id], { root }));
  t.equal(tsrt(['create', '-b', bundle, id], detached).code, 0, 'create');
  t.notOk(fs.existsSync(path.join(rootfs, 'started')), 'nothing ran at create');
  const pid = JSON.parse(tsrt(['state', id], { root }).stdout).pid;
  const expected = nsOf(pid);
  t.equal(tsrt(['start', id], { root }).code, 0, 'start');
  t.ok(fs.existsSync(path.join(rootfs, 'started')), 'the hook wrote inside the container root');
  const lines = fs.readFileSync(path.join(rootfs, 'started'), 'utf8').trim().split('\n');
  const hookPid = Number(lines.pop());
  fs.writeFileSync(path.join(rootfs, 'started.probe'), lines.join('\n') + '\n');
  const seen = probeResult(path.join(rootfs, 'started.probe'));
  t.same(seen.ns, expected, 'the hook shares every namespace of the container init');
  t.ok(hookPid > 1 && hookPid < 1000, `the hook has a pid of the container's pid namespace (${hookPid})`);
  t.equal(seen.state.status, 'created', 'state says created');
  const seenByProcess = path.join(rootfs, 'seen-by-process');
  t.ok(
    waitFor(() => fs.existsSync(seenByProcess) && /hostname=/.test(fs.readFileSync(seenByProcess, 'utf8'))),
    'the user process ran after the hook and saw its output',
  );
});

t.test('a failing startContainer hook fails start and destroys the container', async t => {
  const id = uniqueId('startfail');
  const log = path.join(logDir, 'startfail.log');
  const bundle = makeBundle(['sh', '-c', 'touch /ran'], {
    edit: spec => {
      spec.root.readonly = false;
      spec.hooks = {
        startContainer: [{ path: '/bin/false', args: ['false'] }],
        poststop: [hook('poststop', log)],
      };
    },
  });
  t.teardown(() => tsrt(['delete', '--force', id], { root }));
  t.equal(tsrt(['create', '-b', bundle, id], detached).code, 0, 'create');
  const r = tsrt(['start', id], { root });
  t.equal(r.code, 1, 'start fails');
  t.match(r.stderr, /error running startContainer hook #0: exit status 1/, 'the error names the hook');
  t.notOk(fs.existsSync(path.join(bundle, 'rootfs', 'ran')), 'the user process never ran');
  t.match(tsrt(['state', id], { root }).stderr, /container does not exist/, 'the container is gone');
  t.same(
    entries(log).map(e => e.kind),
    ['poststop'],
    'poststop hooks ran while destroying it',
  );
});

t.test('a failing createContainer hook fails create and leaves nothing behind', async t => {
  const id = uniqueId('ccfail');
  const bundle = makeBundle(['true'], {
    edit: spec => {
      spec.hooks = { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'echo bad >&2; exit 4'] }] };
    },
  });
  const r = tsrt(['create', '-b', bundle, id], { root });
  t.equal(r.code, 1, 'create fails');
  t.match(r.stderr, /error running createContainer hook #0: exit status 4, output: bad/, 'the error carries status and output');
  t.notOk(fs.existsSync(path.join(root, id)), 'no state dir left');
});

t.test('a createContainer hook that outlives its timeout is killed, with its children', async t => {
  const id = uniqueId('cctimeout');
  const marker = path.join(logDir, 'cctimeout.alive');
  const bundle = makeBundle(['true'], {
    edit: spec => {
      spec.hooks = { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', `sleep 3; touch ${marker}`], timeout: 1 }] };
    },
  });
  const r = tsrt(['create', '-b', bundle, id], { root });
  t.equal(r.code, 1, 'create fails');
  t.match(r.stderr, /createContainer hook #0: timeout after 1s/, 'the error says the hook timed out');
  t.notOk(fs.existsSync(path.join(root, id)), 'no state dir left');
  await new Promise(res => setTimeout(res, 3500));
  t.notOk(fs.existsSync(marker), 'the hook did not live on after the timeout');
});

t.test('prestart hooks of a pre-1.0.2 config run at start, before the user program, seeing "created"', async t => {
  for (const version of ['1.0.0', '1.0.1', '1.0.2-dev']) {
    await t.test(version, async tt => {
      const id = uniqueId('legacy');
      const log = path.join(logDir, `legacy-${version}.log`);
      const bundle = makeBundle(['sh', '-c', 'echo process >> /order'], {
        edit: spec => {
          spec.root.readonly = false;
          spec.ociVersion = version;
          spec.hooks = { prestart: [hook('prestart', log)] };
        },
      });
      tt.teardown(() => tsrt(['delete', '--force', id], { root }));
      tt.equal(tsrt(['create', '-b', bundle, id], detached).code, 0, 'create');
      tt.same(entries(log), [], 'no prestart hook during create');
      tt.equal(tsrt(['start', id], { root }).code, 0, 'start');
      const seen = entries(log);
      tt.same(
        seen.map(e => e.kind),
        ['prestart'],
        'prestart ran at start',
      );
      tt.equal(seen[0]!.state.status, 'created', 'state says created');
      tt.ok(
        waitFor(() => fs.existsSync(path.join(bundle, 'rootfs', 'order'))),
        'then the process ran',
      );
    });
  }
});

t.test('a failing prestart hook at start stops and destroys the container (pre-1.0.2 lifecycle)', async t => {
  const id = uniqueId('legacyfail');
  const bundle = makeBundle(['sh', '-c', 'touch /ran'], {
    edit: spec => {
      spec.root.readonly = false;
      spec.ociVersion = '1.0.1';
      spec.hooks = { prestart: [{ path: '/bin/false', args: ['false'] }] };
    },
  });
  t.teardown(() => tsrt(['delete', '--force', id], { root }));
  t.equal(tsrt(['create', '-b', bundle, id], detached).code, 0, 'create');
  const r = tsrt(['start', id], { root });
  t.equal(r.code, 1, 'start fails');
  t.notOk(fs.existsSync(path.join(bundle, 'rootfs', 'ran')), 'the user process never ran');
  t.match(tsrt(['state', id], { root }).stderr, /container does not exist/, 'the container is gone');
});

t.test('run applies start-time hooks too, and a failing one leaves nothing', async t => {
  const id = uniqueId('runhooks');
  const bundle = makeBundle(['true'], {
    edit: spec => {
      spec.hooks = { startContainer: [{ path: '/bin/false', args: ['false'] }] };
    },
  });
  const r = tsrt(['run', '-b', bundle, id], { root });
  t.equal(r.code, 1, 'run fails');
  t.match(r.stderr, /startContainer hook #0/, 'the error names the hook');
  t.notOk(fs.existsSync(path.join(root, id)), 'no state dir left');
});

t.test('a failing poststop hook is a warning: delete still removes the container', async t => {
  const id = uniqueId('poststopfail');
  const bundle = makeBundle(['true'], {
    edit: spec => {
      spec.hooks = { poststop: [{ path: '/bin/false', args: ['false'] }] };
    },
  });
  t.teardown(() => tsrt(['delete', '--force', id], { root }));
  t.equal(tsrt(['run', '-d', '-b', bundle, id], { root }).code, 0, 'run -d');
  t.ok(
    waitFor(() => /"status": "stopped"/.test(tsrt(['state', id], { root }).stdout)),
    'the process exits',
  );
  const r = tsrt(['delete', id], { root });
  t.equal(r.code, 0, 'delete succeeds');
  t.match(r.stderr, /level=warning.*poststop hook #0/, 'the failure is a warning');
  t.notOk(fs.existsSync(path.join(root, id)), 'the container is gone');
});

t.test('poststart hooks run after the user program is executed, and a failing one does not stop the next', async t => {
  const id = uniqueId('poststartexec');
  const log = path.join(logDir, 'poststart-exec.log');
  // The hook reads the init's pid from the state and records what that process is executing by then.
  const probe = `pid=$(sed -e 's/.*"pid": *\\([0-9]*\\).*/\\1/'); readlink /proc/$pid/exe >> ${log}`;
  const bundle = makeBundle(['sleep', '30'], {
    edit: spec => {
      spec.hooks = {
        poststart: [
          { path: '/bin/false', args: ['false'] },
          { path: '/bin/sh', args: ['sh', '-c', probe] },
        ],
      };
    },
  });
  t.teardown(() => tsrt(['delete', '--force', id], { root }));
  t.equal(tsrt(['create', '-b', bundle, id], detached).code, 0, 'create');
  const r = tsrt(['start', id], { root });
  t.equal(r.code, 0, 'start succeeds although the first poststart hook fails');
  t.match(r.stderr, /level=warning.*poststart hook #0/, 'the failure is a warning');
  t.equal(fs.readFileSync(log, 'utf8'), '/bin/busybox\n', 'the second hook ran, and saw the user program (busybox sleep) executing');
});

t.test('a failing poststop hook does not stop the next one', async t => {
  const id = uniqueId('poststopnext');
  const log = path.join(logDir, 'poststop-next.log');
  const bundle = makeBundle(['true'], {
    edit: spec => {
      spec.hooks = { poststop: [{ path: '/bin/false', args: ['false'] }, hook('poststop', log)] };
    },
  });
  t.teardown(() => tsrt(['delete', '--force', id], { root }));
  t.equal(tsrt(['run', '-d', '-b', bundle, id], { root }).code, 0, 'run -d');
  t.ok(
    waitFor(() => /"status": "stopped"/.test(tsrt(['state', id], { root }).stdout)),
    'the process exits',
  );
  const r = tsrt(['delete', id], { root });
  t.equal(r.code, 0, 'delete succeeds');
  t.same(
    entries(log).map(e => e.kind),
    ['poststop'],
    'the second poststop hook ran',
  );
});
