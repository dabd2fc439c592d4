// Rootless containers: dist/tsrt run by the unprivileged test user (testUser(), through runuser), with
// bundles and state directories that user owns. The test process itself is root only to set things up and to
// look at the result from the host side.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { REPO, editConfig, testUser, tmpdir, tsrt, uniqueId, waitFor, type Result } from '../helpers.js';

if (process.geteuid?.() !== 0) {
  t.plan(0, 'needs root to create the unprivileged test user and switch to it');
  process.exit(0);
}

const user = testUser();
const scratch: string[] = [];
t.teardown(() => {
  for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
});

/** The user's first subordinate range in /etc/subuid or /etc/subgid. */
function subRange(file: string): { start: number; size: number } {
  const line = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .find(l => l.startsWith(`${user.name}:`));
  if (!line) throw new Error(`${user.name} has no range in ${file}`);
  const [, start, size] = line.split(':');
  return { start: Number(start), size: Number(size) };
}

/** A temp directory owned by the test user. */
function userDir(prefix = 'tsrt-rootless-'): string {
  const dir = tmpdir(prefix);
  scratch.push(dir);
  fs.chownSync(dir, user.uid, user.gid);
  return dir;
}

/**
 * A busybox bundle built by the test user with `tsrt spec --rootless` (so its mappings name the user's ids).
 * helpers.makeBundle({owner}) cannot be used here: it creates the parent temp dir as root and then fails to
 * create the bundle inside it as the owner.
 */
function userBundle(args: string[], edit?: (spec: any) => void): string {
  const dir = path.join(userDir(), 'bundle');
  const r = spawnSync('runuser', ['-u', user.name, '--', 'bash', path.join(REPO, 'hack/mkbundle.sh'), dir, '--rootless', '--', ...args]);
  if (r.status !== 0) throw new Error(`mkbundle failed: ${r.stderr}`);
  if (edit) editConfig(dir, edit);
  return dir;
}

/** A state root (--root) owned by the user; tsrt creates it inside a user-owned directory. */
function userRoot(): string {
  return path.join(userDir('tsrt-root-'), 'state');
}

/** tsrt as the test user. */
function asUser(args: string[], root: string | undefined, extra: Parameters<typeof tsrt>[1] = {}): Result {
  return tsrt(args, { user: user.name, ...(root ? { root } : {}), ...extra });
}

/**
 * tsrt as the user for commands that leave the container running (create, run -d): the container inherits
 * stdout/stderr, so they go to a file instead of a pipe the test would wait on.
 */
function asUserDetached(args: string[], root: string | undefined, env?: NodeJS.ProcessEnv): Result & { output: () => string } {
  const logDir = userDir('tsrt-out-');
  const file = path.join(logDir, 'output');
  const fd = fs.openSync(file, 'w', 0o666);
  let r: Result;
  try {
    r = asUser(args, root, { stdio: ['ignore', fd, fd], ...(env ? { env } : {}) });
  } finally {
    fs.closeSync(fd);
  }
  return { ...r, output: () => fs.readFileSync(file, 'utf8') };
}

function stateOf(id: string, root: string | undefined, env?: NodeJS.ProcessEnv): any {
  const r = asUser(['state', id], root, env ? { env } : {});
  if (r.code !== 0) return { error: r.stderr };
  return JSON.parse(r.stdout);
}

/** Removes the container whatever state it is in (teardown). */
function forceDelete(id: string, root: string | undefined, env?: NodeJS.ProcessEnv): void {
  asUser(['delete', '--force', id], root, env ? { env } : {});
}

/** The Uid:/Gid: lines of a host process: [real, effective, saved, fs]. */
function hostIds(pid: number): { uid: number[]; gid: number[] } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) =>
    status
      .split('\n')
      .find(l => l.startsWith(`${name}:`))!
      .split(/\s+/)
      .slice(1, 5)
      .map(Number);
  return { uid: field('Uid'), gid: field('Gid') };
}

/** Host processes whose command line mentions the marker (a leaked executor still carries tsrt's argv). */
function processesMentioning(marker: string): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmdline.includes(marker)) pids.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

/** `0 1001 1` from the padded columns of /proc/<pid>/uid_map. */
function mapLines(text: string): string[] {
  return text
    .trim()
    .split('\n')
    .map(l => l.trim().split(/\s+/).join(' '))
    .filter(Boolean);
}

