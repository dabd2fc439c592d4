#!/usr/bin/python3
"""The measuring half of hack/bench: runs every runtime in turn (A B C A B C ...) and reports medians and the
median of the pair-by-pair ratios to the baseline runtime (crun), wall and CPU.

Each command is started with posix_spawn and reaped with wait4, so its wall time, its CPU time (user + system of
the command and every process it waited for) and its peak RSS come from the kernel, not from a shell's fork.
Python is the driver because it gets a child's rusage without a helper; its own start-up is not measured.

Usually started through hack/bench, which handles the hybrid-cgroup host and the unprivileged user. Options:
  --runtime NAME=COMMAND  (repeatable; first = the one whose ratios matter, `--baseline` = the denominator)
  --baseline NAME         ratios are RUNTIME/NAME (default crun)
  -n N / -w N             iterations / warm-up iterations (default 30 / 3)
  -t N / -j N             rounds / size of the sequential and two-at-a-time batches (default 3 / 100; -t 0 skips)
  -m N                    rounds of the peak-RSS-in-cgroup measurement (default 5)
  --json FILE             where the results go (the report hack/bench-check reads)
  --singularity PATH      also compare `PATH exec IMAGE /bin/true` with `tsrt run` of the same rootfs (sif_pair)
  --sif IMAGE             the SIF for that (default: one PATH builds from the bench's rootfs)
"""
import argparse
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

DEVNULL = os.open('/dev/null', os.O_RDWR)


def say(*a):
    print(*a, file=sys.stderr, flush=True)


class Sample:
    __slots__ = ('wall', 'cpu', 'rss', 'rc')

    def __init__(self, wall, cpu, rss, rc):
        self.wall, self.cpu, self.rss, self.rc = wall, cpu, rss, rc


def paired_median(samples, others, attr):
    """The median of the ratios of each sample to the other runtime's of the same iteration (None without any)."""
    pairs = [getattr(a, attr) / getattr(b, attr) for a, b in zip(samples, others) if getattr(b, attr) > 0]
    return statistics.median(pairs) if pairs else None


def spawn(argv, env):
    return os.posix_spawnp(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_DUP2, DEVNULL, 0), (os.POSIX_SPAWN_DUP2, DEVNULL, 1), (os.POSIX_SPAWN_DUP2, DEVNULL, 2)])


def timed(argv, env):
    """Wall ms, CPU ms and peak RSS KiB of one command and the processes it reaped."""
    t0 = time.perf_counter()
    pid = spawn(argv, env)
    _, status, ru = os.wait4(pid, 0)
    wall = (time.perf_counter() - t0) * 1000
    return Sample(wall, (ru.ru_utime + ru.ru_stime) * 1000, ru.ru_maxrss, os.waitstatus_to_exitcode(status))


