// tsrt exec, end to end as root through dist/tsrt: one test per flag, and the exec'd process seen from inside
// the container (namespaces, cgroup, seccomp, capabilities), and from the host (nothing left after a failure).
// Every test uses this file's private --root and deletes (--force) what it created in its teardown.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  TSRT,
  e2eFile,
  editConfig,
  fixture,
  readOrEmpty as read,
  startConsoleReceiver,
  testUser,
  tmpdir,
  tsrt,
  type Edit,
  type Scope,
  userBundle,
} from '../helpers.js';
import { hostFacts } from '../../src/runtime/host.js';

const { ROOT, scope, rt, rtFiles, waitFor } = e2eFile(t, {
  name: 'exec',
  idPrefix: 'ex',
  needsRoot: 'exec tests need root',
  timeoutMinutes: 20,
});

/** A running container (`sleep 1000` as its init, writable root); returns its id and init pid. */
function running(tt: Test, s: Scope, edit?: Edit): { id: string; pid: number; bundle: string } {
  const bundle = s.bundle(['sleep', '1000'], spec => {
    spec.root.readonly = false;
    edit?.(spec);
  });
  const id = s.id();
  const r = rtFiles(s, ['run', '-d', '-b', bundle, id]);
  tt.equal(r.code, 0, `run -d: ${r.stderr}`);
  return { id, pid: JSON.parse(rt(['state', id]).stdout).pid as number, bundle };
}

/** The message of the last error line on stderr. */
function errorMsg(stderr: string): string {
  const lines = stderr.split('\n').filter(l => l.includes('level=error'));
  const last = lines[lines.length - 1] ?? '';
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(last);
  return m ? JSON.parse(`"${m[1]}"`) : stderr.trim();
}

/** Host pids in the container's cgroup (the v1 pids hierarchy, as the cgroup tests read it). */
function cgroupPids(pid: number): number[] {
  const line = fs
    .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find(l => /^\d+:pids:/.test(l));
  const rel = line!.split(':')[2]!;
  return fs
    .readFileSync(path.join('/sys/fs/cgroup/pids', rel, 'cgroup.procs'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(Number);
}

// ---------------------------------------------------------------------------------------------------------
// the process

t.test('exec runs a command in the container; stdin and stdout pass through; no -- is needed', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s);
  const r = rt(['exec', id, 'sh', '-c', 'cat; echo out; ls -d /etc'], { input: 'in\n' });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, 'in\nout\n/etc\n');
  const dash = rt(['exec', id, '--', 'echo', '-n', 'after-dashes']);
  tt.equal(dash.stdout, 'after-dashes', 'a leading -- is dropped, flags after the id belong to the command');
});

t.test('exit status: 0, the code, 128+N after signal N, 127 not found, 126 not executable', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s);
  tt.equal(rt(['exec', id, 'true']).code, 0);
  tt.equal(rt(['exec', id, 'sh', '-c', 'exit 3']).code, 3);
  tt.equal(rt(['exec', id, 'sh', '-c', 'kill -TERM $$']).code, 128 + 15);
  const missing = rt(['exec', id, 'no-such-program']);
  tt.equal(missing.code, 127);
  tt.equal(
    errorMsg(missing.stderr),
    'exec failed: unable to start container process: exec: "no-such-program": executable file not found in $PATH',
  );
  const notExec = rt(['exec', id, '/etc/passwd']);
  tt.equal(notExec.code, 126);
  tt.match(errorMsg(notExec.stderr), /exec: "\/etc\/passwd": permission denied$/);
});

t.test('signals sent to a foreground exec reach the process', async tt => {
  const s = scope(tt);
  const { id, pid } = running(tt, s);
  const child = spawn(
    TSRT,
    ['--root', ROOT, 'exec', id, 'sh', '-c', 'trap "exit 7" TERM; touch /tmp/trapping; while :; do sleep 1; done'],
    { stdio: 'ignore' },
  );
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)));
  tt.ok(
    waitFor(() => fs.existsSync(`/proc/${pid}/root/tmp/trapping`)),
    'the trap is set',
  );
  child.kill('SIGTERM');
  tt.equal(await exited, 7, 'SIGTERM was forwarded and the trap ran');
});

t.test('-e/--env adds variables (repeatable) to the container environment', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s);
  const r = rt(['exec', '-e', 'FOO=one', '--env', 'BAR=two', id, 'sh', '-c', 'echo "$FOO $BAR"; echo "$PATH"']);
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /^one two\n.*\/bin/);
});

