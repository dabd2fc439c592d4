// podman 4.3 + conmon (CRI-O's runtime driver too) running containers through dist/tsrt, as root. Every
// scenario runs once with `--runtime tsrt` and once with `--runtime runc` (the host's reference runtime) and must
// see the same thing from inside the container; expected values are asserted too, so a runtime both get wrong
// still fails. One private podman setup (hack/engines/podman.sh) is shared by the whole file.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { TSRT, waitFor } from '../helpers.js';
import { bothRuntimes, containerName, podman, podmanSetup, type Runtime } from './fixtures/podman.js';

const env = podmanSetup(t, 'podman-tsrt-e2e', '10.89.214');
const IMG = env.image;
const pm = (args: string[], opts = {}) => podman(env, args, opts);

/** `podman --runtime RT run --rm --network none IMG ARGS...` unless the scenario picks its own network. */
function runRm(rt: Runtime, flags: string[], args: string[], opts = {}) {
  const net = flags.some(f => f.startsWith('--network')) ? [] : ['--network', 'none'];
  return pm(['--runtime', rt, 'run', '--rm', ...net, ...flags, IMG, ...args], opts);
}

/** A detached `sleep` container for the scenarios that act on a running one; removed after the test. */
function detached(tt: { teardown(fn: () => void): void }, rt: Runtime, what: string, flags: string[] = [], args = ['sleep', '1000']) {
  const name = containerName(rt, what);
  pm(['rm', '-f', '-t', '0', name]);
  const r = pm(['--runtime', rt, 'run', '-d', '--network', 'none', '--name', name, ...flags, IMG, ...args]);
  if (r.code !== 0) throw new Error(`podman run -d ${name} (${rt}): ${r.stderr}`);
  tt.teardown(() => void pm(['rm', '-f', '-t', '0', name]));
  return name;
}

function inspect(name: string, format: string): string {
  return pm(['inspect', '--format', format, name]).stdout.trim();
}

const hostNs = (kind: string) => fs.readlinkSync(`/proc/self/ns/${kind}`);

t.test('run --rm: output and exit codes', async t => {
  await bothRuntimes(
    t,
    rt => {
      const out = runRm(rt, [], ['echo', 'hello from', 'a runtime']);
      return { code: out.code, stdout: out.stdout };
    },
    { code: 0, stdout: 'hello from a runtime\n' },
  );
  await bothRuntimes(t, rt => runRm(rt, [], ['sh', '-c', 'exit 3']).code, 3);
  await bothRuntimes(
    t,
    rt => {
      const r = runRm(rt, [], ['/no/such/binary']);
      return {
        code: r.code,
        namesPath: r.stderr.includes('/no/such/binary'),
        notFound: /no such file or directory|not found/i.test(r.stderr),
      };
    },
    { code: 127, namesPath: true, notFound: true },
  );
  await bothRuntimes(
    t,
    rt => {
      const r = runRm(rt, [], ['nosuchcmd']);
      return { code: r.code, message: /exec: "nosuchcmd": executable file not found in \$PATH/.test(r.stderr) };
    },
    { code: 127, message: true },
  );
  await bothRuntimes(
    t,
    rt => {
      const r = runRm(rt, [], ['/etc/passwd']);
      return { code: r.code, denied: /permission denied/i.test(r.stderr) };
    },
    { code: 126, denied: true },
  );
});

