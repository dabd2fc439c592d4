// Fuzz: generated and mutated config.json files (fixtures/configgen.ts, seeded) through the path `create`
// takes. In this process, 10,000 of them (at least 2,500 when 2 minutes are not enough) go through validation, plan building, the cgroup translation, the
// seccomp compiler, the plan codec and the C decoder (the addon's checkPlan), and each must end in success or a
// RuntimeError/SpecError with a message: never another exception. A sample of 300 (made safe for a
// shared host by forRealRun) is created for real with dist/tsrt and deleted with delete --force: exit 0 or 1
// with a one-line error (the log line quotes the message), and nothing left behind. The real runs stop after
// 4 minutes once 50 have run, so a loaded machine does fewer (the counts are in the results).
//
// The seed is printed; TSRT_FUZZ_SEED=<seed> replays a run, TSRT_FUZZ_COUNT and TSRT_FUZZ_REAL resize it.
// Each failing config is saved under .tap/fuzz/ for inspection.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { deviceProgram, deviceRules, v1DeviceWrites } from '../../src/cgroups/devices.js';
import { resourceWrites, type FileTree } from '../../src/cgroups/resources.js';
import { RuntimeError } from '../../src/errors.js';
import { native } from '../../src/native.js';
import { buildPlan } from '../../src/plan/build.js';
import { encodePlan } from '../../src/plan/codec.js';
import { compileSeccomp } from '../../src/plan/seccomp.js';
import { PlanFlag } from '../../src/plan/types.js';
import { hostFacts } from '../../src/runtime/host.js';
import { parseConfig } from '../../src/spec/validate.js';
import { boundedRounds, makeBundle, REPO, tmpdir, tsrt } from '../helpers.js';
import { baseConfigs, forRealRun, generate, Rng } from './fixtures/configgen.js';
import * as left from './fixtures/leftovers.js';

t.setTimeout(15 * 60_000);

