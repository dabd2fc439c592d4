// linux.seccomp end to end, as root, through dist/tsrt: each action, operator, flag and field asserted from
// inside a busybox container; the engines' default profiles (docker, podman, containerd, runtime-tools) run a
// normal shell session; SCMP_ACT_NOTIFY goes to a small agent of ours (fixtures/seccomp-agent.c, built here
// with gcc) that answers the container's syscalls; bad profiles fail with the JSON path and leave nothing.
import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, e2eFile, fixture, hostMountsContaining, tmpdir, tsrt, waitFor, type Edit, type Result, type Scope } from '../helpers.js';

if (process.arch !== 'x64') {
  t.plan(0, 'the profiles here are x86_64 ones');
  process.exit(0);
}
const { ROOT, scope } = e2eFile(t, {
  name: 'seccomp',
  idPrefix: 'sc',
  needsRoot: 'seccomp e2e tests need root',
  timeoutMinutes: 10,
});
const FIXTURES = path.join(REPO, 'test/e2e/fixtures');

const SIGSYS_EXIT = 128 + 31;

/** `tsrt run` with stdio on files (a stray container process cannot hold a pipe of ours open). */
function run(s: Scope, bundle: string, id = s.id()): Result {
  const d = s.dir();
  const out = fs.openSync(path.join(d, 'out'), 'w');
  const err = fs.openSync(path.join(d, 'err'), 'w');
  let r: Result;
  try {
    r = tsrt(['run', '-b', bundle, id], { root: ROOT, stdio: ['ignore', out, err] });
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
  }
  return { ...r, stdout: fs.readFileSync(path.join(d, 'out'), 'utf8'), stderr: fs.readFileSync(path.join(d, 'err'), 'utf8') };
}

/** A bundle running `sh -c script` with a writable root and the given seccomp section. */
function bundle(s: Scope, script: string, seccomp: unknown, edit?: Edit): string {
  return s.bundle(['sh', '-c', script], spec => {
    spec.root.readonly = false;
    spec.linux.seccomp = seccomp;
    edit?.(spec);
  });
}

const allowAllBut = (syscalls: unknown[], extra: Record<string, unknown> = {}) => ({ defaultAction: 'SCMP_ACT_ALLOW', syscalls, ...extra });

/** The message of the last `level=error msg="..."` line on stderr. */
function errorMsg(stderr: string): string | undefined {
  const lines = stderr.trimEnd().split('\n');
  const m = /level=error msg=(".*")$/.exec(lines[lines.length - 1] ?? '');
  return m ? (JSON.parse(m[1]!) as string) : undefined;
}

/** After a refused run: no state directory, no host mount, no process rooted in the bundle. */
function assertNothingLeft(tt: Test, b: string, id: string): void {
  tt.notOk(fs.existsSync(path.join(ROOT, id)), `no ${ROOT}/${id}`);
  tt.same(hostMountsContaining(b), [], 'no host mount mentions the bundle');
  const rooted = () =>
    fs.readdirSync('/proc').filter(n => {
      if (!/^\d+$/.test(n)) return false;
      try {
        return fs.readlinkSync(`/proc/${n}/root`).startsWith(b);
      } catch {
        return false;
      }
    });
  tt.ok(
    waitFor(() => rooted().length === 0, 100),
    'no process left in the rootfs',
  );
}

const ERRNO_TEXT: Record<number, string> = {
  1: 'Operation not permitted',
  13: 'Permission denied',
  28: 'No space left on device',
  38: 'Function not implemented',
};

// ---------------------------------------------------------------------------------------------------------
// Actions (the umask builtin runs the umask syscall in the shell itself, so the shell meets the action)
// ---------------------------------------------------------------------------------------------------------

t.test('action SCMP_ACT_ERRNO with errnoRet: mkdir fails with the chosen errno', async tt => {
  const s = scope(tt);
  const r = run(
    s,
    bundle(
      s,
      'mkdir /tmp/x; echo "rc=$?"; touch /tmp/y && echo touched',
      allowAllBut([{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 }]),
    ),
  );
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stderr, `can't create directory '/tmp/x': ${ERRNO_TEXT[28]}`);
  tt.match(r.stdout, /rc=1\ntouched/, 'other syscalls are untouched');
});