/** Asserts a failed command left no container, no state directory and no process behind. */
function leftNothing(t: Test, id: string, root: string): void {
  t.notOk(fs.existsSync(path.join(root, id)), 'no state directory left');
  const list = asUser(['list', '-q'], root);
  t.equal(list.code, 0);
  t.notMatch(list.stdout, id, 'not listed');
  t.equal(asUser(['state', id], root).stderr.includes('container does not exist'), true, 'state: container does not exist');
  t.same(processesMentioning(id), [], 'no process left behind');
}

/** The message of tsrt's error log line (`time=... level=error msg="..."`), unquoted. */
function errorMessage(text: string): string {
  const m = /level=error msg=("(?:[^"\\]|\\.)*")/.exec(text);
  return m ? (JSON.parse(m[1]!) as string) : text;
}

// ---------------------------------------------------------------------------------------------------------

for (const nnp of [true, false]) {
  t.test(`linux.seccomp in a rootless container, noNewPrivileges ${nnp}`, async t => {
    // Without no_new_privs the filter needs CAP_SYS_ADMIN: the user namespace's, which the executor holds.
    const bundle = userBundle(['sh', '-c', 'grep Seccomp: /proc/self/status; mkdir /tmp/x'], spec => {
      spec.process.noNewPrivileges = nnp;
      spec.root.readonly = false;
      spec.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 }],
      };
    });
    const root = userRoot();
    const id = uniqueId('rl-seccomp');
    t.teardown(() => forceDelete(id, root));
    const r = asUser(['run', '-b', bundle, id], root);
    t.equal(r.code, 1, r.stderr);
    t.match(r.stdout, /Seccomp:\s+2/);
    t.match(r.stderr, "can't create directory '/tmp/x': No space left on device");
  });
}

t.test('run with the default rootless spec', async t => {
  const bundle = userBundle(['sh', '-c', 'id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map; echo to-stderr >&2; exit 7']);
  const root = userRoot();
  const id = uniqueId('rl-run');
  t.teardown(() => forceDelete(id, root));
  const r = asUser(['run', '-b', bundle, id], root);
  t.equal(r.code, 7, 'the exit status passes through');
  const lines = r.stdout.trim().split('\n');
  t.equal(lines[0], '0', 'uid 0 inside');
  t.equal(lines[1], '0', 'gid 0 inside');
  t.same(mapLines(lines.slice(2, 3).join('\n')), [`0 ${user.uid} 1`], 'uid_map: 0 <uid> 1');
  t.same(mapLines(lines.slice(3, 4).join('\n')), [`0 ${user.gid} 1`], 'gid_map: 0 <gid> 1');
  t.match(r.stderr, /^to-stderr$/m, 'stderr passes through');
  t.notOk(fs.existsSync(path.join(root, id)), 'run without --keep removes the container');
});

t.test("a new network namespace in the user's user namespace has its loopback interface up", async t => {
  const bundle = userBundle(['ip', '-o', 'link'], spec => {
    spec.linux.namespaces.push({ type: 'network' });
  });
  const root = userRoot();
  const id = uniqueId('rl-lo');
  t.teardown(() => forceDelete(id, root));
  const r = asUser(['run', '-b', bundle, id], root);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^1: lo: <LOOPBACK,UP,LOWER_UP>/);
});

