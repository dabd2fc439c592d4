#!/usr/bin/env node
// Runs the runtime-tools validation programs (built by build.sh) against one or more OCI runtimes and counts
// the TAP points by the rules README.md beside it states ("Counting").
//
// Usage: node run.mjs [--cache DIR] [--out DIR] [--timeout SEC] [--only ERE] [-H] RUNTIME [[-H] RUNTIME ...]
//   RUNTIME         a command name (looked up in PATH) or a path
//   -H              for the next RUNTIME only: hide the cgroup2 controllers (bind an empty file over
//                   /sys/fs/cgroup/unified/cgroup.controllers) inside each program's private mount namespace.
//                   crun <= 1.8 refuses every cgroup on a hybrid host while cgroup2 owns a controller.
//   --cache DIR     build.sh's cache (default $OCI_VALIDATION_CACHE or /var/tmp/tsrt-oci-validation)
//   --out DIR       results (default CACHE/runs/latest): results.json, table.txt, <label>/<program>.{tap,stderr},
//                   <label>/trace.log (every runtime invocation: program, start, end, exit status, argv, and
//                   the start of its stderr, except for create and run whose stdio belong to the container)
//   --timeout SEC   per program (default 60)
//   --only ERE      run only programs whose name matches
//
// The runtimes run at the same time, one program after another each; the programs that use the suite's fixed
// cgroup paths (/cgrouptest, testdir/cgrouptest) never overlap across runtimes.
//
// Hygiene: every program runs in its own private mount namespace (unshare -m): linux_ns_itype makes the
// runtime mount proc/dev/sys on the bundle in the caller's namespace and nothing unmounts them. Each runtime
// gets a private TMPDIR (the harness puts bundles there); after each program the containers whose bundle lies
// in it are force-deleted, mounts below it are unmounted and it is emptied. At the end, the fixed cgroup
// directories, if empty and touched during the run, are removed.
//
// Runs on one cache are serialised (flock on CACHE/.run.lock).
//
// Exit status: 0 when every runtime's results were collected (whatever they are), 2 on a setup error.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const DEFAULT_CACHE = process.env.OCI_VALIDATION_CACHE || '/var/tmp/tsrt-oci-validation';
const CGROUP2_CONTROLLERS = '/sys/fs/cgroup/unified/cgroup.controllers';
// Programs that create cgroups at fixed paths; two runtimes running one of them at once would collide.
const FIXED_CGROUP_PROGRAMS = /^(linux_cgroups_|delete_resources$|delete_only_create_resources$)/;

function fail(message) {
  process.stderr.write(`oci-validation run: ${message}\n`);
  process.exit(2);
}

export function parseArgs(argv) {
  const opts = { cache: DEFAULT_CACHE, out: undefined, timeout: 60, only: undefined, runtimes: [] };
  let hideNext = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--cache') opts.cache = value();
    else if (arg === '--out') opts.out = value();
    else if (arg === '--timeout') opts.timeout = Number(value());
    else if (arg === '--only') opts.only = new RegExp(value());
    else if (arg === '-H') hideNext = true;
    else if (arg.startsWith('-')) fail(`unknown option ${arg}`);
    else {
      opts.runtimes.push({ command: arg, hideCgroup2: hideNext });
      hideNext = false;
    }
  }
  if (!opts.runtimes.length) fail('no RUNTIME given');
  if (!(opts.timeout > 0)) fail('--timeout must be a positive number of seconds');
  opts.out ??= path.join(opts.cache, 'runs', 'latest');
  return opts;
}

/**
 * Counts one program's TAP output by the doc's rules: top-level "ok" passed, "not ok" failed, "# SKIP" and
 * "# TODO" skipped; plans ("1..N") are summed, and YAML diagnostics with a non-empty "error" are counted
 * (the hook programs report failure only that way, under "1..0"). Indented lines are diagnostics: the
 * runtimetest output some programs embed there is not counted.
 */
