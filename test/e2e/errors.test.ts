// End-to-end failures, as root, through the built dist/tsrt: each case exits 1 with the runc-style message on
// stderr, and a failed create/run leaves nothing behind (no state directory, no host mount, no process).
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  alive,
  e2eFile,
  hostMountsContaining,
  lastErrorMessage as errorMsg,
  startConsoleReceiver,
  tsrt,
  type Edit,
  type Scope,
} from '../helpers.js';

/** tsrt with its stdio on files: a container process wrongly left behind cannot keep a pipe of ours open. */
const {
  ROOT,
  scope,
  rtFiles: rt,
  waitFor,
} = e2eFile(t, {
  name: 'errors',
  idPrefix: 'err',
  needsRoot: 'error tests need root',
  timeoutMinutes: 10,
});

function stateOf(s: Scope, id: string): any {
  const r = rt(s, ['state', id]);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

/** Processes whose root, cwd, exe, command line or any open fd refers to the bundle (or its rootfs). */
function processesUsing(bundle: string): string[] {
  const rootfs = statOrUndefined(path.join(bundle, 'rootfs'));
  const found: string[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const base = `/proc/${name}`;
    try {
      const links: string[] = [];
      for (const l of ['cwd', 'root', 'exe']) {
        try {
          links.push(fs.readlinkSync(`${base}/${l}`));
        } catch {
          /* kernel thread or gone */
        }
      }
      try {
        for (const fd of fs.readdirSync(`${base}/fd`)) {
          try {
            links.push(fs.readlinkSync(`${base}/fd/${fd}`));
          } catch {
            /* closed meanwhile */
          }
        }
      } catch {
        /* gone */
      }
      const cmd = fs.readFileSync(`${base}/cmdline`, 'utf8').replaceAll('\0', ' ');
      let sameRoot = false;
      if (rootfs) {
        for (const l of ['root', 'cwd']) {
          const st = statOrUndefined(`${base}/${l}`);
          if (st && st.dev === rootfs.dev && st.ino === rootfs.ino) sameRoot = true;
        }
      }
      if (sameRoot || cmd.includes(bundle) || links.some(l => l.includes(bundle))) found.push(`${name}: ${cmd}`);
    } catch {
      /* exited while we looked */
    }
  }
  return found;
}

/** Asserts that a failed command left no container state, host mount or process behind. */
function assertNothingLeft(tt: Test, bundle: string, id: string): void {
  if (id && !id.includes('/') && !id.startsWith('.')) tt.notOk(fs.existsSync(path.join(ROOT, id)), `no ${ROOT}/${id}`);
  tt.same(hostMountsContaining(bundle), [], 'no host mount mentions the bundle');
  tt.ok(
    waitFor(() => processesUsing(bundle).length === 0, 20),
    'no process left using the bundle',
  );
  tt.same(processesUsing(bundle), []);
}

t.test('the leftover checks see the process and state of a created container (control)', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sleep', '1000']);
  const id = s.id();
  const r = rt(s, ['create', '-b', bundle, id]);
  tt.equal(r.code, 0, r.stderr);
  tt.ok(fs.existsSync(path.join(ROOT, id)), 'state directory seen');
  tt.not(processesUsing(bundle).length, 0, 'the waiting init is seen');
  tt.equal(rt(s, ['delete', '--force', id]).code, 0);
  tt.ok(
    waitFor(() => processesUsing(bundle).length === 0),
    'and gone after delete',
  );
  tt.notOk(fs.existsSync(path.join(ROOT, id)));
});

interface Case {
  name: string;
  /** Prepares the bundle (in a scratch dir of the test) and returns its path. */
  bundle: (s: Scope) => string;
  /** The verb: create (default) or run. */
  verb?: 'create' | 'run';
  /** The exact message, or a pattern that clearly identifies it. */
  message: string | RegExp | ((bundle: string) => string | RegExp);
}

const withConfig =
  (edit: Edit, args: string[] = ['true']) =>
  (s: Scope) =>
    s.bundle(args, edit);