t.test('the container process runs as the user on the host; nothing runs or is written as root', async t => {
  const bundle = userBundle(['sleep', '1000']);
  const root = userRoot();
  const id = uniqueId('rl-host');
  t.teardown(() => forceDelete(id, root));
  const r = asUserDetached(['run', '-d', '-b', bundle, id], root);
  t.equal(r.code, 0, `run -d: ${r.output()}`);
  const st = stateOf(id, root);
  t.equal(st.status, 'running');
  t.ok(st.pid > 0, 'state has the init pid');
  const ids = hostIds(st.pid);
  t.same(ids.uid, [user.uid, user.uid, user.uid, user.uid], "real, effective, saved and fs uid are the user's");
  t.same(ids.gid, [user.gid, user.gid, user.gid, user.gid], 'and the gids');
  const ps = spawnSync('ps', ['-o', 'user=', '-p', String(st.pid)]);
  t.equal(ps.stdout.toString().trim(), user.name, 'ps shows the user');
  t.equal(st.owner, user.name, 'state: owner is the user');

  const stateFile = path.join(root, id, 'state.json');
  t.equal(fs.statSync(stateFile).uid, user.uid, 'state.json is owned by the user');
  t.equal(fs.statSync(path.join(root, id)).uid, user.uid, 'the container directory too');
  t.equal(fs.statSync(root).uid, user.uid, 'and the --root directory tsrt made');
  t.equal(process.geteuid?.(), 0, 'the test process (the caller) is unchanged');

  t.equal(asUser(['delete', '--force', id], root).code, 0, 'delete --force');
  t.ok(
    waitFor(() => !fs.existsSync(`/proc/${st.pid}`) || fs.readFileSync(`/proc/${st.pid}/stat`, 'utf8').includes(') Z')),
    'the init is gone',
  );
});

t.test('create, start, state, kill and delete as the user', async t => {
  const bundle = userBundle(['sh', '-c', 'echo started; exec sleep 1000']);
  const root = userRoot();
  const id = uniqueId('rl-life');
  t.teardown(() => forceDelete(id, root));

  const c = asUserDetached(['create', '-b', bundle, id], root);
  t.equal(c.code, 0, `create: ${c.output()}`);
  t.ok(fs.existsSync(path.join(root, id, 'state.json')), 'state under the given --root');
  let st = stateOf(id, root);
  t.equal(st.status, 'created');
  t.equal(st.id, id);
  t.equal(st.bundle, bundle);
  t.ok(st.pid > 0);
  t.same(hostIds(st.pid).uid, [user.uid, user.uid, user.uid, user.uid], 'the created init runs as the user');
  t.notMatch(c.output(), /started/, 'the process has not started yet');

  const s = asUser(['start', id], root);
  t.equal(s.code, 0, `start: ${s.stderr}`);
  t.ok(
    waitFor(() => c.output().includes('started')),
    'the process ran after start',
  );
  st = stateOf(id, root);
  t.equal(st.status, 'running');

  const list = asUser(['list', '--format', 'json'], root);
  t.equal(list.code, 0);
  const listed = JSON.parse(list.stdout) as any[];
  t.same(
    listed.map(x => x.id),
    [id],
    'list shows exactly this container',
  );
  t.equal(listed[0].owner, user.name);

  const k = asUser(['kill', id, 'KILL'], root);
  t.equal(k.code, 0, `kill: ${k.stderr}`);
  t.ok(
    waitFor(() => stateOf(id, root).status === 'stopped'),
    'stopped after SIGKILL',
  );
  t.equal(stateOf(id, root).pid, 0, 'a stopped container reports pid 0');
  t.match(asUser(['kill', id, 'KILL'], root).stderr, /container not running/);

  const d = asUser(['delete', id], root);
  t.equal(d.code, 0, `delete: ${d.stderr}`);
  t.notOk(fs.existsSync(path.join(root, id)), 'state directory removed');
  t.match(asUser(['state', id], root).stderr, /container does not exist/);
});

t.test('without --root the state lives in $XDG_RUNTIME_DIR/tsrt', async t => {
  const xdg = userDir('tsrt-xdg-');
  fs.chmodSync(xdg, 0o700);
  const env = { ...process.env, XDG_RUNTIME_DIR: xdg };
  const bundle = userBundle(['sleep', '1000']);
  const id = uniqueId('rl-xdg');
  t.teardown(() => forceDelete(id, undefined, env));

  const c = asUserDetached(['create', '-b', bundle, id], undefined, env);
  t.equal(c.code, 0, `create: ${c.output()}`);
  t.ok(fs.existsSync(path.join(xdg, 'tsrt', id, 'state.json')), 'state under $XDG_RUNTIME_DIR/tsrt/<id>');
  t.equal(fs.statSync(path.join(xdg, 'tsrt')).uid, user.uid, 'the default root is owned by the user');

  const list = asUser(['list', '-q'], undefined, { env });
  t.equal(list.code, 0);
  t.same(list.stdout.trim().split('\n'), [id], '`list` without --root finds it');
  const other = userDir('tsrt-xdg-other-');
  t.notMatch(
    asUser(['list', '-q'], undefined, { env: { ...process.env, XDG_RUNTIME_DIR: other } }).stdout,
    id,
    'another XDG_RUNTIME_DIR is another root',
  );
  t.equal(stateOf(id, undefined, env).status, 'created');

  t.equal(asUser(['delete', '--force', id], undefined, { env }).code, 0);
  t.notOk(fs.existsSync(path.join(xdg, 'tsrt', id)));
});

