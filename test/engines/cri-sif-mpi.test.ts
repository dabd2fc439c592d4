// Kubernetes through tsrt without a cluster: pods sent to containerd's CRI plugin with runtime_handler "tsrt"
// (the handler a RuntimeClass `handler: tsrt` selects), by hack/engines/cri/cri_pod.py.
// - A SIF image as a pod container's root filesystem: the annotation org.tsrt.sif, set on the container or
//   on the Pod, reaches config.json (containerd's container_annotations / pod_annotations) and tsrt mounts
//   the SIF; asserted from inside the container with ExecSync, and on the host: no mount, loop device or
//   state left after RemovePodSandbox. The pod's sandbox keeps its own pause image.
// - An MPI job in a pod, the host's Open MPI bound in read-only and the ring passing over TCP on the pod's own
//   loopback: mpirun and its ranks in one container; and a launcher container whose mpirun starts its orteds
//   in two worker containers through hack/engines/cri/mpi/pod-rsh (its plm_rsh_agent) and pod-rshd.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { engineDaemon, engineFile, run } from '../engines-kit.js';
import { REPO } from '../helpers.js';
import { SINGULARITY, primaryPartitionArgs } from '../sif-helpers.js';

engineFile(
  t,
  'CRI SIF and MPI',
  10,
  ['/usr/bin/containerd', '/usr/lib/cni/bridge', '/usr/bin/mksquashfs', '/usr/bin/mpicc', '/usr/bin/mpirun'],
  ['grpc', 'grpc_tools'],
);

