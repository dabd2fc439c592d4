// The pure half of `exec`: the exec plan, how runc's flags change the container's process, a -p process
// document's fallbacks, and the -u and --cgroup parsers. No root, nothing is cloned.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { buildExecPlan, type ExecPlanOptions } from '../../src/plan/exec.js';
import type { HostFacts } from '../../src/plan/facts.js';
import { CLONE } from '../../src/plan/linux.js';
import { PlanFlag } from '../../src/plan/types.js';
import { overrideProcess, parseSubCgroups, parseUserSpec, processFromFile } from '../../src/runtime/exec.js';
import type { Process } from '../../src/spec/types.gen.js';
import { specTemplate } from '../../src/spec/template.js';
import { errorOf } from '../helpers.js';

const facts: HostFacts = {
  euid: 0,
  egid: 0,
  capLastCap: 40,
  capBounding: (1n << 41n) - 1n,
  defaultNofile: { soft: 1024n, hard: 4096n },
  cgroup: { layout: 'v2', v1: [], unifiedMountPoint: '/sys/fs/cgroup', unifiedOwnPath: '/' },
  isDirectory: () => undefined,
  exists: () => false,
  isRuntimeNamespace: () => false,
  setgroupsDenied: () => false,
  apparmorEnabled: false,
  selinuxEnabled: false,
};

const CONTAINER_NS = CLONE.NEWNS | CLONE.NEWPID | CLONE.NEWNET | CLONE.NEWIPC | CLONE.NEWUTS | CLONE.NEWCGROUP;

function opts(over: Partial<ExecPlanOptions> = {}): ExecPlanOptions {
  return { console: false, preserveFds: 0, nsFlags: CONTAINER_NS, setgroups: true, noNewKeyring: false, ...over };
}

/** The `tsrt spec` process, without its terminal (no console socket in these plans). */
function baseProcess(): Process {
  return { ...structuredClone(specTemplate({ rootless: false, uid: 0, gid: 0 }).process!), terminal: false };
}

t.test('buildExecPlan: joins the init through its pidfd and does no container set-up', async t => {
  const proc = { ...baseProcess(), args: ['ls'] };
  const plan = buildExecPlan(proc, {}, facts, opts());
  t.ok(plan.flags & PlanFlag.exec, 'the exec flag');
  t.equal(plan.joinNsFlags, CONTAINER_NS);
  t.same(Object.keys(plan).sort(), ['flags', 'joinNsFlags', 'process'], 'no container part, no runtime part: nothing to make');
  const setUp =
    PlanFlag.newUserns |
    PlanFlag.newMountns |
    PlanFlag.newPidns |
    PlanFlag.newCgroupns |
    PlanFlag.newTimens |
    PlanFlag.setHostname |
    PlanFlag.setDomainname |
    PlanFlag.startFifo |
    PlanFlag.syncPrepivot |
    PlanFlag.readonlyRoot;
  t.equal(plan.flags & setUp, 0, 'no set-up flag');
  t.ok(plan.flags & PlanFlag.newKeyring, 'a new session keyring, as at create');
  t.notOk(buildExecPlan(proc, {}, facts, opts({ noNewKeyring: true })).flags & PlanFlag.newKeyring, '--no-new-keyring at create');
  t.notOk(buildExecPlan(proc, {}, facts, opts({ setgroups: false })).flags & PlanFlag.setgroups, 'setgroups denied in the userns');
});

t.test("buildExecPlan: the process part is the init's (caps, rlimits, user, cwd, env), the seccomp the container's", async t => {
  const proc: Process = {
    ...baseProcess(),
    args: ['id'],
    cwd: '/var/../tmp',
    env: ['A=b'],
    user: { uid: 5, gid: 6, additionalGids: [7], umask: 0o027 },
    rlimits: [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 20 }],
    oomScoreAdj: 100,
    noNewPrivileges: true,
  };
  const seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] };
  const plan = buildExecPlan(proc, { seccomp } as never, facts, opts());
  t.same(
    [
      plan.process.uid,
      plan.process.gid,
      plan.process.additionalGids,
      plan.process.umask,
      plan.process.cwd,
      plan.process.env,
      plan.process.args,
    ],
    [5, 6, [7], 0o027, '/tmp', ['A=b'], ['id']],
  );
  t.same(plan.process.rlimits, [{ resource: 7, soft: 10n, hard: 20n }]);
  t.ok(plan.flags & PlanFlag.oomScoreAdj);
  t.ok(plan.flags & PlanFlag.noNewPrivs);
  t.ok(plan.flags & PlanFlag.setUmask);
  t.ok(plan.process.seccomp, "the container's seccomp profile");
  t.equal(plan.process.caps.inheritable, 0n);
});