t.test('failed create: the runtime error reaches podman through the JSON log and nothing is left', async t => {
  await bothRuntimes(
    t,
    rt => {
      const name = containerName(rt, 'failcreate');
      const r = pm(['--runtime', rt, 'run', '--network', 'none', '--name', name, IMG, '/no/such/binary']);
      const id = inspect(name, '{{.Id}}');
      const state = inspect(name, '{{.State.Status}}');
      const log = fs.readFileSync(path.join('/run', env.name, 'runroot/overlay-containers', id, 'userdata/oci-log'), 'utf8');
      const lines = log
        .trim()
        .split('\n')
        .map(l => JSON.parse(l));
      pm(['rm', '-f', name]);
      const leftover =
        rt === 'tsrt' ? spawnSync(TSRT, ['state', id]).status === 0 : spawnSync('/usr/sbin/runc', ['state', id]).status === 0;
      return {
        code: r.code,
        podmanSaysIt: r.stderr.includes('/no/such/binary'),
        jsonLevels: [...new Set(lines.map(l => l.level))],
        logNamesPath: lines.some(l => String(l.msg).includes('/no/such/binary')),
        state,
        leftover,
      };
    },
    { code: 127, podmanSaysIt: true, jsonLevels: ['error'], logNamesPath: true, state: 'created', leftover: false },
  );
});

t.test('detached run, then exec with each flag', async t => {
  await bothRuntimes(
    t,
    rt => {
      const name = detached(t, rt, 'exec');
      const pid = Number(inspect(name, '{{.State.Pid}}'));
      const tty = pm(['exec', '-t', name, 'tty']);
      pm(['exec', '-d', name, 'sh', '-c', 'echo detached > /tmp/d']);
      const detachedOut = waitFor(() => pm(['exec', name, 'cat', '/tmp/d']).stdout === 'detached\n');
      return {
        status: inspect(name, '{{.State.Status}}'),
        pidAlive: pid > 0 && fs.existsSync(`/proc/${pid}`),
        plain: pm(['exec', name, 'echo', 'hi']).stdout,
        tty: tty.stdout.replace(/\r/g, ''),
        detachedOut,
        user: pm(['exec', '-u', '65534:65534', name, 'id']).stdout,
        env: pm(['exec', '-e', 'FOO=bar baz', name, 'sh', '-c', 'echo "$FOO"']).stdout,
        cwd: pm(['exec', '-w', '/tmp', name, 'pwd']).stdout,
        exitCode: pm(['exec', name, 'sh', '-c', 'exit 5']).code,
        missing: pm(['exec', name, '/no/such/binary']).code,
        badCwd: pm(['exec', '-w', '/nonexistent', name, 'pwd']).code,
        stdin: pm(['exec', '-i', name, 'cat'], { input: 'piped line\n' }).stdout,
      };
    },
    {
      status: 'running',
      pidAlive: true,
      plain: 'hi\n',
      tty: '/dev/pts/0\n',
      detachedOut: true,
      user: 'uid=65534(nobody) gid=65534(nogroup)\n',
      env: 'bar baz\n',
      cwd: '/tmp\n',
      exitCode: 5,
      missing: 127,
      badCwd: 127,
      stdin: 'piped line\n',
    },
  );
});

t.test('run -i with stdin from a pipe', async t => {
  await bothRuntimes(t, rt => runRm(rt, ['-i'], ['sh', '-c', 'tr a-z A-Z'], { input: 'through the pipe\n' }).stdout, 'THROUGH THE PIPE\n');
});

t.test('run -it through a pty', async t => {
  await bothRuntimes(
    t,
    rt => {
      const cmd = `${env.podman} --runtime ${rt} run --rm -it --network none ${IMG} sh -c 'tty; read line; echo "got $line"'`;
      const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { input: 'typed\n', timeout: 120_000 });
      const lines = r.stdout
        .toString()
        .replace(/\r/g, '')
        .split('\n')
        .filter(l => /^(\/dev|got)/.test(l));
      return { code: r.status, lines };
    },
    { code: 0, lines: ['/dev/pts/0', 'got typed'] },
  );
});

