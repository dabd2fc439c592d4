// The systemd cgroup manager without a systemd: the D-Bus wire format byte for byte against GDBus (the
// expected bodies below were produced by GLib's Gio.DBusMessage.to_blob for the same values), round trips of
// every type tsrt sends, a foreign message decoded; runc's unit and slice names; the unit properties for
// linux.resources on v1 and v2 placements; where the unit's cgroup is in each hierarchy.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  Connection,
  Reader,
  Writer,
  decodeMessage,
  encodeMessage,
  messageLength,
  MessageType,
  socketPathOf,
  splitSignature,
  type DBusValue,
} from '../../src/cgroups/dbus.js';
import { cgroupDirs } from '../../src/cgroups/paths.js';
import {
  annotationProperties,
  deviceProperties,
  parseGVariant,
  rangeToBits,
  resourceProperties,
  systemdAddress,
  unitProperties,
  type Property,
} from '../../src/cgroups/systemd.js';
import { expandSlice, systemdUnitOf } from '../../src/cgroups/systemd-unit.js';
import type { Layout, Placement } from '../../src/cgroups/types.js';
import { RuntimeError } from '../../src/errors.js';

function errorOf(t: Test, fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  t.fail('did not throw');
  return '';
}

const hex = (b: Buffer): string => b.toString('hex');

function body(sig: string, values: DBusValue[]): Buffer {
  const w = new Writer();
  w.writeAll(sig, values);
  return w.bytesWritten();
}

const v = (sig: string, value: DBusValue) => ({ sig, value });