export function countTap(text) {
  const c = { plan: 0, ok: 0, notOk: 0, skip: 0, todo: 0, yamlErrors: 0, notOkLines: [], errorLines: [], stderrLines: [] };
  for (const line of text.split('\n')) {
    const plan = /^1\.\.(\d+)/.exec(line);
    if (plan) {
      c.plan += Number(plan[1]);
    } else if (/^ +"error": "[^"]/.test(line)) {
      c.yamlErrors++;
      c.errorLines.push(line.trim());
    } else if (/^ +"stderr": "[^"]/.test(line)) {
      c.stderrLines.push(line.trim()); // the runtime's stderr the harness quotes for a failed call
    } else if (/^(not ok|ok)([ \t]|$)/.test(line)) {
      const upper = line.toUpperCase();
      if (/^OK[^#]*# *SKIP/.test(upper)) c.skip++;
      else if (/^[^#]*# *TODO/.test(upper)) c.todo++;
      else if (line.startsWith('not ok')) {
        c.notOk++;
        c.notOkLines.push(line);
      } else c.ok++;
    }
  }
  return c;
}

/**
 * A program's verdict. ERR points are failures the runner adds: planned points never reported, at least one
 * for a non-zero exit or a timeout, one for a program whose only output is a YAML error. A clean exit with no
 * points is one pass: the hook programs and the *_fail programs (silent when the runtime rejects the bad
 * config) report success that way.
 */
export function judge(counts, exitCode, timedOut) {
  const seen = counts.ok + counts.notOk + counts.skip + counts.todo;
  let err = Math.max(0, counts.plan - seen);
  let ok = counts.ok;
  let status;
  if (timedOut || exitCode !== 0) {
    status = 'ERROR';
    err = Math.max(err, 1);
  } else if (seen === 0 && counts.yamlErrors > 0) {
    status = 'FAIL';
    err = 1;
  } else if (seen === 0) {
    status = 'PASS';
    ok = 1;
  } else {
    status = counts.notOk > 0 || err > 0 ? 'FAIL' : 'PASS';
  }
  return { status, ok, err, passed: ok, failed: counts.notOk + err, skipped: counts.skip + counts.todo };
}

/** A mutex for the fixed-cgroup programs. */
class Lock {
  #tail = Promise.resolve();
  async hold(work) {
    const before = this.#tail;
    let release;
    this.#tail = new Promise(resolve => (release = resolve));
    await before;
    try {
      return await work();
    } finally {
      release();
    }
  }
}

function run(command, args, opts = {}) {
  return spawnSync(command, args, { encoding: 'utf8', timeout: 60_000, ...opts });
}

function resolveCommand(command) {
  if (command.includes('/')) return fs.realpathSync(command);
  const found = run('sh', ['-c', 'command -v "$1"', 'sh', command]).stdout.trim();
  if (!found) fail(`runtime ${command} is not in PATH`);
  return fs.realpathSync(found);
}

/** A wrapper the harness calls instead of the runtime: it logs every invocation for triage. */
function writeTraceWrapper(file, runtimePath, traceLog) {
  const rt = JSON.stringify(runtimePath);
  const log = JSON.stringify(traceLog);
  fs.writeFileSync(
    file,
    `#!/bin/sh
# The runtime runs as a child (not exec) so its exit status can be logged. create's and run's stdio stay
# untouched: the container inherits them, and the harness reads runtimetest's output from them. For the other
# verbs stderr is kept and logged too (the harness only shows it for some failures).
started=$(date +%s.%N)
case "$1" in
create|run)
  ${rt} "$@"
  status=$?
  said=
  ;;
*)
  errfile=$(mktemp ${JSON.stringify(path.dirname(traceLog))}/.stderr.XXXXXX)
  ${rt} "$@" 2>"$errfile"
  status=$?
  cat "$errfile" >&2
  said=$(head -c 300 "$errfile" | tr '\t\n' '  ')
  rm -f "$errfile"
  ;;
esac
printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$OCI_VALIDATION_PROGRAM" "$started" "$(date +%s.%N)" "$status" "$*" "$said" >>${log}
exit $status
`,
    { mode: 0o755 },
  );
}

/** Removes what a program left: containers whose bundle is in tmp, mounts below tmp, the bundles. */
function cleanLeftovers(runtimePath, tmp) {
  const ids = run(runtimePath, ['list', '-q']).stdout?.split('\n').filter(Boolean) ?? [];
  const left = [];
  for (const id of ids) {
    const st = run(runtimePath, ['state', id]);
    let bundle;
    try {
      bundle = JSON.parse(st.stdout).bundle;
    } catch {
      continue;
    }
    if (typeof bundle !== 'string' || !bundle.startsWith(`${tmp}/`)) continue;
    left.push(id);
    if (run(runtimePath, ['delete', '--force', id]).status !== 0) {
      run(runtimePath, ['kill', id, 'KILL']);
      run('sleep', ['1']);
      run(runtimePath, ['delete', id]);
    }
  }
  // Each program had its own mount namespace, so mounts it made there are gone with it; this catches any a
  // runtime made in ours.
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map(l => l.split(' ')[4])
    .filter(m => m?.startsWith(`${tmp}/`))
    .sort()
    .reverse();
  for (const m of mounts) if (run('umount', [m]).status !== 0) run('umount', ['-l', m]);
  for (const entry of fs.readdirSync(tmp)) run('rm', ['-rf', '--one-file-system', path.join(tmp, entry)]);
  return left;
}

/** The fixed cgroup directories the programs use, deepest first. */
function fixedCgroupDirs() {
  const roots = ['/sys/fs/cgroup', ...fs.readdirSync('/sys/fs/cgroup').map(d => path.join('/sys/fs/cgroup', d))];
  const dirs = [];
  for (const suffix of ['testdir/cgrouptest/container', 'testdir/cgrouptest', 'testdir', 'cgrouptest']) {
    for (const root of roots) dirs.push(path.join(root, suffix));
  }
  return dirs;
}

function cleanCgroups(sinceMs) {
  const removed = [];
  for (const dir of fixedCgroupDirs()) {
    let st;
    try {
      st = fs.statSync(dir);
    } catch {
      continue;
    }
    if (st.mtimeMs < sinceMs - 1000) continue; // not ours: older than this run
    try {
      fs.rmdirSync(dir); // only succeeds when no process and no child cgroup is left in it
      removed.push(dir);
    } catch {
      /* busy or not empty: leave it */
    }
  }
  return removed;
}

function runProgram(bin, program, env, hideCgroup2, emptyFile, timeout, tapFile, stderrFile) {
  // The program runs with cwd = bin (it finds runtimetest and the rootfs tarball there).
  const hide = hideCgroup2 ? `mount --bind ${JSON.stringify(emptyFile)} ${CGROUP2_CONTROLLERS} || exit 125; ` : '';
  const script = `${hide}exec timeout -k 10 ${timeout} ./${program}.t`;
  return new Promise(resolve => {
    const started = Date.now();
    const stdout = fs.openSync(tapFile, 'w');
    const stderr = fs.openSync(stderrFile, 'w');
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
      cwd: bin,
      env: { ...env, OCI_VALIDATION_PROGRAM: program },
      stdio: ['ignore', stdout, stderr],
    });
    fs.closeSync(stdout);
    fs.closeSync(stderr);
    child.on('close', code => resolve({ exitCode: code ?? 128, seconds: (Date.now() - started) / 1000 }));
  });
}