t.test('pause and unpause freeze the cgroup', async t => {
  await bothRuntimes(
    t,
    rt => {
      const name = detached(t, rt, 'pause');
      const pid = inspect(name, '{{.State.Pid}}');
      const freezer = () => {
        const line = fs
          .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
          .split('\n')
          .find(l => /:freezer:/.test(l))!;
        return fs.readFileSync(`/sys/fs/cgroup/freezer${line.split(':')[2]}/freezer.state`, 'utf8').trim();
      };
      const paused = pm(['pause', name]).code;
      const whilePaused = [inspect(name, '{{.State.Status}}'), freezer()];
      const pausedAgain = pm(['pause', name]).code;
      const unpaused = pm(['unpause', name]).code;
      return {
        paused,
        whilePaused,
        pausedAgain,
        unpaused,
        after: [inspect(name, '{{.State.Status}}'), freezer()],
        exec: pm(['exec', name, 'true']).code,
      };
    },
    { paused: 0, whilePaused: ['paused', 'FROZEN'], pausedAgain: 125, unpaused: 0, after: ['running', 'THAWED'], exec: 0 },
  );
});

t.test('update of memory and cpu, and the pids limit, seen in the cgroup', async t => {
  // podman 4.3's update has no --pids-limit: the pids limit is given at run and read back the same way
  await bothRuntimes(
    t,
    rt => {
      const name = detached(t, rt, 'update', ['--pids-limit', '77']);
      const read = () =>
        pm([
          'exec',
          name,
          'cat',
          '/sys/fs/cgroup/memory/memory.limit_in_bytes',
          '/sys/fs/cgroup/cpu/cpu.cfs_quota_us',
          '/sys/fs/cgroup/cpu/cpu.cfs_period_us',
          '/sys/fs/cgroup/pids/pids.max',
        ])
          .stdout.split('\n')
          .slice(0, 4);
      const before = read();
      const update = pm(['update', '--memory', '64m', '--cpu-quota', '50000', '--cpu-period', '100000', name]);
      return { pidsBefore: before[3], update: update.code, after: read() };
    },
    { pidsBefore: '77', update: 0, after: [String(64 * 1024 * 1024), '50000', '100000', '77'] },
  );
});

t.test('podman stats and top find the container where the runtime put it', async t => {
  await bothRuntimes(
    t,
    rt => {
      const name = detached(t, rt, 'stats', ['--memory', '64m']);
      const stats = pm(['stats', '--no-stream', '--format', '{{.MemUsage}} {{.PIDs}}', name]).stdout.replace(/^\S+ \/ /, 'USAGE / ');
      return {
        stats,
        top: pm(['top', name, 'pid', 'comm'])
          .stdout.split('\n')
          .slice(1)
          .map(l => l.trim().split(/\s+/).join(' ')),
      };
    },
    { stats: 'USAGE / 67.11MB 1\n', top: ['1 sleep', ''] },
  );
});

t.test('kill with a signal, stop with a timeout, restart, rm -f', async t => {
  await bothRuntimes(
    t,
    rt => {
      // pid 1 ignores a signal it has no handler for: signal only once the trap is set
      const name = detached(t, rt, 'kill', [], ['sh', '-c', 'trap "echo got USR1; exit 7" USR1; echo ready; while :; do sleep 0.2; done']);
      const ready = waitFor(() => pm(['logs', name]).stdout === 'ready\n');
      const kill = pm(['kill', '--signal', 'USR1', name]).code;
      const exit = pm(['wait', name]).stdout.trim();
      return { ready, kill, exit, logs: pm(['logs', name]).stdout, killStopped: pm(['kill', name]).code };
    },
    { ready: true, kill: 0, exit: '7', logs: 'ready\ngot USR1\n', killStopped: 125 },
  );
  await bothRuntimes(
    t,
    rt => {
      // sleep as pid 1 has no TERM handler, so the kernel ignores TERM: podman must fall back to KILL
      const name = detached(t, rt, 'stop');
      const stop = pm(['stop', '-t', '1', name]).code;
      return { stop, status: inspect(name, '{{.State.Status}}'), exitCode: inspect(name, '{{.State.ExitCode}}') };
    },
    { stop: 0, status: 'exited', exitCode: '137' },
  );
  await bothRuntimes(
    t,
    rt => {
      const name = detached(t, rt, 'restart');
      const before = inspect(name, '{{.State.Pid}}');
      const restart = pm(['restart', '-t', '0', name]).code;
      const after = inspect(name, '{{.State.Pid}}');
      return {
        restart,
        newPid: after !== before && Number(after) > 0,
        status: inspect(name, '{{.State.Status}}'),
        exec: pm(['exec', name, 'echo', 'ok']).stdout,
      };
    },
    { restart: 0, newPid: true, status: 'running', exec: 'ok\n' },
  );
  await bothRuntimes(
    t,
    rt => {
      const name = detached(t, rt, 'rmf');
      const id = inspect(name, '{{.Id}}');
      const pid = Number(inspect(name, '{{.State.Pid}}'));
      const rm = pm(['rm', '-f', name]).code;
      const runtimeState = spawnSync(rt === 'tsrt' ? TSRT : '/usr/sbin/runc', ['state', id]);
      return {
        rm,
        gone: pm(['container', 'exists', name]).code,
        processGone: waitFor(() => !fs.existsSync(`/proc/${pid}`)),
        runtimeForgot: runtimeState.status !== 0 && /does not exist/.test(runtimeState.stderr.toString()),
      };
    },
    { rm: 0, gone: 1, processGone: true, runtimeForgot: true },
  );
});

