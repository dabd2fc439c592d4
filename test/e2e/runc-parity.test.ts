// Behaviour where engines, scripts and users look, held against runc (issue 18): each scenario runs through
// dist/tsrt and, where runc can run it on this host, through Debian's runc in the same test, and both must
// end the same way. Where runc cannot run a scenario here, the test says so and checks tsrt alone.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  REPO,
  TSRT,
  e2eFile,
  readOrEmpty,
  removeCgroupEverywhere,
  startConsoleReceiver,
  tmpdir,
  uniqueId,
  type Result,
  type Scope,
} from '../helpers.js';

const { ROOT, scope, waitFor } = e2eFile(t, {
  name: 'parity',
  idPrefix: 'par',
  needsRoot: 'runc parity tests need root',
  timeoutMinutes: 20,
});
const RUNC = '/usr/sbin/runc';
const RUNC_ROOT = tmpdir('tsrt-parity-runc-root-');
t.teardown(() => fs.rmSync(RUNC_ROOT, { recursive: true, force: true }));
const FIXTURES = path.join(REPO, 'test/e2e/fixtures');

interface Runtime {
  name: 'tsrt' | 'runc';
  bin: string;
  root: string;
}
const TSRT_RT: Runtime = { name: 'tsrt', bin: TSRT, root: ROOT };
const RUNC_RT: Runtime = { name: 'runc', bin: RUNC, root: RUNC_ROOT };

/** tsrt, then runc when the host has it; the test's output says which ran. */
function runtimes(tt: Test): Runtime[] {
  if (!fs.existsSync(RUNC)) {
    tt.comment(`${RUNC} is not installed: tsrt alone`);
    return [TSRT_RT];
  }
  return [TSRT_RT, RUNC_RT];
}

/** A container id of this runtime, force-deleted when the test ends. */
function idFor(tt: Test, s: Scope, rt: Runtime): string {
  if (rt.name === 'tsrt') return s.id();
  const id = uniqueId('par');
  tt.teardown(() => spawnSync(rt.bin, ['--root', rt.root, 'delete', '--force', id], { stdio: 'ignore' }));
  return id;
}

/** One command of a runtime, stdio on files: a container left behind cannot hold a pipe of ours open. */
function call(rt: Runtime, s: Scope, args: string[], opts: { timeoutMs?: number; before?: string[] } = {}): Result {
  const d = s.dir();
  const out = fs.openSync(path.join(d, 'out'), 'w');
  const err = fs.openSync(path.join(d, 'err'), 'w');
  let r: ReturnType<typeof spawnSync>;
  try {
    r = spawnSync(rt.bin, [...(opts.before ?? []), '--root', rt.root, ...args], {
      stdio: ['ignore', out, err],
      timeout: opts.timeoutMs ?? 60_000,
    });
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
  }
  return {
    code: r.status ?? -1,
    signal: r.signal ?? null,
    stdout: fs.readFileSync(path.join(d, 'out'), 'utf8'),
    stderr: fs.readFileSync(path.join(d, 'err'), 'utf8'),
  };
}

function statusOf(rt: Runtime, s: Scope, id: string): string | undefined {
  const r = call(rt, s, ['state', id]);
  return r.code === 0 ? (JSON.parse(r.stdout) as { status: string }).status : undefined;
}

/** The capabilities of the default spec plus `extra`, in every set a process needs them in. */
function addCaps(spec: any, extra: string[]): void {
  for (const set of ['bounding', 'effective', 'permitted']) spec.process.capabilities[set].push(...extra);
}

// ---------------------------------------------------------------------------------------------------------
// 1. --no-pivot
// ---------------------------------------------------------------------------------------------------------

