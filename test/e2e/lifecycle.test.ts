// End-to-end lifecycle and container-environment tests, as root, through the built dist/tsrt.
// Every test uses this file's private --root, and deletes (--force) what it created in its teardown.
import t from 'tap';
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  TSRT,
  alive,
  e2eFile,
  hostMountsContaining,
  readOrEmpty as read,
  startConsoleReceiver,
  tsrt,
  waitFor as pollFor,
  type Edit,
  type Scope,
} from '../helpers.js';

const { ROOT, scope, rt, rtFiles, waitFor } = e2eFile(t, {
  name: 'lifecycle',
  idPrefix: 'lc',
  needsRoot: 'lifecycle tests need root',
  timeoutMinutes: 20,
});

/** Builds a bundle running `args` and runs it in the foreground. */
function runFg(s: Scope, args: string[], edit?: Edit, flags: string[] = [], opts: SpawnSyncOptions = {}) {
  const bundle = s.bundle(args, edit);
  const id = s.id();
  const r = rt(['run', ...flags, '-b', bundle, id], opts);
  return { ...r, bundle, id };
}

function stateOf(id: string): any {
  const r = rt(['state', id]);
  if (r.code !== 0) return undefined;
  return JSON.parse(r.stdout);
}

function statusOf(id: string): string | undefined {
  return stateOf(id)?.status;
}

/** Field of /proc/<x>/status text. */
function statusField(text: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
}

const noPidns: Edit = spec => {
  spec.linux.namespaces = spec.linux.namespaces.filter((n: any) => n.type !== 'pid');
};
const writableRoot: Edit = spec => {
  spec.root.readonly = false;
};
const tmpfsTmp: Edit = spec => {
  spec.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] });
};
const both =
  (...edits: (Edit | undefined)[]): Edit =>
  spec => {
    for (const e of edits) e?.(spec);
  };

/** A container that says it is ready and then idles. */
const IDLE = ['sh', '-c', 'echo ready; while :; do sleep 0.1; done'];

/** create + start a container running `args`; returns its id and output file once it printed `ready`. */
function startContainer(s: Scope, args: string[], edit?: Edit, readyText = 'ready') {
  const bundle = s.bundle(args, edit);
  const id = s.id();
  const c = rtFiles(s, ['create', '-b', bundle, id]);
  if (c.code !== 0) throw new Error(`create failed: ${c.stderr}`);
  const st = rt(['start', id]);
  if (st.code !== 0) throw new Error(`start failed: ${st.stderr}`);
  waitFor(() => read(c.out).includes(readyText));
  return { id, bundle, out: c.out, pid: stateOf(id)?.pid as number };
}

// ---------------------------------------------------------------------------------------------------------
// version

t.test('--version prints the tsrt version, the commit and the runtime-spec version', async tt => {
  const r = tsrt(['--version']);
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /^tsrt version \S+$/m);
  tt.match(r.stdout, /^commit: \S+$/m);
  tt.match(r.stdout, /^spec: 1\.2\.\d+$/m);
});

// ---------------------------------------------------------------------------------------------------------
// run in the foreground

t.test('run passes the container stdout through to the caller', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['echo', 'hello from the container']);
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, 'hello from the container\n');
});

for (const code of [0, 3, 42]) {
  t.test(`run exits with the container process's exit status (${code})`, async tt => {
    const s = scope(tt);
    const r = runFg(s, ['sh', '-c', `exit ${code}`]);
    tt.equal(r.code, code, r.stderr);
    tt.equal(r.signal, null);
  });
}

for (const [sig, num] of [
  ['KILL', 9],
  ['TERM', 15],
] as const) {
  t.test(`run exits 128+${num} when the container process dies of SIG${sig}`, async tt => {
    const s = scope(tt);
    // Without a pid namespace of its own the shell is not an init, so it can signal itself.
    const r = runFg(s, ['sh', '-c', `kill -${sig} $$; sleep 5`], noPidns);
    tt.equal(r.code, 128 + num, r.stderr);
  });
}

t.test('run passes stdin through to the container', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['cat'], undefined, [], { input: 'data for cat\nsecond line\n' });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, 'data for cat\nsecond line\n');
});

t.test('run --keep leaves a stopped container that delete removes', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['sh', '-c', 'exit 5'], undefined, ['--keep']);
  tt.equal(r.code, 5, r.stderr);
  const st = stateOf(r.id);
  tt.ok(st, 'state still answers after the container exited');
  tt.equal(st?.status, 'stopped');
  tt.equal(st?.pid, 0);
  const d = rt(['delete', r.id]);
  tt.equal(d.code, 0, d.stderr);
  tt.notOk(fs.existsSync(path.join(ROOT, r.id)), 'state directory removed');
  tt.match(rt(['state', r.id]).stderr, /container does not exist/);
});

t.test('run without --keep removes the container state when the process exits', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['true']);
  tt.equal(r.code, 0, r.stderr);
  tt.notOk(fs.existsSync(path.join(ROOT, r.id)), 'no state directory left');
  const st = rt(['state', r.id]);
  tt.equal(st.code, 1);
  tt.match(st.stderr, /container does not exist/);
});

// ---------------------------------------------------------------------------------------------------------
// run -d

t.test('run -d returns 0 with the container running; kill and delete work on it', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(IDLE);
  const id = s.id();
  const r = rtFiles(s, ['run', '-d', '-b', bundle, id]);
  tt.equal(r.code, 0, r.stderr);
  const st = stateOf(id);
  tt.equal(st?.status, 'running', 'running as soon as run -d returns');
  tt.ok(st?.pid > 0 && alive(st.pid), 'init alive');
  tt.ok(
    waitFor(() => read(r.out).includes('ready')),
    'container output reaches the file given as stdout',
  );
  const k = rt(['kill', id, 'KILL']);
  tt.equal(k.code, 0, k.stderr);
  tt.ok(
    waitFor(() => statusOf(id) === 'stopped'),
    'stopped after SIGKILL',
  );
  const d = rt(['delete', id]);
  tt.equal(d.code, 0, d.stderr);
  tt.notOk(fs.existsSync(path.join(ROOT, id)));
  tt.notOk(alive(st.pid), 'init gone');
});

t.test('run -d --pid-file writes the init pid with no trailing newline', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sleep', '1000']);
  const id = s.id();
  const pidFile = path.join(s.dir(), 'init.pid');
  const r = rtFiles(s, ['run', '-d', '--pid-file', pidFile, '-b', bundle, id]);
  tt.equal(r.code, 0, r.stderr);
  const text = fs.readFileSync(pidFile, 'utf8');
  tt.match(text, /^\d+$/, 'digits only, no newline');
  tt.equal(Number(text), stateOf(id)?.pid, 'the pid state reports');
  tt.ok(alive(Number(text)));
});