t.test("the user's own uid mapped to itself", async t => {
  const bundle = userBundle(['sh', '-c', 'id -u; id -g; grep -E "^Cap(Eff|Prm|Inh|Amb):" /proc/self/status'], spec => {
    spec.linux.uidMappings = [{ containerID: user.uid, hostID: user.uid, size: 1 }];
    spec.linux.gidMappings = [{ containerID: user.gid, hostID: user.gid, size: 1 }];
    spec.process.user = { uid: user.uid, gid: user.gid };
  });
  const root = userRoot();
  const id = uniqueId('rl-self');
  t.teardown(() => forceDelete(id, root));
  const r = asUser(['run', '-b', bundle, id], root);
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.equal(lines[0], String(user.uid), 'id -u prints the uid');
  t.equal(lines[1], String(user.gid), 'id -g prints the gid');
  t.match(r.stdout, /^CapEff:\s+0000000000000000$/m, 'no effective capabilities');
  t.match(r.stdout, /^CapPrm:\s+0000000000000000$/m, 'no permitted capabilities');
  t.match(r.stdout, /^CapInh:\s+0000000000000000$/m, 'no inheritable capabilities (R8)');
});

t.test('multiple ranges through newuidmap/newgidmap', async t => {
  const sub = subRange('/etc/subuid');
  const subg = subRange('/etc/subgid');
  const bundle = userBundle(
    [
      'sh',
      '-c',
      'cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; ' +
        'touch /tmp/x && chown 1000:1000 /tmp/x && stat -c "%u:%g" /tmp/x; ' +
        'touch /shared/y && chown 1000:1000 /shared/y',
    ],
    spec => {
      spec.linux.uidMappings = [
        { containerID: 0, hostID: user.uid, size: 1 },
        { containerID: 1, hostID: sub.start, size: sub.size },
      ];
      spec.linux.gidMappings = [
        { containerID: 0, hostID: user.gid, size: 1 },
        { containerID: 1, hostID: subg.start, size: subg.size },
      ];
      // chown needs CAP_CHOWN, which the starter config does not grant.
      for (const set of ['bounding', 'effective', 'permitted']) spec.process.capabilities[set].push('CAP_CHOWN');
      spec.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] });
      spec.mounts.push({ destination: '/shared', type: 'bind', source: 'shared', options: ['rbind'] });
    },
  );
  const shared = path.join(bundle, 'shared');
  fs.mkdirSync(shared);
  fs.chownSync(shared, user.uid, user.gid);
  const root = userRoot();
  const id = uniqueId('rl-ranges');
  t.teardown(() => forceDelete(id, root));
  const r = asUser(['run', '-b', bundle, id], root);
  t.equal(r.code, 0, r.stderr);
  const [uidMap = '', gidMap = '', rest = ''] = r.stdout.split('--\n');
  t.same(mapLines(uidMap), [`0 ${user.uid} 1`, `1 ${sub.start} ${sub.size}`], 'uid_map has both ranges');
  t.same(mapLines(gidMap), [`0 ${user.gid} 1`, `1 ${subg.start} ${subg.size}`], 'gid_map has both ranges');
  t.equal(rest.trim(), '1000:1000', 'chown 1000 /tmp/x works inside');
  const st = fs.statSync(path.join(shared, 'y'));
  t.equal(st.uid, sub.start + 999, 'on the host the file belongs to the subordinate uid');
  t.equal(st.gid, subg.start + 999, 'and gid');
});