t.test('D-Bus marshalling', async t => {
  t.test('StartTransientUnit body: byte-exact with GDBus', async t => {
    const b = body('ssa(sv)a(sa(sv))', [
      'tsrt-abc.scope',
      'replace',
      [
        ['Description', v('s', 'x')],
        ['PIDs', v('au', [42])],
        ['Delegate', v('b', true)],
        ['MemoryMax', v('t', 1n << 20n)],
        ['AllowedCPUs', v('ay', Uint8Array.of(5))],
      ],
      [],
    ]);
    t.equal(
      hex(b),
      '0e000000747372742d6162632e73636f70650000070000007265706c6163650089000000000000000b0000004465736372697074696f6e000173000001000000780000000000000004000000504944730002617500000000040000002a0000000800000044656c6567617465000162000100000000000000090000004d656d6f72794d6178000174000000000000000000001000000000000b000000416c6c6f776564435055730002617900010000000500000000000000',
    );
  });
  t.test('SetUnitProperties body (uint64 max, a(ss) in a variant): byte-exact with GDBus', async t => {
    const b = body('sba(sv)', [
      'tsrt-abc.scope',
      true,
      [
        ['TasksMax', v('t', 0xffffffffffffffffn)],
        ['CPUQuotaPerSecUSec', v('t', 500000)],
        [
          'DeviceAllow',
          v('a(ss)', [
            ['/dev/char/1:3', 'rwm'],
            ['char-pts', 'rw'],
          ]),
        ],
      ],
    ]);
    t.equal(
      hex(b),
      '0e000000747372742d6162632e73636f70650000010000009700000000000000080000005461736b734d617800017400ffffffffffffffff1200000043505551756f7461506572536563555365630001740000000000000020a10700000000000b000000446576696365416c6c6f7700056128737329000037000000000000000d0000002f6465762f636861722f313a330000000300000072776d000000000008000000636861722d7074730000000002000000727700',
    );
  });
  t.test('y x i n q d g and their padding: byte-exact with GDBus', async t => {
    t.equal(
      hex(body('yxinqdg', [255, -2n, -3, -4, 5, 1.5, 'a(sv)'])),
      'ff00000000000000fefffffffffffffffdfffffffcff0500000000000000f83f05612873762900',
    );
  });
  t.test('round trips', async t => {
    const sig = 'sbuitxasa(sv)a(sa(sv))ayauo';
    const values: DBusValue[] = [
      'ünïcode',
      false,
      4294967295,
      -2147483648,
      18446744073709551615n,
      -9223372036854775808n,
      ['a', '', 'c'],
      [
        ['k', v('as', ['x'])],
        ['n', v('v', v('u', 3))],
      ],
      [['u', [['p', v('b', true)]]]],
      Uint8Array.of(0, 1, 255),
      [1, 2],
      '/o/p',
    ];
    const b = body(sig, values);
    t.same(new Reader(b, true).readAll(sig), values);
  });
  t.test('empty arrays keep the padding to their element', async t => {
    // The length, then padding to 8 even with no element (the spec's rule); GDBus writes the same.
    t.equal(hex(body('a(sv)u', [[], 7])), '000000000000000007000000');
  });
  t.test('signatures split into complete types', async t => {
    t.same(splitSignature('ssa(sv)a(sa(sv))'), ['s', 's', 'a(sv)', 'a(sa(sv))']);
    t.same(splitSignature('a{sv}yv'), ['a{sv}', 'y', 'v']);
    t.match(
      errorOf(t, () => splitSignature('a(sv')),
      /unclosed/,
    );
    t.match(
      errorOf(t, () => splitSignature('z')),
      /unknown type "z"/,
    );
  });
  t.test('a value of the wrong type is refused', async t => {
    t.match(
      errorOf(t, () => body('u', ['1'])),
      /not a value of type u/,
    );
    t.match(
      errorOf(t, () => body('ss', ['a'])),
      /wants 2 values, got 1/,
    );
    t.match(
      errorOf(t, () => body('v', [v('ss', ['a', 'b'])])),
      /one complete type/,
    );
  });
  t.test('a whole message: header fields, 8-aligned body, length from the first 16 bytes', async t => {
    const m = encodeMessage({
      type: MessageType.call,
      flags: 0,
      serial: 7,
      path: '/org/freedesktop/systemd1',
      interface: 'org.freedesktop.systemd1.Manager',
      member: 'StopUnit',
      destination: 'org.freedesktop.systemd1',
      signature: 'ss',
      body: ['tsrt-abc.scope', 'replace'],
    });
    t.equal(m[0], 0x6c, 'little-endian');
    t.equal(messageLength(m.subarray(0, 16)), m.length);
    const back = decodeMessage(m);
    t.match(back, {
      type: 1,
      serial: 7,
      path: '/org/freedesktop/systemd1',
      member: 'StopUnit',
      destination: 'org.freedesktop.systemd1',
      signature: 'ss',
    });
    t.same(back.body, ['tsrt-abc.scope', 'replace']);
  });
  t.test('a JobRemoved signal written by GDBus decodes', async t => {
    const blob = Buffer.from(
      '6c04010149000000090000008b00000007017300040000003a312e350000000001016f00190000002f6f72672f667265656465736b746f702f73797374656d64310000000000000002017300200000006f72672e667265656465736b746f702e73797374656d64312e4d616e6167657200000000000000000801670004756f737300000000000000030173000a0000004a6f6252656d6f76656400000000000011000000200000002f6f72672f667265656465736b746f702f73797374656d64312f6a6f622f3137000000000e000000747372742d6162632e73636f7065000004000000646f6e6500',
      'hex',
    );
    t.equal(messageLength(blob.subarray(0, 16)), blob.length);
    const m = decodeMessage(blob);
    t.match(m, {
      type: MessageType.signal,
      serial: 9,
      sender: ':1.5',
      interface: 'org.freedesktop.systemd1.Manager',
      member: 'JobRemoved',
      signature: 'uoss',
    });
    t.same(m.body, [17, '/org/freedesktop/systemd1/job/17', 'tsrt-abc.scope', 'done']);
  });
  t.test('addresses: only unix:path= connects', async t => {
    t.equal(socketPathOf('unix:path=/run/systemd/private'), '/run/systemd/private');
    t.equal(socketPathOf('unix:abstract=/tmp/x;unix:path=/tmp/a%20b,guid=00'), '/tmp/a b');
    t.match(
      errorOf(t, () => socketPathOf('tcp:host=localhost,port=1')),
      /no unix:path=/,
    );
  });
});