// ---------------------------------------------------------------------------------------------------------
// create / state / start / kill / delete

t.test('create leaves a created container whose state has every OCI field', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sleep', '1000']);
  const id = s.id();
  const c = rtFiles(s, ['create', '-b', bundle, id]);
  tt.equal(c.code, 0, c.stderr);
  const st = stateOf(id);
  tt.equal(st?.status, 'created');
  tt.equal(st?.id, id);
  tt.ok(Number.isInteger(st?.pid) && st.pid > 0, 'pid > 0');
  tt.ok(alive(st.pid), 'the init is alive');
  tt.equal(st?.bundle, fs.realpathSync(bundle));
  tt.equal(st?.rootfs, fs.realpathSync(path.join(bundle, 'rootfs')));
  tt.match(st?.ociVersion, /^1\.2\.\d+/);
  tt.type(st?.created, 'string');
  tt.notOk(Number.isNaN(Date.parse(st?.created)), 'created is a timestamp');
  tt.ok('owner' in st, 'owner field present');
  tt.type(st?.owner, 'string');
  tt.notOk('annotations' in st, 'no annotations when the config has none');
});

t.test('state reports the config annotations', async tt => {
  const s = scope(tt);
  const annotations = { 'org.example.key': 'value', 'org.example.other': 'x=y' };
  const bundle = s.bundle(['sleep', '1000'], spec => {
    spec.annotations = annotations;
  });
  const id = s.id();
  const c = rtFiles(s, ['create', '-b', bundle, id]);
  tt.equal(c.code, 0, c.stderr);
  tt.same(stateOf(id)?.annotations, annotations);
});

t.test('start runs the created process: its output appears and the state is running', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sh', '-c', 'echo started-output; exec sleep 1000']);
  const id = s.id();
  const c = rtFiles(s, ['create', '-b', bundle, id]);
  tt.equal(c.code, 0, c.stderr);
  const pid = stateOf(id)?.pid;
  tt.equal(read(c.out), '', 'nothing runs before start');
  const st = rt(['start', id]);
  tt.equal(st.code, 0, st.stderr);
  tt.ok(
    waitFor(() => read(c.out).includes('started-output')),
    'the process output appears',
  );
  const after = stateOf(id);
  tt.equal(after?.status, 'running');
  tt.equal(after?.pid, pid, 'same init pid');
});

t.test('kill without a signal sends SIGTERM to the init', async tt => {
  const s = scope(tt);
  const c = startContainer(s, ['sh', '-c', 'trap "echo got-TERM; exit 0" TERM; echo ready; while :; do sleep 0.1; done']);
  tt.equal(statusOf(c.id), 'running');
  const k = rt(['kill', c.id]);
  tt.equal(k.code, 0, k.stderr);
  tt.ok(
    waitFor(() => statusOf(c.id) === 'stopped'),
    'stopped',
  );
  tt.match(read(c.out), /got-TERM/, 'the TERM trap ran');
});

t.test('kill sends the named signal to the init', async tt => {
  const s = scope(tt);
  const c = startContainer(s, ['sh', '-c', 'trap "echo got-USR1" USR1; echo ready; while :; do sleep 0.1; done']);
  const k = rt(['kill', c.id, 'USR1']);
  tt.equal(k.code, 0, k.stderr);
  tt.ok(
    waitFor(() => read(c.out).includes('got-USR1')),
    'the USR1 trap ran',
  );
  tt.equal(statusOf(c.id), 'running', 'a trapped signal does not stop it');
});

for (const spelling of ['KILL', 'SIGKILL', '9']) {
  t.test(`kill ${spelling} stops a container whose init ignores SIGTERM`, async tt => {
    const s = scope(tt);
    const c = startContainer(s, ['sh', '-c', 'trap "echo ignored-TERM" TERM; echo ready; while :; do sleep 0.1; done']);
    const k = rt(['kill', c.id, spelling]);
    tt.equal(k.code, 0, k.stderr);
    tt.ok(
      waitFor(() => statusOf(c.id) === 'stopped'),
      'stopped',
    );
    tt.notMatch(read(c.out), /ignored-TERM/, 'it was not SIGTERM');
    tt.equal(stateOf(c.id)?.pid, 0, 'a stopped container reports pid 0');
  });
}

t.test('delete removes a stopped container and state then says it does not exist', async tt => {
  const s = scope(tt);
  const c = startContainer(s, ['sh', '-c', 'echo ready; exit 0']);
  tt.ok(
    waitFor(() => statusOf(c.id) === 'stopped'),
    'stopped after its process exited',
  );
  const d = rt(['delete', c.id]);
  tt.equal(d.code, 0, d.stderr);
  tt.notOk(fs.existsSync(path.join(ROOT, c.id)), 'state directory removed');
  const st = rt(['state', c.id]);
  tt.equal(st.code, 1);
  tt.match(st.stderr, /container does not exist/);
});

t.test('delete refuses a created (never started) container and leaves it intact; --force removes it', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sh', '-c', 'echo should-never-run']);
  const id = s.id();
  const c = rtFiles(s, ['create', '-b', bundle, id]);
  tt.equal(c.code, 0, c.stderr);
  const pid = stateOf(id)?.pid as number;
  const d = rt(['delete', id]);
  tt.equal(d.code, 1, 'delete without --force fails, as the spec requires for a container that is not stopped');
  tt.match(d.stderr, new RegExp(`cannot delete container ${id} that is not stopped: created`));
  tt.equal(stateOf(id)?.status, 'created', 'the container is intact');
  tt.ok(alive(pid), 'its init still waits');
  const f = rt(['delete', '--force', id]);
  tt.equal(f.code, 0, f.stderr);
  tt.match(rt(['state', id]).stderr, /container does not exist/);
  tt.ok(
    waitFor(() => !alive(pid)),
    'the waiting init was killed',
  );
  tt.equal(read(c.out), '', 'the process never ran');
});

t.test('create --pid-file with a relative path writes it relative to the caller cwd', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sleep', '1000']);
  const id = s.id();
  const cwd = s.dir();
  const c = rtFiles(s, ['create', '--pid-file', 'rel.pid', '-b', bundle, id], { cwd });
  tt.equal(c.code, 0, c.stderr);
  const text = read(path.join(cwd, 'rel.pid'));
  tt.match(text, /^\d+$/);
  tt.equal(Number(text), stateOf(id)?.pid);
});

t.test('create --pid-file with an absolute path writes the init pid there', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sleep', '1000']);
  const id = s.id();
  const file = path.join(s.dir(), 'sub-abs.pid');
  const c = rtFiles(s, ['create', '--pid-file', file, '-b', bundle, id]);
  tt.equal(c.code, 0, c.stderr);
  const text = read(file);
  tt.match(text, /^\d+$/);
  tt.equal(Number(text), stateOf(id)?.pid);
});