t.test('--cwd sets the working directory; a relative or missing one fails clearly', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s);
  tt.equal(rt(['exec', '--cwd', '/etc', id, 'pwd']).stdout, '/etc\n');
  const rel = rt(['exec', '--cwd', 'etc', id, 'pwd']);
  tt.equal(rel.code, 255);
  tt.equal(errorMsg(rel.stderr), 'exec failed: Cwd must be an absolute path');
  const missing = rt(['exec', '--cwd', '/nonexistent', id, 'pwd']);
  tt.equal(missing.code, 255);
  tt.equal(
    errorMsg(missing.stderr),
    'exec failed: unable to start container process: error during container init: chdir to cwd "/nonexistent": no such file or directory',
  );
});

t.test('-u/--user uid[:gid] sets the ids; the parser is strict (CVE-2026-30892)', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s);
  tt.equal(rt(['exec', '-u', '1000:1000', id, 'id']).stdout, 'uid=1000 gid=1000\n', 'no supplementary groups left over');
  tt.match(rt(['exec', '--user', '1000', id, 'id']).stdout, /^uid=1000 gid=0\(root\)/, 'uid only keeps the gid');
  tt.equal(rt(['exec', '-u', '0', id, 'id', '-u']).stdout, '0\n');
  const bad: [string, string][] = [
    ['abc', 'parsing abc as int for uid failed: strconv.Atoi: parsing "abc": invalid syntax'],
    ['1000:', 'parsing  as int for gid failed: strconv.Atoi: parsing "": invalid syntax'],
    [':1000', 'parsing  as int for uid failed: strconv.Atoi: parsing "": invalid syntax'],
    ['1000:1000:1', 'parsing 1000:1 as int for gid failed: strconv.Atoi: parsing "1000:1": invalid syntax'],
    ['-1', 'parsing -1 as int for uid failed: strconv.Atoi: parsing "-1": invalid syntax'],
    ['1e3', 'parsing 1e3 as int for uid failed: strconv.Atoi: parsing "1e3": invalid syntax'],
    [' 1', 'parsing  1 as int for uid failed: strconv.Atoi: parsing " 1": invalid syntax'],
    ['99999999999', 'uids and gids must be in range 0-2147483647'],
    ['1:4294967296', 'uids and gids must be in range 0-2147483647'],
  ];
  for (const [spec, message] of bad) {
    const r = rt(['exec', '-u', spec, id, 'id']);
    tt.equal(r.code, 255, `-u ${JSON.stringify(spec)} fails`);
    tt.equal(errorMsg(r.stderr), `exec failed: ${message}`);
    tt.equal(r.stdout, '', 'nothing ran');
  }
});

t.test('-g/--additional-gids adds supplementary groups (repeatable); a negative one is refused', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s);
  const r = rt(['exec', '-u', '1000:1000', '-g', '5', '--additional-gids', '7', id, 'id']);
  tt.equal(r.stdout, 'uid=1000 gid=1000 groups=5(tty),7\n', r.stderr);
  const neg = rt(['exec', '-g', '-1', id, 'id']);
  tt.equal(neg.code, 255);
  tt.equal(errorMsg(neg.stderr), 'exec failed: additional-gids must be a positive number -1');
  const notNumber = rt(['exec', '-g', 'x', id, 'id']);
  tt.equal(notNumber.code, 1);
  tt.match(errorMsg(notNumber.stderr), /invalid value "x" for flag -g/);
});