/** Names the runtime's log and TMPDIR directories: its command's base name, plus -H. */
function runtimeLabel(rt) {
  return `${path.basename(rt.command)}${rt.hideCgroup2 ? '-H' : ''}`;
}

async function runRuntime(rt, programs, opts, cgroupLock) {
  const bin = path.join(opts.cache, 'bin');
  const label = runtimeLabel(rt);
  const logs = path.join(opts.out, label);
  const tmp = path.join(opts.cache, 'tmp', label);
  fs.rmSync(logs, { recursive: true, force: true });
  fs.mkdirSync(logs, { recursive: true });
  if (fs.existsSync(tmp)) cleanLeftovers(rt.path, tmp);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const wrapper = path.join(logs, 'runtime');
  writeTraceWrapper(wrapper, rt.path, path.join(logs, 'trace.log'));
  const emptyFile = path.join(logs, 'empty-cgroup.controllers');
  fs.writeFileSync(emptyFile, '');
  const env = { ...process.env, RUNTIME: wrapper, TMPDIR: tmp };
  const started = Date.now();
  const results = [];
  for (const program of programs) {
    const tapFile = path.join(logs, `${program}.tap`);
    const stderrFile = path.join(logs, `${program}.stderr`);
    const once = async () => {
      const r = await runProgram(bin, program, env, rt.hideCgroup2, emptyFile, opts.timeout, tapFile, stderrFile);
      const leftovers = cleanLeftovers(rt.path, tmp);
      return { ...r, leftovers };
    };
    const r = FIXED_CGROUP_PROGRAMS.test(program) ? await cgroupLock.hold(once) : await once();
    // timeout(1) exits 124 when it sent TERM, 137 when it had to KILL; 125 is our own -H mount failing.
    const timedOut = r.exitCode === 124 || r.exitCode === 137;
    const counts = countTap(fs.readFileSync(tapFile, 'utf8'));
    const verdict = judge(counts, r.exitCode, timedOut);
    const stderr = fs.readFileSync(stderrFile, 'utf8');
    const result = {
      program,
      ...verdict,
      exitCode: r.exitCode,
      timedOut,
      seconds: Number(r.seconds.toFixed(1)),
      notOk: counts.notOk,
      skip: counts.skip,
      todo: counts.todo,
      notOkLines: counts.notOkLines,
      errorLines: counts.errorLines,
      stderrLines: counts.stderrLines,
      stderr: stderr.length > 4000 ? `${stderr.slice(0, 4000)}...` : stderr,
      leftoverContainers: r.leftovers,
    };
    results.push(result);
    process.stderr.write(
      `${label.padEnd(8)} ${program.padEnd(32)} ${result.status.padEnd(6)} ${result.passed}/${result.failed}/${result.skipped} ${result.seconds}s\n`,
    );
  }
  const sum = key => results.reduce((a, r) => a + r[key], 0);
  const version = run(rt.path, ['--version']).stdout?.split('\n')[0] ?? '';
  return {
    label,
    path: rt.path,
    version,
    hideCgroup2: rt.hideCgroup2,
    seconds: Math.round((Date.now() - started) / 1000),
    passed: sum('passed'),
    failed: sum('failed'),
    skipped: sum('skipped'),
    programs: Object.fromEntries(['PASS', 'FAIL', 'ERROR'].map(s => [s, results.filter(r => r.status === s).length])),
    timedOut: results.filter(r => r.timedOut).map(r => r.program),
    results,
  };
}

