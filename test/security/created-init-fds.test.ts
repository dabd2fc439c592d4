// Issue 13, finding 7: a created (not yet started) container's init held, while it waited on exec.fifo, an
// O_PATH handle of the root, a handle of the executor's private, unmasked procfs, the sync socket and the
// sealed helper's memfd. runc's init holds stdio and the fifo (and its Go runtime's poller). Each test lists
// /proc/<init>/fd of a created container, for tsrt and, in the same test, for runc (/usr/sbin/runc).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Scope } from '../helpers.js';
import { consoleReceiver, poll, rtFiles, securityRoot } from '../security-kit.js';

const sec = securityRoot(t, 'created-init-fds');
const RUNC = '/usr/sbin/runc';

/** What a waiting init's fds point at, except stdio and the exec fifo. */
function extraHandles(pid: number, fifo: string): string[] {
  const extra: string[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    if (['0', '1', '2'].includes(fd)) continue;
    const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    if (target !== fifo) extra.push(`${fd} -> ${target}`);
  }
  return extra;
}

/** runc's init is a Go program: its runtime's poller (an epoll fd and its wake-up pipe) is not the container's. */
const goRuntime = (handle: string): boolean => /-> (anon_inode:\[eventpoll\]|anon_inode:\[eventfd\]|pipe:\[\d+\])$/.test(handle);

function stdioOf(pid: number): string[] {
  return ['0', '1', '2'].map(fd => fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
}

type Runtime = {
  name: string;
  create(s: Scope, bundle: string, id: string, extra: string[]): number | undefined;
  fifo(id: string): string;
  remove(id: string): void;
};

const tsrtRuntime: Runtime = {
  name: 'tsrt',
  create(s, bundle, id, extra) {
    const r = rtFiles(sec.root, s, ['create', ...extra, '-b', bundle, id]);
    return r.code === 0 ? JSON.parse(sec.rt(['state', id]).stdout).pid : undefined;
  },
  fifo: id => path.join(sec.root, id, 'exec.fifo'),
  remove: id => void sec.rt(['delete', '--force', id]),
};

function runcRuntime(root: string): Runtime {
  const runc = (args: string[], o: object = {}) => spawnSync(RUNC, ['--root', root, ...args], { timeout: 60_000, ...o });
  return {
    name: 'runc',
    create(s, bundle, id, extra) {
      const out = fs.openSync(path.join(s.dir(), 'runc.out'), 'w');
      const r = runc(['create', ...extra, '-b', bundle, id], { stdio: ['ignore', out, out] });
      fs.closeSync(out);
      return r.status === 0 ? JSON.parse(runc(['state', id]).stdout.toString()).pid : undefined;
    },
    fifo: id => path.join(root, id, 'exec.fifo'),
    remove: id => void runc(['delete', '--force', id]),
  };
}

const runtimes = (s: Scope): Runtime[] => (fs.existsSync(RUNC) ? [tsrtRuntime, runcRuntime(s.dir())] : [tsrtRuntime]);

t.test('finding 7: a created init waits holding stdio and the exec fifo only', async tt => {
  const s = sec.scope(tt);
  if (!fs.existsSync(RUNC)) tt.comment(`${RUNC} is not installed: tsrt only`);
  for (const rt of runtimes(s)) {
    const bundle = s.bundle(['sh', '-c', 'echo started']);
    const id = s.id();
    const pid = rt.create(s, bundle, id, []);
    tt.ok(pid, `${rt.name}: create succeeds`);
    if (!pid) continue;
    const extra = extraHandles(pid, rt.fifo(id));
    if (rt.name === 'runc') {
      tt.same(
        extra.filter(h => !goRuntime(h)),
        [],
        `runc: nothing beyond stdio, the fifo and Go's poller (${extra.join(', ')})`,
      );
    } else {
      tt.same(extra, [], 'tsrt: nothing beyond stdio and the fifo (no root, procfs, socket or memfd handle)');
      tt.equal(sec.rt(['start', id]).code, 0, 'start still starts it');
      tt.ok(
        poll(() => JSON.parse(sec.rt(['state', id]).stdout).status === 'stopped'),
        'and the process ran to its end',
      );
    }
    rt.remove(id);
  }
});

t.test('finding 7: with a terminal, stdio is the pty and nothing else is held either', async tt => {
  const s = sec.scope(tt);
  for (const rt of runtimes(s)) {
    const rx = consoleReceiver(tt, s);
    const bundle = s.bundle(['sh', '-c', 'echo started'], spec => {
      spec.process.terminal = true;
    });
    const id = s.id();
    const pid = rt.create(s, bundle, id, ['--console-socket', rx.sock]);
    tt.ok(pid, `${rt.name}: create succeeds`);
    if (!pid) continue;
    tt.ok(
      stdioOf(pid).every(f => /^\/dev\/pts\/\d+$/.test(f)),
      `${rt.name}: stdio is the pty slave (${stdioOf(pid).join(', ')})`,
    );
    const extra = extraHandles(pid, rt.fifo(id));
    if (rt.name === 'runc') {
      // runc keeps one more handle of the same pty slave: the container's own terminal, no host object.
      const pty = stdioOf(pid)[0];
      tt.same(
        extra.filter(h => !goRuntime(h) && !h.endsWith(`-> ${pty}`)),
        [],
        `runc: nothing beyond the pty, the fifo and Go's poller (${extra.join(', ')})`,
      );
    } else {
      tt.same(extra, [], 'tsrt: nothing beyond the pty and the fifo');
    }
    rt.remove(id);
  }
});

t.test('finding 7: without a /proc in the container, the init still waits on the fifo (through its private procfs)', async tt => {
  const s = sec.scope(tt);
  const out = s.dir();
  const bundle = s.bundle(['sh', '-c', 'echo started > /out/file'], spec => {
    spec.mounts = spec.mounts.filter((m: any) => m.destination !== '/proc');
    spec.mounts.push({ destination: '/out', type: 'bind', source: out, options: ['rbind', 'rw'] });
  });
  // The image's own /proc/self/fd/<n>: FIFOs nobody reads. Taken for the exec fifo, they would block the
  // init's open for ever; only a procfs showing the real fifo is used.
  const fake = path.join(bundle, 'rootfs/proc/self/fd');
  fs.mkdirSync(fake, { recursive: true });
  for (let fd = 3; fd < 64; fd++) spawnSync('/usr/bin/mkfifo', [path.join(fake, String(fd))]);
  const id = s.id();
  const pid = tsrtRuntime.create(s, bundle, id, []);
  tt.ok(pid, 'create succeeds');
  if (!pid) return;
  tt.notOk(fs.existsSync(`/proc/${pid}/root/proc/1`), 'the container has no procfs at /proc');
  tt.equal(sec.rt(['start', id]).code, 0, 'start succeeds');
  tt.ok(
    poll(() => fs.existsSync(path.join(out, 'file'))),
    'the process ran',
  );
  tt.equal(fs.existsSync(path.join(out, 'file')) && fs.readFileSync(path.join(out, 'file'), 'utf8'), 'started\n');
});
