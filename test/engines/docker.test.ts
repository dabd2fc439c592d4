// Docker 20.10 (Debian's docker.io, its own containerd and containerd-shim-runc-v2) driving tsrt through
// daemon.json `runtimes`: every scenario runs with --runtime runc and --runtime tsrt under one private dockerd
// and must come out the same. Under docker 20.10 both runtimes share the state root
// <exec-root>/runtime-runc/moby, so every scenario also runs next to the other runtime's entries.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createError,
  engineDaemon,
  engineFile,
  hostNamespace,
  lines,
  run,
  isPtyName,
  sameAsRunc,
  throughPty,
  waitForExec,
  type Runtime,
} from '../engines-kit.js';
import { TSRT, waitFor } from '../helpers.js';

engineFile(t, 'docker', 15, ['/usr/sbin/dockerd', '/usr/bin/docker', '/usr/bin/script']);

const PREFIX = 'tsrteng-docker';
const env = engineDaemon(t, 'docker.sh', PREFIX);
const IMAGE = 'tsrt-busybox:latest';
const NETWORK = `${PREFIX}net`;
const STATE_ROOT = `/run/${PREFIX}/docker/runtime-runc/moby`;
const CGROUP_PARENT = `/sys/fs/cgroup/%s/${PREFIX}`;
const dockerEnv = { ...process.env, DOCKER_HOST: env['DOCKER_HOST']! };

/** Debian's docker CLI (20.10, the daemon's own version; /usr/local/bin/docker is another one). */
const docker = (args: string[], input?: string) =>
  run('/usr/bin/docker', args, { env: dockerEnv, ...(input === undefined ? {} : { input }) });
const dockerRun = (rt: Runtime, args: string[], input?: string) => docker(['run', '--rm', '--runtime', rt, ...args], input);

/** A detached `sleep` container of runtime `rt`, removed in the test's teardown; returns its full id. */
function detached(tt: { teardown(fn: () => void): void }, rt: Runtime, name: string, args: string[] = [], cmd = ['sleep', '1000']): string {
  tt.teardown(() => docker(['rm', '-f', name]));
  const r = docker(['run', '-d', '--name', name, '--runtime', rt, ...args, IMAGE, ...cmd]);
  if (r.code !== 0) throw new Error(`docker run -d ${name}: ${r.stderr}`);
  waitForExec(Number(inspect(name, '{{.State.Pid}}')), cmd);
  return r.stdout.trim();
}

const inspect = (name: string, format: string) => docker(['inspect', '-f', format, name]).stdout.trim();
const cgroupFile = (controller: string, id: string, file: string) =>
  fs.readFileSync(path.join(CGROUP_PARENT.replace('%s', controller), id, file), 'utf8').trim();