t.test('--cap adds to bounding, effective and permitted, never to inheritable (CVE-2022-29162)', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s);
  const bit = 1n << 13n; // CAP_NET_RAW
  const caps = (args: string[]) => {
    const r = rt(['exec', ...args, id, 'cat', '/proc/self/status']);
    const field = (name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(r.stdout)?.[1] ?? '0'}`);
    return { inh: field('CapInh'), prm: field('CapPrm'), eff: field('CapEff'), bnd: field('CapBnd'), amb: field('CapAmb') };
  };
  const without = caps([]);
  tt.equal(without.eff & bit, 0n, 'the default config has no CAP_NET_RAW');
  const withCap = caps(['--cap', 'CAP_NET_RAW', '-c', 'CAP_SYS_TIME']);
  for (const set of ['prm', 'eff', 'bnd'] as const) tt.equal(withCap[set] & bit, bit, `CAP_NET_RAW in ${set}`);
  tt.equal(withCap.eff & (1n << 25n), 1n << 25n, 'CAP_SYS_TIME in effective (repeatable)');
  tt.equal(withCap.inh, 0n, 'inheritable stays empty');
  tt.equal(withCap.amb, 0n, 'ambient stays empty');
  const unknown = rt(['exec', '--cap', 'CAP_NOPE', id, 'true']);
  tt.equal(unknown.code, 255);
  tt.match(errorMsg(unknown.stderr), /unknown capability "CAP_NOPE"/);
});

t.test('--no-new-privs sets no_new_privs for the process', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s, spec => {
    spec.process.noNewPrivileges = false;
  });
  tt.match(rt(['exec', id, 'grep', 'NoNewPrivs', '/proc/self/status']).stdout, /NoNewPrivs:\s+0/);
  tt.match(rt(['exec', '--no-new-privs', id, 'grep', 'NoNewPrivs', '/proc/self/status']).stdout, /NoNewPrivs:\s+1/);
});

t.test('--apparmor and --process-label are applied or refused, never ignored', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s);
  // The runtime's own detection decides which behaviour is right on this host; each check names its branch.
  const lsm = hostFacts();
  const cases = [
    {
      flag: '--apparmor',
      label: 'tsrt-test',
      lsm: 'AppArmor',
      enabled: lsm.apparmorEnabled,
      refusal: /^exec failed: config\.json: \/process\/apparmorProfile: apparmor: config provided but apparmor not supported/,
    },
    {
      flag: '--process-label',
      label: 'system_u:system_r:container_t:s0',
      lsm: 'SELinux',
      enabled: lsm.selinuxEnabled,
      refusal:
        /^exec failed: config\.json: \/process\/selinuxLabel: selinux label is specified in config, but selinux is disabled or not supported/,
    },
  ];
  for (const c of cases) {
    const r = rt(['exec', c.flag, c.label, id, 'cat', '/proc/self/attr/current']);
    if (!c.enabled) {
      tt.equal(r.code, 255, `branch: ${c.lsm} is not enabled on this host, so ${c.flag} is refused`);
      tt.match(errorMsg(r.stderr), c.refusal);
    } else if (r.code === 0) {
      tt.equal(r.stdout.trim().replace(/ \(enforce\)$/, ''), c.label, `branch: ${c.lsm} is enabled on this host, and ${c.flag} is applied`);
    } else {
      tt.match(
        errorMsg(r.stderr),
        /apply LSM label/,
        `branch: ${c.lsm} is enabled on this host, and the kernel's refusal of ${c.flag} is reported`,
      );
    }
  }
});

t.test('-p/--process runs a process.json; a bad one fails naming the JSON path', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s);
  const d = s.dir();
  const file = path.join(d, 'process.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      args: ['sh', '-c', 'echo "$X $(id -u) $(pwd)"'],
      env: ['X=from-file', 'PATH=/bin'],
      cwd: '/tmp',
      user: { uid: 7, gid: 7 },
    }),
  );
  const r = rt(['exec', '-p', file, id]);
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, 'from-file 7 /tmp\n');
  const ignored = rt(['exec', '--process', file, '-e', 'X=flag', id]);
  tt.equal(ignored.stdout, 'from-file 7 /tmp\n', "with -p the process is the file's");
  fs.writeFileSync(file, JSON.stringify({ args: 'sh', cwd: '/' }));
  const bad = rt(['exec', '-p', file, id]);
  tt.equal(bad.code, 255);
  tt.equal(errorMsg(bad.stderr), 'exec failed: process.json: /args: must be array');
  fs.writeFileSync(file, JSON.stringify({ args: ['true'] }));
  tt.match(errorMsg(rt(['exec', '-p', file, id]).stderr), /^exec failed: process\.json: \/: must have required property 'cwd'/);
  const missing = rt(['exec', '-p', path.join(d, 'nope.json'), id]);
  tt.equal(errorMsg(missing.stderr), `exec failed: open ${path.join(d, 'nope.json')}: no such file or directory`);
  tt.equal(errorMsg(rt(['exec', id]).stderr), 'exec failed: process args cannot be empty');
});