t.test('action SCMP_ACT_ERRNO without errnoRet: EPERM', async tt => {
  const s = scope(tt);
  const r = run(s, bundle(s, 'mkdir /tmp/x', allowAllBut([{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }])));
  tt.equal(r.code, 1);
  tt.match(r.stderr, ERRNO_TEXT[1]!);
});

for (const action of ['SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_KILL_PROCESS']) {
  t.test(`action ${action}: the process dies of SIGSYS (exit 128+31)`, async tt => {
    const s = scope(tt);
    const r = run(s, bundle(s, 'echo before; umask 022; echo after', allowAllBut([{ names: ['umask'], action }])));
    tt.equal(r.code, SIGSYS_EXIT, r.stderr);
    tt.match(r.stdout, 'before');
    tt.notMatch(r.stdout, 'after');
  });
}

t.test('action SCMP_ACT_TRAP: SIGSYS is delivered, and can be caught', async tt => {
  const s = scope(tt);
  const r = run(
    s,
    bundle(s, 'trap "echo caught SIGSYS" SYS; umask 022; echo after', allowAllBut([{ names: ['umask'], action: 'SCMP_ACT_TRAP' }])),
  );
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /caught SIGSYS\nafter/);
  const uncaught = run(s, bundle(s, 'umask 022; echo after', allowAllBut([{ names: ['umask'], action: 'SCMP_ACT_TRAP' }])));
  tt.equal(uncaught.code, SIGSYS_EXIT, 'uncaught, SIGSYS kills');
});