const cases: Case[] = [
  {
    name: 'create fails when the bundle directory does not exist',
    bundle: s => path.join(s.dir(), 'no-such-bundle'),
    message: b => `open ${b}/config.json: no such file or directory`,
  },
  {
    name: 'create fails when the bundle has no config.json',
    bundle: s => {
      const b = path.join(s.dir(), 'bundle');
      fs.mkdirSync(path.join(b, 'rootfs'), { recursive: true });
      return b;
    },
    message: b => `open ${b}/config.json: no such file or directory`,
  },
  {
    name: 'create fails on a config.json that is not JSON',
    bundle: s => {
      const b = s.bundle(['true']);
      fs.writeFileSync(path.join(b, 'config.json'), '{"ociVersion": "1.2.0", ');
      return b;
    },
    message: /^config\.json: invalid JSON/,
  },
  {
    name: 'create fails on a schema violation, naming the JSON pointer and the rule',
    bundle: withConfig(spec => {
      spec.process.args = 'true';
    }),
    message: 'config.json: /process/args: must be array',
  },
  {
    name: 'create fails when ociVersion is missing',
    bundle: withConfig(spec => {
      delete spec.ociVersion;
    }),
    message: "config.json: /: must have required property 'ociVersion'",
  },
  {
    name: 'create fails on an unsupported ociVersion (2.0.0)',
    bundle: withConfig(spec => {
      spec.ociVersion = '2.0.0';
    }),
    message: /unsupported runtime-spec version "2\.0\.0"/,
  },
  {
    name: 'create fails when the rootfs does not exist',
    bundle: withConfig(spec => {
      spec.root.path = 'no-such-rootfs';
    }),
    message: b => `invalid rootfs: stat ${b}/no-such-rootfs: no such file or directory`,
  },
  {
    name: 'create fails when the rootfs is a file',
    bundle: s => {
      const b = s.bundle(['true'], spec => {
        spec.root.path = 'rootfs-file';
      });
      fs.writeFileSync(path.join(b, 'rootfs-file'), 'not a directory\n');
      return b;
    },
    message: b => `invalid rootfs: ${b}/rootfs-file: not a directory`,
  },
  {
    name: 'create fails when the executable is not in $PATH, leaving no state',
    bundle: withConfig(() => {}, ['no-such-command']),
    message: 'unable to start container process: exec: "no-such-command": executable file not found in $PATH',
  },
  {
    name: 'run fails when the executable is not in $PATH, leaving no state',
    verb: 'run',
    bundle: withConfig(() => {}, ['no-such-command']),
    message: 'unable to start container process: exec: "no-such-command": executable file not found in $PATH',
  },
  {
    name: 'create fails when args[0] is not executable (permission denied)',
    bundle: withConfig(() => {}, ['/etc/passwd']),
    message: 'unable to start container process: exec: "/etc/passwd": permission denied',
  },
  {
    name: 'create fails on a mount with a relative destination',
    bundle: withConfig(spec => {
      spec.mounts.push({ destination: 'relative/dir', type: 'tmpfs', source: 'tmpfs' });
    }),
    message: /"relative\/dir".*must be an absolute path/,
  },
  {
    name: 'create fails on a hostname without a uts namespace',
    bundle: withConfig(spec => {
      spec.hostname = 'needs-uts';
      spec.linux.namespaces = spec.linux.namespaces.filter((n: any) => n.type !== 'uts');
    }),
    message: /unable to set hostname without a private UTS namespace/,
  },
  {
    name: 'create fails on a sysctl that is not namespaced (kernel.panic)',
    bundle: withConfig(spec => {
      spec.linux.sysctl = { 'kernel.panic': '1' };
    }),
    message: /sysctl "kernel\.panic" is not in a separate kernel namespace/,
  },
  {
    name: 'create fails on an unknown capability name',
    bundle: withConfig(spec => {
      spec.process.capabilities.bounding.push('CAP_NO_SUCH_THING');
    }),
    message: /unknown capability "CAP_NO_SUCH_THING"/,
  },
  {
    name: 'create fails when the rootfs /proc is a symlink, and mounts nothing through it',
    bundle: s => {
      const b = s.bundle(['true']);
      const proc = path.join(b, 'rootfs/proc');
      fs.rmdirSync(proc);
      // Points at a host directory: a runtime that followed it would mount proc onto the host.
      fs.mkdirSync(path.join(b, 'host-target'));
      fs.symlinkSync(path.join(b, 'host-target'), proc);
      return b;
    },
    // runc's words (CVE-2019-19921's fix), which scripts look for.
    message: /error mounting "proc" to rootfs at "\/proc": filesystem "proc" must be mounted on ordinary directory/,
  },
];