/** Pids whose pid namespace is that of `pid`. */
function pidnsMembers(pid: number): number[] {
  let ns: string;
  try {
    ns = fs.readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return [];
  }
  return fs
    .readdirSync('/proc')
    .filter(n => /^\d+$/.test(n))
    .map(Number)
    .filter(p => {
      try {
        return fs.readlinkSync(`/proc/${p}/ns/pid`) === ns;
      } catch {
        return false;
      }
    });
}

function cmdline(pid: number): string {
  return read(`/proc/${pid}/cmdline`).split('\0').join(' ').trim();
}

t.test('kill --all signals every process in the container, not only the init', async tt => {
  const s = scope(tt);
  // The init traps TERM and survives it; its two children keep the default action and die of it.
  const c = startContainer(s, [
    'sh',
    '-c',
    'trap "echo init-got-TERM" TERM; sleep 1000 & sleep 1000 & echo ready; while :; do sleep 0.1; done',
  ]);
  tt.ok(
    waitFor(() => pidnsMembers(c.pid).filter(p => cmdline(p) === 'sleep 1000' && alive(p)).length === 2),
    'two sleepers',
  );
  const sleepers = pidnsMembers(c.pid).filter(p => cmdline(p) === 'sleep 1000');
  const k = rt(['kill', '--all', c.id, 'TERM']);
  tt.equal(k.code, 0, k.stderr);
  tt.ok(
    waitFor(() => sleepers.every(p => !alive(p))),
    'every child process got the signal',
  );
  tt.ok(
    waitFor(() => read(c.out).includes('init-got-TERM')),
    'the init got it too',
  );
  tt.equal(statusOf(c.id), 'running', 'the init survived (it traps TERM)');
});

t.test('kill without --all signals only the init', async tt => {
  const s = scope(tt);
  const c = startContainer(s, ['sh', '-c', 'trap "echo init-got-TERM" TERM; sleep 1000 & echo ready; while :; do sleep 0.1; done']);
  tt.ok(
    waitFor(() => pidnsMembers(c.pid).some(p => cmdline(p) === 'sleep 1000' && alive(p))),
    'a sleeper',
  );
  const sleeper = pidnsMembers(c.pid).find(p => cmdline(p) === 'sleep 1000')!;
  const k = rt(['kill', c.id, 'TERM']);
  tt.equal(k.code, 0, k.stderr);
  tt.ok(
    waitFor(() => read(c.out).includes('init-got-TERM')),
    'the init got it',
  );
  tt.ok(alive(sleeper), 'the child did not');
});

t.test('kill --all KILL leaves no process of the container behind', async tt => {
  const s = scope(tt);
  const c = startContainer(s, ['sh', '-c', 'sleep 1000 & sleep 1000 & echo ready; wait']);
  tt.ok(
    waitFor(() => pidnsMembers(c.pid).length >= 3),
    'init and two sleepers',
  );
  const members = pidnsMembers(c.pid);
  const k = rt(['kill', '--all', c.id, 'KILL']);
  tt.equal(k.code, 0, k.stderr);
  tt.ok(
    waitFor(() => members.every(p => !alive(p))),
    'all gone',
  );
  tt.ok(waitFor(() => statusOf(c.id) === 'stopped'));
});

// ---------------------------------------------------------------------------------------------------------
// list

t.test('list shows containers as a table, as JSON (-f json) and as bare ids (-q)', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sleep', '1000']);
  const ids = [s.id('list-a'), s.id('list-b')];
  for (const id of ids) {
    const c = rtFiles(s, ['create', '-b', bundle, id]);
    tt.equal(c.code, 0, c.stderr);
  }
  const table = rt(['list']);
  tt.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  tt.match(lines[0], /^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER$/, 'header');
  for (const id of ids) {
    const row = lines.find(l => l.split(/\s+/)[0] === id);
    tt.ok(row, `a row for ${id}`);
    const cols = row?.split(/\s+/) ?? [];
    tt.equal(cols[1], String(stateOf(id)?.pid));
    tt.equal(cols[2], 'created');
    tt.equal(cols[3], fs.realpathSync(bundle));
    tt.equal(cols[5], 'root');
  }

  const json = rt(['list', '-f', 'json']);
  tt.equal(json.code, 0, json.stderr);
  const arr = JSON.parse(json.stdout);
  tt.ok(Array.isArray(arr), 'a JSON array');
  for (const id of ids) {
    const st = arr.find((x: any) => x.id === id);
    tt.ok(st, `${id} listed`);
    tt.equal(st?.status, 'created');
    tt.equal(st?.bundle, fs.realpathSync(bundle));
    tt.ok(st?.pid > 0);
    tt.match(st?.ociVersion, /^1\.2\./);
  }

  const quiet = rt(['list', '-q']);
  tt.equal(quiet.code, 0, quiet.stderr);
  const quietIds = quiet.stdout.split('\n').filter(Boolean);
  tt.same([...quietIds].sort(), arr.map((x: any) => x.id).sort(), 'one id per line, nothing else');
  for (const id of ids) tt.ok(quietIds.includes(id));
});

// ---------------------------------------------------------------------------------------------------------
// spec

t.test('spec -b DIR writes a runtime-spec 1.2 config.json into DIR', async tt => {
  const s = scope(tt);
  const dir = s.dir();
  const r = tsrt(['spec', '-b', dir]);
  tt.equal(r.code, 0, r.stderr);
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  tt.match(spec.ociVersion, /^1\.2\.\d+$/);
  tt.equal(spec.root.path, 'rootfs');
  tt.ok(Array.isArray(spec.process.args) && spec.process.args.length > 0);
  tt.ok(spec.linux.namespaces.some((n: any) => n.type === 'mount'));
});

t.test('spec refuses to overwrite an existing config.json', async tt => {
  const s = scope(tt);
  const dir = s.dir();
  fs.writeFileSync(path.join(dir, 'config.json'), '{"mine":true}');
  const r = tsrt(['spec', '-b', dir]);
  tt.equal(r.code, 1);
  tt.match(r.stderr, /File config\.json exists\. Remove it first\./);
  tt.equal(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'), '{"mine":true}', 'left untouched');
});

t.test('spec --rootless has a user namespace mapping the caller and no network namespace', async tt => {
  const s = scope(tt);
  const dir = s.dir();
  const r = tsrt(['spec', '--rootless', '-b', dir]);
  tt.equal(r.code, 0, r.stderr);
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const types = spec.linux.namespaces.map((n: any) => n.type);
  tt.ok(types.includes('user'), 'user namespace');
  tt.notOk(types.includes('network'), 'no network namespace');
  tt.same(spec.linux.uidMappings, [{ containerID: 0, hostID: process.geteuid!(), size: 1 }]);
  tt.same(spec.linux.gidMappings, [{ containerID: 0, hostID: process.getegid!(), size: 1 }]);
});

t.test('spec configs (plain and --rootless) grant no inheritable capabilities', async tt => {
  const s = scope(tt);
  for (const flags of [[], ['--rootless']]) {
    const dir = s.dir();
    const r = tsrt(['spec', ...flags, '-b', dir]);
    tt.equal(r.code, 0, r.stderr);
    const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    tt.notOk('inheritable' in (spec.process.capabilities ?? {}), `no inheritable set (${flags.join(' ') || 'plain'})`);
  }
});

// ---------------------------------------------------------------------------------------------------------
// the process environment

t.test('hostname comes from the config', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['sh', '-c', 'hostname; cat /proc/sys/kernel/hostname'], spec => {
    spec.hostname = 'ctr-host-name';
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, 'ctr-host-name\nctr-host-name\n');
});