t.test("--no-pivot: the old root's mounts are detached, so a nested user namespace cannot mount a fresh proc", async tt => {
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    // runc's no_pivot.bats: the nested namespaces need CAP_SETFCAP to map root.
    const b = s.bundle(['unshare', '-mrpf', 'sh', '-c', 'mount -t proc none /proc && echo MOUNTED'], spec => {
      addCaps(spec, ['CAP_SETFCAP']);
    });
    const r = call(rt, s, ['run', '--no-pivot', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 1, `${rt.name}: the container's command fails`);
    tt.notMatch(r.stdout, 'MOUNTED', `${rt.name}: no proc was mounted`);
    tt.match(r.stderr, 'mount: permission denied', `${rt.name}: the kernel refused the mount`);
  }
});

t.test('--no-pivot: the container still runs, with its own /proc and masks', async tt => {
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const b = s.bundle(['sh', '-c', 'cat /proc/self/cgroup >/dev/null && test ! -s /proc/kcore && ls /dev/null >/dev/null && echo ok']);
    const r = call(rt, s, ['run', '--no-pivot', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 0, `${rt.name}: ${r.stderr}`);
    tt.equal(r.stdout.trim(), 'ok', rt.name);
  }
});

// ---------------------------------------------------------------------------------------------------------
// 2. and 3. hooks that run in the container
// ---------------------------------------------------------------------------------------------------------

t.test("startContainer hooks run under the container's seccomp filter: a killed syscall fails the hook", async tt => {
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const b = s.bundle(['sh', '-c', 'echo MAIN-RAN'], spec => {
      spec.root.readonly = false;
      spec.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64'],
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_KILL' }],
      };
      spec.hooks = { startContainer: [{ path: '/bin/mkdir', args: ['mkdir', '/tmp/made-by-hook'] }] };
    });
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)]);
    tt.not(r.code, 0, `${rt.name}: run fails`);
    tt.match(r.stderr, 'bad system call', `${rt.name}: the hook died of SIGSYS: ${r.stderr}`);
    tt.notMatch(r.stdout, 'MAIN-RAN', `${rt.name}: the container's program never ran`);
    tt.notOk(fs.existsSync(path.join(b, 'rootfs/tmp/made-by-hook')), `${rt.name}: the hook made nothing`);
  }
});

t.test('startContainer hooks without a filter that stops them still run in the container (create, start)', async tt => {
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const b = s.bundle(['true'], spec => {
      spec.root.readonly = false;
      spec.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'cat /etc/hostname > /tmp/hook-saw'] }] };
    });
    const id = idFor(tt, s, rt);
    tt.equal(call(rt, s, ['create', '-b', b, id]).code, 0, `${rt.name}: create`);
    const start = call(rt, s, ['start', id]);
    tt.equal(start.code, 0, `${rt.name}: start: ${start.stderr}`);
    tt.ok(
      waitFor(() => readOrEmpty(path.join(b, 'rootfs/tmp/hook-saw')) === 'tsrt\n'),
      `${rt.name}: the hook read the container's files`,
    );
  }
});

t.test("createContainer hooks run with the container's rootfs as working directory, not the host's /", async tt => {
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const name = `tsrt-parity-hook-cwd-${process.pid}-${rt.name}`;
    tt.teardown(() => fs.rmSync(path.join('/', name), { force: true }));
    const b = s.bundle(['true'], spec => {
      spec.hooks = { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', `pwd > ${name}`] }] };
    });
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 0, `${rt.name}: ${r.stderr}`);
    tt.notOk(fs.existsSync(path.join('/', name)), `${rt.name}: nothing was written into the host's /`);
    tt.equal(
      readOrEmpty(path.join(b, 'rootfs', name)).trim(),
      fs.realpathSync(path.join(b, 'rootfs')),
      `${rt.name}: the hook's relative path landed in the rootfs`,
    );
  }
});

// ---------------------------------------------------------------------------------------------------------
// 4. a frozen cgroup
// ---------------------------------------------------------------------------------------------------------

const CG = '/sys/fs/cgroup';
const FROZEN_TEXT = "container's cgroup unexpectedly frozen";

