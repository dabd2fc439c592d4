// The systemd cgroup manager end to end, as root, through dist/tsrt. This host runs no systemd, so the test
// runs a fake one (fixtures/fake-systemd.py) owning org.freedesktop.systemd1 on a private dbus-daemon; tsrt
// is pointed at it with the test-only TSRT_SYSTEMD_BUS and TSRT_ASSUME_SYSTEMD. The fake makes each unit's
// cgroup below a root of this test's own (in name=systemd, memory, pids and cgroup2, as systemd would on a
// hybrid host; tsrt makes the rest), moves the unit's PIDs into it and records every call, so the test sees
// what tsrt asked systemd for and where the container ended up.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  REPO,
  e2eFile,
  errorMessage,
  lastErrorMessage,
  readOrEmpty,
  removeCgroupEverywhere,
  tmpdir,
  tsrt,
  type Edit,
  type Result,
  type Scope,
} from '../helpers.js';

const { ROOT, scope, waitFor } = e2eFile(t, {
  name: 'systemd',
  idPrefix: 'sd',
  needsRoot: 'the fake systemd moves processes between cgroups: root only',
  timeoutMinutes: 10,
});

const CG = '/sys/fs/cgroup';
const read = (file: string): string => readOrEmpty(file).trim();
const WORK = tmpdir('tsrt-e2e-systemd-bus-');
const BUS = `unix:path=${path.join(WORK, 'bus')}`;
const RECORD = path.join(WORK, 'record.json');
const FAKE_ROOT = `/tsrt-fake-systemd-${process.pid}`;
const MANAGED = ['systemd', 'memory', 'pids', 'unified'].map(h => path.join(CG, h));
// Debian's python3 has the dbus and gi modules (hack/deps.sh); a python3 earlier on PATH may not.
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const ENV = { ...process.env, TSRT_SYSTEMD_BUS: BUS, TSRT_ASSUME_SYSTEMD: '1' };

const children: ChildProcess[] = [];
t.teardown(() => {
  for (const c of children.reverse()) c.kill('SIGTERM');
  removeCgroupEverywhere(FAKE_ROOT);
  fs.rmSync(WORK, { recursive: true, force: true });
});

/** A dbus-daemon on `dir`/bus and the fake systemd on it (units below FAKE_ROOT), recording into `record`. */
function startFakeSystemd(dir: string, record: string): ChildProcess[] | undefined {
  const daemon = spawn('dbus-daemon', ['--session', `--address=unix:path=${path.join(dir, 'bus')}`, '--nofork', '--nopidfile'], {
    stdio: 'ignore',
  });
  children.push(daemon);
  if (!waitFor(() => fs.existsSync(path.join(dir, 'bus')))) return undefined;
  const fake = spawn(
    PYTHON,
    [path.join(REPO, 'test/e2e/fixtures/fake-systemd.py'), `unix:path=${path.join(dir, 'bus')}`, record, FAKE_ROOT, ...MANAGED],
    {
      stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'fake.err'), 'w')],
    },
  );
  children.push(fake);
  return waitFor(() => fs.existsSync(record)) ? [fake, daemon] : undefined;
}

const ready = startFakeSystemd(WORK, RECORD) !== undefined;
t.ok(ready, 'the fake systemd runs on a private bus', ready ? {} : { diagnostic: true, stderr: read(path.join(WORK, 'fake.err')) });

function record(): any {
  return JSON.parse(fs.readFileSync(RECORD, 'utf8'));
}

function rt(args: string[], env: NodeJS.ProcessEnv = ENV): Result {
  return tsrt(['--systemd-cgroup', ...args], { root: ROOT, env });
}