t.test('-d/--detach returns at once with --pid-file written; the process runs on in the container', async tt => {
  const s = scope(tt);
  const { id, pid } = running(tt, s);
  const pidFile = path.join(s.dir(), 'exec.pid');
  const r = rtFiles(s, ['exec', '-d', '--pid-file', pidFile, id, 'sh', '-c', 'sleep 1000']);
  tt.equal(r.code, 0, r.stderr);
  const text = read(pidFile);
  tt.match(text, /^\d+$/, 'a decimal pid, no newline');
  const execPid = Number(text);
  tt.ok(fs.existsSync(`/proc/${execPid}`), 'the process is alive after exec returned');
  tt.equal(fs.readlinkSync(`/proc/${execPid}/ns/pid`), fs.readlinkSync(`/proc/${pid}/ns/pid`), 'in the container');
  tt.ok(cgroupPids(pid).includes(execPid), "in the container's cgroup");
});

t.test('--preserve-fds passes extra fds through', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s);
  const file = path.join(s.dir(), 'payload');
  fs.writeFileSync(file, 'content of the preserved fd\n');
  const r = spawnSync('sh', [
    '-c',
    `exec 3<"${file}"; exec "${TSRT}" --root "${ROOT}" exec --preserve-fds 1 ${id} sh -c 'cat <&3; ls /proc/self/fd'`,
  ]);
  tt.equal(r.status, 0, r.stderr.toString());
  const [content, ...fdList] = r.stdout.toString().split('\n');
  tt.equal(content, 'content of the preserved fd');
  tt.ok(fdList.includes('3'), 'fd 3 is open');
  const without = rt(['exec', id, 'ls', '/proc/self/fd']);
  tt.same(
    without.stdout
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter(n => n > 3),
    [],
    "only stdio (and ls's own fd) without it",
  );
});

t.test('--cgroup runs the process in an existing sub-cgroup; bad paths and controllers fail clearly', async tt => {
  const s = scope(tt);
  const { id, pid } = running(tt, s);
  const rel = fs
    .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find(l => /^\d+:pids:/.test(l))!
    .split(':')[2]!;
  const sub = path.join('/sys/fs/cgroup/pids', rel, 'sub');
  fs.mkdirSync(sub);
  const r = rt(['exec', '--cgroup', 'pids:sub', id, 'cat', '/proc/self/cgroup']);
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /^\d+:pids:\/sub$/m, 'in the pids sub-cgroup');
  tt.match(r.stdout, /^\d+:memory:\/$/m, "other controllers: the container's cgroup");
  tt.equal(errorMsg(rt(['exec', '--cgroup', 'nosuch:sub', id, 'true']).stderr), 'exec failed: unknown controller nosuch in SubCgroupPaths');
  tt.equal(errorMsg(rt(['exec', '--cgroup', 'pids:../..', id, 'true']).stderr), 'exec failed: ../.. is not a sub cgroup path');
  tt.equal(
    errorMsg(rt(['exec', '--cgroup', 'a', '--cgroup', 'b', id, 'true']).stderr),
    'exec failed: invalid --cgroup argument(s): multiple <controller>-less arguments',
  );
  tt.equal(
    errorMsg(rt(['exec', '--cgroup', ':x', id, 'true']).stderr),
    'exec failed: invalid --cgroup argument: :x (empty <controller> prefix)',
  );
  const missing = rt(['exec', '--cgroup', 'pids:nope', id, 'true']);
  tt.equal(missing.code, 255);
  tt.match(
    errorMsg(missing.stderr),
    /^exec failed: error adding pid \d+ to cgroups: write .*\/nope\/cgroup\.procs: no such file or directory$/,
  );
  tt.ok(
    waitFor(() => cgroupPids(pid).length === 1),
    'the failed process is gone',
  );
  tt.same(fs.readFileSync(path.join(sub, 'cgroup.procs'), 'utf8'), '', 'the sub-cgroup is empty again');
});

// ---------------------------------------------------------------------------------------------------------
// terminals