def wait_gone(pid):
    """Blocks until a process that is not our child exits (pidfd: no polling loop stealing a core)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [], 30)
    finally:
        os.close(fd)


def vm_hwm(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Runtime:
    def __init__(self, name, command, state_root):
        self.name = name
        self.argv = command.split() + ['--root', state_root]
        self.bin = command.split()[0]
        os.makedirs(state_root, exist_ok=True)

    def cmd(self, *args):
        return self.argv + list(args)


def build_bundle(directory, rootless):
    """A busybox rootfs and `runc spec` (or crun spec) for /bin/true: the bundle every runtime runs."""
    busybox = shutil.which('busybox')
    if not busybox or subprocess.run(['ldd', busybox], capture_output=True).returncode == 0:
        sys.exit('bench: needs a static busybox (apt-get install busybox-static)')
    rootfs = os.path.join(directory, 'rootfs')
    for d in ('bin', 'proc', 'sys', 'dev', 'tmp', 'etc'):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy(busybox, os.path.join(rootfs, 'bin/busybox'))
    for app in subprocess.run([busybox, '--list'], capture_output=True, text=True).stdout.split():
        if app != 'busybox':
            os.symlink('/bin/busybox', os.path.join(rootfs, 'bin', app))
    spec_tool = shutil.which('runc') or shutil.which('crun')
    subprocess.run([spec_tool, 'spec'] + (['--rootless'] if rootless else []), cwd=directory, check=True)
    with open(os.path.join(directory, 'config.json')) as f:
        config = json.load(f)
    config['process']['args'] = ['/bin/true']
    config['process']['terminal'] = False
    config['root']['path'] = rootfs
    return config


def write_bundle(directory, config):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, 'config.json'), 'w') as f:
        json.dump(config, f)
    return directory


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.rootless = os.getuid() != 0
        self.env = {k: v for k, v in os.environ.items() if k != 'NODE_EXTRA_CA_CERTS'}
        # R9: mkdtemp picks a random name and makes it itself (mode 0700): no other user can make it first.
        self.work = tempfile.mkdtemp(prefix='speed-bench.')
        base = (os.environ.get('XDG_RUNTIME_DIR') or self.work) if self.rootless else '/run'
        self.state_base = os.path.join(base, f'speed-bench.{os.getpid()}')
        self.runtimes = [Runtime(n, c, os.path.join(self.state_base, n)) for n, c in opts.runtime]
        self.base = next((i for i, r in enumerate(self.runtimes) if r.name == opts.baseline), 0)
        self.runc = next((i for i, r in enumerate(self.runtimes) if r.name == 'runc'), None)
        self.config = build_bundle(os.path.join(self.work, 'bundle'), self.rootless)
        self.bundle = os.path.join(self.work, 'bundle')
        write_bundle(self.bundle, self.config)
        long_config = json.loads(json.dumps(self.config))
        long_config['process']['args'] = ['/bin/sleep', '100000']
        self.long_bundle = write_bundle(os.path.join(self.work, 'long'), long_config)
        self.samples = {}   # (op, runtime index) -> [Sample]
        self.failures = []
        self.notes = []
        self.live = []      # (runtime, id) to remove at the end
        self.seq = 0

    def new_id(self, r, tag):
        self.seq += 1
        return f'speed-{os.getpid()}-{r.name}-{tag}{self.seq}'

    def rec(self, op, k, s):
        self.samples.setdefault((op, k), []).append(s)

    def check(self, s, r, what):
        if s.rc != 0:
            self.failures.append(f'{r.name} {what} exited {s.rc}')
            if len(self.failures) <= 5:
                say(f'warning: {r.name} {what} exited {s.rc}')
        return s.rc == 0

    # ------------------------------------------------------------------ one interleaved iteration
    def iteration(self, record, order):
        for k in order:
            r = self.runtimes[k]
            s = timed(r.cmd('--version'), self.env)
            self.check(s, r, '--version')
            record and self.rec('version', k, s)

            s = timed(r.cmd('run', '--bundle', self.bundle, self.new_id(r, 'r')), self.env)
            self.check(s, r, 'run')
            record and self.rec('run', k, s)

            cid = self.new_id(r, 's')
            pid_file = os.path.join(self.work, 'pid')
            t0 = time.perf_counter()
            create = timed(r.cmd('create', '--bundle', self.bundle, '--pid-file', pid_file, cid), self.env)
            if not self.check(create, r, 'create'):
                continue
            with open(pid_file) as f:
                pid = int(f.read())
            start = timed(r.cmd('start', cid), self.env)
            self.check(start, r, 'start')
            wait_gone(pid)
            delete = timed(r.cmd('delete', cid), self.env)
            if not self.check(delete, r, 'delete'):
                self.live.append((r, cid))
            split_wall = (time.perf_counter() - t0) * 1000
            if record:
                self.rec('create', k, create)
                self.rec('start', k, start)
                self.rec('delete', k, delete)
                self.rec('split', k, Sample(split_wall, create.cpu + start.cpu + delete.cpu, 0, 0))

            s = timed(r.cmd('state', r.long_id), self.env)
            self.check(s, r, 'state')
            record and self.rec('state', k, s)
            s = timed(r.cmd('kill', r.long_id, 'CONT'), self.env)
            self.check(s, r, 'kill')
            record and self.rec('kill', k, s)

    # ------------------------------------------------------------------ peak RSS inside the container's cgroup
    def cgroup_rss(self, rounds):
        """Peak RSS (VmHWM) of the processes in the container's cgroup while it is created, before start: the
        runtime's own process there is what a tight memory limit is charged for. As root the container gets its
        own memory cgroup and the kernel's high-water mark of it is read too; rootless on cgroup v1 nobody makes
        a cgroup, so the process that will become the container (the pid file's) is measured."""
        for i in range(rounds):
            for k in self.order(i):
                r = self.runtimes[k]
                cid = self.new_id(r, 'm')
                config = json.loads(json.dumps(self.config))
                cg_path = f'/speed-bench-{os.getpid()}-{cid}'
                if not self.rootless:
                    config.setdefault('linux', {})['cgroupsPath'] = cg_path
                bundle = write_bundle(os.path.join(self.work, f'rss-{cid}'), config)
                pid_file = os.path.join(self.work, 'pid')
                s = timed(r.cmd('create', '--bundle', bundle, '--pid-file', pid_file, cid), self.env)
                if not self.check(s, r, 'create (rss)'):
                    continue
                with open(pid_file) as f:
                    pid = int(f.read())
                pids = [pid]
                memcg = f'/sys/fs/cgroup/memory{cg_path}'
                if not self.rootless:
                    try:
                        with open(f'{memcg}/cgroup.procs') as f:
                            pids = [int(p) for p in f.read().split()]
                    except OSError as e:
                        self.failures.append(f'{r.name}: no memory cgroup at {memcg}: {e}')
                hwm = [h for h in (vm_hwm(p) for p in pids) if h is not None]
                self.rec('cgroup_rss', k, Sample(0, 0, max(hwm) if hwm else 0, 0))
                start = timed(r.cmd('start', cid), self.env)
                self.check(start, r, 'start (rss)')
                wait_gone(pid)
                if not self.rootless:
                    try:
                        with open(f'{memcg}/memory.max_usage_in_bytes') as f:
                            self.rec('cgroup_mem', k, Sample(0, 0, int(f.read()) // 1024, 0))
                    except OSError:
                        pass
                d = timed(r.cmd('delete', cid), self.env)
                if not self.check(d, r, 'delete (rss)'):
                    self.live.append((r, cid))

    # ------------------------------------------------------------------ throughput
    def batch(self, r, size, parallel):
        """`run` of `size` containers, `parallel` at a time: wall ms of the whole batch, CPU ms summed."""
        t0 = time.perf_counter()
        cpu = 0.0
        running = {}
        started = 0
        failed = 0
        while started < size or running:
            while started < size and len(running) < parallel:
                pid = spawn(r.cmd('run', '--bundle', self.bundle, self.new_id(r, 'b')), self.env)
                running[pid] = True
                started += 1
            pid, status, ru = os.wait4(-1, 0)
            if pid in running:
                del running[pid]
                cpu += (ru.ru_utime + ru.ru_stime) * 1000
                failed += os.waitstatus_to_exitcode(status) != 0
        if failed:
            self.failures.append(f'{r.name}: {failed} of {size} batch runs failed')
        return Sample((time.perf_counter() - t0) * 1000, cpu, 0, failed)

    # ------------------------------------------------------------------ Singularity shim
    def sif_pair(self, rounds):
        """`tsrt-singularity exec IMAGE /bin/true` against `tsrt run` of the same rootfs, interleaved. IMAGE is
        --sif, or a SIF that --singularity builds from this bench's rootfs. A shim that cannot build or exec
        here is reported as a note, not as a failure of the runtime comparison."""
        tsrt = next((r for r in self.runtimes if r.name == 'tsrt'), None)
        shim = self.opts.singularity
        if tsrt is None or not shim:
            return
        image = self.opts.sif
        if not image:
            image = os.path.join(self.work, 'bench.sif')
            built = subprocess.run([shim, 'build', image, self.config['root']['path']], env=self.env,
                                   stdin=DEVNULL, capture_output=True, text=True)
            if built.returncode != 0:
                self.notes.append(f'singularity: cannot build a SIF here: {built.stderr.strip()[-300:]}')
                return
        probe = subprocess.run([shim, 'exec', image, '/bin/true'], env=self.env, stdin=DEVNULL, capture_output=True, text=True)
        if probe.returncode != 0:
            self.notes.append(f'singularity: exec fails here: {probe.stderr.strip()[-300:]}')
            return
        for _ in range(rounds):
            s = timed([shim, 'exec', image, '/bin/true'], self.env)
            self.check(s, tsrt, 'singularity exec')
            self.rec('sif_exec', 0, s)
            s = timed(tsrt.cmd('run', '--bundle', self.bundle, self.new_id(tsrt, 'f')), self.env)
            self.check(s, tsrt, 'run (sif pair)')
            self.rec('sif_run', 0, s)

    def order(self, i):
        """Rotates who goes first, so no runtime always follows the same neighbour."""
        n = len(self.runtimes)
        return [(i + k) % n for k in range(n)]

    # ------------------------------------------------------------------ driver
    def run(self):
        o = self.opts
        # asked here, before cleanup: crun makes its --root directory even for --version
        self.versions = {r.name: subprocess.run(r.cmd('--version'), env=self.env, capture_output=True, text=True)
                         .stdout.splitlines()[0] for r in self.runtimes}
        for r in self.runtimes:
            r.long_id = self.new_id(r, 'long')
            # stderr to a file: a pipe would stay open in the detached container and never reach EOF
            err = os.path.join(self.work, 'long.err')
            with open(err, 'w') as f:
                res = subprocess.run(r.cmd('run', '-d', '--bundle', self.long_bundle, r.long_id),
                                     env=self.env, stdin=DEVNULL, stdout=DEVNULL, stderr=f)
            if res.returncode != 0:
                with open(err) as f:
                    sys.exit(f'bench: {r.name} cannot start the long-lived container: {f.read().strip()}')
            self.live.append((r, r.long_id))
        for i in range(o.w):
            self.iteration(False, self.order(i))
        for i in range(o.n):
            self.iteration(True, self.order(i))
        if o.m:
            self.cgroup_rss(o.m)
        for i in range(o.t):
            for k in self.order(i):
                self.rec(f'seq{o.j}', k, self.batch(self.runtimes[k], o.j, 1))
            for k in self.order(i):
                self.rec(f'par{o.j}x2', k, self.batch(self.runtimes[k], o.j, 2))
        self.sif_pair(o.n)

    def cleanup(self):
        for r, cid in self.live:
            subprocess.run(r.cmd('delete', '--force', cid), env=self.env, stdout=DEVNULL, stderr=DEVNULL)
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(self.state_base, ignore_errors=True)

    # ------------------------------------------------------------------ report
    def results(self):
        ops = {}
        for (op, k), samples in self.samples.items():
            entry = ops.setdefault(op, {})
            base = self.samples.get((op, self.base), [])
            row = {
                'n': len(samples),
                'wall_ms': statistics.median(s.wall for s in samples),
                'cpu_ms': statistics.median(s.cpu for s in samples),
                'rss_kib': statistics.median(s.rss for s in samples),
            }
            for attr in ('wall', 'cpu', 'rss'):
                row[f'{attr}_ratio'] = paired_median(samples, base, attr)
            # Issue 17 sets every goal against runc too: paired with runc's samples of the same iteration.
            if self.runtimes[k].name == 'tsrt' and self.runc is not None and not op.startswith('sif_'):
                peer = self.samples.get((op, self.runc), [])
                for attr in ('wall', 'rss'):
                    row[f'{attr}_ratio_runc'] = paired_median(samples, peer, attr)
            entry[self.runtimes[k].name if not op.startswith('sif_') else 'tsrt'] = row
        if ('sif_exec', 0) in self.samples:
            a, b = self.samples[('sif_exec', 0)], self.samples[('sif_run', 0)]
            for attr in ('wall', 'cpu'):
                ops['sif_exec']['tsrt'][f'{attr}_ratio'] = paired_median(a, b, attr)
        with open('/proc/loadavg') as f:
            load = f.read().split()[:3]
        return {
            'mode': 'rootless' if self.rootless else 'root',
            'baseline': self.runtimes[self.base].name,
            'runtimes': {r.name: ' '.join(r.argv[:-2]) for r in self.runtimes},
            'versions': self.versions,
            'iterations': self.opts.n, 'batch': self.opts.j, 'batch_rounds': self.opts.t,
            'machine': {'kernel': platform.release(), 'cpus': os.cpu_count(), 'loadavg_at_end': load},
            'failures': self.failures,
            'notes': self.notes,
            'ops': ops,
        }

    def print_table(self, res):
        names = [r.name for r in self.runtimes]
        base = res['baseline']
        others = [n for n in names if n != base]
        head = f'{"op":<12}' + ''.join(f'{n:>16}' for n in names) + ''.join(
            f'{n + "/" + base + " wall":>18}{"cpu":>7}' for n in others)
        print(f'\n{res["mode"]}: median ms (cpu ms); ratio = median of paired ratios to {base}')
        print(head)
        for op, entry in res['ops'].items():
            if op.startswith('sif_'):
                continue
            kib = op.startswith('cgroup_')
            line = f'{op:<12}'
            for n in names:
                row = entry.get(n)
                if row is None:
                    line += f'{"NA":>16}'
                elif kib:
                    line += f'{row["rss_kib"]:>12.0f} KiB'
                else:
                    line += f'{row["wall_ms"]:>8.2f} ({row["cpu_ms"]:5.1f})'
            for n in others:
                row = entry.get(n) or {}
                w = row.get('rss_ratio' if kib else 'wall_ratio')
                c = None if kib else row.get('cpu_ratio')
                line += f'{(f"{w:.2f}" if w is not None else "NA"):>18}{(f"{c:.2f}" if c is not None else ""):>7}'
            print(line)
        if 'sif_exec' in res['ops']:
            e, r = res['ops']['sif_exec']['tsrt'], res['ops']['sif_run']['tsrt']
            print(f'singularity exec {e["wall_ms"]:.2f} ms vs tsrt run {r["wall_ms"]:.2f} ms: '
                  f'ratio wall {e["wall_ratio"]:.2f} cpu {e["cpu_ratio"]:.2f}')
        for note in res['notes']:
            print(f'note: {note}')
        print(f'failures: {len(res["failures"])}; load average at the end: {" ".join(res["machine"]["loadavg_at_end"])}')


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--runtime', action='append', default=[], type=lambda s: tuple(s.split('=', 1)))
    p.add_argument('--baseline', default='crun')
    p.add_argument('-n', type=int, default=30)
    p.add_argument('-w', type=int, default=3)
    p.add_argument('-t', type=int, default=3)
    p.add_argument('-j', type=int, default=100)
    p.add_argument('-m', type=int, default=5)
    p.add_argument('--json')
    p.add_argument('--sif')
    p.add_argument('--singularity')
    o = p.parse_args()
    if not o.runtime:
        p.error('give at least one --runtime NAME=COMMAND')
    bench = Bench(o)
    try:
        bench.run()
    finally:
        bench.cleanup()
    res = bench.results()
    bench.print_table(res)
    if o.json:
        with open(o.json, 'w') as f:
            json.dump(res, f, indent=2)
    sys.exit(1 if res['failures'] else 0)


if __name__ == '__main__':
    main()