t.test('a peer that never answers or hangs up: an error naming the bus, not a hang', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-dbus-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // A listener that accepts and then stays silent (or closes at once), in a process of its own: the client
  // blocks this one.
  const server = (sock: string, then: string) => {
    const p = spawn(
      '/usr/bin/python3',
      [
        '-c',
        `import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\ns.listen()\nwhile True:\n c,_=s.accept()\n ${then}`,
        sock,
      ],
      { stdio: 'ignore' },
    );
    t.teardown(() => p.kill());
    return p;
  };
  const waitSocket = async (sock: string) => {
    for (let i = 0; i < 200 && !fs.existsSync(sock); i++) await new Promise(r => setTimeout(r, 25));
  };
  const silent = path.join(dir, 'silent');
  server(silent, 'time.sleep(60)');
  await waitSocket(silent);
  const e1 = errorOf(t, () => Connection.open({ address: `unix:path=${silent}`, bus: true, timeoutMs: 300 }));
  t.equal(e1, `D-Bus: unix:path=${silent} did not answer in time (authentication)`);
  const closing = path.join(dir, 'closing');
  server(closing, 'c.close()');
  await waitSocket(closing);
  const e2 = errorOf(t, () => Connection.open({ address: `unix:path=${closing}`, bus: true, timeoutMs: 5000 }));
  t.equal(e2, `D-Bus: unix:path=${closing} closed the connection (authentication)`);
});

t.test("unit names (runc's rules)", async t => {
  t.test('slices nest at each dash', async t => {
    t.equal(expandSlice('system.slice'), '/system.slice');
    t.equal(expandSlice('a-b-c.slice'), '/a.slice/a-b.slice/a-b-c.slice');
    t.equal(expandSlice('-.slice'), '/');
    for (const bad of ['a--b.slice', '-a.slice', 'a-.slice', 'foo', '.slice', 'a/b.slice']) {
      t.equal(
        errorOf(t, () => expandSlice(bad)),
        `invalid slice name: ${bad}`,
        bad,
      );
    }
  });
  t.test('slice:prefix:name -> prefix-name.scope in slice', async t => {
    t.same(systemdUnitOf('system.slice:tsrt:abc', 'id', false), {
      slice: 'system.slice',
      unit: 'tsrt-abc.scope',
      cgroupPath: '/system.slice/tsrt-abc.scope',
    });
    t.same(systemdUnitOf('machine-x.slice:docker:abc', 'id', false).cgroupPath, '/machine.slice/machine-x.slice/docker-abc.scope');
    t.same(systemdUnitOf('-.slice:p:n', 'id', false).cgroupPath, '/p-n.scope');
  });
  t.test('empty parts: system.slice (user.slice unprivileged), prefix tsrt, the container id', async t => {
    t.same(systemdUnitOf(undefined, 'c1', false), {
      slice: 'system.slice',
      unit: 'tsrt-c1.scope',
      cgroupPath: '/system.slice/tsrt-c1.scope',
    });
    t.equal(systemdUnitOf('::', 'c1', true).cgroupPath, '/user.slice/tsrt-c1.scope');
  });
  t.test('a name ending in .slice is a slice unit placed by its own name', async t => {
    t.same(systemdUnitOf('system.slice:x:my-box.slice', 'c1', false), {
      slice: 'system.slice',
      unit: 'my-box.slice',
      cgroupPath: '/my.slice/my-box.slice',
    });
  });
  t.test('not slice:prefix:name', async t => {
    const msg = errorOf(t, () => systemdUnitOf('/a/b', 'c1', false));
    t.match(msg, /expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "\/a\/b" instead/);
    t.match(
      errorOf(t, () => systemdUnitOf('nope:p:n', 'c1', false)),
      /invalid slice name: nope/,
    );
  });
});