/** Thaws and removes what a frozen-cgroup test made, whatever state it is in. */
function thawAndRemove(rel: string): void {
  const v1 = path.join(CG, 'freezer', rel);
  if (fs.existsSync(path.join(v1, 'freezer.state'))) fs.writeFileSync(path.join(v1, 'freezer.state'), 'THAWED');
  const v2 = path.join(CG, 'unified', rel);
  if (fs.existsSync(path.join(v2, 'cgroup.freeze'))) fs.writeFileSync(path.join(v2, 'cgroup.freeze'), '0');
  removeCgroupEverywhere(rel);
}

t.test('a frozen cgroup is refused before the init joins it (cgroup v1 freezer), never a hang', async tt => {
  if (!fs.existsSync(path.join(CG, 'freezer'))) {
    tt.comment('no cgroup v1 freezer on this host: nothing to test here');
    return;
  }
  tt.comment('ran: cgroup v1 freezer');
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const rel = `/tsrt-parity-frozen-v1-${process.pid}-${rt.name}`;
    tt.teardown(() => thawAndRemove(rel));
    fs.mkdirSync(path.join(CG, 'freezer', rel));
    fs.writeFileSync(path.join(CG, 'freezer', rel, 'freezer.state'), 'FROZEN');
    const b = s.bundle(['sleep', '100'], spec => void (spec.linux.cgroupsPath = rel));
    const id = idFor(tt, s, rt);
    const r = call(rt, s, ['run', '-d', '-b', b, id], { timeoutMs: 60_000 });
    tt.equal(r.signal, null, `${rt.name}: run -d returned by itself`);
    tt.equal(r.code, 1, `${rt.name}: run -d fails`);
    tt.match(r.stderr, FROZEN_TEXT, `${rt.name}: runc's error`);
    tt.equal(statusOf(rt, s, id), undefined, `${rt.name}: no container is left`);
  }
});

t.test('a frozen cgroup is refused before the init joins it (cgroup v2 cgroup.freeze), never a hang', async tt => {
  const unified = fs.existsSync(path.join(CG, 'cgroup.controllers')) ? CG : path.join(CG, 'unified');
  if (!fs.existsSync(path.join(unified, 'cgroup.controllers')) || fs.existsSync(path.join(CG, 'cgroup.controllers'))) {
    // A cgroup2-only host would need the whole test to run on its layout; this one checks hybrid hosts.
    tt.comment(`no hybrid cgroup2 hierarchy at ${unified}: nothing to test here`);
    return;
  }
  tt.comment(`ran: cgroup v2 freezer at ${unified} (hybrid host); runc 1.1 checks only the v1 freezer here, so tsrt alone`);
  const s = scope(tt);
  const rel = `/tsrt-parity-frozen-v2-${process.pid}`;
  tt.teardown(() => thawAndRemove(rel));
  fs.mkdirSync(path.join(unified, rel));
  fs.writeFileSync(path.join(unified, rel, 'cgroup.freeze'), '1');
  const b = s.bundle(['sleep', '100'], spec => void (spec.linux.cgroupsPath = rel));
  const id = s.id();
  const r = call(TSRT_RT, s, ['run', '-d', '-b', b, id]);
  tt.equal(r.signal, null, 'run -d returned by itself');
  tt.equal(r.code, 1, 'run -d fails');
  tt.match(r.stderr, FROZEN_TEXT, "runc's error");
  tt.equal(statusOf(TSRT_RT, s, id), undefined, 'no container is left');
});