const PREFIX = 'k8s-cri';
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-`));
t.teardown(() => fs.rmSync(scratch, { recursive: true, force: true }));
// A root tsrt mounts an org.tsrt.sif image only from a directory the site config allows (none by default):
// this one allows the scratch dir, where the SIF below is made (root's, 0644). containerd passes its
// environment through the runc shim to tsrt, so TSRT_CONFIG names the file instead of /etc/tsrt/tsrt.conf.
const SITE_CONFIG = path.join(scratch, 'tsrt.conf');
fs.writeFileSync(SITE_CONFIG, `sif annotation dir = ${scratch}\n`, { mode: 0o644 });
const env = engineDaemon(t, 'containerd.sh', PREFIX, { ENGINE_CNI_SUBNET: '10.89.247.0/24', TSRT_CONFIG: SITE_CONFIG });
const TSRT_ROOT = env['TSRT_CRI_ROOT']!;
const IMAGE = 'localhost/tsrt-busybox:latest';

interface Exec {
  ok: boolean;
  exit_code?: number;
  stdout?: string;
  stderr?: string;
  error?: string;
}
interface PodReport {
  sandbox: { ok: boolean; id?: string; error?: string };
  containers: Record<
    string,
    { id?: string; create: { ok: boolean; error?: string }; start: { ok: boolean; error?: string }; execs: Exec[] }
  >;
  while_running: { code: number; stdout: string }[];
  StopPodSandbox: { ok: boolean };
  RemovePodSandbox: { ok: boolean };
}

/** One pod through the CRI with the tsrt handler; `scenario` as cri_pod.py documents it. */
function pod(scenario: Record<string, unknown>): PodReport {
  const file = path.join(scratch, `scenario-${Date.now()}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({
      handler: 'tsrt',
      network: 'pod',
      cgroup_parent: `/${PREFIX}/pods`,
      log_dir: `/var/tmp/${PREFIX}/cri-logs`,
      ...scenario,
    }),
  );
  const r = run('/usr/bin/python3', [path.join(REPO, 'hack/engines/cri/cri_pod.py'), env['CONTAINERD_ADDRESS']!, file], {
    timeout: 300_000,
  });
  if (r.code !== 0) throw new Error(`cri_pod.py failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as PodReport;
}

const idsOf = (report: PodReport): string[] =>
  [report.sandbox.id, ...Object.values(report.containers).map(c => c.id)].filter((id): id is string => !!id);

/** What the pod left on the host after RemovePodSandbox: tsrt state, image mount points, mounts, loop devices. */
function leftovers(report: PodReport, sif: string) {
  const ids = idsOf(report);
  const mine = (name: string) => ids.some(id => name.startsWith(id));
  const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  return {
    state: fs.existsSync(TSRT_ROOT) ? fs.readdirSync(TSRT_ROOT).filter(mine) : [],
    mountPoints: fs.existsSync('/run/tsrt-images') ? fs.readdirSync('/run/tsrt-images').filter(mine) : [],
    mounts: mountinfo.filter(line => ids.some(id => line.includes(id))),
    loops: spawnSync('losetup', ['-j', sif], { encoding: 'utf8' }).stdout.trim(),
  };
}
const nothingLeft = { state: [], mountPoints: [], mounts: [], loops: '' };

// The SIF: the busybox rootfs containerd.sh built, with a file of its own and without vi, so the container's
// files can be told from the busybox image's (which containerd still unpacks as the container's rootfs).
const MARKER = `packed into the SIF at ${new Date().toISOString()}`;
const SIF = path.join(scratch, 'busybox.sif');
{
  const tree = path.join(scratch, 'rootfs');
  fs.cpSync(`/var/tmp/${PREFIX}/images/rootfs`, tree, { recursive: true, verbatimSymlinks: true });
  fs.writeFileSync(path.join(tree, 'etc', 'sif-marker'), `${MARKER}\n`);
  fs.rmSync(path.join(tree, 'bin', 'vi'));
  const squashfs = path.join(scratch, 'rootfs.sqfs');
  for (const [cmd, args] of [
    ['mksquashfs', [tree, squashfs, '-quiet', '-noappend', '-all-root']],
    [SINGULARITY, ['sif', 'new', SIF]],
    [SINGULARITY, primaryPartitionArgs(SIF, squashfs)],
  ] as const) {
    const r = run(cmd, [...args]);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  }
}

/** ExecSync'd in a SIF container: its files, its root mount, a write through the overlay, the image's vi. */
const SIF_PROBES = [
  ['cat', '/etc/sif-marker'],
  ['sh', '-c', 'awk \'$5 == "/" { print $9 }\' /proc/self/mountinfo'],
  ['sh', '-c', 'echo written > /etc/sif-marker && cat /etc/sif-marker'],
  ['ls', '/bin/vi'],
];
const WHILE_RUNNING = [
  ['losetup', '-j', SIF],
  ['sh', '-c', 'grep -c /tsrt-images/ /proc/self/mountinfo'],
];

function checkSifPod(tt: Test, report: PodReport) {
  tt.match(report.sandbox, { ok: true }, 'RunPodSandbox: the sandbox starts from its pause image');
  const c = report.containers['sif']!;
  tt.match(c, { create: { ok: true }, start: { ok: true } }, 'CreateContainer and StartContainer succeed');
  tt.match(c.execs[0], { exit_code: 0, stdout: `${MARKER}\n` }, "the container sees the SIF's own file");
  tt.match(c.execs[1], { exit_code: 0, stdout: 'overlay\n' }, 'its root is an overlay (the SIF is the lower layer)');
  tt.match(c.execs[2], { exit_code: 0, stdout: 'written\n' }, "writes go to the container's upper layer");
  tt.match(c.execs[3], { exit_code: 1, stderr: /No such file or directory/ }, "the busybox image's /bin/vi is not there");
  tt.match(
    report.while_running[0]?.stdout,
    new RegExp(`\\(${SIF.replace(/[.]/g, '\\.')}\\)`),
    'while running, a loop device backs the SIF',
  );
  tt.not(report.while_running[1]?.stdout.trim(), '0', 'while running, the image is mounted below /run/tsrt-images');
  tt.match(report, { StopPodSandbox: { ok: true }, RemovePodSandbox: { ok: true } }, 'StopPodSandbox and RemovePodSandbox succeed');
  tt.same(leftovers(report, SIF), nothingLeft, 'after RemovePodSandbox: no state, mount point, mount or loop device left');
  tt.same(SIF_PROBES.length, c.execs.length, 'every probe ran');
}

t.test("a SIF as a pod container's rootfs: container annotation org.tsrt.sif", async tt => {
  const report = pod({
    containers: [{ name: 'sif', image: IMAGE, command: ['sleep', '1000'], annotations: { 'org.tsrt.sif': SIF }, execs: SIF_PROBES }],
    while_running: WHILE_RUNNING,
  });
  checkSifPod(tt, report);
});

t.test("a SIF as a pod container's rootfs: Pod annotation org.tsrt.sif (what a Pod manifest sets)", async tt => {
  const bundles = `/run/${PREFIX}/containerd/io.containerd.runtime.v2.task/k8s.io`;
  const report = pod({
    annotations: { 'org.tsrt.sif': SIF },
    containers: [{ name: 'sif', image: IMAGE, command: ['sleep', '1000'], execs: SIF_PROBES }],
    while_running: [...WHILE_RUNNING, ['sh', '-c', `grep -l '"org.tsrt.sif"' ${bundles}/*/config.json`]],
  });
  checkSifPod(tt, report);
  const annotated = report.while_running[2]?.stdout
    .split('\n')
    .filter(Boolean)
    .map(f => path.basename(path.dirname(f)))
    .sort();
  tt.same(
    annotated,
    idsOf(report).sort(),
    "containerd put the annotation into the sandbox's config.json too, which tsrt left on its pause image",
  );
});

// containerd's CreateContainer only records the container; the runtime's create runs in StartContainer.
t.test('annotations org.tsrt.sif naming a missing image: StartContainer fails naming the field, nothing left', async tt => {
  const missing = path.join(scratch, 'missing.sif');
  const report = pod({
    containers: [{ name: 'sif', image: IMAGE, command: ['sleep', '1000'], annotations: { 'org.tsrt.sif': missing } }],
  });
  tt.match(report.sandbox, { ok: true });
  const c = report.containers['sif']!;
  tt.match(c.create, { ok: true });
  tt.match(
    c.start,
    { ok: false, error: new RegExp(`/annotations/org\\.tsrt\\.sif: image ${missing.replace(/[.]/g, '\\.')} does not exist`) },
    'the error names the JSON path and the image',
  );
  tt.match(report, { StopPodSandbox: { ok: true }, RemovePodSandbox: { ok: true } });
  tt.same(leftovers(report, missing), nothingLeft, 'no state, mount point or mount left');
});

// Issue 13, finding 6: what a Pod annotation may name is the site's choice, not the Pod author's.
t.test("a Pod annotation org.tsrt.sif naming an image outside the site config's directories: refused, nothing left", async tt => {
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-elsewhere-`));
  tt.teardown(() => fs.rmSync(elsewhere, { recursive: true, force: true }));
  const outside = path.join(elsewhere, 'busybox.sif');
  fs.copyFileSync(SIF, outside);
  const report = pod({
    annotations: { 'org.tsrt.sif': outside },
    containers: [{ name: 'sif', image: IMAGE, command: ['sleep', '1000'] }],
  });
  tt.match(report.sandbox, { ok: true }, 'the sandbox keeps its pause image');
  tt.match(
    report.containers['sif']!.start,
    { ok: false, error: /\/annotations\/org\.tsrt\.sif: image .* is not in a directory that .*tsrt\.conf allows/ },
    'StartContainer fails naming the field and the site config',
  );
  tt.match(report, { StopPodSandbox: { ok: true }, RemovePodSandbox: { ok: true } });
  tt.same(leftovers(report, outside), nothingLeft, 'no state, mount point, mount or loop device left');
});

// MPI: the host's Open MPI, bound in read-only (a busybox image has no libc for it), and the ring program.
const MPI_DIR = path.join(scratch, 'mpi');
fs.mkdirSync(MPI_DIR);
// copyFile keeps the scripts' executable mode.
for (const script of ['pod-rsh', 'pod-rshd']) fs.copyFileSync(path.join(REPO, 'hack/engines/cri/mpi', script), path.join(MPI_DIR, script));
{
  const cc = run('mpicc', ['-O2', '-o', path.join(MPI_DIR, 'ring'), path.join(REPO, 'hack/engines/cri/mpi/ring.c')]);
  if (cc.code !== 0) throw new Error(`mpicc ring.c: ${cc.stderr}`);
}
const HOST_MPI = [
  { host: '/usr', container: '/usr', readonly: true },
  { host: '/usr/lib', container: '/lib', readonly: true },
  { host: '/usr/lib64', container: '/lib64', readonly: true },
  { host: '/etc/openmpi', container: '/etc/openmpi', readonly: true },
  { host: '/etc/alternatives', container: '/etc/alternatives', readonly: true },
  { host: MPI_DIR, container: '/opt/mpi', readonly: true },
];
const WORKERS = { w1: 2201, w2: 2202 };
// Open MPI refuses uid 0 unless told; in the pod that is the container's root.
const MPI_ENV = {
  OMPI_ALLOW_RUN_AS_ROOT: '1',
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1',
  PATH: '/usr/bin:/bin',
  POD_RSH_WORKERS: Object.entries(WORKERS)
    .map(([name, port]) => `${name}:${port}`)
    .join(' '),
};
const mpirun = (ranks: number, extra: string[] = []) => [
  'mpirun',
  '--oversubscribe',
  '-np',
  String(ranks),
  ...extra,
  '--mca',
  'btl',
  'self,tcp',
  '--mca',
  'btl_tcp_if_include',
  'lo',
  '--mca',
  'oob_tcp_if_include',
  'lo',
  '/opt/mpi/ring',
];
const MNT_NS = ['readlink', '/proc/self/ns/mnt'];

/** The ring's output: the token that came back, and the mount namespace (container) of each rank. */
function ringResult(tt: Test, e: Exec | undefined, ranks: number, hostname: string): string[] {
  tt.equal(e?.exit_code, 0, `mpirun -np ${ranks} exits 0 ${e?.stderr ?? e?.error ?? ''}`);
  const out = (e?.stdout ?? '').split('\n').filter(Boolean);
  tt.ok(out.includes(`ring token ${(ranks * (ranks - 1)) / 2}`), `the token went round all ${ranks} ranks`);
  const namespaces: string[] = [];
  for (let r = 0; r < ranks; r++) {
    const line = out.find(l => l.startsWith(`rank ${r} of ${ranks} on ${hostname} in `));
    tt.ok(line, `rank ${r} of ${ranks} reported, in the pod (hostname ${hostname})`);
    namespaces.push(line?.split(' in ')[1] ?? '');
  }
  return namespaces;
}

t.test("MPI in a pod: mpirun and its ranks in one container, host Open MPI bound in read-only, TCP over the pod's loopback", async tt => {
  const report = pod({
    containers: [
      {
        name: 'mpi',
        image: IMAGE,
        command: ['sleep', '1000'],
        envs: MPI_ENV,
        mounts: HOST_MPI,
        execs: [['hostname'], MNT_NS, mpirun(2), mpirun(4), ['sh', '-c', 'touch /usr/x']],
      },
    ],
  });
  tt.match(report.sandbox, { ok: true }, 'RunPodSandbox on the CNI pod network');
  const c = report.containers['mpi']!;
  tt.match(c, { create: { ok: true }, start: { ok: true } }, 'the container starts with the host MPI bound in');
  const hostname = c.execs[0]?.stdout?.trim() ?? '';
  tt.match(hostname, /^pod-[0-9a-f]{8}$/, 'the pod has its own hostname');
  const own = c.execs[1]?.stdout?.trim();
  tt.same(ringResult(tt, c.execs[2], 2, hostname), [own, own], 'both ranks ran in the container');
  tt.same(ringResult(tt, c.execs[3], 4, hostname), [own, own, own, own], 'all four ranks ran in the container');
  tt.match(c.execs[4], { exit_code: 1, stderr: /Read-only file system/ }, "the host's /usr is read-only in the pod");
  tt.match(report, { StopPodSandbox: { ok: true }, RemovePodSandbox: { ok: true } });
  tt.same(leftovers(report, SIF).state, [], 'no state left');
});

t.test('MPI in a pod: a launcher container and two worker containers, orteds started through pod-rsh', async tt => {
  const worker = (name: keyof typeof WORKERS) => ({
    name,
    image: IMAGE,
    envs: MPI_ENV,
    mounts: HOST_MPI,
    command: ['/bin/busybox', 'nc', '-ll', '-p', String(WORKERS[name]), '127.0.0.1', '-e', '/opt/mpi/pod-rshd'],
    execs: [MNT_NS],
  });
  const hosts = ['--host', 'w1,w2', '--mca', 'plm_rsh_agent', '/opt/mpi/pod-rsh'];
  const report = pod({
    containers: [
      worker('w1'),
      worker('w2'),
      {
        name: 'launcher',
        image: IMAGE,
        command: ['sleep', '1000'],
        envs: MPI_ENV,
        mounts: HOST_MPI,
        // The worker names must resolve (what a Pod's hostAliases would add; the addresses are never contacted),
        // else every lookup waits for the resolver's timeouts.
        execs: [
          ['sh', '-c', 'printf "198.51.100.1 w1\\n198.51.100.2 w2\\n" >> /etc/hosts'],
          ['hostname'],
          MNT_NS,
          mpirun(2, hosts),
          mpirun(4, hosts),
          ['/opt/mpi/pod-rsh', 'w3', 'true'],
        ],
      },
    ],
  });
  tt.match(report.sandbox, { ok: true }, 'RunPodSandbox on the CNI pod network');
  for (const name of ['w1', 'w2', 'launcher']) {
    tt.match(report.containers[name], { create: { ok: true }, start: { ok: true } }, `${name} starts`);
  }
  const l = report.containers['launcher']!;
  const hostname = l.execs[1]?.stdout?.trim() ?? '';
  const launcherNs = l.execs[2]?.stdout?.trim();
  const w1 = report.containers['w1']!.execs[0]?.stdout?.trim();
  const w2 = report.containers['w2']!.execs[0]?.stdout?.trim();
  tt.ok(w1 && w2 && launcherNs && new Set([w1, w2, launcherNs]).size === 3, 'each container has its own mount namespace');
  tt.same(ringResult(tt, l.execs[3], 2, hostname), [w1, w2], 'rank 0 ran in w1, rank 1 in w2');
  const four = ringResult(tt, l.execs[4], 4, hostname);
  tt.same([...new Set(four)].sort(), [w1, w2].sort(), 'the four ranks ran in the worker containers, none in the launcher');
  tt.match(
    l.execs[5],
    { exit_code: 1, stderr: /pod-rsh: w3 is not in POD_RSH_WORKERS \(w1:2201 w2:2202\)/ },
    'pod-rsh names an unknown worker',
  );
  tt.match(report, { StopPodSandbox: { ok: true }, RemovePodSandbox: { ok: true } });
  tt.same(leftovers(report, SIF).state, [], 'no state left');
});