function stateOf(id: string): any {
  const r = tsrt(['state', id], { root: ROOT });
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

/** Every host directory the unit's cgroup has. */
function unitDirs(cgroup: string): string[] {
  return fs
    .readdirSync(CG)
    .map(h => path.join(CG, h, cgroup))
    .filter(d => fs.existsSync(d));
}

/** Prints what the container's own cgroup says, "ready", then each new pids.max it sees. */
const reporter = [
  'sh',
  '-c',
  [
    'echo "memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes) pids=$(cat /sys/fs/cgroup/pids/pids.max)"',
    'echo ready',
    'last=""; while :; do p=$(cat /sys/fs/cgroup/pids/pids.max); [ "$p" = "$last" ] || echo "pids.max=$p"; last=$p; sleep 0.1; done',
  ].join('; '),
];

/**
 * `create` with the container's stdout and stderr in files (the container keeps them open: a pipe would
 * never close); returns the id, the result (its stderr read from the file) and the output file.
 */
function create(s: Scope, edit: Edit, env: NodeJS.ProcessEnv = ENV, id = s.id()) {
  const bundle = s.bundle(reporter, edit);
  const dir = s.dir();
  const out = path.join(dir, 'out');
  const fds = [fs.openSync(out, 'w'), fs.openSync(path.join(dir, 'err'), 'w')];
  const r = tsrt(['--systemd-cgroup', 'create', '-b', bundle, id], { root: ROOT, env, stdio: ['ignore', fds[0]!, fds[1]!] });
  for (const fd of fds) fs.closeSync(fd);
  r.stderr = fs.readFileSync(path.join(dir, 'err'), 'utf8');
  return { id, r, out };
}

t.test('create, start, state, update and delete with the container in a systemd scope', { skip: !ready }, async tt => {
  const s = scope(tt);
  const id = s.id();
  const unit = `tsrt-${id}.scope`;
  const cgroup = `${FAKE_ROOT}/system.slice/${unit}`;
  const resources = {
    memory: { limit: 64 << 20 },
    pids: { limit: 50 },
    cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0' },
  };
  const c = create(
    s,
    spec => {
      spec.linux.cgroupsPath = `system.slice:tsrt:${id}`;
      spec.linux.resources = { ...spec.linux.resources, ...resources };
    },
    ENV,
    id,
  );
  tt.equal(c.r.code, 0, c.r.stderr);
  const st = stateOf(id);
  tt.equal(st?.status, 'created');
  const pid = st?.pid as number;

  tt.test("StartTransientUnit: the unit, its slice, the init's pid and the resources as properties", async t => {
    const u = record().units[unit];
    t.ok(u, `${unit} was started`);
    t.same(record().calls.filter((x: string[]) => x[1] === unit)[0], ['StartTransientUnit', unit, 'replace']);
    t.match(u.properties, {
      Description: `tsrt container ${id}`,
      Slice: 'system.slice',
      Delegate: true,
      PIDs: [pid],
      DefaultDependencies: false,
      MemoryAccounting: true,
      CPUAccounting: true,
      BlockIOAccounting: true,
      TasksAccounting: true,
      MemoryLimit: 64 << 20,
      TasksMax: 50,
      CPUShares: 512,
      CPUQuotaPeriodUSec: 100000,
      CPUQuotaPerSecUSec: 500000,
      AllowedCPUs: [1],
      DevicePolicy: 'strict',
    });
    t.ok(
      u.properties.DeviceAllow.some((d: string[]) => d[0] === '/dev/char/1:3' && d[1] === 'rwm'),
      '/dev/null allowed',
    );
  });

  tt.test("the init is in the unit's cgroup in every hierarchy (systemd's and the ones tsrt made)", async t => {
    const lines = read(`/proc/${pid}/cgroup`).split('\n');
    for (const h of ['name=systemd', 'memory', 'pids', 'cpu', 'cpuset', 'freezer', 'devices', 'blkio']) {
      t.ok(
        lines.some(l => l.split(':')[1]!.split(',').includes(h) && l.endsWith(`:${cgroup}`)),
        `${h}: ${cgroup}`,
      );
    }
    t.ok(lines.includes(`0::${cgroup}`), 'cgroup2 too');
    t.notOk(read('/proc/self/cgroup').includes(unit), 'the test (and the runtime it ran) is not in it');
    t.equal(read(path.join(CG, 'cpuset', cgroup, 'cpuset.cpus')), '0', "cpuset (not systemd's here) written by tsrt");
  });

  tt.test('start: the limits hold inside the container', async t => {
    t.equal(tsrt(['start', id], { root: ROOT }).code, 0);
    t.ok(
      waitFor(() => read(c.out).includes('ready')),
      'the container runs',
    );
    t.match(read(c.out), `memory=${64 << 20} pids=50`);
    t.equal(stateOf(id)?.status, 'running');
  });

  tt.test('update: SetUnitProperties with the new limits, and the cgroup files follow', async t => {
    const r = rt(['update', '--memory', '128m', '--pids-limit', '70', id]);
    t.equal(r.code, 0, r.stderr);
    const set = record().units[unit].set;
    t.equal(set.length, 1, 'one SetUnitProperties');
    t.match(set[0], { MemoryLimit: 128 << 20, TasksMax: 70, CPUShares: 512 });
    t.notOk('DevicePolicy' in set[0], 'the device list is left alone when the update has none');
    t.ok(
      record().calls.some((x: any[]) => x[0] === 'SetUnitProperties' && x[1] === unit && x[2] === true),
      'runtime=true',
    );
    t.ok(
      waitFor(() => read(c.out).includes('pids.max=70')),
      'the container sees pids.max 70',
    );
    t.equal(read(path.join(CG, 'memory', cgroup, 'memory.limit_in_bytes')), String(128 << 20));
  });

  tt.test('update with devices: DeviceAllow is replaced while the container is frozen, and it runs again', async t => {
    const resources = {
      devices: [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 10, minor: 200, access: 'rw' },
      ],
    };
    const r = tsrt(['--systemd-cgroup', 'update', '-r', '-', id], { root: ROOT, env: ENV, input: JSON.stringify(resources) });
    t.equal(r.code, 0, r.stderr);
    const set = record().units[unit].set;
    t.equal(set.length, 2);
    t.equal(set[1].DevicePolicy, 'strict');
    t.ok(
      set[1].DeviceAllow.some((d: string[]) => d[0] === '/dev/char/10:200' && d[1] === 'rw'),
      '/dev/net/tun allowed',
    );
    t.match(read(path.join(CG, 'devices', cgroup, 'devices.list')), /c 10:200 rw/);
    t.equal(read(path.join(CG, 'freezer', cgroup, 'freezer.state')), 'THAWED');
    t.equal(stateOf(id)?.status, 'running');
  });

  tt.test('delete: the unit is stopped, nothing of it is left', async t => {
    // delete needs no test environment: the container's record names the bus it was made through.
    const r = tsrt(['delete', '--force', id], { root: ROOT });
    t.equal(r.code, 0, r.stderr);
    t.ok(
      record().calls.some((x: string[]) => x[0] === 'StopUnit' && x[1] === unit),
      'StopUnit',
    );
    t.equal(record().units[unit].active, false);
    t.same(unitDirs(cgroup), [], 'no cgroup directory of the unit in any hierarchy');
    t.notOk(fs.existsSync(`/proc/${pid}`) && !read(`/proc/${pid}/stat`).includes(') Z'), 'the init is gone');
    t.notOk(fs.existsSync(path.join(ROOT, id)), 'no state');
  });
});