t.test('process.env is the whole environment of the process', async tt => {
  const s = scope(tt);
  const r = runFg(
    s,
    ['env'],
    spec => {
      spec.process.env = ['PATH=/bin:/usr/bin', 'GREETING=hello world', 'EMPTY='];
    },
    [],
    { env: { ...process.env, TSRT_E2E_LEAK: 'host-only' } },
  );
  tt.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  tt.ok(lines.includes('GREETING=hello world'));
  tt.ok(lines.includes('PATH=/bin:/usr/bin'));
  tt.ok(lines.includes('EMPTY='));
  tt.notOk(r.stdout.includes('TSRT_E2E_LEAK'), 'nothing from the runtime caller environment');
});

t.test('process.cwd is the working directory, created when the rootfs lacks it', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['pwd'], spec => {
    spec.process.cwd = '/srv/deep/er';
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, '/srv/deep/er\n');
  tt.ok(fs.statSync(path.join(r.bundle, 'rootfs/srv/deep/er')).isDirectory(), 'made inside the rootfs');
});

t.test('process.user sets uid, gid and the additional gids', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['sh', '-c', 'id; grep -E "^(Uid|Gid|Groups):" /proc/self/status'], spec => {
    spec.process.user = { uid: 1000, gid: 1001, additionalGids: [10, 20] };
  });
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /uid=1000\b/);
  tt.match(r.stdout, /gid=1001\b/);
  tt.match(r.stdout, /groups=10,20\b/);
  tt.equal(statusField(r.stdout, 'Uid')?.split(/\s+/).join(' '), '1000 1000 1000 1000');
  tt.equal(statusField(r.stdout, 'Gid')?.split(/\s+/).join(' '), '1001 1001 1001 1001');
  tt.equal(statusField(r.stdout, 'Groups')?.split(/\s+/).join(' '), '10 20');
});

t.test('process.user.umask is the process umask', async tt => {
  const s = scope(tt);
  const r = runFg(
    s,
    ['sh', '-c', 'umask; touch /tmp/f; mkdir /tmp/d; stat -c %a /tmp/f /tmp/d'],
    both(tmpfsTmp, spec => {
      spec.process.user.umask = 0o027;
    }),
  );
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, '0027\n640\n750\n');
});

t.test('process.rlimits sets RLIMIT_NOFILE', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['sh', '-c', 'ulimit -n; ulimit -Hn'], spec => {
    spec.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 512, hard: 777 }];
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, '512\n777\n');
});

t.test('without rlimits in the config the container gets an explicit RLIMIT_NOFILE, not the runtime raised one', async tt => {
  const s = scope(tt);
  const limits = fs
    .readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find(l => l.startsWith('Max open files'))!;
  const hardText = limits.split(/\s+/)[4]!;
  const hard = hardText === 'unlimited' ? Infinity : Number(hardText);
  const expected = Math.min(1024, hard);
  // The caller raises its soft limit above 1024 (as a JS runtime does for itself): it must not leak in.
  const raised = Math.min(hard, 4096);
  const bundle = s.bundle(['sh', '-c', 'ulimit -n'], spec => {
    delete spec.process.rlimits;
  });
  const id = s.id();
  const r = spawnSync('sh', ['-c', `ulimit -Sn ${raised} && exec "$@"`, 'sh', TSRT, '--root', ROOT, 'run', '-b', bundle, id], {
    timeout: 60_000,
  });
  tt.equal(r.status, 0, r.stderr?.toString());
  tt.equal(r.stdout.toString(), `${expected}\n`);
});

t.test('noNewPrivileges true sets NoNewPrivs', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['grep', 'NoNewPrivs', '/proc/self/status'], spec => {
    spec.process.noNewPrivileges = true;
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(statusField(r.stdout, 'NoNewPrivs'), '1');
});

t.test('noNewPrivileges false leaves NoNewPrivs unset', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['grep', 'NoNewPrivs', '/proc/self/status'], spec => {
    spec.process.noNewPrivileges = false;
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(statusField(r.stdout, 'NoNewPrivs'), '0');
});

t.test('capability sets of the process match the config', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['grep', '^Cap', '/proc/self/status'], spec => {
    spec.process.capabilities = {
      bounding: ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_RAW'],
      effective: ['CAP_CHOWN', 'CAP_KILL'],
      permitted: ['CAP_CHOWN', 'CAP_KILL'],
      inheritable: ['CAP_KILL'],
      ambient: ['CAP_KILL'],
    };
  });
  tt.equal(r.code, 0, r.stderr);
  // CAP_CHOWN = 0, CAP_KILL = 5, CAP_NET_RAW = 13
  tt.equal(statusField(r.stdout, 'CapBnd'), '0000000000002021');
  tt.equal(statusField(r.stdout, 'CapPrm'), '0000000000000021');
  tt.equal(statusField(r.stdout, 'CapEff'), '0000000000000021');
  tt.equal(statusField(r.stdout, 'CapInh'), '0000000000000020');
  tt.equal(statusField(r.stdout, 'CapAmb'), '0000000000000020');
});

t.test('inheritable capabilities are empty when the config names none', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['grep', '^Cap', '/proc/self/status'], spec => {
    spec.process.capabilities = {
      bounding: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      effective: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      permitted: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],
    };
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(statusField(r.stdout, 'CapInh'), '0000000000000000');
  tt.equal(statusField(r.stdout, 'CapAmb'), '0000000000000000');
  tt.equal(statusField(r.stdout, 'CapBnd'), '0000000000000420');
});

t.test('oomScoreAdj is written to the process oom_score_adj', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['cat', '/proc/self/oom_score_adj'], spec => {
    spec.process.oomScoreAdj = 250;
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, '250\n');
});