sameAsRunc(t, 'run --rm: output, and the exit codes 0 and 3', { zero: 0, three: 3, out: ['out'], err: 'err' }, rt => {
  const zero = dockerRun(rt, [IMAGE, 'true']).code;
  const r = dockerRun(rt, [IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  return { zero, three: r.code, out: lines(r.stdout), err: r.stderr.trim() };
});

sameAsRunc(
  t,
  "a missing executable: 127, and the runtime's error is the engine's message",
  {
    code: 127,
    message: /exec: "\/nonexistent": stat \/nonexistent: no such file or directory/,
  },
  rt => {
    const r = dockerRun(rt, [IMAGE, '/nonexistent']);
    return { code: r.code, message: createError(r.stderr) };
  },
);

sameAsRunc(t, 'a command not in PATH: 127', { code: 127, message: /executable file not found in \$PATH/ }, rt => {
  const r = dockerRun(rt, [IMAGE, 'nosuchcommand']);
  return { code: r.code, message: createError(r.stderr) };
});

sameAsRunc(t, 'a file that is not executable: 126', { code: 126, message: /exec: "\/etc\/passwd": permission denied/ }, rt => {
  const r = dockerRun(rt, [IMAGE, '/etc/passwd']);
  return { code: r.code, message: createError(r.stderr) };
});

sameAsRunc(t, 'a sysctl the kernel does not have: the create fails naming it', { code: 127, names: true }, rt => {
  const r = dockerRun(rt, ['--sysctl', 'net.ipv4.nosuch=1', IMAGE, 'true']);
  return { code: r.code, names: createError(r.stderr).includes('nosuch') };
});

// docker 20.10 asks for every capability with --privileged; without CAP_SYS_RESOURCE in the bounding set (as on
// this host) no runtime can grant it, and the engine shows the runtime's reason.
const hostHasSysResource = (BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]}`) >> 24n) & 1n;
sameAsRunc(t, '--privileged', hostHasSysResource ? { code: 0 } : { code: 125, explains: true }, rt => {
  const r = dockerRun(rt, ['--privileged', IMAGE, 'true']);
  return r.code === 0 ? { code: 0 } : { code: r.code, explains: /\bcap/i.test(createError(r.stderr)) };
});

sameAsRunc(t, 'a failed create leaves no state behind', { left: [] }, rt => {
  const before = fs.existsSync(STATE_ROOT) ? fs.readdirSync(STATE_ROOT) : [];
  dockerRun(rt, [IMAGE, '/nonexistent']);
  const after = fs.existsSync(STATE_ROOT) ? fs.readdirSync(STATE_ROOT) : [];
  return { left: after.filter(e => !before.includes(e)) };
});

sameAsRunc(
  t,
  'run -d, then exec: plain, -t, -d, -u, -e, -w and an exit code',
  {
    plain: ['hi'],
    tty: true,
    detachedFile: 'made',
    user: ['65534'],
    env: ['bar'],
    cwd: ['/tmp'],
    code: 5,
  },
  (rt, tt) => {
    const name = `${rt}-exec`;
    detached(tt, rt, name);
    const plain = lines(docker(['exec', name, 'echo', 'hi']).stdout);
    // The pty's number depends on what the container's devpts still holds, for either runtime.
    const tty = isPtyName(docker(['exec', '-t', name, 'tty']).stdout);
    docker(['exec', '-d', name, 'sh', '-c', 'echo made > /tmp/detached']);
    let detachedFile = '';
    waitFor(() => (detachedFile = docker(['exec', name, 'cat', '/tmp/detached']).stdout.trim()) === 'made', 100, 100);
    const user = lines(docker(['exec', '-u', 'nobody', name, 'id', '-u']).stdout);
    const envOut = lines(docker(['exec', '-e', 'FOO=bar', name, 'sh', '-c', 'echo $FOO']).stdout);
    const cwd = lines(docker(['exec', '-w', '/tmp', name, 'pwd']).stdout);
    const code = docker(['exec', name, 'sh', '-c', 'exit 5']).code;
    return { plain, tty, detachedFile, user, env: envOut, cwd, code };
  },
);

sameAsRunc(t, 'stdin through a pipe (run -i)', { code: 0, out: ['piped line'] }, rt => {
  const r = dockerRun(rt, ['-i', IMAGE, 'cat'], 'piped line\n');
  return { code: r.code, out: lines(r.stdout) };
});

sameAsRunc(t, 'run -it through a pty', { code: 0, tty: true, echoed: true }, rt =>
  throughPty(`/usr/bin/docker run --rm -it --runtime ${rt} ${IMAGE}`, dockerEnv),
);

sameAsRunc(
  t,
  "pause and unpause: the engine's status and the freezer",
  {
    paused: 'paused',
    frozen: 'FROZEN',
    running: 'running',
    thawed: 'THAWED',
  },
  (rt, tt) => {
    const name = `${rt}-pause`;
    const id = detached(tt, rt, name);
    docker(['pause', name]);
    const paused = inspect(name, '{{.State.Status}}');
    const frozen = cgroupFile('freezer', id, 'freezer.state');
    docker(['unpause', name]);
    return { paused, frozen, running: inspect(name, '{{.State.Status}}'), thawed: cgroupFile('freezer', id, 'freezer.state') };
  },
);

sameAsRunc(
  t,
  'update: memory, cpu and pids limits reach the cgroup (update --resources -)',
  {
    code: 0,
    memory: '67108864',
    swap: '134217728',
    quota: '50000',
    period: '100000',
    pids: '77',
  },
  (rt, tt) => {
    const name = `${rt}-update`;
    const id = detached(tt, rt, name);
    const code = docker(['update', '--memory', '64m', '--memory-swap', '128m', '--cpus', '0.5', '--pids-limit', '77', name]).code;
    return {
      code,
      memory: cgroupFile('memory', id, 'memory.limit_in_bytes'),
      swap: cgroupFile('memory', id, 'memory.memsw.limit_in_bytes'),
      quota: cgroupFile('cpu', id, 'cpu.cfs_quota_us'),
      period: cgroupFile('cpu', id, 'cpu.cfs_period_us'),
      pids: cgroupFile('pids', id, 'pids.max'),
    };
  },
);

sameAsRunc(t, "kill -s USR1 reaches the container's trap", { exit: '7', log: ['got USR1'] }, (rt, tt) => {
  const name = `${rt}-kill`;
  detached(tt, rt, name, [], ['sh', '-c', 'trap "echo got USR1; exit 7" USR1; echo ready; while :; do sleep 0.1; done']);
  waitFor(() => docker(['logs', name]).stdout.includes('ready'), 200, 50);
  docker(['kill', '-s', 'USR1', name]);
  const exit = docker(['wait', name]).stdout.trim();
  return { exit, log: lines(docker(['logs', name]).stdout).filter(l => l !== 'ready') };
});

sameAsRunc(
  t,
  'stop -t 1 of an init that ignores SIGTERM: SIGKILL after the timeout (137)',
  { code: 0, exit: '137', status: 'exited' },
  (rt, tt) => {
    const name = `${rt}-stop`;
    detached(tt, rt, name);
    const code = docker(['stop', '-t', '1', name]).code;
    return { code, exit: inspect(name, '{{.State.ExitCode}}'), status: inspect(name, '{{.State.Status}}') };
  },
);

sameAsRunc(t, 'restart: a new init in the same container', { code: 0, status: 'running', newPid: true, restarts: 'ok' }, (rt, tt) => {
  const name = `${rt}-restart`;
  detached(tt, rt, name);
  const before = inspect(name, '{{.State.Pid}}');
  const code = docker(['restart', '-t', '1', name]).code;
  const after = inspect(name, '{{.State.Pid}}');
  const again = docker(['exec', name, 'echo', 'ok']).stdout.trim();
  return { code, status: inspect(name, '{{.State.Status}}'), newPid: before !== after && after !== '0', restarts: again };
});

sameAsRunc(
  t,
  "rm -f of a running container: gone from the engine and from the runtime's root",
  {
    code: 0,
    listed: false,
    stateLeft: false,
  },
  (rt, tt) => {
    const name = `${rt}-rmf`;
    const id = detached(tt, rt, name);
    const code = docker(['rm', '-f', name]).code;
    return { code, listed: docker(['ps', '-aq', '--no-trunc']).stdout.includes(id), stateLeft: fs.existsSync(path.join(STATE_ROOT, id)) };
  },
);

sameAsRunc(t, '--init: docker-init is pid 1 and runs the command', { code: 0, init: '1 docker-init', child: true }, rt => {
  const r = dockerRun(rt, ['--init', IMAGE, 'ps', '-o', 'pid,comm']);
  const rows = lines(r.stdout)
    .slice(1)
    .map(l => l.replace(/\s+/g, ' '));
  return { code: r.code, init: rows[0], child: rows.some(l => l.endsWith(' ps')) };
});

sameAsRunc(
  t,
  '--read-only with --cap-drop ALL: no writes to /, no capabilities',
  {
    code: 0,
    out: ['touch: /x: Read-only file system', 'CapEff:\t0000000000000000'],
  },
  rt => {
    const r = dockerRun(rt, ['--read-only', '--cap-drop', 'ALL', IMAGE, 'sh', '-c', 'touch /x 2>&1; grep CapEff /proc/self/status']);
    return { code: r.code, out: lines(r.stdout) };
  },
);

sameAsRunc(t, '--ulimit nofile=1024:2048', { out: ['1024', '2048'] }, rt => ({
  out: lines(dockerRun(rt, ['--ulimit', 'nofile=1024:2048', IMAGE, 'sh', '-c', 'ulimit -n; ulimit -Hn']).stdout),
}));

sameAsRunc(t, "--sysctl in the container's own namespaces", { out: ['12345', '1'] }, rt => ({
  out: lines(
    dockerRun(rt, [
      '--sysctl',
      'kernel.msgmax=12345',
      '--sysctl',
      'net.ipv4.ip_forward=1',
      IMAGE,
      'sh',
      '-c',
      'cat /proc/sys/kernel/msgmax /proc/sys/net/ipv4/ip_forward',
    ]).stdout,
  ),
}));

sameAsRunc(t, '--network none: only lo', { out: ['lo'] }, rt => ({
  out: lines(dockerRun(rt, ['--network', 'none', IMAGE, 'sh', '-c', 'ip -o link | cut -d: -f2']).stdout),
}));

sameAsRunc(t, "--network host: the host's network namespace", { same: true }, rt => ({
  same: dockerRun(rt, ['--network', 'host', IMAGE, 'readlink', '/proc/self/ns/net']).stdout.trim() === hostNamespace('self', 'net'),
}));

sameAsRunc(t, "a bridge network: the address comes from libnetwork's prestart hook", { out: [/^inet 172\.31\.253\.\d+\/24$/] }, rt => ({
  out: lines(dockerRun(rt, ['--network', NETWORK, IMAGE, 'sh', '-c', "ip -o -4 addr show eth0 | awk '{print $3, $4}'"]).stdout),
}));

sameAsRunc(t, '--pid host, --ipc host, --uts host', { pid: true, ipc: true, uts: true, hostname: os.hostname() }, rt => {
  const r = dockerRun(rt, [
    '--pid',
    'host',
    '--ipc',
    'host',
    '--uts',
    'host',
    IMAGE,
    'sh',
    '-c',
    'for n in pid ipc uts; do readlink /proc/self/ns/$n; done; hostname',
  ]);
  const [pid, ipc, uts, hostname] = lines(r.stdout);
  return {
    pid: pid === hostNamespace('self', 'pid'),
    ipc: ipc === hostNamespace('self', 'ipc'),
    uts: uts === hostNamespace('self', 'uts'),
    hostname,
  };
});

sameAsRunc(
  t,
  "container: namespaces (net, pid, ipc) join a running container's",
  { net: true, pid: true, ipc: true, sees: true },
  (rt, tt) => {
    const name = `${rt}-nsowner`;
    // docker lets others join a container's IPC namespace only when the owner makes it shareable.
    detached(tt, rt, name, ['--ipc', 'shareable']);
    const owner = Number(inspect(name, '{{.State.Pid}}'));
    const r = dockerRun(rt, [
      '--network',
      `container:${name}`,
      '--pid',
      `container:${name}`,
      '--ipc',
      `container:${name}`,
      IMAGE,
      'sh',
      '-c',
      'for n in net pid ipc; do readlink /proc/self/ns/$n; done; ps -o comm',
    ]);
    const [net, pid, ipc, ...ps] = lines(r.stdout);
    return {
      net: net === hostNamespace(owner, 'net'),
      pid: pid === hostNamespace(owner, 'pid_for_children'),
      ipc: ipc === hostNamespace(owner, 'ipc'),
      sees: ps.includes('sleep'),
    };
  },
);

sameAsRunc(
  t,
  'the default seccomp profile is in force (and unconfined turns it off)',
  {
    confined: 'Seccomp:\t2',
    blocked: /Operation not permitted/,
    unconfined: 'Seccomp:\t0',
  },
  rt => ({
    confined: dockerRun(rt, [IMAGE, 'grep', 'Seccomp:', '/proc/self/status']).stdout.trim(),
    // unshare(2) of a user namespace is one of the calls the profile refuses without CAP_SYS_ADMIN.
    blocked: dockerRun(rt, [IMAGE, 'unshare', '-U', 'true']).stderr.trim(),
    unconfined: dockerRun(rt, ['--security-opt', 'seccomp=unconfined', IMAGE, 'grep', 'Seccomp:', '/proc/self/status']).stdout.trim(),
  }),
);

sameAsRunc(t, "docker top lists the container's processes (ps --format json)", { code: 0, commands: ['sleep 1000'] }, (rt, tt) => {
  const name = `${rt}-top`;
  detached(tt, rt, name);
  const r = docker(['top', name]);
  // The last column (CMD) of each row; docker fills the table from the host's ps -ef.
  return {
    code: r.code,
    commands: lines(r.stdout)
      .slice(1)
      .map(l => l.split(/\s{2,}/).pop()),
  };
});

t.test("tsrt tolerates runc's entries in the shared root", async tt => {
  detached(tt, 'runc', 'runc-neighbour');
  const name = 'tsrt-neighbour';
  const id = detached(tt, 'tsrt', name);
  tt.ok(fs.existsSync(path.join(STATE_ROOT, id)), "tsrt keeps its state in docker's runc root");
  const list = run(TSRT, ['--root', STATE_ROOT, 'list', '-q']);
  tt.equal(list.code, 0, 'tsrt list in the shared root succeeds');
  tt.same(lines(list.stdout), [id], 'and lists only its own container');
  tt.equal(docker(['exec', name, 'echo', 'ok']).stdout.trim(), 'ok', "the tsrt container works beside runc's");
});
