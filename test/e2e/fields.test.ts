// End-to-end tests of the runtime-spec 1.2 Linux fields, as root, through the built dist/tsrt: one named test
// per field, each reading the effect from inside a busybox container, and bad input failing with the JSON
// path of the field, a non-zero exit and no container state left behind.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  e2eFile,
  hostMountsContaining,
  lastErrorMessage as errorMsg,
  sh,
  tsrt,
  waitFor,
  type Edit,
  type Result,
  type Scope,
} from '../helpers.js';
import { hostFacts } from '../../src/runtime/host.js';

const { ROOT, scope } = e2eFile(t, {
  name: 'fields',
  idPrefix: 'fld',
  needsRoot: 'field tests need root',
  timeoutMinutes: 10,
});

/** Runs `args` in a fresh busybox bundle in the foreground; the container's stdout comes back. */
function runIn(s: Scope, args: string[], edit: Edit): Result & { bundle: string; id: string } {
  const bundle = s.bundle(args, edit);
  const id = s.id();
  return { ...tsrt(['run', '-b', bundle, id], { root: ROOT }), bundle, id };
}

/** A config the runtime must refuse: exit 1, this message, no state directory and no host mount left. */
function refuses(tt: Test, edit: Edit, message: string): void {
  const s = scope(tt);
  const r = runIn(s, ['true'], edit);
  tt.equal(r.code, 1, 'exits 1');
  tt.equal(errorMsg(r.stderr), message, 'names the field');
  tt.notOk(fs.existsSync(path.join(ROOT, r.id)), 'no state directory left');
  tt.same(hostMountsContaining(r.bundle), [], 'no host mount left');
}