t.test('root.readonly makes / read-only (EROFS)', async tt => {
  const s = scope(tt);
  const probe = 'touch /probe-file 2>&1; echo rc=$?';
  const ro = runFg(s, ['sh', '-c', probe], spec => {
    spec.root.readonly = true;
  });
  tt.equal(ro.code, 0, ro.stderr);
  tt.match(ro.stdout, /Read-only file system/);
  tt.match(ro.stdout, /rc=1/);
  tt.notOk(fs.existsSync(path.join(ro.bundle, 'rootfs/probe-file')));
  const rw = runFg(s, ['sh', '-c', probe], writableRoot);
  tt.equal(rw.code, 0, rw.stderr);
  tt.match(rw.stdout, /rc=0/, 'writable when root.readonly is false');
  tt.ok(fs.existsSync(path.join(rw.bundle, 'rootfs/probe-file')));
});

t.test('maskedPaths: a masked file reads empty and a masked directory is empty', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(
    ['sh', '-c', 'echo "[$(cat /etc/secret.txt)]"; echo "[$(ls -A /srv/secretdir)]"; echo "[$(cat /etc/visible.txt)]"'],
    spec => {
      spec.linux.maskedPaths = [...spec.linux.maskedPaths, '/etc/secret.txt', '/srv/secretdir'];
    },
  );
  fs.writeFileSync(path.join(bundle, 'rootfs/etc/secret.txt'), 'topsecret\n');
  fs.writeFileSync(path.join(bundle, 'rootfs/etc/visible.txt'), 'visible\n');
  fs.mkdirSync(path.join(bundle, 'rootfs/srv/secretdir'), { recursive: true });
  fs.writeFileSync(path.join(bundle, 'rootfs/srv/secretdir/inner.txt'), 'hidden\n');
  const id = s.id();
  const r = rt(['run', '-b', bundle, id]);
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, '[]\n[]\n[visible]\n');
});

t.test('readonlyPaths cannot be written while the rest of the rootfs can', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(
    ['sh', '-c', 'touch /data/x 2>&1; echo data=$?; touch /other 2>&1; echo other=$?'],
    both(writableRoot, spec => {
      spec.linux.readonlyPaths = [...spec.linux.readonlyPaths, '/data'];
    }),
  );
  fs.mkdirSync(path.join(bundle, 'rootfs/data'));
  const r = rt(['run', '-b', bundle, s.id()]);
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /Read-only file system/);
  tt.match(r.stdout, /data=1/);
  tt.match(r.stdout, /other=0/);
});

t.test('linux.sysctl is applied in the container network namespace, not the host', async tt => {
  const s = scope(tt);
  const hostBefore = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
  const want = hostBefore.trim() === '1' ? '0' : '1';
  const r = runFg(s, ['cat', '/proc/sys/net/ipv4/ip_forward'], spec => {
    spec.linux.sysctl = { 'net.ipv4.ip_forward': want };
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout.trim(), want);
  tt.equal(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), hostBefore, 'host value unchanged');
});

/** The /proc/mounts line for a mount point inside the container output. */
function mountLine(text: string, target: string): string | undefined {
  return text.split('\n').find(l => l.split(' ')[1] === target);
}

t.test('a tmpfs mount gets its size= and mode= options', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['sh', '-c', 'cat /proc/mounts; stat -c "mode=%a" /mnt/t'], spec => {
    spec.mounts.push({ destination: '/mnt/t', type: 'tmpfs', source: 'tmpfs', options: ['size=1m', 'mode=700'] });
  });
  tt.equal(r.code, 0, r.stderr);
  const line = mountLine(r.stdout, '/mnt/t');
  tt.ok(line, '/mnt/t is mounted');
  tt.match(line, /^tmpfs \/mnt\/t tmpfs /);
  tt.match(line, /size=1024k/);
  tt.match(line, /mode=700/);
  tt.match(r.stdout, /mode=700$/m);
});

t.test('a bind mount of a host directory is shared both ways', async tt => {
  const s = scope(tt);
  const hostDir = s.dir();
  fs.writeFileSync(path.join(hostDir, 'from-host'), 'written by the host\n');
  const r = runFg(s, ['sh', '-c', 'cat /hostdir/from-host; echo written by the container > /hostdir/from-ctr'], spec => {
    spec.mounts.push({ destination: '/hostdir', type: 'bind', source: hostDir, options: ['rbind'] });
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, 'written by the host\n');
  tt.equal(read(path.join(hostDir, 'from-ctr')), 'written by the container\n');
  tt.same(hostMountsContaining(hostDir), [], 'nothing mounted on the host');
});

t.test('a ro bind mount cannot be written', async tt => {
  const s = scope(tt);
  const hostDir = s.dir();
  fs.writeFileSync(path.join(hostDir, 'f'), 'readable\n');
  const r = runFg(s, ['sh', '-c', 'cat /ro/f; echo x > /ro/new 2>&1; echo rc=$?'], spec => {
    spec.mounts.push({ destination: '/ro', type: 'bind', source: hostDir, options: ['rbind', 'ro'] });
  });
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /^readable$/m);
  tt.match(r.stdout + r.stderr, /Read-only file system/);
  tt.match(r.stdout, /rc=[1-9]/);
  tt.notOk(fs.existsSync(path.join(hostDir, 'new')));
});

t.test('a single file can be bind mounted', async tt => {
  const s = scope(tt);
  const file = path.join(s.dir(), 'single.txt');
  fs.writeFileSync(file, 'one file\n');
  const r = runFg(s, ['sh', '-c', 'cat /etc/bound.txt; stat -c %F /etc/bound.txt'], spec => {
    spec.mounts.push({ destination: '/etc/bound.txt', type: 'bind', source: file, options: ['bind'] });
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, 'one file\nregular file\n');
});

t.test('nosuid, nodev and noexec mount options show in /proc/mounts', async tt => {
  const s = scope(tt);
  const hostDir = s.dir();
  const r = runFg(s, ['cat', '/proc/mounts'], spec => {
    spec.mounts.push(
      { destination: '/mnt/flags', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec'] },
      { destination: '/mnt/bflags', type: 'bind', source: hostDir, options: ['rbind', 'nosuid', 'nodev', 'noexec'] },
    );
  });
  tt.equal(r.code, 0, r.stderr);
  for (const target of ['/mnt/flags', '/mnt/bflags']) {
    const opts = mountLine(r.stdout, target)?.split(' ')[3]?.split(',') ?? [];
    tt.ok(opts.includes('nosuid'), `${target} nosuid`);
    tt.ok(opts.includes('nodev'), `${target} nodev`);
    tt.ok(opts.includes('noexec'), `${target} noexec`);
  }
});

t.test('a mount target whose parent directories are missing is created', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['cat', '/proc/mounts'], spec => {
    spec.mounts.push({ destination: '/not/there/yet/mnt', type: 'tmpfs', source: 'tmpfs' });
  });
  tt.equal(r.code, 0, r.stderr);
  tt.ok(mountLine(r.stdout, '/not/there/yet/mnt'), 'mounted');
  tt.ok(fs.statSync(path.join(r.bundle, 'rootfs/not/there/yet/mnt')).isDirectory(), 'directories made in the rootfs');
});