t.test('a cgroup frozen while create runs ends create with the same error, never a hang', async tt => {
  if (!fs.existsSync(path.join(CG, 'freezer'))) {
    tt.comment('no cgroup v1 freezer on this host: nothing to test here');
    return;
  }
  tt.comment('ran: cgroup v1 freezer, frozen by a createRuntime hook (after the init joined)');
  const s = scope(tt);
  // runc 1.1 waits for a frozen init for ever here; tsrt alone.
  const rel = `/tsrt-parity-freezing-${process.pid}`;
  tt.teardown(() => thawAndRemove(rel));
  const b = s.bundle(['sleep', '100'], spec => {
    spec.linux.cgroupsPath = rel;
    spec.hooks = {
      createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `echo FROZEN > ${path.join(CG, 'freezer', rel, 'freezer.state')}`] }],
    };
  });
  const id = s.id();
  const r = call(TSRT_RT, s, ['create', '-b', b, id]);
  tt.equal(r.signal, null, 'create returned by itself');
  tt.equal(r.code, 1, 'create fails');
  tt.match(r.stderr, FROZEN_TEXT, "runc's error");
  tt.equal(statusOf(TSRT_RT, s, id), undefined, 'no container is left');
  tt.notOk(fs.existsSync(path.join(CG, 'freezer', rel)), 'the cgroup create made is gone');
});

// ---------------------------------------------------------------------------------------------------------
// 5. bind sources only the host's root can reach, in a user namespace
// ---------------------------------------------------------------------------------------------------------

t.test('a bind source under a 0700 root-owned directory is mounted in a user namespace (run and exec)', async tt => {
  const s = scope(tt);
  const hidden = s.dir();
  fs.chmodSync(hidden, 0o700);
  const source = path.join(hidden, 'data');
  fs.mkdirSync(source, { mode: 0o755 });
  fs.writeFileSync(path.join(source, 'f'), 'hello\n', { mode: 0o644 });
  for (const rt of runtimes(tt)) {
    const b = s.bundle(['cat', '/mnt/f'], spec => {
      spec.linux.namespaces.push({ type: 'user' });
      spec.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      spec.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      spec.mounts.push({ destination: '/mnt', type: 'bind', source, options: ['rbind', 'ro'] });
    });
    spawnSync('chown', ['-R', '100000:100000', path.join(b, 'rootfs')]);
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 0, `${rt.name}: run: ${r.stderr}`);
    tt.equal(r.stdout, 'hello\n', `${rt.name}: the container read the bound file`);

    const config = JSON.parse(fs.readFileSync(path.join(b, 'config.json'), 'utf8'));
    config.process.args = ['sleep', '100'];
    fs.writeFileSync(path.join(b, 'config.json'), JSON.stringify(config));
    const id = idFor(tt, s, rt);
    const started = call(rt, s, ['run', '-d', '-b', b, id]);
    tt.equal(started.code, 0, `${rt.name}: run -d: ${started.stderr}`);
    const e = call(rt, s, ['exec', id, 'cat', '/mnt/f']);
    tt.equal(e.code, 0, `${rt.name}: exec: ${e.stderr}`);
    tt.equal(e.stdout, 'hello\n', `${rt.name}: exec reads it too`);
  }
});

// ---------------------------------------------------------------------------------------------------------
// 6. a read-only /dev
// ---------------------------------------------------------------------------------------------------------

t.test('"ro" on the /dev tmpfs: the container starts, its devices work and /dev is read-only', async tt => {
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const b = s.bundle(
      ['sh', '-c', 'echo x > /dev/null && ls /dev/pts/ptmx >/dev/null && touch /dev/new 2>/dev/null; echo "touch=$?"'],
      spec => {
        const dev = spec.mounts.find((m: any) => m.destination === '/dev');
        dev.options.push('ro');
      },
    );
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 0, `${rt.name}: ${r.stderr}`);
    tt.equal(r.stdout.trim(), 'touch=1', `${rt.name}: devices work, /dev takes no new file`);
  }
});

// ---------------------------------------------------------------------------------------------------------
// 7. the terminal's owner
// ---------------------------------------------------------------------------------------------------------