t.test("a mapping outside the user's subordinate ranges is refused and leaves nothing behind", async t => {
  const bundle = userBundle(['true'], spec => {
    spec.linux.uidMappings = [
      { containerID: 0, hostID: user.uid, size: 1 },
      { containerID: 1, hostID: 1, size: 100 },
    ];
    spec.linux.gidMappings = [
      { containerID: 0, hostID: user.gid, size: 1 },
      { containerID: 1, hostID: 1, size: 100 },
    ];
  });
  const root = userRoot();
  const id = uniqueId('rl-badmap');
  t.teardown(() => forceDelete(id, root));
  const r = asUser(['run', '-b', bundle, id], root);
  t.not(r.code, 0);
  t.match(errorMessage(r.stderr), /^failed to write user namespace mappings with newuidmap: /);
  leftNothing(t, id, root);
});

t.test('/sys/fs/cgroup is read-only without a cgroup namespace (CVE-2023-25809)', async t => {
  const probe = 'touch /sys/fs/cgroup/x; for d in /sys/fs/cgroup/*/; do mkdir "$d"tsrt-probe; done; echo done';
  t.test('the default rootless spec', async t => {
    const bundle = userBundle(['sh', '-c', probe]);
    const root = userRoot();
    const id = uniqueId('rl-cg');
    t.teardown(() => forceDelete(id, root));
    const r = asUser(['run', '-b', bundle, id], root);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, /touch: \/sys\/fs\/cgroup\/x: Read-only file system/, 'touch /sys/fs/cgroup/x fails');
    const mkdirs = r.stderr.split('\n').filter(l => l.startsWith('mkdir:'));
    t.ok(mkdirs.length > 0, 'there are hierarchies to try');
    for (const l of mkdirs) t.match(l, /Read-only file system/, l);
  });
  t.test('a cgroup mount whose options ask for rw', async t => {
    const bundle = userBundle(['sh', '-c', probe], spec => {
      const cg = spec.mounts.find((m: any) => m.destination === '/sys/fs/cgroup');
      cg.options = ['nosuid', 'noexec', 'nodev', 'rw'];
    });
    const root = userRoot();
    const id = uniqueId('rl-cgrw');
    t.teardown(() => forceDelete(id, root));
    const r = asUser(['run', '-b', bundle, id], root);
    t.equal(r.code, 0, r.stderr);
    const mkdirs = r.stderr.split('\n').filter(l => l.startsWith('mkdir:'));
    t.ok(mkdirs.length > 0, 'there are hierarchies to try');
    for (const l of mkdirs) t.match(l, /Read-only file system/, `hierarchy still read-only: ${l}`);
    t.notMatch(r.stdout + r.stderr, /tsrt-probe.*exists/, 'nothing was created');
  });
});