t.test('the default devices exist as character devices with the right numbers', async tt => {
  const s = scope(tt);
  const devs = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];
  const r = runFg(s, ['sh', '-c', devs.map(d => `stat -c "%n %F %t:%T" /dev/${d}`).join('; ')]);
  tt.equal(r.code, 0, r.stderr);
  const expected: Record<string, string> = { null: '1:3', zero: '1:5', full: '1:7', random: '1:8', urandom: '1:9', tty: '5:0' };
  for (const d of devs) tt.match(r.stdout, new RegExp(`^/dev/${d} character special file ${expected[d]}$`, 'm'), `/dev/${d}`);
});

t.test('linux.devices entries are created with their type, numbers and mode', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['stat', '-c', '%F %t:%T %a %u:%g', '/dev/mydev'], spec => {
    spec.linux.devices = [{ path: '/dev/mydev', type: 'c', major: 10, minor: 229, fileMode: 0o640, uid: 0, gid: 5 }];
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, 'character special file a:e5 640 0:5\n');
});

t.test('linux.devices: a block device, and a fifo whose major/minor (meaningless for "p") are ignored', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['stat', '-c', '%F %t:%T %a', '/dev/myblk', '/dev/myfifo'], spec => {
    spec.linux.devices = [
      { path: '/dev/myblk', type: 'b', major: 8, minor: 666, fileMode: 0o660 },
      { path: '/dev/myfifo', type: 'p', major: 8, minor: 666, fileMode: 0o600 },
    ];
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, 'block special file 8:29a 660\nfifo 0:0 600\n');
});

t.test('/dev has the fd, stdio and ptmx symlinks', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['sh', '-c', 'for l in fd stdin stdout stderr ptmx; do echo "$l -> $(readlink /dev/$l)"; done']);
  tt.equal(r.code, 0, r.stderr);
  tt.equal(
    r.stdout,
    [
      'fd -> /proc/self/fd',
      'stdin -> /proc/self/fd/0',
      'stdout -> /proc/self/fd/1',
      'stderr -> /proc/self/fd/2',
      'ptmx -> pts/ptmx',
      '',
    ].join('\n'),
  );
});

t.test("without a mount namespace the rootfs is prepared in the runtime's and entered with chroot; delete unmounts it", async tt => {
  const s = scope(tt);
  const r = runFg(
    s,
    ['sh', '-c', 'readlink /proc/self/ns/mnt; ls /bin/busybox; cat /proc/self/mountinfo | wc -l'],
    spec => {
      spec.linux.namespaces = spec.linux.namespaces.filter((n: { type: string }) => n.type !== 'mount');
    },
    ['--keep'],
  );
  tt.equal(r.code, 0, r.stderr);
  const [mnt, busybox] = r.stdout.split('\n');
  tt.equal(mnt, fs.readlinkSync('/proc/self/ns/mnt'), "the runtime's own mount namespace");
  tt.equal(busybox, '/bin/busybox', "the root is the bundle's rootfs");
  const rootfs = path.join(r.bundle, 'rootfs');
  tt.not(hostMountsContaining(rootfs).length, 0, 'its mounts are on the host while the container exists');
  tt.equal(rt(['delete', r.id]).code, 0, 'delete');
  tt.same(hostMountsContaining(rootfs), [], 'and gone after delete');
});

t.test('a mount namespace joined by path is shared with its owner', async tt => {
  const s = scope(tt);
  // The owner sees the host's files (the bundle), as an `unshare -m` process of an engine or a test does.
  const owner = spawn('unshare', ['--mount', '--propagation', 'private', 'sleep', '1000'], { stdio: 'ignore' });
  tt.teardown(() => owner.kill('SIGKILL'));
  const pid = owner.pid!;
  tt.ok(
    pollFor(() => {
      try {
        return fs.readlinkSync(`/proc/${pid}/ns/mnt`) !== fs.readlinkSync('/proc/self/ns/mnt');
      } catch {
        return false;
      }
    }),
    'the owner has its own mount namespace',
  );
  const r = runFg(s, ['sh', '-c', 'readlink /proc/self/ns/mnt; ls /bin/busybox'], spec => {
    spec.linux.namespaces = spec.linux.namespaces.map((n: { type: string }) =>
      n.type === 'mount' ? { type: 'mount', path: `/proc/${pid}/ns/mnt` } : n,
    );
  });
  tt.equal(r.code, 0, r.stderr);
  const [mnt, busybox] = r.stdout.split('\n');
  tt.equal(mnt, fs.readlinkSync(`/proc/${pid}/ns/mnt`), "the owner's mount namespace");
  tt.equal(busybox, '/bin/busybox', 'rooted in its own rootfs');
  tt.equal(fs.readlinkSync(`/proc/${pid}/root`), '/', "the owner's root is untouched (chroot, not pivot_root)");
});

t.test('the container runs in its own pid, uts, ipc, network, mount and cgroup namespaces', async tt => {
  const s = scope(tt);
  const kinds = ['pid', 'uts', 'ipc', 'net', 'mnt', 'cgroup'];
  const r = runFg(s, [
    'sh',
    '-c',
    `echo pid1=$$; ${kinds.map(k => `echo ${k}=$(readlink /proc/self/ns/${k})`).join('; ')}; cat /proc/net/dev`,
  ]);
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /^pid1=1$/m, 'the process is pid 1');
  for (const k of kinds) {
    const inside = new RegExp(`^${k}=(.*)$`, 'm').exec(r.stdout)?.[1];
    tt.ok(inside, `${k} namespace link`);
    tt.not(inside, fs.readlinkSync(`/proc/self/ns/${k}`), `own ${k} namespace`);
  }
  const ifaces = r.stdout
    .split('\n')
    .filter(l => /^\s*[\w.-]+:\s+\d/.test(l))
    .map(l => l.split(':')[0]!.trim());
  tt.same(ifaces, ['lo'], 'only lo in the network namespace');
});

t.test('a cgroup namespace shows the container its own cgroups as the root', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['cat', '/proc/self/cgroup']);
  tt.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  tt.ok(lines.length > 0);
  for (const l of lines) tt.match(l, /:\/$/, l);
});

