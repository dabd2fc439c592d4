// ps and events without a container: Go's duration grammar for --interval, runc's filtering of the ps table
// by its PID column, Go's JSON for the stats document (exact uint64s, field order), and runc's stats read
// from fake v1 and v2 cgroup trees (which file feeds which field, and the unit conversions).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { CgroupfsManager } from '../../src/cgroups/cgroupfs.js';
import type { CgroupManager, CgroupRecord } from '../../src/cgroups/types.js';
import { goJson, oomKillCount, parseCpuList, runcStats } from '../../src/cgroups/usage.js';
import { RuntimeError } from '../../src/errors.js';
import { formatEvent, parseGoDuration } from '../../src/runtime/events.js';
import { filterPsOutput } from '../../src/runtime/ps.js';
import { resctrlStats } from '../../src/runtime/resctrl.js';

function fakeTree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-unit-usage-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

t.test('--interval: Go durations', async tt => {
  const cases: [string, number][] = [
    ['5s', 5e9],
    ['100ms', 1e8],
    ['1m', 60e9],
    ['1h30m', 5400e9],
    ['1.5s', 1.5e9],
    ['.5s', 5e8],
    ['2.s', 2e9],
    ['300us', 3e5],
    ['300µs', 3e5],
    ['7ns', 7],
    ['0', 0],
    ['-1s', -1e9],
    ['+2ms', 2e6],
    ['1m0.5s', 60.5e9],
  ];
  for (const [text, ns] of cases) tt.equal(parseGoDuration(text), ns, text);
  for (const bad of ['', 'abc', '5', '1x', '.', 's', '1.2.3s', '5 s', '-'])
    tt.throws(() => parseGoDuration(bad), `${JSON.stringify(bad)} is refused`);
});

t.test("ps table: the header and the lines whose PID column is the container's", async tt => {
  const ef = [
    'UID          PID    PPID  C STIME TTY          TIME CMD',
    'root           1       0  0 Nov18 ?        00:00:01 /sbin/init',
    'root         812     790  0 01:10 ?        00:00:00 sh -c sleep 1000',
    'root         813     812  0 01:10 ?        00:00:00 sleep 1000',
    'root        8120       1  0 01:10 ?        00:00:00 unrelated 812',
    '',
  ].join('\n');
  const lines = ef.split('\n');
  tt.equal(filterPsOutput(ef, [812, 813]), `${lines[0]}\n${lines[2]}\n${lines[3]}\n`);
  tt.equal(
    filterPsOutput('  PID COMMAND\n  812 sh\n   99 other\n', [812]),
    '  PID COMMAND\n  812 sh\n',
    'PID as the first column (-o pid,comm)',
  );
  tt.equal(filterPsOutput(ef, []), `${lines[0]}\n`, 'no processes: the header alone');
  const noPid = (() => {
    try {
      filterPsOutput('COMMAND\nsh\n', [1]);
    } catch (e) {
      return e;
    }
  })();
  tt.ok(noPid instanceof RuntimeError);
  tt.equal((noPid as Error).message, "couldn't find PID field in ps output");
  // Columns split at blanks, as runc splits them: arguments before PID shift it.
  tt.throws(() => filterPsOutput('COMMAND PID\nsh -c 812\n', [812]), {
    message: 'unable to parse pid: strconv.Atoi: parsing "-c": invalid syntax',
  } as any);
});

t.test("Go JSON: exact uint64s, insertion order, Go's escapes, undefined fields left out", async tt => {
  tt.equal(
    goJson({ b: 9223372036854771712n, a: [1n, 18446744073709551615n], c: undefined, d: null }),
    '{"b":9223372036854771712,"a":[1,18446744073709551615],"d":null}',
  );
  tt.equal(goJson('<a&b>'), '"\\u003ca\\u0026b\\u003e"');
  tt.equal(formatEvent({ type: 'oom', id: 'c1' }), '{"type":"oom","id":"c1"}\n', 'an oom event has no data');
});

t.test('cpuset lists', async tt => {
  tt.same(parseCpuList('0-3,8\n'), [0, 1, 2, 3, 8]);
  tt.same(parseCpuList('0'), [0]);
  tt.equal(parseCpuList(''), undefined, "empty: omitted like Go's nil slice");
});

function manager(record: Partial<CgroupRecord>): CgroupManager {
  return new CgroupfsManager({ layout: 'hybrid', dirs: [], created: [], v1Controllers: [], rootless: false, ...record } as CgroupRecord);
}