t.test('-t with --console-socket (detached) sends a pty master; the process has its own terminal', async tt => {
  const s = scope(tt);
  const { id, pid } = running(tt, s);
  const { sock, out } = startConsoleReceiver(tt, s);
  tt.ok(
    waitFor(() => fs.existsSync(sock)),
    'receiver listening',
  );
  const r = rtFiles(s, [
    'exec',
    '-d',
    '-t',
    '--console-socket',
    sock,
    id,
    'sh',
    '-c',
    'tty; stat -c "tty=%t:%T" "$(tty)"; echo hello-through-the-pty',
  ]);
  tt.equal(r.code, 0, r.stderr);
  // exec -d returns once the master is sent; the receiver writes what it got a moment later.
  waitFor(() => read(`${out}.fds`).endsWith('\n'));
  tt.equal(read(`${out}.fds`), '1 /dev/ptmx\n', "one fd, runc's payload");
  tt.ok(
    waitFor(() => read(out).includes('hello-through-the-pty')),
    'output arrives via the master',
  );
  tt.match(read(out), /^\/dev\/pts\/\d+\r?$/m, 'stdio is a pts of the container');
  tt.equal(r.stdout, '', 'nothing on the exec caller stdout');
  tt.ok(fs.existsSync(`/proc/${pid}`), 'the init runs on');
  const noTty = rt(['exec', '-d', '-t', id, 'true']);
  tt.equal(errorMsg(noTty.stderr), 'exec failed: cannot allocate tty if tsrt will detach without setting console socket');
  const noDetach = rt(['exec', '-t', '--console-socket', sock, id, 'true']);
  tt.equal(errorMsg(noDetach.stderr), 'exec failed: cannot use console socket if tsrt will not detach or allocate tty');
});

t.test("the engines' exec: podman's, docker's and ctr's process.json with their argv (test/fixtures/engine-configs)", async tt => {
  const s = scope(tt);
  const { id, pid } = running(tt, s);
  for (const engine of ['podman', 'docker', 'ctr']) {
    const { sock, out } = startConsoleReceiver(tt, s);
    const dir = path.dirname(sock);
    tt.ok(
      waitFor(() => fs.existsSync(sock)),
      `${engine}: receiver listening`,
    );
    // The file the engine wrote for `exec -t … sh -c 'tty; echo exec-t-ok'` (hack/engines/capture-configs.sh).
    const local = path.join(dir, 'exec-process.json');
    fs.copyFileSync(fixture('engine-configs', `${engine}-exec-tty.process.json`), local);
    const pidFile = path.join(dir, 'exec_pid');
    const log = path.join(dir, 'oci-log');
    const r = rtFiles(s, [
      '--log-format=json',
      '--log',
      log,
      'exec',
      '--pid-file',
      pidFile,
      '--process',
      local,
      '--detach',
      '--tty',
      '--console-socket',
      sock,
      id,
    ]);
    tt.equal(r.code, 0, `${engine}: ${r.stderr}`);
    tt.match(read(pidFile), /^\d+$/, `${engine}: pid file written before exec returned`);
    tt.ok(
      waitFor(() => read(out).includes('exec-t-ok')),
      `${engine}: output through the pty`,
    );
    tt.match(read(out), /^\/dev\/pts\/\d+\r?$/m, `${engine}: a terminal`);
    tt.equal(read(log), '', `${engine}: nothing logged on success`);
  }
  // Without a terminal (docker's `exec -d`): the process's stdio are the caller's.
  const local = path.join(s.dir(), 'plain.json');
  fs.writeFileSync(
    local,
    JSON.stringify({
      args: ['sh', '-c', 'echo exec-ok; exit 5'],
      env: ['PATH=/bin'],
      cwd: '/',
      user: { uid: 0, gid: 0, additionalGids: [0] },
      oomScoreAdj: 0,
    }),
  );
  const pidFile = path.join(s.dir(), 'plain.pid');
  const r = rtFiles(s, ['exec', '--process', local, '--detach', '--pid-file', pidFile, id]);
  tt.equal(r.code, 0, r.stderr);
  tt.ok(
    waitFor(() => read(r.out).includes('exec-ok')),
    "output on the caller's stdout",
  );
  tt.ok(fs.existsSync(`/proc/${pid}`), 'the init runs on');
});

t.test('-t in the foreground without a console socket proxies a pty', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s);
  const r = rt(['exec', '-t', id, 'sh', '-c', 'tty; echo hello-from-the-pty; exit 4'], { input: '' });
  tt.equal(r.signal, null, 'not killed by the timeout');
  tt.equal(r.code, 4, r.stderr);
  tt.match(r.stdout, /^\/dev\/pts\/\d+\r?$/m);
  tt.match(r.stdout, /hello-from-the-pty/);
});

// ---------------------------------------------------------------------------------------------------------
// what the exec'd process shares with the container