/** One "Key:\tvalue" line of a /proc status-like text. */
function field(text: string, key: string): string | undefined {
  return new RegExp(`^${key}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
}

const onlineCpus = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();

t.test('process.scheduler: policy and priority (SCHED_RR 7), and nice for SCHED_BATCH', async tt => {
  const s = scope(tt);
  const rr = runIn(s, ['cat', '/proc/self/sched'], spec => {
    spec.process.scheduler = { policy: 'SCHED_RR', priority: 7 };
    // A v1 cpu cgroup gives its tasks no real-time budget unless it is asked for (as under runc).
    spec.linux.resources = { ...spec.linux.resources, cpu: { realtimeRuntime: 10000, realtimePeriod: 1000000 } };
  });
  tt.equal(rr.code, 0, rr.stderr);
  tt.equal(field(rr.stdout, 'policy'), '2', 'SCHED_RR');
  tt.equal(field(rr.stdout, 'prio'), String(99 - 7), 'kernel prio 99 - rt_priority');

  const batch = runIn(s, ['cat', '/proc/self/stat'], spec => {
    spec.process.scheduler = { policy: 'SCHED_BATCH', nice: 5 };
  });
  tt.equal(batch.code, 0, batch.stderr);
  const stat = batch.stdout.slice(batch.stdout.lastIndexOf(')') + 2).split(' ');
  // Fields after the command: state is 3, nice is 19, policy is 41 (proc(5)), so index n-3 here.
  tt.equal(stat[19 - 3], '5', 'nice 5');
  tt.equal(stat[41 - 3], '3', 'SCHED_BATCH');
});

t.test('process.scheduler: a policy the kernel lacks is refused before anything runs', async tt => {
  refuses(
    tt,
    spec => {
      spec.process.scheduler = { policy: 'SCHED_ISO' };
    },
    'config.json: /process/scheduler/policy: SCHED_ISO is not implemented by the Linux kernel',
  );
  refuses(
    tt,
    spec => {
      spec.process.scheduler = { policy: 'SCHED_OTHER', priority: 3 };
    },
    'config.json: /process/scheduler/priority: only SCHED_FIFO and SCHED_RR take a priority (SCHED_OTHER given)',
  );
});

t.test('process.ioPriority: class and level as ionice sees them', async tt => {
  const s = scope(tt);
  const r = runIn(s, ['ionice', '-p', '1'], spec => {
    spec.process.ioPriority = { class: 'IOPRIO_CLASS_RT', priority: 3 };
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout.trim(), 'realtime: prio 3');
  const idle = runIn(s, ['ionice', '-p', '1'], spec => {
    spec.process.ioPriority = { class: 'IOPRIO_CLASS_IDLE' };
  });
  tt.equal(idle.stdout.trim(), 'idle', idle.stderr);
  refuses(
    tt,
    spec => {
      spec.process.ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 9 };
    },
    'config.json: /process/ioPriority/priority: 9 is outside 0..7',
  );
});

t.test('process.execCPUAffinity: final is the affinity the process runs with', async tt => {
  const s = scope(tt);
  const last = onlineCpus.split(/[-,]/).pop()!;
  const r = runIn(s, ['cat', '/proc/self/status'], spec => {
    spec.process.execCPUAffinity = { initial: '0', final: last };
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(field(r.stdout, 'Cpus_allowed_list'), last);
  const initialOnly = runIn(s, ['cat', '/proc/self/status'], spec => {
    spec.process.execCPUAffinity = { initial: '0' };
  });
  tt.equal(field(initialOnly.stdout, 'Cpus_allowed_list'), '0', 'without final, the initial affinity is kept');
  refuses(
    tt,
    spec => {
      spec.process.execCPUAffinity = { final: '2-1' };
    },
    'config.json: /process/execCPUAffinity/final: invalid range "2-1" in "2-1"',
  );
});

t.test('linux.personality: LINUX32 as /proc/self/personality and uname -m report it', async tt => {
  const s = scope(tt);
  const r = runIn(s, ['sh', '-c', 'cat /proc/self/personality; uname -m'], spec => {
    spec.linux.personality = { domain: 'LINUX32' };
  });
  tt.equal(r.code, 0, r.stderr);
  const [persona, machine] = r.stdout.trim().split('\n');
  tt.equal(persona, '00000008', 'PER_LINUX32');
  if (process.arch === 'x64') tt.equal(machine, 'i686', 'a 32-bit machine name');
  const linux = runIn(s, ['cat', '/proc/self/personality'], spec => {
    spec.linux.personality = { domain: 'LINUX' };
  });
  tt.equal(linux.stdout.trim(), '00000000', 'PER_LINUX');
  refuses(
    tt,
    spec => {
      spec.linux.personality = { domain: 'LINUX', flags: ['UNAME26'] };
    },
    'config.json: /linux/personality/flags/0: unknown flag "UNAME26" (the runtime spec defines none)',
  );
});

t.test('linux.memoryPolicy: MPOL_BIND to node 0 shows in /proc/self/numa_maps', async tt => {
  const s = scope(tt);
  const r = runIn(s, ['cat', '/proc/self/numa_maps'], spec => {
    spec.linux.memoryPolicy = { mode: 'MPOL_BIND', nodes: '0' };
  });
  tt.equal(r.code, 0, r.stderr);
  const policies = new Set(
    r.stdout
      .trim()
      .split('\n')
      .map(l => l.split(' ')[1]),
  );
  tt.same([...policies], ['bind:0'], 'every mapping follows the process policy');
  const interleave = runIn(s, ['cat', '/proc/self/numa_maps'], spec => {
    spec.linux.memoryPolicy = { mode: 'MPOL_INTERLEAVE', nodes: '0', flags: ['MPOL_F_STATIC_NODES'] };
  });
  tt.match(interleave.stdout, /^\S+ interleave=static:0 /m, interleave.stderr);
  refuses(
    tt,
    spec => {
      spec.linux.memoryPolicy = { mode: 'MPOL_BIND' };
    },
    'config.json: /linux/memoryPolicy/nodes: MPOL_BIND needs nodes',
  );
});

t.test('linux.memoryPolicy: a node the host does not have fails in the executor, naming the field', async tt => {
  const s = scope(tt);
  const r = runIn(s, ['true'], spec => {
    spec.linux.memoryPolicy = { mode: 'MPOL_BIND', nodes: '63' };
  });
  tt.equal(r.code, 1);
  tt.match(errorMsg(r.stderr), /^unable to start container process: error during container init: set memory policy "memoryPolicy": /);
  tt.notOk(fs.existsSync(path.join(ROOT, r.id)), 'no state directory left');
});

t.test('process.capabilities: an unknown name is an error (runtime-tools process_capabilities_fail)', async tt => {
  refuses(
    tt,
    spec => {
      spec.process.capabilities.bounding.unshift('CAP_TEST');
    },
    'config.json: /process/capabilities/bounding/0: unknown capability "CAP_TEST"',
  );
});

t.test("process.capabilities: one missing from the host's bounding set is a clear error", async tt => {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const bounding = BigInt(`0x${field(status, 'CapBnd')}`);
  const lastCap = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
  const missing = [...Array(lastCap + 1).keys()].find(n => !(bounding & (1n << BigInt(n))));
  if (missing === undefined) {
    tt.pass('not applicable on this host', { skip: "this host's bounding set is complete: no capability to ask for in vain" });
    return;
  }
  const { CAPABILITIES } = await import('../../src/plan/linux.js');
  const name = CAPABILITIES[missing]!;
  refuses(
    tt,
    spec => {
      spec.process.capabilities.permitted.unshift(name);
    },
    `config.json: /process/capabilities/permitted/0: ${name} is not in the host's capability bounding set, so the container cannot have it`,
  );
});