export function table(runs) {
  const names = runs[0].results.map(r => r.program);
  const cell = (run, name) => {
    const r = run.results.find(x => x.program === name);
    return r ? `${r.status} ${r.passed}/${r.failed}/${r.skipped}` : '-';
  };
  const rows = [['program', ...runs.map(r => r.label)], ...names.map(n => [n, ...runs.map(r => cell(r, n))])];
  rows.push(['points passed/failed/skipped', ...runs.map(r => `${r.passed}/${r.failed}/${r.skipped}`)]);
  rows.push(['programs PASS/FAIL/ERROR', ...runs.map(r => `${r.programs.PASS}/${r.programs.FAIL}/${r.programs.ERROR}`)]);
  rows.push(['seconds', ...runs.map(r => String(r.seconds))]);
  const widths = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)));
  return (
    rows
      .map(r =>
        r
          .map((v, c) => v.padEnd(widths[c]))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/**
 * R9: the default cache is a fixed name in the shared /var/tmp, and root runs the programs in it: a cache
 * another user made first (or can write to) would run their binaries as root. build.sh checks the same.
 */
function ownCache(dir) {
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) fail(`${dir} is not a directory of ours (a symbolic link or another file)`);
  if (st.uid !== process.getuid()) fail(`${dir} is owned by uid ${st.uid}: another user made it first; remove it, or use --cache`);
  if (st.mode & 0o022) fail(`${dir} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}): refusing to run from it`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid() !== 0) fail('run as root (the runtimes and the suite need it)');
  if (!process.env.OCI_VALIDATION_LOCKED) {
    // One run per cache at a time: two would empty each other's TMPDIR and meet at the fixed cgroup paths.
    // Everyone's `hack/test.sh` runs the suite, so on a shared machine a second run waits for the first.
    fs.mkdirSync(opts.cache, { recursive: true });
    ownCache(opts.cache);
    const locked = spawnSync('flock', [path.join(opts.cache, '.run.lock'), process.execPath, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, OCI_VALIDATION_LOCKED: '1' },
    });
    process.exit(locked.status ?? 2);
  }
  const bin = path.join(opts.cache, 'bin');
  if (!fs.existsSync(path.join(bin, '.built'))) fail(`nothing built in ${bin}: run build.sh first`);
  const programs = fs
    .readdirSync(bin)
    .filter(f => f.endsWith('.t'))
    .map(f => f.slice(0, -2))
    .filter(p => !opts.only || opts.only.test(p))
    .sort();
  if (!programs.length) fail('no program matches');
  const runtimes = opts.runtimes.map(rt => ({ ...rt, path: resolveCommand(rt.command) }));
  const labels = runtimes.map(runtimeLabel);
  const twice = labels.find((l, i) => labels.indexOf(l) !== i);
  if (twice) fail(`two runtimes would share the log and TMPDIR name ${twice}: give one a different base name`);
  if (runtimes.some(rt => rt.hideCgroup2) && !fs.existsSync(CGROUP2_CONTROLLERS)) {
    process.stderr.write(`oci-validation run: -H: no ${CGROUP2_CONTROLLERS} (not a hybrid host); nothing to hide\n`);
    for (const rt of runtimes) rt.hideCgroup2 = false;
  }
  fs.mkdirSync(opts.out, { recursive: true });
  const started = Date.now();
  const cgroupLock = new Lock();
  const runs = await Promise.all(runtimes.map(rt => runRuntime(rt, programs, opts, cgroupLock)));
  const removedCgroups = cleanCgroups(started);
  const report = {
    source: fs.readFileSync(path.join(opts.cache, 'source-version'), 'utf8').trim(),
    startedAt: new Date(started).toISOString(),
    seconds: Math.round((Date.now() - started) / 1000),
    timeoutPerProgram: opts.timeout,
    removedCgroups,
    runs,
  };
  fs.writeFileSync(path.join(opts.out, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
  const text = table(runs);
  fs.writeFileSync(path.join(opts.out, 'table.txt'), text);
  process.stdout.write(text);
  for (const r of runs) process.stdout.write(`${r.label}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped\n`);
  process.stdout.write(`results: ${path.join(opts.out, 'results.json')}\n`);
}

// Run only as a program; tests import the counting functions.
if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  main().catch(e => fail(e.stack ?? String(e)));
}