t.test('a terminal belongs to process.user: run and exec -t chown the pty slave to its uid', async tt => {
  const s = scope(tt);
  const owner = 'stat -L -c %u /proc/self/fd/0; sleep 1';
  for (const rt of runtimes(tt)) {
    const console1 = startConsoleReceiver(tt, s);
    tt.ok(
      waitFor(() => fs.existsSync(console1.sock)),
      'console receiver listening',
    );
    const b = s.bundle(['sh', '-c', owner], spec => {
      spec.process.terminal = true;
      spec.process.user = { uid: 1000, gid: 1000 };
    });
    const r = call(rt, s, ['run', '-d', '--console-socket', console1.sock, '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 0, `${rt.name}: run: ${r.stderr}`);
    tt.ok(
      waitFor(() => /\d+/.test(readOrEmpty(console1.out))),
      `${rt.name}: output arrived`,
    );
    tt.equal(readOrEmpty(console1.out).trim(), '1000', `${rt.name}: run: the pty is the process's`);

    const console2 = startConsoleReceiver(tt, s);
    tt.ok(
      waitFor(() => fs.existsSync(console2.sock)),
      'console receiver listening',
    );
    const id = idFor(tt, s, rt);
    tt.equal(call(rt, s, ['run', '-d', '-b', s.bundle(['sleep', '100']), id]).code, 0, `${rt.name}: run -d`);
    const e = call(rt, s, ['exec', '-d', '-t', '--console-socket', console2.sock, '-u', '1000:1000', id, 'sh', '-c', owner]);
    tt.equal(e.code, 0, `${rt.name}: exec -t: ${e.stderr}`);
    tt.ok(
      waitFor(() => /\d+/.test(readOrEmpty(console2.out))),
      `${rt.name}: output arrived`,
    );
    tt.equal(readOrEmpty(console2.out).trim(), '1000', `${rt.name}: exec -t: the pty is the process's`);
  }
});

// ---------------------------------------------------------------------------------------------------------
// 8. a cwd only root can enter
// ---------------------------------------------------------------------------------------------------------

t.test('process.cwd only root can enter: entered while still privileged, for a non-root process.user', async tt => {
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const b = s.bundle(['pwd'], spec => {
      spec.process.user = { uid: 1000, gid: 1000 };
      spec.process.cwd = '/secret';
    });
    fs.mkdirSync(path.join(b, 'rootfs/secret'), { mode: 0o700 });
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 0, `${rt.name}: ${r.stderr}`);
    tt.equal(r.stdout, '/secret\n', rt.name);
  }
});

// ---------------------------------------------------------------------------------------------------------
// 9. empty cpuset parents
// ---------------------------------------------------------------------------------------------------------

t.test('cgroup v1 cpuset: empty pre-made parents are filled from the nearest ancestor that has cpus and mems', async tt => {
  const cpuset = path.join(CG, 'cpuset');
  if (!fs.existsSync(path.join(cpuset, 'cpuset.cpus'))) {
    tt.comment('no cgroup v1 cpuset hierarchy on this host: nothing to test here');
    return;
  }
  tt.comment('ran: cgroup v1 cpuset');
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const top = `/tsrt-parity-cpuset-${process.pid}-${rt.name}`;
    tt.teardown(() => removeCgroupEverywhere(top));
    // Pre-made the way a kubelet makes pod cgroups: without clone_children, cpus and mems start empty.
    fs.mkdirSync(path.join(cpuset, top, 'pod'), { recursive: true });
    tt.equal(readOrEmpty(path.join(cpuset, top, 'pod', 'cpuset.cpus')).trim(), '', 'the parent starts empty');
    const b = s.bundle(['cat', '/proc/self/status'], spec => void (spec.linux.cgroupsPath = `${top}/pod/ctr`));
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 0, `${rt.name}: ${r.stderr}`);
    const want = readOrEmpty(path.join(cpuset, 'cpuset.cpus')).trim();
    tt.equal(readOrEmpty(path.join(cpuset, top, 'pod', 'cpuset.cpus')).trim(), want, `${rt.name}: the parent got the root's cpus`);
    tt.equal(
      readOrEmpty(path.join(cpuset, top, 'pod', 'cpuset.mems')).trim(),
      readOrEmpty(path.join(cpuset, 'cpuset.mems')).trim(),
      `${rt.name}: and its mems`,
    );
  }
});