const SEED = Number(process.env['TSRT_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 32));
const COUNT = Number(process.env['TSRT_FUZZ_COUNT'] ?? 10_000);
const REAL = Number(process.env['TSRT_FUZZ_REAL'] ?? 300);
const FAILURES = path.join(REPO, '.tap', 'fuzz');
t.comment(`fuzz seed ${SEED} (replay with TSRT_FUZZ_SEED=${SEED})`);

const template = makeBundle(['true']);
t.teardown(() => fs.rmSync(path.dirname(template), { recursive: true, force: true }));

let saved = 0;
/** Keeps a failing config for inspection (the first few of a run); returns where. */
function keep(kind: string, index: number, text: string): string {
  if (saved >= 50) return '(not saved: too many)';
  saved++;
  fs.mkdirSync(FAILURES, { recursive: true });
  const file = path.join(FAILURES, `${SEED}-${kind}-${index}.config.json`);
  fs.writeFileSync(file, text);
  return file;
}

const facts = hostFacts();
const everyFile: FileTree = { exists: () => true, read: () => undefined };
const placement = {
  v1: new Set(facts.cgroup.v1.flatMap(h => h.options.split(','))),
  v2: facts.cgroup.unifiedMountPoint
    ? new Set(
        fs
          .readFileSync(path.join(facts.cgroup.unifiedMountPoint, 'cgroup.controllers'), 'utf8')
          .trim()
          .split(/\s+/)
          .filter(c => c && !facts.cgroup.v1.some(h => h.options.split(',').includes(c))),
      )
    : undefined,
};

/** create's path up to the clone, for one config text. Returns undefined on success, else the error. */
function throughCreatePath(text: string, consoleSocket: number): unknown {
  try {
    const spec = parseConfig(text);
    const bundle = template;
    const rootfs = path.join(bundle, 'rootfs');
    const resources = spec.linux?.resources;
    resourceWrites(resources, placement, everyFile);
    const rules = deviceRules(resources?.devices ?? undefined);
    v1DeviceWrites(rules);
    deviceProgram(rules);
    const plan = buildPlan(spec, facts, {
      bundle,
      rootfs,
      console: consoleSocket >= 0,
      startFifo: true,
      preserveFds: 0,
      noPivot: false,
      noNewKeyring: false,
    });
    const program = plan.process.seccomp ? compileSeccomp(plan.process.seccomp, f => native().compileSeccomp(f)) : undefined;
    // The fds create binds: the console for a terminal, the fifo, a user namespace per idmapped mount.
    const fds = {
      console: plan.flags & PlanFlag.terminal ? consoleSocket : undefined,
      fifo: 5,
      userns: plan.container.steps.filter(step => step.idmap).map(() => 6),
    };
    const decoded = native().checkPlan(encodePlan(plan, fds, program));
    if (typeof decoded === 'string') return new Error(`the C decoder refused a plan the encoder wrote: ${decoded}`);
    return undefined;
  } catch (e) {
    return e;
  }
}

/** Why an outcome is not acceptable, or undefined when it is. */
function problemWith(outcome: unknown): string | undefined {
  if (outcome === undefined) return undefined;
  if (!(outcome instanceof RuntimeError)) {
    return `threw ${outcome instanceof Error ? `${outcome.name}: ${outcome.message}\n${outcome.stack}` : String(outcome)}`;
  }
  // A value from the config may put a newline into a message; the CLI's log line quotes it (checked below).
  if (!outcome.message.trim()) return 'a RuntimeError without a message';
  return undefined;
}

// The configs, generated up front from the seed, so the real-run sample does not depend on outcomes.
const rng = new Rng(SEED);
const bases = baseConfigs();
const configs = Array.from({ length: COUNT }, () => generate(rng, bases));
const consoles = configs.map(() => (rng.chance(0.5) ? 4 : -1));
const outcomes: unknown[] = [];

t.test(`up to ${COUNT} configs through validate, plan, cgroup translation, seccomp and the codec`, async t => {
  const problems: string[] = [];
  let accepted = 0;
  const errorKinds = new Map<string, number>();
  const problemKinds = new Map<string, number>();
  const { ran } = boundedRounds({ attempts: configs.length, min: Math.min(2500, configs.length), seconds: 120 }, i => {
    const outcome = throughCreatePath(configs[i]!, consoles[i]!);
    outcomes.push(outcome);
    if (outcome === undefined) accepted++;
    else if (outcome instanceof RuntimeError) errorKinds.set(outcome.name, (errorKinds.get(outcome.name) ?? 0) + 1);
    const problem = problemWith(outcome);
    if (problem) {
      problems.push(`config ${i} (${keep('inproc', i, configs[i]!)}): ${problem}`);
      const kind = problem.split('\n')[0]!.replace(/"[^"]*"|\d+/g, '_');
      problemKinds.set(kind, (problemKinds.get(kind) ?? 0) + 1);
    }
  });
  for (const [kind, n] of problemKinds) t.comment(`${n} x ${kind}`);
  t.comment(`${ran} configs; accepted ${accepted}; refused: ${[...errorKinds].map(([k, v]) => `${v} ${k}`).join(', ')}`);
  t.same(problems.slice(0, 20), [], 'every config ends in a plan or a RuntimeError/SpecError with a message');
  t.ok(accepted > ran / 20, `a fair share of configs (${accepted} of ${ran}) get as far as a plan, so the later stages are exercised`);
});

t.test(
  `up to ${REAL} of them created for real with dist/tsrt, then delete --force`,
  { skip: process.geteuid?.() !== 0 ? 'needs root' : false },
  async t => {
    const ROOT = tmpdir('tsrt-fuzz-root-');
    const work = tmpdir('tsrt-fuzz-');
    const ID_PREFIX = `fz${process.pid}-`;
    const MARK = `fuzz-${process.pid}`;
    const scope: left.Scope = { root: ROOT, idPrefix: ID_PREFIX, paths: [ROOT, work], mark: MARK };
    t.teardown(() => {
      for (const id of fs.existsSync(ROOT) ? fs.readdirSync(ROOT) : []) tsrt(['delete', '--force', id], { root: ROOT });
      if (left.mounts(scope).length === 0) fs.rmSync(work, { recursive: true, force: true });
      fs.rmSync(ROOT, { recursive: true, force: true });
    });
    // Two thirds from configs that got a plan in-process (they reach the executor), a third from the rest.
    const pickRng = new Rng(SEED ^ 0x5eed);
    const planned = outcomes.map((_, i) => i).filter(i => outcomes[i] === undefined);
    const refused = outcomes.map((_, i) => i).filter(i => outcomes[i] !== undefined);
    const sample: number[] = [];
    for (let k = 0; k < REAL; k++) {
      const from = planned.length && (k % 3 !== 2 || !refused.length) ? planned : refused;
      sample.push(from[pickRng.int(from.length)]!);
    }
    const problems: string[] = [];
    let created = 0;
    const realErrors = new Map<string, number>();
    const bundle = path.join(work, 'bundle');
    const { ran: realRuns } = boundedRounds({ attempts: sample.length, min: Math.min(50, sample.length), seconds: 240 }, k => {
      if (problems.length >= 10) return;
      const i = sample[k]!;
      const id = `${ID_PREFIX}${k}`;
      const text = forRealRun(configs[i]!);
      // A fresh rootfs each time: set-up writes into it (mount points, device nodes).
      fs.rmSync(bundle, { recursive: true, force: true });
      spawnSync('cp', ['-a', template, bundle]);
      fs.writeFileSync(path.join(bundle, 'config.json'), text);
      const env = { ...process.env, TSRT_ROBUST_MARK: MARK };
      const c = left.tsrtFiles(['create', '-b', bundle, id], { root: ROOT, env, timeoutMs: 60_000 });
      const errLines = c.stderr.trimEnd().split('\n').filter(Boolean);
      const where = () => keep('real', i, text);
      if (c.code === 0) created++;
      else if (c.code === 1) {
        const kind = left
          .errorMessage(c.stderr)
          .replace(/"[^"]*"|\d+/g, '_')
          .slice(0, 100);
        realErrors.set(kind, (realErrors.get(kind) ?? 0) + 1);
      }
      if (c.code === 0) {
        /* created */
      } else if (c.code !== 1) problems.push(`config ${i} (${where()}): create exited ${c.code} (signal ${c.signal}): ${c.stderr}`);
      else if (errLines.length !== 1 || !left.errorMessage(c.stderr))
        problems.push(`config ${i} (${where()}): not one error line: ${c.stderr}`);
      const d = left.tsrtFiles(['delete', '--force', id], { root: ROOT, env, timeoutMs: 60_000 });
      if (d.code !== 0) problems.push(`config ${i} (${where()}): delete --force exited ${d.code}: ${d.stderr}`);
      const rest = left.settled(scope);
      if (rest.length) {
        problems.push(`config ${i} (${where()}): left behind: ${rest.join('; ')}`);
        for (const x of fs.readdirSync(ROOT)) tsrt(['delete', '--force', x], { root: ROOT });
      }
    });
    t.comment(`created ${created} of ${realRuns} run (of ${sample.length} sampled); the commonest errors:`);
    for (const [kind, n] of [...realErrors].sort((x, y) => y[1] - x[1]).slice(0, 12)) t.comment(`${n} x ${kind}`);
    t.same(problems, [], 'each create exits 0 or 1 with one error line, and delete --force leaves nothing');
  },
);