for (const c of cases) {
  t.test(c.name, async tt => {
    const s = scope(tt);
    const bundle = c.bundle(s);
    const id = s.id();
    const r = rt(s, [c.verb ?? 'create', '-b', bundle, id]);
    tt.equal(r.code, 1, 'exit status 1');
    const msg = errorMsg(r.stderr);
    tt.ok(msg !== undefined, `an error line on stderr: ${r.stderr}`);
    const want = typeof c.message === 'function' ? c.message(bundle) : c.message;
    if (typeof want === 'string') tt.equal(msg, want);
    else tt.match(msg, want);
    tt.equal(r.stdout, '', 'nothing on stdout');
    assertNothingLeft(tt, bundle, id);
    tt.notOk(tsrt(['state', id], { root: ROOT }).code === 0, 'state does not know the id');
    const hostTarget = path.join(bundle, 'host-target');
    if (fs.existsSync(hostTarget)) tt.same(fs.readdirSync(hostTarget), [], 'nothing appeared through the symlink');
  });
}

/** Where cgroup hierarchies are mounted (cgroup and cgroup2 lines of our mountinfo). */
function cgroupMountPoints(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(l => / - cgroup2? /.test(l))
    .map(l => l.split(' ')[4]!.replace(/\\040/g, ' '));
}

t.test(
  'a config the plan refuses is refused before anything is made: no state dir, cgroup or console connection, even for a moment',
  async tt => {
    const s = scope(tt);
    const id = s.id();
    const cgroup = `tsrt-planfirst-${process.pid}`;
    const bundle = s.bundle(['true'], spec => {
      spec.process.terminal = true;
      spec.process.capabilities.bounding.unshift('CAP_NO_SUCH_THING');
      spec.linux.cgroupsPath = `/${cgroup}`;
    });
    const receiver = startConsoleReceiver(tt, s);
    tt.ok(
      waitFor(() => fs.existsSync(receiver.sock)),
      'the console receiver listens',
    );
    /** The receiver takes one connection and writes what it got to out.fds: a connection at all shows there. */
    const connected = () => fs.existsSync(`${receiver.out}.fds`);
    /** What `create` made under ROOT and in the cgroup hierarchies, even if only for a moment (inotify). */
    const createWatched = async (args: string[], id: string) => {
      const made: string[] = [];
      const watchers = [ROOT, ...cgroupMountPoints()].map(dir =>
        fs.watch(dir, (_, name) => {
          if (name === id || name === cgroup) made.push(path.join(dir, String(name)));
        }),
      );
      const r = rt(s, ['create', '--console-socket', receiver.sock, ...args, id]);
      // Events and a connection queued while create ran are delivered once the loop turns.
      await new Promise(res => setTimeout(res, 200));
      for (const w of watchers) w.close();
      return { r, made };
    };

    const { r, made } = await createWatched(['-b', bundle], id);
    tt.equal(r.code, 1, 'exit status 1');
    tt.equal(errorMsg(r.stderr), 'config.json: /process/capabilities/bounding/0: unknown capability "CAP_NO_SUCH_THING"');
    tt.same(made, [], 'no state dir or cgroup was made (and rolled back)');
    tt.notOk(connected(), 'the console socket was never connected');
    assertNothingLeft(tt, bundle, id);
    tt.same(
      cgroupMountPoints().filter(mp => fs.existsSync(path.join(mp, cgroup))),
      [],
      'no cgroup left',
    );

    // Control: the same watch sees what a create that is accepted makes.
    const good = s.bundle(['true'], spec => {
      spec.process.terminal = true;
      spec.linux.cgroupsPath = `/${cgroup}`;
    });
    const goodId = s.id();
    const control = await createWatched(['-b', good], goodId);
    tt.equal(control.r.code, 0, control.r.stderr);
    tt.ok(control.made.includes(path.join(ROOT, goodId)), 'control: the state dir is seen');
    tt.ok(
      control.made.some(p => p.endsWith(`/${cgroup}`)),
      'control: the cgroup is seen',
    );
    tt.ok(waitFor(connected), 'control: the console socket is connected');
    tt.equal(rt(s, ['delete', '--force', goodId]).code, 0);
  },
);