t.test('--init runs catatonit as pid 1', async t => {
  // podman binds catatonit at /run/podman-init; the command is its child, not pid 1
  await bothRuntimes(
    t,
    rt => runRm(rt, ['--init'], ['sh', '-c', 'cat /proc/1/comm; [ $$ != 1 ] && echo child of init']).stdout,
    'podman-init\nchild of init\n',
  );
});

t.test('--read-only with --cap-drop', async t => {
  await bothRuntimes(
    t,
    rt => {
      const r = runRm(
        rt,
        ['--read-only', '--cap-drop', 'ALL'],
        ['sh', '-c', 'touch /x 2>&1; grep -E "^Cap(Eff|Bnd)" /proc/self/status; touch /tmp/ok && echo tmp writable'],
      );
      return r.stdout;
    },
    'touch: /x: Read-only file system\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\ntmp writable\n',
  );
});

t.test("--privileged and --device: the host's devices with their full st_mode as fileMode, every capability", async t => {
  const capBnd = /^CapBnd:\s*(\S+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1];
  const hostDevices = fs.readdirSync('/dev').length;
  await bothRuntimes(
    t,
    rt => {
      const r = runRm(rt, ['--privileged'], ['sh', '-c', 'grep ^CapEff: /proc/self/status | cut -f2; ls /dev | wc -l; ls /dev/fuse']);
      const [cap, count, fuse] = r.stdout.split('\n');
      return { code: r.code, cap, manyDevices: Number(count) > hostDevices / 2, fuse };
    },
    { code: 0, cap: capBnd, manyDevices: true, fuse: '/dev/fuse' },
  );
  await bothRuntimes(
    t,
    rt => runRm(rt, ['--device', '/dev/fuse'], ['sh', '-c', 'ls -l /dev/fuse | cut -c1; echo > /dev/null && echo usable']).stdout,
    'c\nusable\n',
  );
});

t.test('resources and process settings given at run: --memory, --cpus, --shm-size, --oom-score-adj', async t => {
  await bothRuntimes(
    t,
    rt =>
      runRm(
        rt,
        ['--memory', '100m', '--cpus', '0.5', '--shm-size', '32m', '--oom-score-adj', '100'],
        [
          'sh',
          '-c',
          'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /proc/self/oom_score_adj; df -k /dev/shm | tail -1 | tr -s " " | cut -d" " -f2',
        ],
      ).stdout,
    `${100 * 1024 * 1024}\n50000\n100\n32768\n`,
  );
});