t.test('a container joins the network and uts namespaces of another container by path', async tt => {
  const s = scope(tt);
  const a = startContainer(s, IDLE, spec => {
    spec.hostname = 'container-a';
  });
  tt.equal(statusOf(a.id), 'running');
  const netA = fs.readlinkSync(`/proc/${a.pid}/ns/net`);
  const utsA = fs.readlinkSync(`/proc/${a.pid}/ns/uts`);
  const r = runFg(s, ['sh', '-c', 'hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/uts'], spec => {
    delete spec.hostname;
    spec.linux.namespaces = spec.linux.namespaces.map((n: any) =>
      n.type === 'network'
        ? { type: 'network', path: `/proc/${a.pid}/ns/net` }
        : n.type === 'uts'
          ? { type: 'uts', path: `/proc/${a.pid}/ns/uts` }
          : n,
    );
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, `container-a\n${netA}\n${utsA}\n`);
});

t.test('a time namespace applies linux.timeOffsets (boottime)', async tt => {
  const s = scope(tt);
  const offset = 10 * 86400;
  const hostUptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  const r = runFg(s, ['sh', '-c', 'cat /proc/uptime; readlink /proc/self/ns/time'], spec => {
    spec.linux.namespaces.push({ type: 'time' });
    spec.linux.timeOffsets = { boottime: { secs: offset, nanosecs: 0 } };
  });
  tt.equal(r.code, 0, r.stderr);
  const inside = Number(r.stdout.split(' ')[0]);
  tt.ok(inside >= hostUptime + offset, `uptime inside (${inside}) includes the ${offset}s offset over the host (${hostUptime})`);
  tt.not(r.stdout.split('\n')[1], fs.readlinkSync('/proc/self/ns/time'), 'own time namespace');
});

t.test('the cgroup filesystem is mounted at /sys/fs/cgroup', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['sh', '-c', 'cat /proc/mounts; echo ---; ls /sys/fs/cgroup']);
  tt.equal(r.code, 0, r.stderr);
  const [mounts, listing] = r.stdout.split('---\n');
  tt.ok(
    (mounts ?? '').split('\n').some(l => l.split(' ')[1] === '/sys/fs/cgroup'),
    '/sys/fs/cgroup in /proc/mounts',
  );
  tt.ok((listing ?? '').trim().length > 0, '/sys/fs/cgroup is not empty');
});

t.test('rootfsPropagation shared makes the container root a shared mount', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['head', '-n1', '/proc/self/mountinfo'], spec => {
    spec.linux.rootfsPropagation = 'shared';
  });
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /^\S+ \S+ \S+ \S+ \/ .* shared:\d+/);
});

t.test('rootfsPropagation private makes the container root a private mount', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['head', '-n1', '/proc/self/mountinfo'], spec => {
    spec.linux.rootfsPropagation = 'private';
  });
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /^\S+ \S+ \S+ \S+ \/ /);
  tt.notMatch(r.stdout, /shared:|master:/);
});

t.test('run --no-pivot runs the container in its rootfs', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['sh', '-c', 'cat /etc/hostname; ls /bin/busybox'], undefined, ['--no-pivot']);
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, 'tsrt\n/bin/busybox\n');
});

t.test('run --no-new-keyring runs the container', async tt => {
  const s = scope(tt);
  const r = runFg(s, ['echo', 'keyring ok'], undefined, ['--no-new-keyring']);
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, 'keyring ok\n');
});

// ---------------------------------------------------------------------------------------------------------
// signals and file descriptors

t.test('the process starts with no ignored and no blocked signals', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['cat', '/proc/self/status']);
  const id = s.id();
  // The caller ignores some signals itself; dispositions must not leak into the container.
  const r = spawnSync('sh', ['-c', 'trap "" HUP PIPE USR2 && exec "$@"', 'sh', TSRT, '--root', ROOT, 'run', '-b', bundle, id], {
    timeout: 60_000,
  });
  tt.equal(r.status, 0, r.stderr?.toString());
  const out = r.stdout.toString();
  tt.equal(statusField(out, 'SigIgn'), '0000000000000000');
  tt.equal(statusField(out, 'SigBlk'), '0000000000000000');
});

t.test('only fds 0, 1 and 2 are open in the process', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['ls', '/proc/self/fd']);
  const id = s.id();
  const extra = fs.openSync(bundle + '/config.json', 'r');
  const extra2 = fs.openSync('/dev/null', 'r');
  let r: ReturnType<typeof spawnSync>;
  try {
    // The caller hands tsrt fds 3 and 4 too: without --preserve-fds they must not reach the container.
    r = spawnSync(TSRT, ['--root', ROOT, 'run', '-b', bundle, id], { stdio: ['pipe', 'pipe', 'pipe', extra, extra2], timeout: 60_000 });
  } finally {
    fs.closeSync(extra);
    fs.closeSync(extra2);
  }
  tt.equal(r.status, 0, r.stderr?.toString());
  // fd 3 is ls's own handle on /proc/self/fd.
  tt.same(r.stdout.toString().split('\n').filter(Boolean), ['0', '1', '2', '3']);
});

t.test('a created-then-started process has only fds 0, 1 and 2 (no exec.fifo, helper or runtime fd)', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sh', '-c', 'ls /proc/self/fd; echo done']);
  const id = s.id();
  const c = rtFiles(s, ['create', '-b', bundle, id]);
  tt.equal(c.code, 0, c.stderr);
  const st = rt(['start', id]);
  tt.equal(st.code, 0, st.stderr);
  tt.ok(waitFor(() => read(c.out).includes('done')));
  tt.same(read(c.out).split('\n').filter(Boolean), ['0', '1', '2', '3', 'done'], "stdio and ls's own fd only");
});

t.test('--preserve-fds 1 passes fd 3 through to the process', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sh', '-c', 'cat <&3']);
  const file = path.join(s.dir(), 'preserved.txt');
  fs.writeFileSync(file, 'content of the preserved fd\n');
  const fd = fs.openSync(file, 'r');
  let r: ReturnType<typeof spawnSync>;
  try {
    r = spawnSync(TSRT, ['--root', ROOT, 'run', '--preserve-fds', '1', '-b', bundle, s.id()], {
      stdio: ['pipe', 'pipe', 'pipe', fd],
      timeout: 60_000,
    });
  } finally {
    fs.closeSync(fd);
  }
  tt.equal(r.status, 0, r.stderr?.toString());
  tt.equal(r.stdout.toString(), 'content of the preserved fd\n');
});

// ---------------------------------------------------------------------------------------------------------
// terminals

t.test('create --console-socket sends the pty master; the container output arrives through it', async tt => {
  const s = scope(tt);
  const { sock, out } = startConsoleReceiver(tt, s);
  tt.ok(
    waitFor(() => fs.existsSync(sock)),
    'receiver listening',
  );
  const bundle = s.bundle(
    ['sh', '-c', 'tty; stat -c "console=%t:%T" /dev/console; stat -c "tty=%t:%T" "$(tty)"; echo hello-through-the-pty'],
    spec => {
      spec.process.terminal = true;
    },
  );
  const id = s.id();
  const c = rtFiles(s, ['create', '--console-socket', sock, '-b', bundle, id]);
  tt.equal(c.code, 0, c.stderr);
  // The receiver is a process of its own: create may return before it has written down what it got.
  tt.ok(
    waitFor(() => read(out + '.fds') === '1 /dev/ptmx\n'),
    "one fd received, with runc's payload",
  );
  const st = rt(['start', id]);
  tt.equal(st.code, 0, st.stderr);
  tt.ok(
    waitFor(() => read(out).includes('hello-through-the-pty')),
    'output arrives via the master',
  );
  const text = read(out);
  tt.match(text, /^\/dev\/(console|pts\/\d+)\r?$/m, 'stdio is the terminal');
  const consoleDev = /^console=(\S+)\r?$/m.exec(text)?.[1];
  tt.ok(consoleDev, '/dev/console exists');
  tt.equal(consoleDev, /^tty=(\S+)\r?$/m.exec(text)?.[1], '/dev/console is the container terminal');
  tt.equal(c.stdout, '', 'nothing went to the create caller stdout');
});