// ---------------------------------------------------------------------------------------------------------
// 10. syscalls newer than the profile
// ---------------------------------------------------------------------------------------------------------

/**
 * runtime-tools' generator default: an x86_64 allow-list from before clone3, openat2 and faccessat2
 * (fixtures/README.md); undefined, with a comment, on another architecture.
 */
function oldProfile(tt: Test): object | undefined {
  if (process.arch !== 'x64') {
    tt.comment('the old profile here is an x86_64 one');
    return undefined;
  }
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, 'runtime-tools-default.config.json'), 'utf8')).linux.seccomp;
}

t.test('seccomp: syscalls newer than an old profile get ENOSYS (libc falls back), not the default EPERM', async tt => {
  const profile = oldProfile(tt);
  if (!profile) return;
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const b = s.bundle(['/new-syscalls'], spec => void (spec.linux.seccomp = profile));
    const cc = spawnSync('cc', ['-static', '-O2', '-o', path.join(b, 'rootfs/new-syscalls'), path.join(FIXTURES, 'new-syscalls.c')], {
      encoding: 'utf8',
    });
    tt.equal(cc.status, 0, `cc: ${cc.stderr}`);
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 0, `${rt.name}: ${r.stderr}`);
    tt.equal(r.stdout, 'clone3 ENOSYS\nopenat2 ENOSYS\nfaccessat2 ENOSYS\n', rt.name);
  }
});

t.test('seccomp: a syscall the old profile does not allow, but the kernel had then, still gets the default errno', async tt => {
  const profile = oldProfile(tt);
  if (!profile) return;
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    // mount (165) is older than the profile's newest syscall, and not in its allow-list.
    const b = s.bundle(['sh', '-c', 'mount -t tmpfs none /tmp 2>&1; true'], spec => void (spec.linux.seccomp = profile));
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 0, `${rt.name}: ${r.stderr}`);
    tt.match(r.stdout, 'mount: permission denied', `${rt.name}: EPERM, as the profile says`);
  }
});

// ---------------------------------------------------------------------------------------------------------
// 11. kill
// ---------------------------------------------------------------------------------------------------------

t.test('kill ID 0 checks that the container exists; kill -a on a stopped container succeeds', async tt => {
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const id = idFor(tt, s, rt);
    tt.equal(call(rt, s, ['run', '-d', '-b', s.bundle(['sleep', '100']), id]).code, 0, `${rt.name}: run -d`);
    const zero = call(rt, s, ['kill', id, '0']);
    tt.equal(zero.code, 0, `${rt.name}: kill ID 0: ${zero.stderr}`);
    tt.equal(statusOf(rt, s, id), 'running', `${rt.name}: signal 0 delivers nothing`);

    const stopped = idFor(tt, s, rt);
    tt.equal(call(rt, s, ['run', '-d', '-b', s.bundle(['true']), stopped]).code, 0, `${rt.name}: run -d`);
    tt.ok(
      waitFor(() => statusOf(rt, s, stopped) === 'stopped'),
      `${rt.name}: the container stops`,
    );
    const all = call(rt, s, ['kill', '-a', stopped, 'KILL']);
    tt.equal(all.code, 0, `${rt.name}: kill -a on a stopped container: ${all.stderr}`);
    const one = call(rt, s, ['kill', stopped, 'KILL']);
    tt.equal(one.code, 1, `${rt.name}: without -a it is still an error`);
    tt.match(one.stderr, 'container not running', rt.name);
  }
});

// ---------------------------------------------------------------------------------------------------------
// Also: --debug, a non-empty cgroup, runc's texts
// ---------------------------------------------------------------------------------------------------------