t.test('no cgroupsPath: tsrt-<id>.scope in system.slice', { skip: !ready }, async tt => {
  const s = scope(tt);
  const c = create(s, () => {});
  tt.equal(c.r.code, 0, c.r.stderr);
  const u = record().units[`tsrt-${c.id}.scope`];
  tt.equal(u?.cgroup, `${FAKE_ROOT}/system.slice/tsrt-${c.id}.scope`);
  tt.equal(u?.properties.Slice, 'system.slice');
  tt.equal(tsrt(['delete', '--force', c.id], { root: ROOT }).code, 0);
  tt.equal(record().units[`tsrt-${c.id}.scope`].active, false);
});

t.test('a nested slice is expanded the way systemd names it', { skip: !ready }, async tt => {
  const s = scope(tt);
  const c = create(s, spec => {
    spec.linux.cgroupsPath = 'machine-tsrt.slice:box:n1';
  });
  tt.equal(c.r.code, 0, c.r.stderr);
  const pid = stateOf(c.id)?.pid;
  tt.ok(read(`/proc/${pid}/cgroup`).split('\n').includes(`0::${FAKE_ROOT}/machine.slice/machine-tsrt.slice/box-n1.scope`));
  tt.equal(tsrt(['delete', '--force', c.id], { root: ROOT }).code, 0);
});

t.test("cgroupsPath not slice:prefix:name: runc's error naming it, nothing started or left", { skip: !ready }, async tt => {
  const s = scope(tt);
  const before = record().calls.length;
  const c = create(s, spec => {
    spec.linux.cgroupsPath = '/not/a/slice';
  });
  tt.equal(c.r.code, 1);
  tt.equal(
    errorMessage(c.r.stderr),
    'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "/not/a/slice" instead',
  );
  tt.equal(record().calls.length, before, 'systemd was not asked for anything');
  tt.notOk(fs.existsSync(path.join(ROOT, c.id)));
});