const HYBRID: Layout = {
  layout: 'hybrid',
  v1: [
    { mountPoint: '/sys/fs/cgroup/memory', options: 'memory', ownPath: '/x' },
    { mountPoint: '/sys/fs/cgroup/cpu,cpuacct', options: 'cpu,cpuacct', ownPath: '/' },
    { mountPoint: '/sys/fs/cgroup/systemd', options: 'name=systemd', ownPath: '/user.slice' },
  ],
  unifiedMountPoint: '/sys/fs/cgroup/unified',
  unifiedOwnPath: '/user.slice/session-1.scope',
} as Layout;

t.test("the unit's cgroup in every hierarchy: below the manager's root, not our own cgroup", async t => {
  const req = { id: 'c1', systemd: true, systemdRunning: true, cgroupsPath: 'system.slice:tsrt:c1' };
  t.same(
    cgroupDirs(HYBRID, req).map(d => d.dir),
    [
      '/sys/fs/cgroup/memory/system.slice/tsrt-c1.scope',
      '/sys/fs/cgroup/cpu,cpuacct/system.slice/tsrt-c1.scope',
      '/sys/fs/cgroup/systemd/system.slice/tsrt-c1.scope',
      '/sys/fs/cgroup/unified/system.slice/tsrt-c1.scope',
    ],
  );
  t.equal(cgroupDirs(HYBRID, { ...req, systemdRoot: '/fake' })[0]?.dir, '/sys/fs/cgroup/memory/fake/system.slice/tsrt-c1.scope');
  t.equal(
    errorOf(t, () => cgroupDirs(HYBRID, { ...req, systemdRunning: false })),
    'systemd not running on this host, cannot use systemd cgroups manager',
  );
});