// The LSM fields, on either kind of host: what the runtime's own detection (hostFacts) finds decides which
// behaviour is right, and each test names the branch it ran. Without the LSM, a label is refused (fail closed);
// with it, the label is applied or the kernel's refusal is reported, never ignored.
const LSM = hostFacts();

const labels = [
  {
    field: 'apparmorProfile',
    lsm: 'AppArmor',
    enabled: LSM.apparmorEnabled,
    label: 'tsrt-default',
    refusal:
      'config.json: /process/apparmorProfile: apparmor: config provided but apparmor not supported (AppArmor is not enabled on the host; profile "tsrt-default")',
  },
  {
    field: 'selinuxLabel',
    lsm: 'SELinux',
    enabled: LSM.selinuxEnabled,
    label: 'system_u:system_r:container_t:s0',
    refusal:
      'config.json: /process/selinuxLabel: selinux label is specified in config, but selinux is disabled or not supported (label "system_u:system_r:container_t:s0")',
  },
] as const;

for (const l of labels) {
  t.test(`process.${l.field}: refused without ${l.lsm}, applied (or the refusal reported) with it`, async tt => {
    const edit: Edit = spec => void (spec.process[l.field] = l.label);
    if (!l.enabled) {
      tt.comment(`branch: ${l.lsm} is not enabled on this host`);
      refuses(tt, edit, l.refusal);
      return;
    }
    tt.comment(`branch: ${l.lsm} is enabled on this host`);
    const r = runIn(scope(tt), ['cat', '/proc/self/attr/current'], edit);
    // The label shows in /proc/self/attr/current, or create failed applying it and says so.
    if (r.code === 0) tt.equal(r.stdout.trim().replace(/ \(enforce\)$/, ''), l.label, 'applied: the process runs with the label');
    else tt.match(errorMsg(r.stderr), /apply LSM label/, `the kernel refused it, and create says so: ${errorMsg(r.stderr)}`);
  });
}

t.test("linux.mountLabel: ignored without SELinux (runtime-tools linux_mount_label), the mounts' context with it", async tt => {
  const s = scope(tt);
  const r = runIn(s, ['sh', '-c', 'grep " /tmp " /proc/self/mountinfo'], spec => {
    spec.linux.mountLabel = 'system_u:object_r:svirt_sandbox_file_t:s0:c715,c811';
    spec.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid'] });
  });
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, / \/tmp .* - tmpfs tmpfs /, 'the tmpfs is mounted');
  if (!LSM.selinuxEnabled) {
    tt.notMatch(r.stdout, /context=/, 'branch: SELinux is disabled on this host, so no context option');
  } else {
    tt.match(
      r.stdout,
      /context="?system_u:object_r:svirt_sandbox_file_t:s0:c715,c811/,
      'branch: SELinux is enabled on this host, so the tmpfs has the label as its context',
    );
  }
});

