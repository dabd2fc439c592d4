// Property test of the state-record readers (issue 13): a container's state.json and an instance record of
// tsrt-singularity, damaged at random (a field removed or given a value of another type, the file cut short
// or replaced by noise), are read by what `state`, `list` and `instance list` run. Each either works or gives
// a RuntimeError naming the file (a damaged instance record is treated as no record); never a JavaScript
// TypeError from a field used as the wrong type. Seeded: TSRT_PROPERTY_SEED=N replays a run.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RuntimeError } from '../../src/errors.js';
import { state } from '../../src/runtime/container.js';
import { listIds } from '../../src/runtime/state.js';
import { listInstances, readInstance } from '../../src/singularity/instance.js';
import { random, type Random } from '../property-kit.js';

const SEED = Number(process.env['TSRT_PROPERTY_SEED'] ?? 13);
const ITERATIONS = 300;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-record-property-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A record as `create` writes one (stopped: pid 0), with every optional part present. */
const RECORD = {
  ociVersion: '1.2.0',
  id: 'c1',
  pid: 0,
  bundle: '/b',
  rootfs: '/b/rootfs',
  created: '2026-01-01T00:00:00.000Z',
  owner: 'root',
  annotations: { 'org.example': 'x' },
  initStartTime: '',
  privatePidns: true,
  rootless: false,
  hooks: { poststop: [{ path: '/bin/true', args: ['true'], env: ['A=1'], timeout: 5 }] },
  imageRootfs: {
    image: '/i.sif',
    field: '/root/path',
    base: '/s/c1/image-rootfs',
    mountDir: '/run/tsrt-images/c1-x',
    rootfs: '/run/tsrt-images/c1-x/lower',
    overlay: false,
  },
  netDevices: [{ hostName: 'eth9', name: 'eth0' }],
  resctrl: { group: 'g', createdGroup: true },
  cgroup: {
    layout: 'v2',
    dirs: [{ key: 'unified', mountPoint: '/sys/fs/cgroup', dir: '/sys/fs/cgroup/none' }],
    created: [],
    v1Controllers: [],
    rootless: false,
  },
  exec: { process: { args: ['sh'], cwd: '/' }, linux: {}, noNewKeyring: false },
};

const INSTANCE = {
  name: 'web',
  pid: 1,
  pidStartTime: '1',
  monitorPid: 1,
  monitorStartTime: '1',
  image: '/i.sif',
  id: 'instance-web',
  cwd: '/',
  started: '2026-01-01T00:00:00.000Z',
  logOutPath: '/l.out',
  logErrPath: '/l.err',
};

const ODD_VALUES: unknown[] = [null, -1, 1.5, 2 ** 60, '', 'x', [], {}, true, [1], { a: 1 }, ['x'], 'NaN'];

/** Every path (as key lists) into an object, containers included. */
function paths(v: unknown, prefix: string[] = []): string[][] {
  if (!v || typeof v !== 'object') return [];
  return Object.entries(v as object).flatMap(([k, e]) => [[...prefix, k], ...paths(e, [...prefix, k])]);
}

/** The record damaged one way, as file text, and how. */
function damage(rnd: Random, doc: object): { text: string; how: string } {
  const copy = JSON.parse(JSON.stringify(doc));
  const all = paths(copy);
  switch (rnd.int(4)) {
    case 0: {
      const p = rnd.pick(all);
      const parent = p.slice(0, -1).reduce((o: any, k) => o[k], copy);
      const value = rnd.pick(ODD_VALUES);
      parent[p[p.length - 1]!] = value;
      return { text: JSON.stringify(copy), how: `/${p.join('/')} = ${JSON.stringify(value)}` };
    }
    case 1: {
      const p = rnd.pick(all);
      const parent = p.slice(0, -1).reduce((o: any, k) => o[k], copy);
      delete parent[p[p.length - 1]!];
      return { text: JSON.stringify(copy), how: `/${p.join('/')} removed` };
    }
    case 2: {
      const text = JSON.stringify(copy);
      const len = rnd.int(text.length);
      return { text: text.slice(0, len), how: `cut to ${len} characters` };
    }
    default: {
      const text = rnd.pick(['[]', '42', 'null', '"s"', '{}', '', String.fromCharCode(...Array.from({ length: 40 }, () => rnd.int(256)))]);
      return { text, how: `replaced by ${JSON.stringify(text)}` };
    }
  }
}

t.test(`a container's state.json damaged ${ITERATIONS} ways (seed ${SEED}): state and list answer or say it is corrupt`, async tt => {
  const root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'c1'), { recursive: true, mode: 0o700 });
  fs.chmodSync(root, 0o700);
  const rnd = random(SEED);
  const bad: string[] = [];
  let answered = 0;
  let corrupt = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const { text, how } = damage(rnd, RECORD);
    fs.writeFileSync(path.join(root, 'c1', 'state.json'), text);
    try {
      listIds(root);
      state(root, 'c1');
      answered++;
    } catch (e) {
      if (e instanceof RuntimeError && /corrupt state file .*state\.json|container does not exist/.test(e.message)) corrupt++;
      else bad.push(`iteration ${i} (${how}): ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    }
  }
  tt.same(bad, [], 'no TypeError or other error than "corrupt state file" (or, for a record that is not ours, "does not exist")');
  tt.ok(answered > 0 && corrupt > 0, `both outcomes were exercised (${answered} answered, ${corrupt} refused)`);
  fs.writeFileSync(path.join(root, 'c1', 'state.json'), JSON.stringify({ ...RECORD, pid: 'x' }));
  tt.throws(
    () => state(root, 'c1'),
    /corrupt state file .*c1\/state\.json: \/pid is not a non-negative integer/,
    'the message names the field',
  );
});

t.test(`an instance record damaged ${ITERATIONS} ways (seed ${SEED}): taken for no instance, never a crash`, async tt => {
  const xdg = path.join(dir, 'xdg');
  fs.mkdirSync(xdg, { mode: 0o700 });
  process.env['XDG_RUNTIME_DIR'] = xdg;
  const records = path.join(xdg, 'tsrt-singularity', 'instances');
  fs.mkdirSync(records, { recursive: true, mode: 0o700 });
  const rnd = random(SEED + 1);
  const bad: string[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const { text, how } = damage(rnd, INSTANCE);
    fs.writeFileSync(path.join(records, 'web.json'), text);
    try {
      const rec = readInstance('web');
      if (rec)
        tt.ok(
          typeof rec.pid === 'number' && typeof rec.pidStartTime === 'string',
          `iteration ${i}: a record read back has its fields' types`,
        );
      const live = listInstances();
      if (live.length) bad.push(`iteration ${i} (${how}): a record naming pid 1 with start time 1 was taken for a live instance`);
    } catch (e) {
      bad.push(`iteration ${i} (${how}): ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    }
  }
  tt.same(bad, [], 'no error, and no damaged record taken for a running instance');
});