t.test('run of a terminal container without --console-socket proxies a pty and does not hang', async tt => {
  const s = scope(tt);
  const r = runFg(
    s,
    ['sh', '-c', 'tty; echo hello-from-the-pty; exit 4'],
    spec => {
      spec.process.terminal = true;
    },
    [],
    { input: '' },
  );
  tt.equal(r.signal, null, 'not killed by the timeout');
  tt.equal(r.code, 4, r.stderr);
  tt.match(r.stdout, /^\/dev\/(console|pts\/\d+)\r?$/m);
  tt.match(r.stdout, /hello-from-the-pty/);
});

// ---------------------------------------------------------------------------------------------------------
// the waiting init of a created container (CVE-2019-5736 / CVE-2024-21626 ideas)

t.test("a created container's init holds no fd into the host filesystem", async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sleep', '1000']);
  const id = s.id();
  const c = rtFiles(s, ['create', '-b', bundle, id]);
  tt.equal(c.code, 0, c.stderr);
  const pid = stateOf(id)?.pid as number;
  const hostRoot = fs.statSync('/');
  const rootfs = fs.statSync(path.join(bundle, 'rootfs'));
  const fifo = path.join(ROOT, id, 'exec.fifo');
  const fds = fs
    .readdirSync(`/proc/${pid}/fd`)
    .map(Number)
    .sort((x, y) => x - y);
  tt.ok(fds.length >= 3);
  for (const fd of fds) {
    if (fd <= 2) continue; // stdio: what we gave create
    const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    const st = fs.statSync(`/proc/${pid}/fd/${fd}`);
    if (link === fifo) {
      tt.ok(st.isFIFO(), `fd ${fd}: the exec.fifo`);
    } else if (link === '/memfd:tsrt-init (deleted)') {
      tt.ok(st.isFile(), `fd ${fd}: the sealed helper memfd`);
    } else if (/^(socket|anon_inode):/.test(link)) {
      tt.pass(`fd ${fd}: ${link}`);
    } else if (link === '/') {
      tt.notOk(st.dev === hostRoot.dev && st.ino === hostRoot.ino, `fd ${fd}: "/" is not the host root`);
    } else if (link === '/null') {
      tt.ok(st.isCharacterDevice() && st.rdev === fs.statSync('/dev/null').rdev, `fd ${fd}: a null device`);
    } else {
      tt.fail(`fd ${fd} -> ${link}: not an acceptable fd for the waiting init`);
    }
  }
  const cwd = fs.statSync(`/proc/${pid}/cwd`);
  tt.ok(cwd.dev === rootfs.dev && cwd.ino === rootfs.ino, 'cwd is the container root (process.cwd "/")');
  const root = fs.statSync(`/proc/${pid}/root`);
  tt.ok(root.dev === rootfs.dev && root.ino === rootfs.ino, 'root is the container rootfs');
});

t.test("another container cannot open a created container's /proc/<init>/exe or fds", async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sh', '-c', 'echo ready; exec sleep 1000']);
  const id = s.id();
  const c = rtFiles(s, ['create', '-b', bundle, id]);
  tt.equal(c.code, 0, c.stderr);
  const pid = stateOf(id)?.pid as number;
  // A spy sharing the host pid namespace, root, with the default capabilities (no CAP_SYS_PTRACE).
  const probe = `readlink /proc/${pid}/exe; echo exe=$?; cat /proc/${pid}/exe > /dev/null; echo open=$?; ls /proc/${pid}/fd/ >/dev/null; readlink /proc/${pid}/fd/0; echo fd=$?`;
  const spy = runFg(s, ['sh', '-c', probe], noPidns);
  tt.equal(spy.code, 0, spy.stderr);
  tt.match(spy.stdout, /exe=1/, 'readlink of exe refused');
  tt.match(spy.stdout, /open=1/, 'open of exe refused');
  tt.match(spy.stdout, /fd=1/, 'fds unreadable');
  // Control: once started (after the exec) the same spy may look, so the refusal above was the init's doing.
  const st = rt(['start', id]);
  tt.equal(st.code, 0, st.stderr);
  tt.ok(waitFor(() => read(c.out).includes('ready')));
  const spy2 = runFg(s, ['sh', '-c', `readlink /proc/${pid}/exe; echo exe=$?`], noPidns);
  tt.match(spy2.stdout, /exe=0/, 'the started process is visible as usual');
  tt.notMatch(spy2.stdout, /tsrt/, 'and it is not a tsrt binary');
});

t.test('a mount destination reached through symlinks is created inside the rootfs, never on the host', async tt => {
  const s = scope(tt);
  const hostDir = path.join(s.dir(), 'must-not-appear');
  const bundle = s.bundle(['sh', '-c', 'echo inside > /mnt/abs/sub/f && cat /mnt/abs/sub/f && ls -d /rel/x'], spec => {
    spec.root.readonly = false;
    spec.mounts.push({ destination: '/mnt/abs/sub', type: 'tmpfs', source: 'tmpfs' });
    spec.mounts.push({ destination: '/rel/x', type: 'tmpfs', source: 'tmpfs' });
  });
  fs.mkdirSync(path.join(bundle, 'rootfs/mnt'), { recursive: true });
  fs.symlinkSync(hostDir, path.join(bundle, 'rootfs/mnt/abs')); // absolute: resolved with the rootfs as "/"
  fs.symlinkSync('../tmp/reltarget', path.join(bundle, 'rootfs/rel')); // relative to its directory
  const r = rt(['run', '-b', bundle, s.id()]);
  tt.equal(r.code, 0, `run succeeds (${r.stderr.trim()})`);
  tt.match(r.stdout, /inside\n\/rel\/x/, 'both destinations were created and mounted');
  tt.notOk(fs.existsSync(hostDir), 'nothing was created at the host path the absolute link names');
  tt.ok(fs.existsSync(path.join(bundle, 'rootfs', hostDir, 'sub')), 'the link target was created inside the rootfs');
  tt.ok(fs.existsSync(path.join(bundle, 'rootfs/tmp/reltarget/x')), 'the relative link target was created inside the rootfs');
});