t.test('it joins every namespace of the init: hostname, pid numbers, mounts, network, ipc, cgroup, time', async tt => {
  const s = scope(tt);
  const { id, pid } = running(tt, s, spec => {
    spec.hostname = 'exec-host';
    spec.linux.namespaces.push({ type: 'time' });
  });
  const names = ['mnt', 'uts', 'ipc', 'net', 'pid', 'cgroup', 'time'];
  // mountinfo is compared inside: cgroup mount roots are shown relative to the reader's cgroup namespace.
  const r = rt([
    'exec',
    id,
    'sh',
    '-c',
    `hostname; cat /proc/1/comm; echo $$; for n in ${names.join(' ')}; do readlink /proc/self/ns/$n; done; ` +
      'cat /proc/self/mountinfo > /tmp/self; cat /proc/1/mountinfo > /tmp/init; cmp /tmp/self /tmp/init && echo same-mounts',
  ]);
  tt.equal(r.code, 0, r.stderr);
  const [hostname, comm, self, ...rest] = r.stdout.split('\n');
  tt.equal(hostname, 'exec-host');
  tt.equal(comm, 'sleep', 'pid 1 is the init');
  tt.ok(Number(self) > 1 && Number(self) < 100, `a pid of the container's namespace (${self})`);
  for (const [i, n] of names.entries()) {
    tt.equal(rest[i], fs.readlinkSync(`/proc/${pid}/ns/${n}`), `${n} namespace is the init's`);
  }
  tt.equal(rest[names.length], 'same-mounts', 'the same mounts as the init');
});

t.test("its /proc/self/cgroup equals the init's, inside and from the host", async tt => {
  const s = scope(tt);
  const { id, pid } = running(tt, s);
  const r = rt(['exec', id, 'sh', '-c', 'cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup']);
  tt.equal(r.code, 0, r.stderr);
  const [self, init] = r.stdout.split('---\n');
  tt.equal(self, init, 'inside the cgroup namespace');
  const pidFile = path.join(s.dir(), 'pid');
  tt.equal(rtFiles(s, ['exec', '-d', '--pid-file', pidFile, id, 'sleep', '1000']).code, 0);
  tt.equal(fs.readFileSync(`/proc/${read(pidFile)}/cgroup`, 'utf8'), fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'), 'on the host');
});

t.test("the container's seccomp profile holds for exec'd processes", async tt => {
  const s = scope(tt);
  const { id } = running(tt, s, spec => {
    spec.linux.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 }],
    };
  });
  const r = rt(['exec', id, 'sh', '-c', 'mkdir /tmp/x; echo "rc=$?"; touch /tmp/y && echo touched']);
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /rc=1\ntouched\n/);
  tt.match(r.stderr, /No space left on device/, "the profile's errno");
  const file = path.join(s.dir(), 'p.json');
  fs.writeFileSync(file, JSON.stringify({ args: ['mkdir', '/tmp/z'], cwd: '/' }));
  tt.not(rt(['exec', '-p', file, id]).code, 0, 'a -p process is held to it too');
});

t.test("capabilities and rlimits are the container process's", async tt => {
  const s = scope(tt);
  const { id, pid } = running(tt, s, spec => {
    spec.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 321, hard: 654 }];
  });
  const r = rt(['exec', id, 'sh', '-c', 'grep -E "^Cap(Prm|Eff|Bnd|Inh)" /proc/self/status; ulimit -n; ulimit -Hn']);
  const init = fs
    .readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .filter(l => /^Cap(Prm|Eff|Bnd|Inh):/.test(l))
    .join('\n');
  tt.equal(r.stdout, `${init}\n321\n654\n`);
});