t.test("stats from cgroup v1 files, in runc's shape", async tt => {
  const root = fakeTree({
    'memory/c/memory.usage_in_bytes': '864256\n',
    'memory/c/memory.max_usage_in_bytes': '983040\n',
    'memory/c/memory.failcnt': '3\n',
    'memory/c/memory.limit_in_bytes': '67108864\n',
    'memory/c/memory.memsw.usage_in_bytes': '864256\n',
    'memory/c/memory.memsw.max_usage_in_bytes': '983040\n',
    'memory/c/memory.memsw.failcnt': '0\n',
    'memory/c/memory.memsw.limit_in_bytes': '9223372036854771712\n',
    'memory/c/memory.kmem.tcp.usage_in_bytes': '0\n',
    'memory/c/memory.kmem.tcp.max_usage_in_bytes': '0\n',
    'memory/c/memory.kmem.tcp.failcnt': '0\n',
    'memory/c/memory.kmem.tcp.limit_in_bytes': '9223372036854771712\n',
    'memory/c/memory.stat': 'rss 167936\ncache 4096\nhierarchical_memory_limit 67108864\n',
    'memory/c/memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
    'cpuacct/c/cpuacct.usage': '2341239\n',
    'cpuacct/c/cpuacct.usage_percpu': '2042859 298380 \n',
    'cpuacct/c/cpuacct.usage_all': 'cpu user system\n0 100 200\n1 300 400\n',
    'cpuacct/c/cpuacct.stat': 'user 3\nsystem 5\n',
    'cpu/c/cpu.stat': 'nr_periods 10\nnr_throttled 2\nthrottled_time 12345\n',
    'cpuset/c/cpuset.cpus': '0-1\n',
    'cpuset/c/cpuset.mems': '0\n',
    'cpuset/c/cpuset.sched_load_balance': '1\n',
    'cpuset/c/cpuset.sched_relax_domain_level': '-1\n',
    'pids/c/pids.current': '3\n',
    'pids/c/pids.max': 'max\n',
    'blkio/c/blkio.bfq.io_serviced_recursive': 'Total 0\n',
    'blkio/c/blkio.throttle.io_serviced_recursive': '8:0 Read 4\n8:0 Write 0\nTotal 4\n',
    'blkio/c/blkio.throttle.io_service_bytes_recursive': '8:0 Read 16384\n8:0 Write 0\nTotal 16384\n',
  });
  const dirs = ['memory', 'cpuacct', 'cpu', 'cpuset', 'pids', 'blkio'].map(k => ({
    key: k,
    mountPoint: path.join(root, k),
    dir: path.join(root, k, 'c'),
  }));
  const m = manager({ dirs, v1Controllers: ['memory', 'cpuacct', 'cpu', 'cpuset', 'pids', 'blkio'] });
  tt.equal(
    goJson(runcStats(m)),
    '{"cpu":{"usage":{"total":2341239,"percpu":[2042859,298380],"percpu_kernel":[200,400],"percpu_user":[100,300],' +
      '"kernel":50000000,"user":30000000},"throttling":{"periods":10,"throttledPeriods":2,"throttledTime":12345}},' +
      '"cpuset":{"cpus":[0,1],"cpu_exclusive":0,"mems":[0],"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,' +
      '"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":1,"sched_relax_domain_level":-1},' +
      '"memory":{"cache":4096,"usage":{"limit":67108864,"usage":864256,"max":983040,"failcnt":3},' +
      '"swap":{"limit":9223372036854771712,"usage":864256,"max":983040,"failcnt":0},"kernel":{"limit":0,"failcnt":0},' +
      '"kernelTCP":{"limit":9223372036854771712,"failcnt":0},"raw":{"cache":4096,"hierarchical_memory_limit":67108864,"rss":167936}},' +
      '"pids":{"current":3},' +
      '"blkio":{"ioServiceBytesRecursive":[{"major":8,"op":"Read","value":16384},{"major":8,"op":"Write"}],' +
      '"ioServicedRecursive":[{"major":8,"op":"Read","value":4},{"major":8,"op":"Write"}]},' +
      '"hugetlb":{},"intel_rdt":{},"network_interfaces":null}',
  );
  tt.equal(oomKillCount(m), 2n, 'oom kills from memory.oom_control');
});