/** A host interface for the test, removed in teardown: a dummy, or one end of a veth pair where the kernel
 * has no dummy driver (this project's VM kernel). */
function hostInterface(tt: Test, name: string): void {
  spawnSync('ip', ['link', 'del', name]);
  if (sh(`ip link add ${name} type dummy`).code !== 0) {
    const r = sh(`ip link add ${name} type veth peer name ${name}p`);
    if (r.code !== 0) throw new Error(`cannot make a test interface: ${r.stderr}`);
  }
  tt.teardown(() => {
    spawnSync('ip', ['link', 'del', name]);
  });
}

t.test('linux.netDevices: moved in renamed with its address, moved back to the host on delete', async tt => {
  const s = scope(tt);
  const host = `tsrtnd${process.pid % 10000}`;
  hostInterface(tt, host);
  tt.equal(sh(`ip addr add 192.0.2.77/24 dev ${host} && ip link set ${host} up`).code, 0);
  const bundle = s.bundle(['sh', '-c', 'ip -o addr show dev ctr7; echo listed; sleep 1000'], spec => {
    spec.linux.netDevices = { [host]: { name: 'ctr7' } };
  });
  const id = s.id();
  const out = path.join(s.dir(), 'out');
  const outFd = fs.openSync(out, 'w');
  const r = tsrt(['run', '-d', '-b', bundle, id], { root: ROOT, stdio: ['ignore', outFd, outFd] });
  fs.closeSync(outFd);
  tt.equal(r.code, 0, fs.readFileSync(out, 'utf8'));
  tt.ok(
    waitFor(() => fs.readFileSync(out, 'utf8').includes('listed'), 400),
    'the container listed its device',
  );
  const inside = fs.readFileSync(out, 'utf8');
  tt.match(inside, /ctr7\s+inet 192\.0\.2\.77\/24 /, 'renamed, with its IPv4 address');
  tt.equal(sh(`ip link show ${host}`).code, 1, 'gone from the host while the container runs');

  const del = tsrt(['delete', '--force', id], { root: ROOT });
  tt.equal(del.code, 0, del.stderr);
  const back = sh(`ip -o addr show dev ${host}`);
  tt.equal(back.code, 0, 'back on the host under its host name');
  tt.match(back.stdout, /inet 192\.0\.2\.77\/24 /, 'with its address');
});

t.test('linux.netDevices: a container that exits on its own still gives its device back', async tt => {
  const s = scope(tt);
  const host = `tsrtne${process.pid % 10000}`;
  hostInterface(tt, host);
  tt.equal(sh(`ip addr add 192.0.2.78/24 dev ${host}`).code, 0);
  const edit: Edit = spec => {
    spec.linux.netDevices = { [host]: { name: 'ctr8' } };
  };
  // Foreground run: the init exits, run deletes the container.
  const fg = runIn(s, ['ip', '-o', 'addr', 'show', 'dev', 'ctr8'], edit);
  tt.equal(fg.code, 0, fg.stderr);
  tt.match(fg.stdout, /ctr8\s+inet 192\.0\.2\.78\/24 /);
  tt.match(sh(`ip -o addr show dev ${host}`).stdout, /inet 192\.0\.2\.78\/24 /, 'back on the host after run');
  tt.same(hostMountsContaining(ROOT), [], 'the namespace pin is gone');

  // Detached: the init exits, the container is stopped, delete brings the device home.
  const bundle = s.bundle(['true'], edit);
  const id = s.id();
  const r = tsrt(['run', '-d', '-b', bundle, id], { root: ROOT, stdio: 'ignore' });
  tt.equal(r.code, 0);
  tt.ok(
    waitFor(() => JSON.parse(tsrt(['state', id], { root: ROOT }).stdout || '{}').status === 'stopped', 400),
    'stopped',
  );
  tt.equal(sh(`ip link show ${host}`).code, 1, 'still in the (pinned) container namespace');
  tt.equal(tsrt(['delete', id], { root: ROOT }).code, 0);
  tt.match(sh(`ip -o addr show dev ${host}`).stdout, /inet 192\.0\.2\.78\/24 /, 'back on the host after delete');
  tt.same(hostMountsContaining(ROOT), [], 'the namespace pin is gone');
});