t.test('--ulimit and --sysctl', async t => {
  await bothRuntimes(
    t,
    rt => runRm(rt, ['--ulimit', 'nofile=1024:2048', '--ulimit', 'nproc=300:400'], ['sh', '-c', 'ulimit -n; ulimit -Hn; ulimit -u']).stdout,
    '1024\n2048\n300\n',
  );
  await bothRuntimes(
    t,
    rt =>
      runRm(
        rt,
        ['--sysctl', 'net.ipv4.ip_forward=1', '--sysctl', 'kernel.msgmax=4096'],
        ['cat', '/proc/sys/net/ipv4/ip_forward', '/proc/sys/kernel/msgmax'],
      ).stdout,
    '1\n4096\n',
  );
});

t.test('--network none, host and the bridge', async t => {
  await bothRuntimes(t, rt => runRm(rt, ['--network', 'none'], ['sh', '-c', 'ls /sys/class/net']).stdout, 'lo\n');
  await bothRuntimes(t, rt => runRm(rt, ['--network', 'host'], ['readlink', '/proc/self/ns/net']).stdout, `${hostNs('net')}\n`);
  await bothRuntimes(
    t,
    rt => {
      const r = runRm(
        rt,
        ['--network', env.network],
        [
          'sh',
          '-c',
          `ip -4 -o addr show eth0 | grep -o "inet ${env.subnet.replace(/\./g, '\\.')}\\.[0-9]*"; ping -c 1 -W 5 ${env.subnet}.1 >/dev/null && echo gateway answers`,
        ],
      );
      return r.stdout.replace(/\.\d+\n/, '.N\n');
    },
    `inet ${env.subnet}.N\ngateway answers\n`,
  );
});

t.test('--pid, --ipc and --uts host', async t => {
  await bothRuntimes(
    t,
    rt =>
      runRm(
        rt,
        ['--pid', 'host', '--ipc', 'host', '--uts', 'host'],
        ['sh', '-c', 'for n in pid ipc uts; do readlink /proc/self/ns/$n; done; hostname'],
      ).stdout,
    `${hostNs('pid')}\n${hostNs('ipc')}\n${hostNs('uts')}\n${os.hostname()}\n`,
  );
});

t.test('container: namespaces', async t => {
  await bothRuntimes(
    t,
    rt => {
      const name = detached(t, rt, 'nsowner');
      const pid = inspect(name, '{{.State.Pid}}');
      const theirs = ['pid', 'net', 'ipc', 'uts'].map(k => fs.readlinkSync(`/proc/${pid}/ns/${k}`));
      const r = pm([
        '--runtime',
        rt,
        'run',
        '--rm',
        `--pid=container:${name}`,
        `--network=container:${name}`,
        `--ipc=container:${name}`,
        `--uts=container:${name}`,
        IMG,
        'sh',
        '-c',
        'for n in pid net ipc uts; do readlink /proc/self/ns/$n; done',
      ]);
      return { code: r.code, same: r.stdout === theirs.join('\n') + '\n' };
    },
    { code: 0, same: true },
  );
});

t.test("pods share the infra container's namespaces by path", async t => {
  await bothRuntimes(
    t,
    rt => {
      const pod = containerName(rt, 'pod');
      pm(['pod', 'rm', '-f', '-t', '0', pod]);
      const create = pm(['--runtime', rt, 'pod', 'create', '--name', pod, '--network', 'none']);
      t.teardown(() => void pm(['pod', 'rm', '-f', '-t', '0', pod]));
      const member = pm(['--runtime', rt, 'run', '-d', '--pod', pod, '--name', `${pod}-m`, IMG, 'sleep', '1000']);
      const infraId = pm(['pod', 'inspect', '--format', '{{.InfraContainerID}}', pod]).stdout.trim();
      const infraPid = inspect(infraId, '{{.State.Pid}}');
      const infra = ['net', 'ipc', 'uts'].map(k => fs.readlinkSync(`/proc/${infraPid}/ns/${k}`));
      const seen = pm(['exec', `${pod}-m`, 'sh', '-c', 'for n in net ipc uts; do readlink /proc/self/ns/$n; done']).stdout;
      const ownPid = pm(['exec', `${pod}-m`, 'cat', '/proc/1/comm']).stdout;
      return {
        create: create.code,
        member: member.code,
        infraRuns: inspect(infraId, '{{.State.Status}}'),
        shared: seen === infra.join('\n') + '\n',
        ownPid,
        stop: pm(['pod', 'stop', '-t', '0', pod]).code,
      };
    },
    { create: 0, member: 0, infraRuns: 'running', shared: true, ownPid: 'sleep\n', stop: 0 },
  );
});