t.test('action SCMP_ACT_TRACE without a tracer: the syscall fails with ENOSYS', async tt => {
  const s = scope(tt);
  const r = run(s, bundle(s, 'mkdir /tmp/x', allowAllBut([{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_TRACE', errnoRet: 5 }])));
  tt.equal(r.code, 1);
  tt.match(r.stderr, ERRNO_TEXT[38]!);
});

t.test('action SCMP_ACT_LOG: the process keeps working', async tt => {
  const s = scope(tt);
  const r = run(
    s,
    bundle(
      s,
      'umask 027; umask; mkdir /tmp/x && echo made',
      allowAllBut([{ names: ['umask', 'mkdir', 'mkdirat'], action: 'SCMP_ACT_LOG' }]),
    ),
  );
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /0027\nmade/);
});

t.test('action SCMP_ACT_ALLOW under a denying default', async tt => {
  const s = scope(tt);
  const profile = runtimeToolsProfile();
  const r = run(s, bundle(s, 'echo allowed; mkdir /tmp/x && echo made', profile));
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /allowed\nmade/);
});

t.test('defaultErrnoRet: what the default action returns', async tt => {
  const s = scope(tt);
  const profile = runtimeToolsProfile();
  profile.defaultErrnoRet = 38;
  profile.syscalls[0].names = profile.syscalls[0].names.filter((n: string) => n !== 'mkdir' && n !== 'mkdirat');
  const r = run(s, bundle(s, 'mkdir /tmp/x', profile));
  tt.equal(r.code, 1);
  tt.match(r.stderr, `can't create directory '/tmp/x': ${ERRNO_TEXT[38]}`);
});

// ---------------------------------------------------------------------------------------------------------
// Operators (the kill builtin: kill(pid, sig) with sig 0, 18 (SIGCONT) or 23 (SIGURG), all harmless)
// ---------------------------------------------------------------------------------------------------------

const KILL_SCRIPT = 'for n in 0 18 23; do if kill -$n $$ 2>/dev/null; then echo "$n ok"; else echo "$n denied"; fi; done';

function killRule(args: unknown[]): unknown {
  return allowAllBut([{ names: ['kill'], action: 'SCMP_ACT_ERRNO', args }]);
}

function killOutcome(denied: number[]): string {
  return [0, 18, 23].map(n => `${n} ${denied.includes(n) ? 'denied' : 'ok'}`).join('\n');
}

const operators: [string, number, number | undefined, number[]][] = [
  ['SCMP_CMP_NE', 18, undefined, [0, 23]],
  ['SCMP_CMP_LT', 18, undefined, [0]],
  ['SCMP_CMP_LE', 18, undefined, [0, 18]],
  ['SCMP_CMP_EQ', 18, undefined, [18]],
  ['SCMP_CMP_GE', 18, undefined, [18, 23]],
  ['SCMP_CMP_GT', 18, undefined, [23]],
  ['SCMP_CMP_MASKED_EQ', 0x14, 0x14, [23]], // 23 = 0b10111, 18 = 0b10010: only 23 has both mask bits
];
for (const [op, value, valueTwo, denied] of operators) {
  t.test(`operator ${op}${valueTwo === undefined ? '' : ' (with valueTwo)'}`, async tt => {
    const s = scope(tt);
    const r = run(s, bundle(s, KILL_SCRIPT, killRule([{ index: 1, value, valueTwo, op }])));
    tt.equal(r.code, 0, r.stderr);
    tt.equal(r.stdout.trim(), killOutcome(denied));
  });
}

t.test('several conditions on the same argument: any of them matches (as runc)', async tt => {
  const s = scope(tt);
  const r = run(
    s,
    bundle(
      s,
      KILL_SCRIPT,
      killRule([
        { index: 1, value: 18, op: 'SCMP_CMP_EQ' },
        { index: 1, value: 23, op: 'SCMP_CMP_EQ' },
      ]),
    ),
  );
  tt.equal(r.stdout.trim(), killOutcome([18, 23]));
});

t.test('conditions on distinct arguments: all of them must match', async tt => {
  const s = scope(tt);
  // kill($$, sig): pid 1 (the shell is the pid namespace's init) and sig 18.
  const r = run(
    s,
    bundle(
      s,
      KILL_SCRIPT,
      killRule([
        { index: 0, value: 1, op: 'SCMP_CMP_EQ' },
        { index: 1, value: 18, op: 'SCMP_CMP_EQ' },
      ]),
    ),
  );
  tt.equal(r.stdout.trim(), killOutcome([18]));
  const other = run(
    s,
    bundle(
      s,
      KILL_SCRIPT,
      killRule([
        { index: 0, value: 2, op: 'SCMP_CMP_EQ' },
        { index: 1, value: 18, op: 'SCMP_CMP_EQ' },
      ]),
    ),
  );
  tt.equal(other.stdout.trim(), killOutcome([]), 'another pid: nothing matches');
});

// ---------------------------------------------------------------------------------------------------------
// Fields: architectures, flags, names
// ---------------------------------------------------------------------------------------------------------

t.test('architectures x86 and x32 beside the native one: the filter still applies to x86_64', async tt => {
  const s = scope(tt);
  const r = run(
    s,
    bundle(
      s,
      'mkdir /tmp/x; grep Seccomp: /proc/self/status',
      allowAllBut([{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }], {
        architectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      }),
    ),
  );
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stderr, ERRNO_TEXT[13]!);
  tt.match(r.stdout, /Seccomp:\s+2/);
});

t.test('flag SECCOMP_FILTER_FLAG_LOG: loaded, the process works', async tt => {
  const s = scope(tt);
  const r = run(
    s,
    bundle(
      s,
      'mkdir /tmp/x; grep Seccomp: /proc/self/status',
      allowAllBut([{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }], { flags: ['SECCOMP_FILTER_FLAG_LOG'] }),
    ),
  );
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /Seccomp:\s+2/);
  tt.match(r.stderr, ERRNO_TEXT[1]!);
});

// Its effect (no forced speculative-store-bypass mitigation) only shows with spec_store_bypass_disable=seccomp;
// this machine's kernel uses prctl mode, where seccomp never forces it. What can fail here: the kernel refusing
// the flag, or the filter not being in force.
t.test('flag SECCOMP_FILTER_FLAG_SPEC_ALLOW: seccomp(2) takes it and the filter is in force', async tt => {
  const s = scope(tt);
  const r = run(
    s,
    bundle(
      s,
      'grep Seccomp: /proc/self/status; mkdir /tmp/x',
      allowAllBut([{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 }], { flags: ['SECCOMP_FILTER_FLAG_SPEC_ALLOW'] }),
    ),
  );
  tt.equal(r.code, 1, r.stderr);
  tt.match(r.stdout, /Seccomp:\s+2/);
  tt.match(r.stderr, ERRNO_TEXT[28]!);
});

t.test('flag SECCOMP_FILTER_FLAG_TSYNC: accepted (the executor has a single thread)', async tt => {
  const s = scope(tt);
  const r = run(s, bundle(s, 'grep Seccomp: /proc/self/status', allowAllBut([], { flags: ['SECCOMP_FILTER_FLAG_TSYNC'] })));
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /Seccomp:\s+2/);
});