// ---------------------------------------------------------------------------------------------------------
// ids

for (const [label, bad, message] of [
  ['../x', '../x', 'invalid id format: ../x'],
  ['a/b', 'a/b', 'invalid id format: a/b'],
  // runc says "container id cannot be empty" for ""; either wording identifies the refusal.
  ['the empty string', '', /^(container id cannot be empty|invalid id format: ?)$/],
] as const) {
  t.test(`create refuses the invalid id ${label}`, async tt => {
    const s = scope(tt);
    const bundle = s.bundle(['true']);
    const before = fs.readdirSync(ROOT);
    // ROOT/../x is a shared path (/tmp/x): judge what this create did to it, not whether anything is there.
    const escaped = path.resolve(ROOT, '..', 'x');
    const listing = (p: string) => (fs.existsSync(p) ? fs.readdirSync(p) : null);
    const target = path.resolve(ROOT, bad);
    const escapedBefore = listing(escaped);
    const targetBefore = bad === '' ? null : listing(target);
    const r = rt(s, ['create', '-b', bundle, bad]);
    tt.equal(r.code, 1);
    const msg = errorMsg(r.stderr);
    if (typeof message === 'string') tt.equal(msg, message);
    else tt.match(msg, message);
    tt.same(fs.readdirSync(ROOT), before, 'nothing new under the root');
    tt.same(bad === '' ? null : listing(target), targetBefore, 'nothing at root/<id>');
    tt.same(listing(escaped), escapedBefore, 'nothing escaped the root');
    assertNothingLeft(tt, bundle, '');
  });
}

for (const verb of ['state', 'start', 'kill', 'delete']) {
  t.test(`${verb} of an unknown id fails with "container does not exist"`, async tt => {
    const s = scope(tt);
    const id = s.id('unknown');
    const r = rt(s, [verb, id]);
    tt.equal(r.code, 1);
    tt.equal(errorMsg(r.stderr), 'container does not exist');
    tt.notOk(fs.existsSync(path.join(ROOT, id)), 'nothing created for it');
  });
}

t.test('delete --force of an unknown id succeeds silently', async tt => {
  const s = scope(tt);
  const r = rt(s, ['delete', '--force', s.id('unknown')]);
  tt.equal(r.code, 0);
  tt.equal(r.stderr, '');
});

// ---------------------------------------------------------------------------------------------------------
// operations refused in the wrong state: the container is left as it was

function createContainer(tt: Test, s: Scope, args: string[] = ['sleep', '1000']) {
  const bundle = s.bundle(args);
  const id = s.id();
  const r = rt(s, ['create', '-b', bundle, id]);
  tt.equal(r.code, 0, `create: ${r.stderr}`);
  return { id, bundle, out: r.out, pid: stateOf(s, id)?.pid as number };
}

function runningContainer(tt: Test, s: Scope) {
  const c = createContainer(tt, s, ['sh', '-c', 'echo ready; exec sleep 1000']);
  const st = rt(s, ['start', c.id]);
  tt.equal(st.code, 0, `start: ${st.stderr}`);
  waitFor(() => fs.readFileSync(c.out, 'utf8').includes('ready'));
  return c;
}