t.test('buildExecPlan: runc texts for a bad process; a terminal needs a console', async t => {
  const proc = baseProcess();
  t.equal(
    errorOf(t, () => buildExecPlan({ ...proc, args: ['x'], cwd: 'rel' }, {}, facts, opts())),
    'Cwd must be an absolute path',
  );
  t.equal(
    errorOf(t, () => buildExecPlan({ ...proc, args: ['x'], cwd: '' }, {}, facts, opts())),
    'Cwd property must not be empty',
  );
  t.equal(
    errorOf(t, () => buildExecPlan({ ...proc, args: [] }, {}, facts, opts())),
    'args must not be empty',
  );
  t.match(
    errorOf(t, () => buildExecPlan({ ...proc, args: ['x'], terminal: true }, {}, facts, opts())),
    /cannot allocate tty/,
  );
  t.ok(buildExecPlan({ ...proc, args: ['x'], terminal: true }, {}, facts, opts({ console: true })).flags & PlanFlag.terminal);
  t.match(
    errorOf(t, () => buildExecPlan({ ...proc, args: ['x'] }, {}, facts, opts({ nsFlags: CLONE.NEWPID }))),
    /no mount namespace/,
  );
  t.match(
    errorOf(t, () => buildExecPlan({ ...proc, args: ['x'], apparmorProfile: 'p' }, {}, facts, opts())),
    /apparmor not supported/,
  );
  const fromFile = opts({ at: { file: 'proc.json', pointer: '' } });
  t.equal(
    errorOf(t, () => buildExecPlan({ ...proc, args: ['x'], capabilities: { bounding: ['CAP_NOPE'] } }, {}, facts, fromFile)),
    'proc.json: /capabilities/bounding/0: unknown capability "CAP_NOPE"',
    'a -p document names its own field',
  );
  t.equal(
    errorOf(t, () => buildExecPlan({ ...proc, args: ['x'], oomScoreAdj: 2000 }, {}, facts, opts())),
    'config.json: /process/oomScoreAdj: 2000 is outside -1000..1000',
    "the container's process is config.json's",
  );
});

t.test('overrideProcess: runc exec flags on the container process', async t => {
  const base = baseProcess();
  const p = overrideProcess(base, {
    args: ['sh'],
    cwd: '/w',
    env: ['X=1'],
    tty: true,
    user: { uid: 3 },
    additionalGids: [9],
    caps: ['CAP_NET_RAW'],
    noNewPrivs: false,
    apparmor: 'prof',
    processLabel: 'lbl',
  });
  t.same(p.args, ['sh']);
  t.equal(p.cwd, '/w');
  t.same(p.env, [...(base.env ?? []), 'X=1'], 'env is appended');
  t.equal(p.terminal, true);
  t.same([p.user?.uid, p.user?.gid, p.user?.additionalGids], [3, base.user?.gid, [9]]);
  for (const set of ['bounding', 'effective', 'permitted'] as const) t.ok(p.capabilities?.[set]?.includes('CAP_NET_RAW'), set);
  t.notOk(p.capabilities?.inheritable?.includes('CAP_NET_RAW'), 'R8: never inheritable');
  t.notOk(p.capabilities?.ambient?.includes('CAP_NET_RAW'), 'not ambient without inheritable in the config');
  t.same([p.noNewPrivileges, p.apparmorProfile, p.selinuxLabel], [false, 'prof', 'lbl']);
  t.equal(overrideProcess(base, { args: ['x'] }).terminal, false, 'no -t: no terminal, whatever the config says');
  t.equal(overrideProcess(base, { args: ['x'] }).noNewPrivileges, base.noNewPrivileges, "no --no-new-privs: the config's");
  const withInheritable = { ...base, capabilities: { ...base.capabilities, inheritable: ['CAP_CHOWN'] } };
  const q = overrideProcess(withInheritable, { args: ['x'], caps: ['CAP_NET_RAW'] });
  t.ok(q.capabilities?.ambient?.includes('CAP_NET_RAW'), 'ambient when the config uses inheritable');
  t.same(q.capabilities?.inheritable, ['CAP_CHOWN'], 'inheritable untouched');
  t.same(base.env, baseProcess().env, 'the base is not modified');
});