t.test('linux.netDevices: a missing host device or a name clash is refused', async tt => {
  refuses(
    tt,
    spec => {
      spec.linux.netDevices = { tsrtnomissing0: {} };
    },
    'config.json: /linux/netDevices/tsrtnomissing0: host network device "tsrtnomissing0" does not exist',
  );
  refuses(
    tt,
    spec => {
      spec.linux.namespaces = spec.linux.namespaces.filter((n: { type: string }) => n.type !== 'network');
      spec.linux.netDevices = { lo: {} };
    },
    "config.json: /linux/netDevices: network devices need a network namespace of the container's own",
  );
  // "lo" already exists in every new network namespace: the kernel-side check names the clash.
  const s = scope(tt);
  const host = `tsrtnc${process.pid % 10000}`;
  hostInterface(tt, host);
  const r = runIn(s, ['true'], spec => {
    spec.linux.netDevices = { [host]: { name: 'lo' } };
  });
  tt.equal(r.code, 1);
  tt.equal(
    errorMsg(r.stderr),
    `linux.netDevices: move "${host}" into the container as "lo": check the name in the target namespace: File exists`,
  );
  tt.notOk(fs.existsSync(path.join(ROOT, r.id)), 'no state directory left');
  tt.equal(sh(`ip link show ${host}`).code, 0, 'the device stayed on the host');
});

t.test('linux.intelRdt: refused on a host without resctrl', async tt => {
  if (
    fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some(l => / - resctrl /.test(l))
  ) {
    tt.pass('not applicable on this host', { skip: 'this host has resctrl mounted' });
    return;
  }
  refuses(
    tt,
    spec => {
      spec.linux.intelRdt = { closID: 'tsrt', l3CacheSchema: 'L3:0=f' };
    },
    'config.json: /linux/intelRdt: Intel RDT is not supported or not enabled on the host (no resctrl filesystem is mounted)',
  );
});

/** The per-mount options (mountinfo field 6) of the mount at `at`, as the container sees them. */
function mountOptions(mountinfo: string, at: string): string[] | undefined {
  const line = mountinfo.split('\n').find(l => l.split(' ')[4] === at);
  return line?.split(' ')[5]?.split(',');
}

t.test(
  'mounts[].options: recursive attributes (rnosuid, rnodev, rnoexec, rnosymfollow, rnoatime) reach submounts, plain ro does not',
  async tt => {
    const s = scope(tt);
    // A host directory with a mount inside it, so the bind has a tree.
    const host = fs.mkdtempSync(path.join('/tmp', 'tsrt-rattr-'));
    fs.mkdirSync(path.join(host, 'sub'));
    tt.equal(sh(`mount -t tmpfs -o size=1m tsrt-rattr ${host}/sub`).code, 0);
    tt.teardown(() => {
      spawnSync('umount', [path.join(host, 'sub')]);
      if (hostMountsContaining(host).length === 0) fs.rmSync(host, { recursive: true, force: true });
    });
    const r = runIn(s, ['cat', '/proc/self/mountinfo'], spec => {
      spec.mounts.push({
        destination: '/data',
        type: 'bind',
        source: host,
        options: ['rbind', 'ro', 'rnosuid', 'rnodev', 'rnoexec', 'rnosymfollow', 'rnoatime'],
      });
    });
    tt.equal(r.code, 0, r.stderr);
    const top = mountOptions(r.stdout, '/data');
    const sub = mountOptions(r.stdout, '/data/sub');
    tt.ok(top && sub, 'both mounts are there');
    for (const o of ['nosuid', 'nodev', 'noexec', 'nosymfollow', 'noatime']) {
      tt.ok(top?.includes(o), `${o} on the mount`);
      tt.ok(sub?.includes(o), `${o} on the submount`);
    }
    tt.equal(top?.[0], 'ro', 'plain ro on the mount');
    tt.equal(sub?.[0], 'rw', 'but not on the submount');

    const rro = runIn(s, ['cat', '/proc/self/mountinfo'], spec => {
      spec.mounts.push({ destination: '/data', type: 'bind', source: host, options: ['rbind', 'rro'] });
    });
    tt.equal(rro.code, 0, rro.stderr);
    tt.equal(mountOptions(rro.stdout, '/data/sub')?.[0], 'ro', 'rro reaches the submount');
    tt.same(
      hostMountsContaining(`${host}/sub`).map(l => l.split(' ')[5]?.split(',')[0]),
      ['rw'],
      "the host's mount is untouched",
    );
  },
);

