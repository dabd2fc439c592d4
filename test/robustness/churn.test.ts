// Churn: 1000 containers (busybox `true`; at least 200 when 2.5 minutes are not enough) created, started and
// deleted through the library in this process, two alive at a time; afterwards nothing of them is left: no
// state dir, mount, cgroup, process, zombie, and not one more fd in this process than before. TSRT_CHURN_COUNT overrides the number (for a quick local run).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create, remove, start } from '../../src/index.js';
import { boundedRounds, makeBundle, tmpdir } from '../helpers.js';
import * as left from './fixtures/leftovers.js';

t.setTimeout(15 * 60_000);

if (process.geteuid?.() !== 0) {
  t.plan(0, 'churn needs root');
  process.exit(0);
}

const COUNT = Number(process.env['TSRT_CHURN_COUNT'] ?? 1000);
const ROOT = tmpdir('tsrt-churn-root-');
const ID_PREFIX = `churn${process.pid}-`;
const bundle = makeBundle(['true']);
const scope: left.Scope = { root: ROOT, idPrefix: ID_PREFIX, paths: [ROOT, path.dirname(bundle)] };
const warnings: string[] = [];
const warn = (m: string) => warnings.push(m);
t.teardown(() => {
  for (const id of fs.existsSync(ROOT) ? fs.readdirSync(ROOT) : []) {
    try {
      remove(ROOT, id, true, warn);
    } catch {
      /* reported by the assertions already */
    }
  }
  fs.rmSync(path.dirname(bundle), { recursive: true, force: true });
  fs.rmSync(ROOT, { recursive: true, force: true });
});

function openFds(): string[] {
  return fs.readdirSync('/proc/self/fd').map(fd => {
    try {
      return `${fd} -> ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`;
    } catch {
      return fd; // the directory fd readdirSync itself used
    }
  });
}

/** One create/start/delete cycle of two containers that overlap. Returns the first error, if any. */
function pair(a: string, b: string): string | undefined {
  try {
    create({ root: ROOT, id: a, bundle, warn });
    create({ root: ROOT, id: b, bundle, warn });
    start(ROOT, a, warn);
    start(ROOT, b, warn);
    remove(ROOT, a, true, warn);
    remove(ROOT, b, true, warn);
    return undefined;
  } catch (e) {
    return `${a}/${b}: ${(e as Error).message}`;
  }
}

t.test(`up to ${COUNT} containers created, started and deleted, two at a time`, async t => {
  // A first cycle loads the addon and whatever it keeps for the life of the process.
  t.equal(pair(`${ID_PREFIX}warm-a`, `${ID_PREFIX}warm-b`), undefined, 'a first pair runs');
  const fdsBefore = openFds();
  const errors: string[] = [];
  const { ran } = boundedRounds({ attempts: Math.ceil(COUNT / 2), min: Math.min(100, Math.ceil(COUNT / 2)), seconds: 150 }, i => {
    if (errors.length > 10) return;
    const err = pair(`${ID_PREFIX}${2 * i}`, `${ID_PREFIX}${2 * i + 1}`);
    if (err) errors.push(err);
  });
  t.pass(`${2 * ran} containers ran`);
  t.same(errors, [], 'every create, start and delete succeeded');
  t.same(warnings, [], 'without a warning');
  t.same(openFds(), fdsBefore, 'no fd of this process leaked');
  t.same(left.settled(scope), [], 'no state dir, mount, cgroup, process or zombie left');
});