t.test('processFromFile: validated, and what it leaves out comes from the container', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-exec-unit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'process.json');
  const base = { ...baseProcess(), rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1, hard: 2 }], oomScoreAdj: 5 };
  fs.writeFileSync(file, JSON.stringify({ args: ['x'], cwd: '/' }));
  const p = processFromFile(file, base);
  t.same(p.capabilities, base.capabilities);
  t.same(p.rlimits, base.rlimits);
  t.equal(p.oomScoreAdj, 5);
  t.notOk(p.noNewPrivileges, "no_new_privs is the file's (absent: off), as runc");
  fs.writeFileSync(file, JSON.stringify({ args: ['x'], cwd: '/', capabilities: { bounding: [] } }));
  t.same(processFromFile(file, base).capabilities, { bounding: [] }, 'given capabilities are kept as they are');
  fs.writeFileSync(file, JSON.stringify({ args: 'x', cwd: '/' }));
  t.equal(
    errorOf(t, () => processFromFile(file, base)),
    'process.json: /args: must be array',
  );
  fs.writeFileSync(file, '{');
  t.match(
    errorOf(t, () => processFromFile(file, base)),
    /^process\.json: invalid JSON/,
  );
});

t.test('parseUserSpec: <uid>[:<gid>], decimal, in range, nothing else (CVE-2026-30892)', async t => {
  t.same(parseUserSpec('0'), { uid: 0 });
  t.same(parseUserSpec('1000:1000'), { uid: 1000, gid: 1000 });
  t.same(parseUserSpec('2147483647:0'), { uid: 2147483647, gid: 0 });
  for (const bad of ['', 'abc', '1000:', ':1000', '1000:1000:1', '-1', '+1', '1.0', '0x10', ' 1', '1 ', '１']) {
    t.match(
      errorOf(t, () => parseUserSpec(bad)),
      /^parsing .* as int for (uid|gid) failed/,
      JSON.stringify(bad),
    );
  }
  t.equal(
    errorOf(t, () => parseUserSpec('2147483648')),
    'uids and gids must be in range 0-2147483647',
  );
  t.equal(
    errorOf(t, () => parseUserSpec('1:99999999999999999999')),
    'uids and gids must be in range 0-2147483647',
  );
});

t.test('parseSubCgroups: [<controller>[,<controller>]:]<path>', async t => {
  t.same([...parseSubCgroups(['sub'])], [['', 'sub']]);
  t.same(
    [...parseSubCgroups(['cpu,memory:a/b', 'pids:c'])],
    [
      ['cpu', 'a/b'],
      ['memory', 'a/b'],
      ['pids', 'c'],
    ],
  );
  t.equal(
    errorOf(t, () => parseSubCgroups(['a', 'b'])),
    'invalid --cgroup argument(s): multiple <controller>-less arguments',
  );
  t.equal(
    errorOf(t, () => parseSubCgroups(['cpu:a', 'cpu:b'])),
    'invalid --cgroup argument(s): controller cpu specified multiple times',
  );
  t.equal(
    errorOf(t, () => parseSubCgroups(['cpu,:a'])),
    'invalid --cgroup argument: cpu,:a (empty <controller> prefix)',
  );
});

t.test("buildExecPlan: the kernel's limits on the exec'd process, named as in config.json", async t => {
  const proc = baseProcess();
  proc.env = [`BIG=${'v'.repeat(131_067)}`];
  t.equal(buildExecPlan(proc, {}, facts, opts()).process.env[0]!.length, 131_071, 'a string of MAX_ARG_STRLEN with its NUL');
  proc.env[0] += 'v';
  t.equal(
    errorOf(t, () => buildExecPlan(proc, {}, facts, opts())),
    'config.json: /process/env/0: a string of 131072 bytes is longer than the kernel takes for one argument or environment string (MAX_ARG_STRLEN: 131072 bytes with its NUL)',
  );
  const cwd = baseProcess();
  cwd.cwd = `/${'c'.repeat(200)}`.repeat(21).slice(0, 4096);
  t.match(
    errorOf(t, () => buildExecPlan(cwd, {}, facts, opts())),
    /^config\.json: \/process\/cwd: a path of 4096 bytes is longer than the kernel takes/,
  );
});