/** A host directory with a file, both owned by uid:gid 1000:1000, removed in teardown. */
function ownedHostDir(tt: Test): string {
  const dir = fs.mkdtempSync(path.join('/tmp', 'tsrt-idmap-'));
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, 'f'), '');
  fs.chownSync(dir, 1000, 1000);
  fs.chownSync(path.join(dir, 'f'), 1000, 1000);
  tt.teardown(() => {
    if (hostMountsContaining(dir).length === 0) fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

t.test('mounts[].uidMappings/gidMappings: a host dir owned by 1000 shows the mapped ids inside', async tt => {
  const s = scope(tt);
  const host = ownedHostDir(tt);
  const r = runIn(s, ['stat', '-c', '%n %u %g', '/data', '/data/f'], spec => {
    spec.mounts.push({
      destination: '/data',
      type: 'bind',
      source: host,
      options: ['rbind'],
      uidMappings: [{ containerID: 1000, hostID: 4242, size: 1 }],
      gidMappings: [{ containerID: 1000, hostID: 4343, size: 1 }],
    });
  });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, '/data 4242 4343\n/data/f 4242 4343\n');
  tt.equal(fs.statSync(host).uid, 1000, 'the host still owns it as 1000');
});

t.test("mounts[].options idmap: the container's user namespace maps make host ids show as themselves", async tt => {
  const s = scope(tt);
  const host = ownedHostDir(tt);
  const bundle = s.bundle(['stat', '-c', '%n %u %g', '/plain', '/idmapped/f'], spec => {
    spec.linux.namespaces.push({ type: 'user' });
    spec.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    spec.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    spec.mounts.push(
      { destination: '/plain', type: 'bind', source: host, options: ['rbind'] },
      { destination: '/idmapped', type: 'bind', source: host, options: ['rbind', 'idmap'] },
    );
  });
  tt.equal(sh(`chown -R 100000:100000 ${bundle}/rootfs`).code, 0);
  const r = tsrt(['run', '-b', bundle, s.id()], { root: ROOT });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout, '/plain 65534 65534\n/idmapped/f 1000 1000\n', 'unmapped without idmap, 1000 with it');
  refuses(
    tt,
    spec => {
      spec.mounts.push({ destination: '/data', type: 'tmpfs', source: 'tmpfs', options: ['idmap'] });
    },
    'mount "tmpfs" to rootfs at "/data": idmapped mounts are only supported for bind mounts',
  );
});