t.test('a rootless container: exec joins its user namespace as the unprivileged user', async tt => {
  const user = testUser();
  const base = tmpdir('tsrt-exec-rootless-');
  tt.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
  fs.chownSync(base, user.uid, user.gid);
  const bundle = userBundle(base, user, ['sleep', '1000']);
  editConfig(bundle, spec => {
    spec.root.readonly = false;
  });
  const root = path.join(base, 'state');
  const outFile = path.join(base, 'out');
  const id = 'rootless-exec';
  const fd = fs.openSync(outFile, 'w', 0o666);
  const run = tsrt(['run', '-d', '-b', bundle, id], { user: user.name, root, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  tt.teardown(() => tsrt(['delete', '--force', id], { user: user.name, root }));
  tt.equal(run.code, 0, read(outFile));
  const pid = JSON.parse(tsrt(['state', id], { user: user.name, root }).stdout).pid as number;
  const r = tsrt(['exec', id, 'sh', '-c', 'id -u; readlink /proc/self/ns/user; cat /proc/self/uid_map'], { user: user.name, root });
  tt.equal(r.code, 0, r.stderr);
  const [uid, userns, ...map] = r.stdout.split('\n');
  tt.equal(uid, '0', 'root inside');
  tt.equal(userns, fs.readlinkSync(`/proc/${pid}/ns/user`), "the init's user namespace");
  tt.match(map.join('\n'), new RegExp(`^\\s*0\\s+${user.uid}\\s+1`, 'm'), 'mapped to the user on the host');
  // A created container's init waits for start as the sealed helper, inside the container's user namespace and
  // holding only stdio and the exec fifo (issue 13, finding 7): the container's owner may join it before start.
  const created = 'rootless-exec-created';
  const fd2 = fs.openSync(outFile, 'w', 0o666);
  const c = tsrt(['create', '-b', bundle, created], { user: user.name, root, stdio: ['ignore', fd2, fd2] });
  fs.closeSync(fd2);
  tt.teardown(() => tsrt(['delete', '--force', created], { user: user.name, root }));
  tt.equal(c.code, 0, read(outFile));
  const early = tsrt(['exec', created, 'id', '-u'], { user: user.name, root });
  tt.equal(early.code, 0, early.stderr);
  tt.equal(early.stdout, '0\n', 'root inside, before start');
  // Without a /proc in the container the executor itself waits: not dumpable, in the host's user namespace, so
  // without privileges it cannot be joined yet (CVE-2016-9962), and exec says so.
  const noProc = 'rootless-exec-created-noproc';
  editConfig(bundle, spec => {
    spec.mounts = spec.mounts.filter((m: any) => m.destination !== '/proc');
  });
  const fd3 = fs.openSync(outFile, 'w', 0o666);
  const c2 = tsrt(['create', '-b', bundle, noProc], { user: user.name, root, stdio: ['ignore', fd3, fd3] });
  fs.closeSync(fd3);
  tt.teardown(() => tsrt(['delete', '--force', noProc], { user: user.name, root }));
  tt.equal(c2.code, 0, read(outFile));
  const refused = tsrt(['exec', noProc, 'true'], { user: user.name, root });
  tt.equal(refused.code, 255);
  tt.equal(
    errorMsg(refused.stderr),
    'exec failed: cannot exec in a created container without privileges: its init cannot be joined before start',
  );
});

// ---------------------------------------------------------------------------------------------------------
// container states

t.test('exec into a created container works; into a stopped or unknown one fails clearly', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sh', '-c', 'exit 0']);
  const id = s.id();
  const c = rtFiles(s, ['create', '-b', bundle, id]);
  tt.equal(c.code, 0, c.stderr);
  const pid = JSON.parse(rt(['state', id]).stdout).pid as number;
  // (The waiting init is not dumpable until its exec: the process cannot read /proc/1/ns itself.)
  const inCreated = rt(['exec', id, 'readlink', '/proc/self/ns/pid']);
  tt.equal(inCreated.code, 0, inCreated.stderr);
  tt.equal(inCreated.stdout, `${fs.readlinkSync(`/proc/${pid}/ns/pid`)}\n`, "in the waiting init's pid namespace");
  tt.equal(JSON.parse(rt(['state', id]).stdout).status, 'created', 'still created');
  tt.equal(rt(['start', id]).code, 0);
  tt.ok(
    waitFor(() => JSON.parse(rt(['state', id]).stdout).status === 'stopped'),
    'the init exited',
  );
  const stopped = rt(['exec', id, 'true']);
  tt.equal(stopped.code, 255);
  tt.equal(errorMsg(stopped.stderr), 'exec failed: cannot exec in a stopped container');
  const unknown = rt(['exec', 'no-such-container', 'true']);
  tt.equal(unknown.code, 255);
  tt.equal(errorMsg(unknown.stderr), 'exec failed: container does not exist');
  const noId = rt(['exec']);
  tt.equal(noId.code, 1);
  tt.equal(errorMsg(noId.stderr), '"exec" requires a minimum of 1 argument(s)');
});

t.test('a paused container: exec fails, unless --ignore-paused, whose process runs once resumed', async tt => {
  const s = scope(tt);
  const { id, pid } = running(tt, s);
  tt.equal(rt(['pause', id]).code, 0);
  const r = rt(['exec', id, 'true']);
  tt.equal(r.code, 255);
  tt.equal(errorMsg(r.stderr), 'exec failed: cannot exec in a paused container (use --ignore-paused to override)');
  const d = rtFiles(s, ['exec', '-d', '--ignore-paused', id, 'touch', '/tmp/ran']);
  tt.equal(d.code, 0, d.stderr);
  tt.notOk(fs.existsSync(`/proc/${pid}/root/tmp/ran`), 'frozen with the container');
  tt.equal(JSON.parse(rt(['state', id]).stdout).status, 'paused', 'the container still reads as paused');
  tt.equal(rt(['resume', id]).code, 0);
  tt.ok(
    waitFor(() => fs.existsSync(`/proc/${pid}/root/tmp/ran`)),
    'ran after resume',
  );
});

// ---------------------------------------------------------------------------------------------------------
// failures leave nothing behind; CVE-2024-21626

t.test('a failed exec leaves no process in the container and no fd in the init', async tt => {
  const s = scope(tt);
  const { id, pid } = running(tt, s);
  const fdsBefore = fs.readdirSync(`/proc/${pid}/fd`).sort();
  for (const args of [
    ['--cwd', '/nonexistent', id, 'true'],
    [id, 'no-such-program'],
    ['-u', '1:x', id, 'true'],
    ['--cap', 'CAP_NOPE', id, 'true'],
  ]) {
    const r = rt(['exec', ...args]);
    tt.not(r.code, 0, `exec ${args.join(' ')} fails`);
  }
  tt.ok(
    waitFor(() => cgroupPids(pid).length === 1),
    'only the init is in the cgroup',
  );
  tt.same(fs.readdirSync(`/proc/${pid}/fd`).sort(), fdsBefore, "the init's fds are unchanged");
  const nsLink = fs.readlinkSync(`/proc/${pid}/ns/pid`);
  const inNamespace = fs
    .readdirSync('/proc')
    .filter(n => /^\d+$/.test(n))
    .filter(n => {
      try {
        return fs.readlinkSync(`/proc/${n}/ns/pid`) === nsLink;
      } catch {
        return false;
      }
    });
  tt.same(inNamespace, [String(pid)], "only the init is in the container's pid namespace");
});

t.test('CVE-2024-21626: --cwd /proc/self/fd/N never leaves the container root', async tt => {
  const s = scope(tt);
  const { id } = running(tt, s);
  const hostMarker = tmpdir('tsrt-exec-host-marker-');
  tt.teardown(() => fs.rmSync(hostMarker, { recursive: true, force: true }));
  fs.writeFileSync(path.join(hostMarker, 'host-secret'), 'leaked\n');
  // Keep a host directory open in the runtime's caller, at many fd numbers, for the exec to inherit if it leaks.
  const script =
    `for n in $(seq 3 30); do eval "exec $n<\\"${hostMarker}\\""; done; ` +
    `for n in $(seq 3 30); do "${TSRT}" --root "${ROOT}" exec --cwd /proc/self/fd/$n ${id} sh -c 'pwd; ls'; echo "rc=$?"; done`;
  const r = spawnSync('bash', ['-c', script], { timeout: 120_000 });
  const out = r.stdout.toString();
  tt.notMatch(out, /host-secret/, 'no host directory is ever listed');
  const codes = [...out.matchAll(/^rc=(\d+)$/gm)].map(m => Number(m[1]));
  tt.equal(codes.length, 28, 'every N tried');
  for (const line of out.split('\n').filter(l => l.startsWith('/'))) {
    tt.notMatch(line, new RegExp(hostMarker), `cwd ${line} is inside the container`);
  }
  // The same through a symlink the container made (exec --cwd /x with /x -> /proc/self/fd/N).
  tt.equal(rt(['exec', id, 'ln', '-s', '/proc/self/fd/5', '/x']).code, 0);
  const viaLink = spawnSync('bash', ['-c', `exec 5<"${hostMarker}"; "${TSRT}" --root "${ROOT}" exec --cwd /x ${id} ls`]);
  tt.notMatch(viaLink.stdout.toString(), /host-secret/);
  tt.not(viaLink.status, 0, 'a cwd through a dangling fd link fails');
});

t.test('exec into a container without a mount namespace of its own is refused clearly', async tt => {
  const s = scope(tt);
  const c = running(tt, s, spec => {
    spec.linux.namespaces = spec.linux.namespaces.filter((n: { type: string }) => n.type !== 'mount');
  });
  const r = rt(['exec', c.id, 'true']);
  tt.not(r.code, 0, 'exec fails');
  tt.match(r.stderr, /cannot exec in a container without a mount namespace of its own/);
});