t.test('--uidmap and --gidmap: a user namespace', async t => {
  await bothRuntimes(
    t,
    rt =>
      runRm(
        rt,
        ['--uidmap', '0:300000:65536', '--gidmap', '0:300000:65536'],
        ['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map | tr -s " "; id -u; touch /tmp/f && stat -c %u /tmp/f'],
      ).stdout,
    ' 0 300000 65536\n 0 300000 65536\n0\n0\n',
  );
});

t.test('--preserve-fds passes fd 3 into the container', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podman-tsrt-fds-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'payload'), 'through fd 3\n');
  await bothRuntimes(
    t,
    rt => {
      const fd = fs.openSync(path.join(dir, 'payload'), 'r');
      try {
        const r = runRm(rt, ['--preserve-fds', '1'], ['sh', '-c', 'cat <&3; ls /proc/self/fd | sort -n | tr "\\n" " "'], {
          stdio: ['pipe', 'pipe', 'pipe', fd],
        });
        return r.stdout;
      } finally {
        fs.closeSync(fd);
      }
    },
    'through fd 3\n0 1 2 3 4 ',
  ); // 4: the directory ls reads
});

t.test("exec --preserve-fds passes fd 3 into the exec'd process", async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podman-tsrt-fds-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'payload'), 'exec through fd 3\n');
  await bothRuntimes(
    t,
    rt => {
      const name = detached(t, rt, 'execfds');
      const fd = fs.openSync(path.join(dir, 'payload'), 'r');
      try {
        return pm(['exec', '--preserve-fds', '1', name, 'sh', '-c', 'cat <&3'], { stdio: ['pipe', 'pipe', 'pipe', fd] }).stdout;
      } finally {
        fs.closeSync(fd);
      }
    },
    'exec through fd 3\n',
  );
});

t.test('stop of a --pid host container: podman signals every process of it (kill --all)', async t => {
  await bothRuntimes(
    t,
    rt => {
      const name = detached(t, rt, 'pidhost', ['--pid', 'host'], ['sh', '-c', 'sleep 1001 & exec sleep 1002']);
      const pid = inspect(name, '{{.State.Pid}}');
      const cgroupLine = fs
        .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
        .split('\n')
        .find(l => /:pids:/.test(l))!;
      const procs = `/sys/fs/cgroup/pids${cgroupLine.split(':')[2]}/cgroup.procs`;
      const count = () => fs.readFileSync(procs, 'utf8').trim().split('\n').length;
      const before = waitFor(() => count() === 2) ? 2 : count();
      const stop = pm(['stop', '-t', '1', name]).code;
      const left = fs.existsSync(procs) ? fs.readFileSync(procs, 'utf8').trim() : '';
      return { before, stop, status: inspect(name, '{{.State.Status}}'), left };
    },
    { before: 2, stop: 0, status: 'exited', left: '' },
  );
});

t.test('the default seccomp profile is applied, and unconfined lifts it', async t => {
  await bothRuntimes(
    t,
    rt => runRm(rt, [], ['sh', '-c', 'grep -E "^Seccomp(_filters)?:" /proc/self/status']).stdout,
    'Seccomp:\t2\nSeccomp_filters:\t1\n',
  );
  await bothRuntimes(
    t,
    rt => runRm(rt, ['--security-opt', 'seccomp=unconfined'], ['grep', '^Seccomp:', '/proc/self/status']).stdout,
    'Seccomp:\t0\n',
  );
});