t.test('syscalls names: an unknown name is skipped, the others apply', async tt => {
  const s = scope(tt);
  const r = run(
    s,
    bundle(s, 'mkdir /tmp/x', allowAllBut([{ names: ['no_such_syscall', 'mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 }])),
  );
  tt.equal(r.code, 1);
  tt.match(r.stderr, ERRNO_TEXT[28]!);
});

t.test('without noNewPrivileges, as a non-root user without capabilities: the filter is still loaded', async tt => {
  const s = scope(tt);
  const r = run(
    s,
    bundle(
      s,
      'grep -E "^(Seccomp|CapEff|NoNewPrivs):" /proc/self/status; id -u; mkdir /tmp/x',
      allowAllBut([{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 }]),
      spec => {
        spec.process.noNewPrivileges = false;
        spec.process.user = { uid: 1000, gid: 1000 };
        spec.process.capabilities = {};
      },
    ),
  );
  tt.equal(r.code, 1);
  tt.match(r.stdout, /CapEff:\s+0000000000000000/);
  tt.match(r.stdout, /NoNewPrivs:\s+0/);
  tt.match(r.stdout, /Seccomp:\s+2/);
  tt.match(r.stdout, /^1000$/m);
  tt.match(r.stderr, ERRNO_TEXT[28]!);
});

// ---------------------------------------------------------------------------------------------------------
// Default profiles of the engines, and of runtime-tools (an allow-list from 2017 without close_range)
// ---------------------------------------------------------------------------------------------------------

/** runtime-tools' generator default (amd64, no CAP_SYS_ADMIN), as a fixture: see fixtures/ for its origin. */
function runtimeToolsProfile(): any {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, 'runtime-tools-default.config.json'), 'utf8')).linux.seccomp;
}

const SESSION =
  'ls / | grep -c "^bin$"; echo piped | cat | wc -c; ps -o comm | grep -c "^ps$"; grep Seccomp: /proc/self/status; cd /tmp && pwd';
const SESSION_OUT = /^1\n6\n1\nSeccomp:\s+2\n\/tmp$/;

const profiles: [string, () => any][] = [
  ['docker (docker run)', () => engineProfile('docker-run-d-sleep.config.json')],
  ['podman (podman run)', () => engineProfile('podman-run-d-sleep.config.json')],
  ['containerd (ctr run --seccomp)', () => engineProfile('ctr-seccomp-env-bindmount.config.json')],
  ['runtime-tools (oci-runtime-tool generate)', runtimeToolsProfile],
];

function engineProfile(file: string): any {
  return JSON.parse(fs.readFileSync(fixture('engine-configs', file), 'utf8')).linux.seccomp;
}

for (const [name, profile] of profiles) {
  for (const nnp of [true, false]) {
    t.test(`default profile of ${name}, noNewPrivileges ${nnp}: sh, ls, a pipe and ps work`, async tt => {
      const s = scope(tt);
      const r = run(
        s,
        bundle(s, SESSION, profile(), spec => void (spec.process.noNewPrivileges = nnp)),
      );
      tt.equal(r.code, 0, r.stderr);
      tt.match(r.stdout.trim(), SESSION_OUT);
    });
  }
}

t.test('create then start under the runtime-tools profile: the start signal passes the filter', async tt => {
  const s = scope(tt);
  const b = bundle(s, `{ ${SESSION}; } > /tmp/session`, runtimeToolsProfile());
  const id = s.id();
  // The container inherits create's stdio: a file, so that nothing waits for the container to close a pipe.
  const log = path.join(s.dir(), 'create.log');
  const logFd = fs.openSync(log, 'w');
  const create = tsrt(['create', '-b', b, id], { root: ROOT, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  tt.equal(create.code, 0, fs.readFileSync(log, 'utf8'));
  const start = tsrt(['start', id], { root: ROOT });
  tt.equal(start.code, 0, start.stderr);
  tt.ok(
    waitFor(() => JSON.parse(tsrt(['state', id], { root: ROOT }).stdout || '{}').status === 'stopped', 400),
    'the process ran to its end',
  );
  tt.match(fs.readFileSync(path.join(b, 'rootfs/tmp/session'), 'utf8').trim(), SESSION_OUT);
});

// ---------------------------------------------------------------------------------------------------------
// SCMP_ACT_NOTIFY with listenerPath
// ---------------------------------------------------------------------------------------------------------

let agentBinary: string | undefined;
function buildAgent(): string {
  if (agentBinary) return agentBinary;
  const dir = tmpdir('tsrt-seccomp-agent-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'seccomp-agent');
  const r = spawnSync('gcc', ['-O2', '-Wall', '-o', out, path.join(FIXTURES, 'seccomp-agent.c')]);
  if (r.status !== 0) throw new Error(`gcc seccomp-agent.c: ${r.stderr}`);
  agentBinary = out;
  return out;
}

/** Starts the agent on a fresh socket; it answers each notification with -errno (0: success). */
function startAgent(tt: Test, s: Scope, errno: number): { socket: string; stateFile: string; agent: ChildProcess } {
  const d = s.dir();
  const socket = path.join(d, 'agent.sock');
  const stateFile = path.join(d, 'state.json');
  const agent = spawn(buildAgent(), [socket, stateFile, String(errno)], { stdio: 'ignore' });
  tt.teardown(() => void agent.kill('SIGKILL'));
  if (!waitFor(() => fs.existsSync(socket), 200)) throw new Error('the agent did not start listening');
  return { socket, stateFile, agent };
}

t.test('action SCMP_ACT_NOTIFY: the agent answers mkdir with a faked success', async tt => {
  const s = scope(tt);
  const { socket, stateFile } = startAgent(tt, s, 0);
  const id = s.id();
  const b = bundle(
    s,
    'mkdir /tmp/x; echo "rc=$?"; ls -d /tmp/x 2>/dev/null || echo "no /tmp/x"',
    allowAllBut([{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }], { listenerPath: socket, listenerMetadata: 'tenant=blue' }),
  );
  const r = run(s, b, id);
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, 'rc=0\nno /tmp/x\n', 'mkdir "succeeded" without making anything');
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  tt.same(state.fds, ['seccompFd'], 'fds names the passed fd');
  tt.equal(state.metadata, 'tenant=blue', 'listenerMetadata');
  tt.equal(state.ociVersion, '1.2.0');
  tt.match(state.state, { id, status: 'creating', bundle: b, pid: state.pid });
  tt.ok(state.pid > 0, 'the container process pid');
});

t.test('action SCMP_ACT_NOTIFY: the agent answers mkdir with an errno, with and without noNewPrivileges', async tt => {
  for (const nnp of [true, false]) {
    const s = scope(tt);
    const { socket } = startAgent(tt, s, 13);
    const r = run(
      s,
      bundle(
        s,
        'mkdir /tmp/x',
        allowAllBut([{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }], { listenerPath: socket }),
        spec => void (spec.process.noNewPrivileges = nnp),
      ),
    );
    tt.equal(r.code, 1, `noNewPrivileges ${nnp}`);
    tt.match(r.stderr, ERRNO_TEXT[13]!);
  }
});

t.test('flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV with a listener', async tt => {
  const s = scope(tt);
  const { socket } = startAgent(tt, s, 28);
  const r = run(
    s,
    bundle(
      s,
      'mkdir /tmp/x',
      allowAllBut([{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }], {
        listenerPath: socket,
        flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'],
      }),
    ),
  );
  tt.equal(r.code, 1, r.stderr);
  tt.match(r.stderr, ERRNO_TEXT[28]!);
});

// ---------------------------------------------------------------------------------------------------------
// Refused profiles: a clear error naming the JSON path, exit 1, nothing left behind
// ---------------------------------------------------------------------------------------------------------

const refusals: [string, unknown, string][] = [
  [
    'SCMP_ACT_NOTIFY without listenerPath',
    allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }]),
    'config.json: /linux/seccomp/listenerPath: SCMP_ACT_NOTIFY needs a listenerPath to send the listener fd to',
  ],
  [
    'an unknown action',
    allowAllBut([
      { names: ['mkdir'], action: 'SCMP_ACT_ALLOW' },
      { names: ['rmdir'], action: 'SCMP_ACT_DENY' },
    ]),
    'config.json: /linux/seccomp/syscalls/1/action: must be equal to one of the allowed values: SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY',
  ],
  [
    'an unknown operator',
    killRule([{ index: 1, value: 1, op: 'SCMP_CMP_IN' }]),
    'config.json: /linux/seccomp/syscalls/0/args/0/op: must be equal to one of the allowed values: SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ',
  ],
  [
    'an unknown flag',
    allowAllBut([], { flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] }),
    'config.json: /linux/seccomp/flags/0: must be equal to one of the allowed values: SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
  ],
  [
    'an architecture libseccomp lacks',
    allowAllBut([], { architectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_LOONGARCH64'] }),
    'config.json: /linux/seccomp/architectures/1: architecture "loongarch64" is not supported by libseccomp 2.5.4',
  ],
  [
    'an argument index past the sixth',
    killRule([{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }]),
    'config.json: /linux/seccomp/syscalls/0/args/0/index: argument index 6 is out of range (a syscall has arguments 0-5)',
  ],
  [
    'errnoRet on SCMP_ACT_KILL',
    allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_KILL', errnoRet: 1 }]),
    'config.json: /linux/seccomp/syscalls/0/errnoRet: SCMP_ACT_KILL does not return an errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)',
  ],
];
for (const [what, profile, message] of refusals) {
  t.test(`refused: ${what}`, async tt => {
    const s = scope(tt);
    const b = bundle(s, 'true', profile);
    const id = s.id();
    const r = run(s, b, id);
    tt.equal(r.code, 1);
    tt.equal(errorMsg(r.stderr), message);
    assertNothingLeft(tt, b, id);
  });
}

t.test('refused: a profile that denies execveat (the hand-over to the sealed helper) says so', async tt => {
  const s = scope(tt);
  const b = bundle(s, 'true', allowAllBut([{ names: ['execveat'], action: 'SCMP_ACT_ERRNO' }]));
  const id = s.id();
  const r = run(s, b, id);
  tt.equal(r.code, 1);
  tt.equal(
    errorMsg(r.stderr),
    'unable to start container process: error during container init: exec "execveat of the sealed helper (does the seccomp profile allow execveat?)": operation not permitted',
  );
  assertNothingLeft(tt, b, id);
});

t.test('refused: a listenerPath nobody listens on fails create, and nothing is left', async tt => {
  const s = scope(tt);
  const socket = path.join(s.dir(), 'nobody.sock');
  const b = bundle(s, 'true', allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }], { listenerPath: socket }));
  const id = s.id();
  const r = run(s, b, id);
  tt.equal(r.code, 1);
  tt.equal(
    errorMsg(r.stderr),
    `unable to start container process: failed to connect with seccomp agent specified in the seccomp profile: dial unix ${socket}: connect: no such file or directory`,
  );
  assertNothingLeft(tt, b, id);
});