t.test("sysfs without a network namespace is an rbind of the host's, read-only", async t => {
  const bundle = userBundle(
    [
      'sh',
      '-c',
      'cat /proc/self/mountinfo; touch /sys/tsrt-probe 2>&1; cat /sys/kernel/ostype 2>/dev/null; ls /sys/class/net >/dev/null && echo net-ok',
    ],
    spec => {
      // A sysfs mount as root would ask for it (not the template's bind); no cgroup mount, so every mount seen
      // under /sys comes from the host's tree.
      spec.mounts = spec.mounts.filter((m: any) => m.destination !== '/sys' && m.destination !== '/sys/fs/cgroup');
      spec.mounts.push({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
    },
  );
  const root = userRoot();
  const id = uniqueId('rl-sysfs');
  t.teardown(() => forceDelete(id, root));
  const r = asUser(['run', '-b', bundle, id], root);
  t.equal(r.code, 0, r.stderr);
  const inside = r.stdout.split('\n').filter(l => l.includes(' - '));
  const sys = inside.find(l => l.split(' ')[4] === '/sys');
  t.ok(sys, '/sys is mounted');
  t.match(sys, / - sysfs /, 'it is sysfs');
  t.match(sys?.split(' ')[5] ?? '', /(^|,)ro(,|$)/, 'read-only');
  const hostSubmounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map(l => l.split(' ')[4])
    .filter((p): p is string => !!p && p.startsWith('/sys/'));
  const insidePoints = new Set(inside.map(l => l.split(' ')[4]));
  for (const p of hostSubmounts) t.ok(insidePoints.has(p), `host submount ${p} came along (recursive bind)`);
  t.match(r.stdout, /Read-only file system|Permission denied/, 'cannot create files in /sys');
  t.match(r.stdout, /^net-ok$/m, 'the host sysfs is readable');
});

t.test('/dev nodes bound from the host are usable', async t => {
  const bundle = userBundle([
    'sh',
    '-c',
    'echo x > /dev/null && echo null-ok; head -c 4 /dev/urandom | wc -c; head -c 3 /dev/zero | od -An -tx1; ' +
      'echo x > /dev/full 2>&1 || echo full-refused; ls -l /dev/null',
  ]);
  const root = userRoot();
  const id = uniqueId('rl-dev');
  t.teardown(() => forceDelete(id, root));
  const r = asUser(['run', '-b', bundle, id], root);
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map(l => l.trim());
  t.equal(lines[0], 'null-ok', 'echo x > /dev/null');
  t.equal(lines[1], '4', 'head -c 4 /dev/urandom | wc -c = 4');
  t.equal(lines[2], '00 00 00', '/dev/zero reads zeros');
  t.equal(lines[3], 'full-refused', '/dev/full refuses writes');
  t.match(lines[4], /^crw-rw-rw-.* 1, +3 /, '/dev/null is the character device 1,3');
});

t.test('errors as the user leave nothing behind', async t => {
  t.test('a missing executable (run)', async t => {
    const bundle = userBundle(['tsrt-no-such-binary']);
    const root = userRoot();
    const id = uniqueId('rl-noexec');
    t.teardown(() => forceDelete(id, root));
    const r = asUser(['run', '-b', bundle, id], root);
    t.not(r.code, 0);
    t.match(errorMessage(r.stderr), /exec: "tsrt-no-such-binary": executable file not found in \$PATH/);
    leftNothing(t, id, root);
  });
  t.test('a missing executable (create)', async t => {
    const bundle = userBundle(['/bin/tsrt-no-such-binary']);
    const root = userRoot();
    const id = uniqueId('rl-noexec-c');
    t.teardown(() => forceDelete(id, root));
    const r = asUserDetached(['create', '-b', bundle, id], root);
    t.not(r.code, 0, 'create fails');
    t.match(errorMessage(r.output()), /exec: "\/bin\/tsrt-no-such-binary": stat \/bin\/tsrt-no-such-binary: no such file or directory/);
    leftNothing(t, id, root);
  });
  t.test('a bind mount source that does not exist', async t => {
    const bundle = userBundle(['true'], spec => {
      spec.mounts.push({ destination: '/mnt', type: 'bind', source: 'missing', options: ['rbind'] });
    });
    const root = userRoot();
    const id = uniqueId('rl-nosrc');
    t.teardown(() => forceDelete(id, root));
    const r = asUser(['run', '-b', bundle, id], root);
    t.not(r.code, 0);
    t.match(errorMessage(r.stderr), /error mounting "missing" to rootfs at "\/mnt": stat .*\/missing: no such file or directory/);
    leftNothing(t, id, root);
  });
  t.test('a mount the kernel refuses in the user namespace', async t => {
    // A user namespace cannot mount a filesystem type that is not FS_USERNS_MOUNT.
    const bundle = userBundle(['true'], spec => {
      spec.mounts.push({ destination: '/mnt', type: 'ext4', source: '/dev/null' });
    });
    const root = userRoot();
    const id = uniqueId('rl-refused');
    t.teardown(() => forceDelete(id, root));
    const r = asUser(['run', '-b', bundle, id], root);
    t.not(r.code, 0);
    t.match(
      errorMessage(r.stderr),
      /^unable to start container process: error during container init: error mounting "\/mnt": operation not permitted$/,
    );
    leftNothing(t, id, root);
  });
  t.test('a config that is not rootless-capable (no user namespace)', async t => {
    const bundle = userBundle(['true'], spec => {
      spec.linux.namespaces = spec.linux.namespaces.filter((n: any) => n.type !== 'user');
      delete spec.linux.uidMappings;
      delete spec.linux.gidMappings;
    });
    const root = userRoot();
    const id = uniqueId('rl-nouserns');
    t.teardown(() => forceDelete(id, root));
    const r = asUser(['run', '-b', bundle, id], root);
    t.not(r.code, 0);
    t.equal(errorMessage(r.stderr), 'rootless container requires user namespaces');
    leftNothing(t, id, root);
  });
});