t.test('create with an id that exists fails and leaves the first container alone', async tt => {
  const s = scope(tt);
  const first = createContainer(tt, s);
  const before = stateOf(s, first.id);
  const other = s.bundle(['true']);
  const r = rt(s, ['create', '-b', other, first.id]);
  tt.equal(r.code, 1);
  tt.equal(errorMsg(r.stderr), `container with id exists: ${first.id}`);
  const after = stateOf(s, first.id);
  tt.same(after, before, 'state unchanged (same pid, bundle, status)');
  tt.ok(alive(first.pid), 'the first init is alive');
  tt.ok(fs.existsSync(path.join(ROOT, first.id, 'exec.fifo')), 'still waiting for start');
  tt.same(hostMountsContaining(other), []);
  tt.same(processesUsing(other), [], 'nothing runs from the second bundle');
  const st = rt(s, ['start', first.id]);
  tt.equal(st.code, 0, 'the first container still starts');
});

t.test('start of a running container fails with "cannot start an already running container"', async tt => {
  const s = scope(tt);
  const c = runningContainer(tt, s);
  const r = rt(s, ['start', c.id]);
  tt.equal(r.code, 1);
  tt.equal(errorMsg(r.stderr), 'cannot start an already running container');
  tt.equal(stateOf(s, c.id)?.status, 'running');
  tt.ok(alive(c.pid));
});

t.test('start of a stopped container fails with "cannot start a container that has stopped"', async tt => {
  const s = scope(tt);
  const c = createContainer(tt, s, ['true']);
  tt.equal(rt(s, ['start', c.id]).code, 0);
  tt.ok(
    waitFor(() => stateOf(s, c.id)?.status === 'stopped'),
    'stopped after true exited',
  );
  const r = rt(s, ['start', c.id]);
  tt.equal(r.code, 1);
  tt.equal(errorMsg(r.stderr), 'cannot start a container that has stopped');
  tt.equal(stateOf(s, c.id)?.status, 'stopped');
});

t.test('delete of a running container without --force fails and leaves it running', async tt => {
  const s = scope(tt);
  const c = runningContainer(tt, s);
  const r = rt(s, ['delete', c.id]);
  tt.equal(r.code, 1);
  tt.equal(errorMsg(r.stderr), `cannot delete container ${c.id} that is not stopped: running`);
  tt.equal(stateOf(s, c.id)?.status, 'running');
  tt.ok(alive(c.pid));
});

t.test('kill with an unknown signal name fails with unknown signal "bogus"', async tt => {
  const s = scope(tt);
  const c = runningContainer(tt, s);
  const r = rt(s, ['kill', c.id, 'bogus']);
  tt.equal(r.code, 1);
  tt.equal(errorMsg(r.stderr), 'unknown signal "bogus"');
  tt.equal(stateOf(s, c.id)?.status, 'running');
});

t.test('kill of a stopped container fails with "container not running"', async tt => {
  const s = scope(tt);
  const c = createContainer(tt, s, ['true']);
  tt.equal(rt(s, ['start', c.id]).code, 0);
  tt.ok(waitFor(() => stateOf(s, c.id)?.status === 'stopped'));
  const r = rt(s, ['kill', c.id, 'KILL']);
  tt.equal(r.code, 1);
  tt.equal(errorMsg(r.stderr), 'container not running');
});

// ---------------------------------------------------------------------------------------------------------
// how errors are reported

t.test('--log FILE --log-format json writes a JSON error line to FILE and the bare message to stderr', async tt => {
  const s = scope(tt);
  const log = path.join(s.dir(), 'tsrt.log');
  const id = s.id('unknown');
  const r = rt(s, ['--log', log, '--log-format', 'json', 'state', id]);
  tt.equal(r.code, 1);
  tt.equal(r.stderr, 'container does not exist\n', 'bare message on stderr');
  const lines = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  tt.equal(lines.length, 1, 'one line in the log');
  const entry = JSON.parse(lines[0]!);
  tt.equal(entry.level, 'error');
  tt.equal(entry.msg, 'container does not exist');
  tt.type(entry.time, 'string');
  tt.notOk(Number.isNaN(Date.parse(entry.time)), 'time is a timestamp');
});

t.test('without --log, stderr carries a text log line with level=error msg=', async tt => {
  const s = scope(tt);
  const r = rt(s, ['state', s.id('unknown')]);
  tt.equal(r.code, 1);
  tt.match(r.stderr, /^time="[^"]+" level=error msg="container does not exist"\n$/);
});