t.test("mounts[].options tmpcopyup: the tmpfs starts with a copy of the image's directory (podman --read-only)", async tt => {
  const s = scope(tt);
  const bundle = s.bundle(
    [
      'sh',
      '-c',
      [
        'cd /seed && find . | sort && stat -c "%n %u:%g %a" f dir dir/setgid && readlink link && cat f dir/nested',
        'grep " /seed " /proc/self/mountinfo | grep -c tmpfs; echo new > /seed/written',
      ].join('; '),
    ],
    spec => {
      spec.mounts.push({ destination: '/seed', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'tmpcopyup', 'mode=755'] });
    },
  );
  const seed = path.join(bundle, 'rootfs/seed');
  fs.mkdirSync(path.join(seed, 'dir/setgid'), { recursive: true });
  fs.writeFileSync(path.join(seed, 'f'), 'file\n');
  fs.writeFileSync(path.join(seed, 'dir/nested'), 'nested\n');
  fs.symlinkSync('/etc/passwd', path.join(seed, 'link'));
  fs.chownSync(path.join(seed, 'f'), 1000, 1001);
  fs.chmodSync(path.join(seed, 'f'), 0o604);
  fs.chmodSync(path.join(seed, 'dir/setgid'), 0o2750);
  const r = tsrt(['run', '-b', bundle, s.id()], { root: ROOT });
  tt.equal(r.code, 0, r.stderr);
  tt.equal(
    r.stdout,
    [
      '.',
      './dir',
      './dir/nested',
      './dir/setgid',
      './f',
      './link',
      'f 1000:1001 604',
      'dir 0:0 755',
      'dir/setgid 0:0 2750',
      '/etc/passwd',
      'file',
      'nested',
      '1',
      '',
    ].join('\n'),
    'files, directories and symlinks copied with owner and mode, and the tmpfs is mounted over them',
  );
  tt.notOk(fs.existsSync(path.join(seed, 'written')), 'writes go to the tmpfs, not the image');
  refuses(
    tt,
    spec => {
      spec.mounts.push({ destination: '/data', type: 'bind', source: '/tmp', options: ['rbind', 'tmpcopyup'] });
    },
    'mount "/tmp" to rootfs at "/data": option "tmpcopyup" is only valid for tmpfs mounts',
  );
});

t.test("linux.sysctl: a net.* sysctl in the host's network namespace joined by path is refused", async tt => {
  // A process of ours in the host's network namespace, whose ns file the config names.
  const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
  tt.teardown(() => {
    holder.kill('SIGKILL');
  });
  const nsPath = `/proc/${holder.pid}/ns/net`;
  const before = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
  refuses(
    tt,
    spec => {
      spec.linux.namespaces = spec.linux.namespaces.map((n: { type: string }) =>
        n.type === 'network' ? { type: 'network', path: nsPath } : n,
      );
      spec.linux.sysctl = { 'net.ipv4.ip_forward': before.trim() === '1' ? '0' : '1' };
    },
    'config.json: /linux/sysctl/net.ipv4.ip_forward: sysctl "net.ipv4.ip_forward" is not allowed as it conflicts with the host\'s network namespace',
  );
  tt.equal(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), before, "the host's value is untouched");
});

t.test('linux.namespaces network: a new network namespace has its loopback interface up (as runc and crun give it)', async tt => {
  const s = scope(tt);
  const r = runIn(s, ['ip', '-o', 'link'], () => undefined);
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /^1: lo: <LOOPBACK,UP,LOWER_UP>/, 'lo is up');
  tt.equal(r.stdout.trim().split('\n').length, 1, 'and it is the only interface');
  // A network namespace joined by path is someone else's: its interfaces are left as they are.
  tt.equal(sh('ip netns add tsrt-lo-test').code, 0);
  tt.teardown(() => {
    sh('ip netns delete tsrt-lo-test');
  });
  const state = () => sh('ip netns exec tsrt-lo-test ip -o link show lo').stdout;
  tt.match(state(), /<LOOPBACK>/, 'down before');
  const joined = runIn(s, ['true'], spec => {
    spec.linux.namespaces = spec.linux.namespaces.map((n: { type: string }) =>
      n.type === 'network' ? { type: 'network', path: '/run/netns/tsrt-lo-test' } : n,
    );
  });
  tt.equal(joined.code, 0, joined.stderr);
  tt.match(state(), /<LOOPBACK>/, 'still down after');
});