const HYBRID_PLACEMENT: Placement = {
  v1: new Set(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids']),
  v2: new Set(['hugetlb']),
};
const V2_PLACEMENT: Placement = { v1: new Set(), v2: new Set(['cpu', 'cpuset', 'memory', 'io', 'pids', 'hugetlb']) };
const PROC_DEVICES = 'Character devices:\n  1 mem\n  4 tty\n136 pts\n\nBlock devices:\n  8 sd\n';

const asObject = (props: Property[]) => Object.fromEntries(props.map(([k, x]) => [k, x.value]));

t.test('resource properties', async t => {
  const r = {
    memory: { limit: 64 << 20, reservation: 32 << 20, swap: 128 << 20 },
    cpu: { shares: 1024, quota: 33333, period: 100000, cpus: '0-2,9', mems: '0' },
    pids: { limit: -1 },
    blockIO: { weight: 500 },
  };
  t.test('v1 controllers: v1 names (MemoryLimit, CPUShares, BlockIOWeight)', async t => {
    t.same(asObject(resourceProperties(r, HYBRID_PLACEMENT, PROC_DEVICES)), {
      MemoryLimit: 67108864n,
      CPUShares: 1024n,
      CPUQuotaPeriodUSec: 100000n,
      CPUQuotaPerSecUSec: 340000n,
      AllowedCPUs: Uint8Array.of(0b111, 0b10),
      AllowedMemoryNodes: Uint8Array.of(1),
      TasksMax: 0xffffffffffffffffn,
      BlockIOWeight: 500n,
    });
  });
  t.test('cgroup2 controllers: MemoryMax/Low/SwapMax, CPUWeight, IOWeight', async t => {
    const p = asObject(resourceProperties(r, V2_PLACEMENT, PROC_DEVICES));
    t.match(p, { MemoryMax: 67108864n, MemoryLow: 33554432n, MemorySwapMax: 67108864n, CPUWeight: 39n, IOWeight: 4950n });
    t.notOk('MemoryLimit' in p);
  });
  t.test("cpu quota: per second, rounded up to systemd's 10 ms; a period alone leaves the quota unlimited", async t => {
    t.equal(
      asObject(resourceProperties({ cpu: { quota: 50000 } }, HYBRID_PLACEMENT, ''))['CPUQuotaPerSecUSec'],
      500000n,
      'default period 100 ms',
    );
    t.same(asObject(resourceProperties({ cpu: { period: 50000 } }, HYBRID_PLACEMENT, '')), {
      CPUQuotaPeriodUSec: 50000n,
      CPUQuotaPerSecUSec: 0xffffffffffffffffn,
    });
  });
  t.test('nothing asked, nothing sent', async t => {
    t.same(resourceProperties({}, HYBRID_PLACEMENT, ''), []);
    t.same(resourceProperties({ pids: { limit: 0 }, memory: { limit: 0 } }, HYBRID_PLACEMENT, ''), []);
  });
  t.test('cpus lists as bit masks', async t => {
    t.same(rangeToBits('0', 'cpu.cpus'), Uint8Array.of(1));
    t.same(rangeToBits('7-8', 'cpu.cpus'), Uint8Array.of(0x80, 1));
    t.match(
      errorOf(t, () => rangeToBits('3-1', 'cpu.cpus')),
      /linux\.resources\.cpu\.cpus: invalid list "3-1"/,
    );
  });
});

t.test('devices as DevicePolicy/DeviceAllow', async t => {
  t.test('default: strict, the always-allowed devices; a minor wildcard by its /proc/devices name', async t => {
    const p = asObject(deviceProperties([{ allow: false, access: 'rwm' }], PROC_DEVICES));
    t.equal(p['DevicePolicy'], 'strict');
    t.same(p['DeviceAllow'], [
      ['char-*', 'm'],
      ['block-*', 'm'],
      ['/dev/char/1:3', 'rwm'],
      ['/dev/char/1:8', 'rwm'],
      ['/dev/char/1:7', 'rwm'],
      ['/dev/char/5:0', 'rwm'],
      ['/dev/char/1:5', 'rwm'],
      ['/dev/char/1:9', 'rwm'],
      ['char-pts', 'rwm'],
      ['/dev/char/5:2', 'rwm'],
    ]);
  });
  t.test('a config allow and a later deny of the same device', async t => {
    const p = asObject(
      deviceProperties(
        [
          { allow: true, type: 'b', major: 8, minor: 0, access: 'r' },
          { allow: false, type: 'b', major: 8, minor: 0 },
        ],
        PROC_DEVICES,
      ),
    );
    t.notOk((p['DeviceAllow'] as string[][]).some(([d]) => d === '/dev/block/8:0'));
  });
  t.test('allow everything: policy auto', async t => {
    t.same(
      asObject(
        deviceProperties(
          [
            { allow: true, access: 'rwm' },
            { allow: false, type: 'c', major: 4, minor: 1 },
          ],
          PROC_DEVICES,
        ),
      ).DevicePolicy,
      'auto',
    );
  });
});

t.test('StartTransientUnit properties', async t => {
  const u = systemdUnitOf('system.slice:tsrt:c1', 'c1', false);
  const p = asObject(unitProperties(u, 'c1', 4242, { pids: { limit: 10 } }, HYBRID_PLACEMENT, PROC_DEVICES));
  t.match(p, {
    Description: 'tsrt container c1',
    Slice: 'system.slice',
    Delegate: true,
    PIDs: [4242],
    DefaultDependencies: false,
    MemoryAccounting: true,
    CPUAccounting: true,
    BlockIOAccounting: true,
    TasksAccounting: true,
    TasksMax: 10n,
    DevicePolicy: 'strict',
  });
  t.equal(asObject(unitProperties(u, 'c1', 1, undefined, V2_PLACEMENT, ''))['IOAccounting'], true, 'IOAccounting where io is cgroup2');
  const slice = asObject(unitProperties(systemdUnitOf('system.slice:x:box.slice', 'c1', false), 'c1', 1, undefined, HYBRID_PLACEMENT, ''));
  t.same(slice['Wants'], ['system.slice'], 'a slice unit wants its parent');
  t.notOk('Delegate' in slice);
});

t.test('org.systemd.property.* annotations (runc)', async t => {
  t.test('GVariant text: typed and untyped numbers, booleans, strings, arrays', async t => {
    t.same(parseGVariant('uint64 123456789'), { sig: 't', value: 123456789n });
    t.same(parseGVariant('@t 5'), { sig: 't', value: 5n });
    t.same(parseGVariant('42'), { sig: 'i', value: 42 }, 'an untyped integer is an int32');
    t.same(parseGVariant('1.5'), { sig: 'd', value: 1.5 });
    t.same(parseGVariant('true'), { sig: 'b', value: true });
    t.same(parseGVariant("'inactive-or-failed'"), { sig: 's', value: 'inactive-or-failed' });
    t.same(parseGVariant(`"it\\'s"`), { sig: 's', value: "it's" });
    t.same(parseGVariant("['a.service', 'b.service']"), { sig: 'as', value: ['a.service', 'b.service'] });
    t.same(parseGVariant('@au []'), { sig: 'au', value: [] });
    t.same(parseGVariant('@ay [1, 2]'), { sig: 'ay', value: Uint8Array.of(1, 2) });
    t.match(
      errorOf(t, () => parseGVariant('uint32 -1')),
      /-1 out of range for u/,
    );
    t.match(
      errorOf(t, () => parseGVariant('[]')),
      /a typed empty array/,
    );
    t.match(
      errorOf(t, () => parseGVariant("[1, 'x']")),
      /a i, not a string/,
    );
    t.match(
      errorOf(t, () => parseGVariant("'open")),
      /unterminated string/,
    );
    t.match(
      errorOf(t, () => parseGVariant('1 2')),
      /the end/,
    );
  });
  t.test('properties after the prefix; *Sec in seconds becomes *USec', async t => {
    const p = annotationProperties({
      'org.systemd.property.TimeoutStopSec': 'uint64 123',
      'org.systemd.property.CollectMode': "'inactive-or-failed'",
      'org.systemd.property.RuntimeMaxSec': '1.5',
      'org.systemd.property.TimeoutStopUSec': 'uint64 7',
      'other.annotation': 'x',
    });
    t.same(p, [
      ['TimeoutStopUSec', { sig: 't', value: 123000000n }],
      ['CollectMode', { sig: 's', value: 'inactive-or-failed' }],
      ['RuntimeMaxUSec', { sig: 't', value: 1500000n }],
      ['TimeoutStopUSec', { sig: 't', value: 7n }],
    ]);
  });
  t.test('bad names and values name the annotation', async t => {
    const e1 = errorOf(t, () => annotationProperties({ 'org.systemd.property.x-y': '1' }));
    t.match(e1, /^annotations: org\.systemd\.property\.x-y: "x-y" is not a systemd property name/);
    t.match(
      errorOf(t, () => annotationProperties({ 'org.systemd.property.CPUWeight': 'uint64' })),
      /^annotations: org\.systemd\.property\.CPUWeight: the value is not a GVariant: expected a value/,
    );
    t.match(
      errorOf(t, () => annotationProperties({ 'org.systemd.property.TimeoutSec': "'soon'" })),
      /seconds must be a number/,
    );
  });
});

t.test('which systemd', async t => {
  t.same(
    systemdAddress(false, { TSRT_SYSTEMD_BUS: 'unix:path=/tmp/b' }),
    { address: 'unix:path=/tmp/b', bus: true },
    'the test-only override',
  );
  t.same(systemdAddress(true, { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus' }), {
    address: 'unix:path=/run/user/1000/bus',
    bus: true,
  });
  t.same(systemdAddress(true, { XDG_RUNTIME_DIR: '/run/user/1000' }), { address: 'unix:path=/run/user/1000/bus', bus: true });
  t.ok(errorOf(t, () => systemdAddress(true, {})).includes('DBUS_SESSION_BUS_ADDRESS'));
  t.ok(new RuntimeError('x', { op: 'cgroup' }) instanceof Error);
});