t.test("stats from cgroup v2 files, in runc's shape", async tt => {
  const root = fakeTree({
    'c/memory.current': '1000\n',
    'c/memory.max': '4096000\n',
    'c/memory.peak': '2000\n',
    'c/memory.events': 'low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n',
    'c/memory.swap.current': '24\n',
    'c/memory.swap.max': 'max\n',
    'c/memory.stat': 'anon 800\nfile 100\n',
    'c/cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n',
    'c/pids.current': '2\n',
    'c/pids.max': '20\n',
    'c/io.stat': '8:16 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n',
    'c/hugetlb.2MB.current': '0\n',
    'c/hugetlb.2MB.events': 'max 4\n',
    'c/hugetlb.1GB.current': '1073741824\n',
    'c/hugetlb.1GB.events': 'max 0\n',
  });
  const m = manager({
    layout: 'v2',
    dirs: [{ key: 'unified', mountPoint: root, dir: path.join(root, 'c') }],
    v2Controllers: ['memory', 'cpu', 'pids', 'io', 'hugetlb'],
  });
  tt.equal(
    goJson(runcStats(m)),
    '{"cpu":{"usage":{"total":1500000,"kernel":500000,"user":1000000},"throttling":{}},' +
      '"cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,' +
      '"memory_pressure":0,"sched_load_balance":0,"sched_relax_domain_level":0},' +
      '"memory":{"cache":100,"usage":{"limit":4096000,"usage":1000,"max":2000,"failcnt":7},' +
      '"swap":{"limit":18446744073709551615,"usage":1024,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0},' +
      '"raw":{"anon":800,"file":100}},' +
      '"pids":{"current":2,"limit":20},' +
      '"blkio":{"ioServiceBytesRecursive":[{"major":8,"minor":16,"op":"Read","value":4096},{"major":8,"minor":16,"op":"Write"}],' +
      '"ioServicedRecursive":[{"major":8,"minor":16,"op":"Read","value":1},{"major":8,"minor":16,"op":"Write"}]},' +
      '"hugetlb":{"1GB":{"usage":1073741824,"failcnt":0},"2MB":{"failcnt":4}},"intel_rdt":{},"network_interfaces":null}',
  );
  tt.equal(oomKillCount(m), 1n, 'oom kills from memory.events');
});

t.test('hybrid: hugetlb from cgroup2 when no v1 hierarchy has it; no memory cgroup, no oom counter', async tt => {
  const root = fakeTree({
    'unified/c/hugetlb.2MB.current': '2097152\n',
    'unified/c/hugetlb.2MB.events': 'max 0\n',
    'unified/c/cpu.stat': 'usage_usec 3\n',
  });
  const m = manager({
    dirs: [{ key: 'unified', mountPoint: path.join(root, 'unified'), dir: path.join(root, 'unified/c') }],
    v1Controllers: ['memory'],
    v2Controllers: ['memory', 'hugetlb'],
  });
  const s = runcStats(m);
  tt.same(s.hugetlb, { '2MB': { usage: 2097152n, failcnt: 0n } });
  tt.equal(s.cpu.usage.total, 3000n, 'cpu.stat of cgroup2 when no v1 cpuacct is there');
  tt.equal(oomKillCount(m), undefined, 'memory is a v1 controller here, and the container has no directory in it');
});

t.test('intel_rdt from resctrl: info, root and group schemata, monitoring counters per L3 domain', async tt => {
  const root = fakeTree({
    'info/L3/cbm_mask': 'fff\n',
    'info/L3/min_cbm_bits': '1\n',
    'info/L3/num_closids': '16\n',
    'info/MB/bandwidth_gran': '10\n',
    'info/MB/delay_linear': '1\n',
    'info/MB/min_bandwidth': '10\n',
    'info/MB/num_closids': '8\n',
    'info/L3_MON/mon_features': 'llc_occupancy\nmbm_total_bytes\nmbm_local_bytes\n',
    schemata: '    MB:0=100;1=100\n    L3:0=fff;1=fff\n',
    'c1/schemata': '    MB:0= 50;1= 50\n    L3:0=00f;1=fff\n',
    'c1/mon_groups/c1/mon_data/mon_L3_01/llc_occupancy': '4096\n',
    'c1/mon_groups/c1/mon_data/mon_L3_01/mbm_total_bytes': '20\n',
    'c1/mon_groups/c1/mon_data/mon_L3_01/mbm_local_bytes': '10\n',
    'c1/mon_groups/c1/mon_data/mon_L3_00/llc_occupancy': '0\n',
    'c1/mon_groups/c1/mon_data/mon_L3_00/mbm_total_bytes': '2\n',
    'c1/mon_groups/c1/mon_data/mon_L3_00/mbm_local_bytes': '1\n',
  });
  const stats = resctrlStats({ group: path.join(root, 'c1'), createdGroup: true, monGroup: path.join(root, 'c1/mon_groups/c1') });
  tt.equal(
    goJson(stats),
    '{"l3_cache_info":{"cbm_mask":"fff","min_cbm_bits":1,"num_closids":16},"l3_cache_schema_root":"L3:0=fff;1=fff",' +
      '"l3_cache_schema":"L3:0=00f;1=fff","mem_bw_info":{"bandwidth_gran":10,"delay_linear":1,"min_bandwidth":10,"num_closids":8},' +
      '"mem_bw_schema_root":"MB:0=100;1=100","mem_bw_schema":"MB:0= 50;1= 50",' +
      '"mbm_stats":[{"mbm_total_bytes":2,"mbm_local_bytes":1},{"mbm_total_bytes":20,"mbm_local_bytes":10}],' +
      '"cmt_stats":[{"llc_occupancy":0},{"llc_occupancy":4096}]}',
  );
  const bare = fakeTree({ 'g/schemata': 'L3:0=f\n' });
  tt.same(
    resctrlStats({ group: path.join(bare, 'g'), createdGroup: false }),
    {},
    'a resctrl without CAT, MBA or monitoring: nothing to say',
  );
});