t.test('--debug without --log writes the steps of create to stderr', async tt => {
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const b = s.bundle(['true']);
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)], { before: ['--debug'] });
    tt.equal(r.code, 0, `${rt.name}: ${r.stderr}`);
    tt.match(r.stderr, /level=debug/, `${rt.name}: debug lines on stderr`);
  }
  const b = s.bundle(['true'], spec => {
    spec.hooks = { createRuntime: [{ path: '/bin/true' }] };
  });
  const r = call(TSRT_RT, s, ['run', '-b', b, s.id()], { before: ['--debug'] });
  tt.equal(r.code, 0, r.stderr);
  const lines = r.stderr.split('\n').filter(l => l.includes('level=debug'));
  for (const step of [
    /msg="plan: /,
    /msg="cgroup: /,
    /msg="spawn: /,
    /msg="executor: .*pid/,
    /msg="executor: .*pivot_root/,
    /msg="hook: createRuntime #0/,
    /msg="executor: .*ready/,
  ]) {
    tt.ok(
      lines.some(l => step.test(l)),
      `a debug line ${step}`,
    );
  }
  tt.ok(lines.length >= 8, `more than the argv (${lines.length} lines)`);
});

t.test("a container's cgroup that already holds processes gets runc's warning, and the container runs", async tt => {
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const rel = `/tsrt-parity-busy-${process.pid}-${rt.name}`;
    const squatter = spawn('sleep', ['100'], { stdio: 'ignore' });
    tt.teardown(() => {
      squatter.kill('SIGKILL');
      waitFor(() => squatter.exitCode !== null || squatter.signalCode !== null, 100);
      removeCgroupEverywhere(rel);
    });
    for (const h of ['pids', 'memory', 'freezer', 'devices', 'unified']) {
      const dir = path.join(CG, h, rel);
      if (!fs.existsSync(path.join(CG, h))) continue;
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(squatter.pid));
    }
    const b = s.bundle(['true'], spec => void (spec.linux.cgroupsPath = rel));
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 0, `${rt.name}: ${r.stderr}`);
    tt.match(r.stderr, /level=warning msg="container's cgroup is not empty: 1 process\(es\) found"/, `${rt.name}: the warning`);
  }
});

t.test("runc's text: unified resources for a controller the host has in a cgroup v1 hierarchy", async tt => {
  if (!fs.existsSync(path.join(CG, 'memory/memory.limit_in_bytes'))) {
    tt.comment('memory is not a v1 controller here: nothing to test');
    return;
  }
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const b = s.bundle(['true'], spec => void (spec.linux.resources = { unified: { 'memory.max': '100000000' } }));
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 1, rt.name);
    tt.match(r.stderr, 'invalid configuration: cannot use unified on cgroup v1', rt.name);
  }
});

t.test("runc's text: a symlinked /proc", async tt => {
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const b = s.bundle(['true']);
    fs.rmSync(path.join(b, 'rootfs/proc'), { recursive: true });
    fs.symlinkSync('/tmp', path.join(b, 'rootfs/proc'));
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 1, rt.name);
    tt.match(
      r.stderr,
      'error mounting \\"proc\\" to rootfs at \\"/proc\\": filesystem \\"proc\\" must be mounted on ordinary directory',
      rt.name,
    );
  }
});

t.test("runc's text: a seccomp agent that is not listening", async tt => {
  const s = scope(tt);
  for (const rt of runtimes(tt)) {
    const listener = path.join(s.dir(), 'no-agent.sock');
    const b = s.bundle(['true'], spec => {
      spec.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        listenerPath: listener,
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }],
      };
    });
    const r = call(rt, s, ['run', '-b', b, idFor(tt, s, rt)]);
    tt.equal(r.code, 1, rt.name);
    tt.match(
      r.stderr,
      `failed to connect with seccomp agent specified in the seccomp profile: dial unix ${listener}: connect: no such file or directory`,
      rt.name,
    );
  }
});