t.test(
  "a unit name already taken: systemd's error, the new container leaves nothing, the first one keeps its unit",
  { skip: !ready },
  async tt => {
    const s = scope(tt);
    const cgroupsPath = `system.slice:tsrt:taken-${process.pid}`;
    const first = create(s, spec => {
      spec.linux.cgroupsPath = cgroupsPath;
    });
    tt.equal(first.r.code, 0, first.r.stderr);
    const second = create(s, spec => {
      spec.linux.cgroupsPath = cgroupsPath;
    });
    tt.equal(second.r.code, 1);
    // The first container's process is in that cgroup already: runc's warning, then systemd's refusal.
    tt.match(errorMessage(second.r.stderr), "container's cgroup is not empty: 1 process(es) found");
    tt.match(
      lastErrorMessage(second.r.stderr),
      /^systemd: start unit tsrt-taken-\d+\.scope: org\.freedesktop\.systemd1\.UnitExists: Unit tsrt-taken-\d+\.scope already exists\.$/,
    );
    tt.notOk(fs.existsSync(path.join(ROOT, second.id)), 'no state for the second');
    tt.equal(record().units[`tsrt-taken-${process.pid}.scope`].active, true, "the first container's unit was not stopped");
    tt.equal(stateOf(first.id)?.status, 'created');
    tt.equal(tsrt(['delete', '--force', first.id], { root: ROOT }).code, 0);
  },
);

t.test('no bus to reach: a clear error before anything runs, nothing left', { skip: !ready }, async tt => {
  const s = scope(tt);
  const missing = `unix:path=${path.join(WORK, 'no-such-bus')}`;
  const c = create(s, () => {}, { ...ENV, TSRT_SYSTEMD_BUS: missing });
  tt.equal(c.r.code, 1);
  tt.match(errorMessage(c.r.stderr), `systemd: connect to ${missing}: D-Bus: connect to ${missing}:`);
  tt.match(errorMessage(c.r.stderr), /ENOENT|no such file/i);
  tt.notOk(fs.existsSync(path.join(ROOT, c.id)));
});

t.test(
  'a limit the kernel refuses after the unit started: the error names the field, the unit is stopped, nothing left',
  { skip: !ready },
  async tt => {
    const s = scope(tt);
    const id = s.id();
    const unit = `tsrt-${id}.scope`;
    // systemd takes any AllowedCPUs; the cpuset write that follows fails for a cpu this 2-core host lacks.
    const c = create(
      s,
      spec => {
        spec.linux.cgroupsPath = `system.slice:tsrt:${id}`;
        spec.linux.resources = { ...spec.linux.resources, cpu: { cpus: '63' } };
      },
      ENV,
      id,
    );
    tt.equal(c.r.code, 1);
    tt.match(errorMessage(c.r.stderr), /^linux\.resources\.cpu\.cpus: write "63" to .*cpuset\.cpus/);
    tt.ok(
      record().calls.some((x: string[]) => x[0] === 'StopUnit' && x[1] === unit),
      'the started unit was stopped',
    );
    tt.equal(record().units[unit]?.active, false);
    tt.same(unitDirs(`${FAKE_ROOT}/system.slice/${unit}`), [], 'no cgroup directory of the unit in any hierarchy');
    tt.notOk(fs.existsSync(path.join(ROOT, id)), 'no state');
  },
);

t.test("pause and resume freeze the unit's cgroup", { skip: !ready }, async tt => {
  const s = scope(tt);
  const c = create(s, () => {});
  tt.equal(c.r.code, 0, c.r.stderr);
  tt.equal(tsrt(['start', c.id], { root: ROOT }).code, 0);
  const freezer = path.join(CG, 'freezer', FAKE_ROOT, 'system.slice', `tsrt-${c.id}.scope`, 'freezer.state');
  tt.equal(tsrt(['pause', c.id], { root: ROOT }).code, 0);
  tt.equal(read(freezer), 'FROZEN');
  tt.equal(stateOf(c.id)?.status, 'paused');
  tt.equal(tsrt(['resume', c.id], { root: ROOT }).code, 0);
  tt.equal(read(freezer), 'THAWED');
  tt.equal(stateOf(c.id)?.status, 'running');
  tt.equal(tsrt(['delete', '--force', c.id], { root: ROOT }).code, 0);
});

t.test('org.systemd.property.* annotations become unit properties; a bad one fails before systemd is asked', { skip: !ready }, async tt => {
  const s = scope(tt);
  const c = create(s, spec => {
    spec.annotations = { 'org.systemd.property.TimeoutStopSec': 'uint64 123', 'org.systemd.property.CollectMode': "'inactive-or-failed'" };
  });
  tt.equal(c.r.code, 0, c.r.stderr);
  tt.match(record().units[`tsrt-${c.id}.scope`]?.properties, { TimeoutStopUSec: 123000000, CollectMode: 'inactive-or-failed' });
  tt.equal(tsrt(['delete', '--force', c.id], { root: ROOT }).code, 0);

  const before = record().calls.length;
  const bad = create(s, spec => {
    spec.annotations = { 'org.systemd.property.CPUWeight': 'uint64 lots' };
  });
  tt.equal(bad.r.code, 1);
  tt.equal(
    errorMessage(bad.r.stderr),
    'annotations: org.systemd.property.CPUWeight: the value is not a GVariant: expected a value at offset 7 of "uint64 lots"',
  );
  tt.equal(record().calls.length, before, 'systemd was not asked for anything');
  tt.notOk(fs.existsSync(path.join(ROOT, bad.id)));
});

t.test(
  "delete when systemd cannot be reached any more: a warning naming the bus, the container and tsrt's own directories go",
  { skip: !ready },
  async tt => {
    const s = scope(tt);
    const dir = s.dir();
    const gone = startFakeSystemd(dir, path.join(dir, 'record.json'));
    tt.ok(gone, 'a second fake systemd');
    const bus = `unix:path=${path.join(dir, 'bus')}`;
    const c = create(s, () => {}, { ...ENV, TSRT_SYSTEMD_BUS: bus });
    tt.equal(c.r.code, 0, c.r.stderr);
    const cgroup = `${FAKE_ROOT}/system.slice/tsrt-${c.id}.scope`;
    tt.ok(fs.existsSync(path.join(CG, 'cpuset', cgroup)), 'tsrt made the cpuset directory (systemd does not manage it here)');
    for (const p of gone!) p.kill('SIGKILL');
    // Dead (a zombie until this process's event loop reaps it, which the synchronous wait does not let run).
    const dead = (pid: number | undefined) => !fs.existsSync(`/proc/${pid}`) || read(`/proc/${pid}/stat`).includes(') Z');
    tt.ok(
      waitFor(() => gone!.every(p => dead(p.pid))),
      'the bus is gone',
    );
    const r = tsrt(['delete', '--force', c.id], { root: ROOT });
    tt.equal(r.code, 0, 'delete --force still succeeds');
    tt.match(r.stderr, `systemd: connect to ${bus}`);
    tt.notOk(fs.existsSync(path.join(ROOT, c.id)), 'no state');
    tt.notOk(fs.existsSync(path.join(CG, 'cpuset', cgroup)), 'what tsrt made is removed');
  },
);

t.test(
  "systemd puts the unit elsewhere than the container's mounts expect: an error naming both, the unit is stopped",
  { skip: !ready },
  async tt => {
    const s = scope(tt);
    const id = s.id();
    const unit = `tsrt-${id}-elsewhere.scope`;
    const c = create(
      s,
      spec => {
        spec.linux.cgroupsPath = `system.slice:tsrt:${id}-elsewhere`;
      },
      ENV,
      id,
    );
    tt.equal(c.r.code, 1);
    tt.equal(
      errorMessage(c.r.stderr),
      `systemd put unit ${unit} in cgroup ${FAKE_ROOT}/elsewhere.slice/${unit}, not ${FAKE_ROOT}/system.slice/${unit} where the container's mounts expect it`,
    );
    tt.equal(record().units[unit]?.active, false, 'the unit was stopped');
    tt.same(unitDirs(`${FAKE_ROOT}/elsewhere.slice/${unit}`), []);
    tt.same(unitDirs(`${FAKE_ROOT}/system.slice/${unit}`), []);
    tt.notOk(fs.existsSync(path.join(ROOT, id)), 'no state');
  },
);
