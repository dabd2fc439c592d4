// containerd 1.6's CRI plugin (the Kubernetes path) with the runtime handlers "runc" and "tsrt" (BinaryName
// dist/tsrt): hack/engines/cri/cri_client.py takes one pod through RunPodSandbox → CreateContainer →
// StartContainer → ExecSync → UpdateContainerResources → ContainerStatus → StopContainer → RemoveContainer →
// a failing StartContainer → StopPodSandbox → RemovePodSandbox, on the host network and on a CNI bridge,
// and both handlers must give the same report.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { engineDaemon, engineFile, run, sameAsRunc, type Runtime } from '../engines-kit.js';
import { REPO } from '../helpers.js';

engineFile(t, 'CRI', 10, ['/usr/bin/containerd', '/usr/lib/cni/bridge'], ['grpc', 'grpc_tools']);

const PREFIX = 'tsrteng-cri';
const SUBNET = /^10\.89\.251\.\d+\/24$/;
const env = engineDaemon(t, 'containerd.sh', PREFIX, { ENGINE_CNI_SUBNET: '10.89.251.0/24' });
const ROOTS: Record<Runtime, string> = { runc: env['RUNC_CRI_ROOT']!, tsrt: env['TSRT_CRI_ROOT']! };
/** Under the prefix's cgroup, which containerd.sh down removes. */
const CGROUP_PARENT = `/${PREFIX}/pods`;

/** One pod's life through the CRI with `handler`; the report without what differs between any two runs. */
function pod(handler: Runtime, network: 'node' | 'pod') {
  const r = run(
    '/usr/bin/python3',
    [
      path.join(REPO, 'hack/engines/cri/cri_client.py'),
      env['CONTAINERD_ADDRESS']!,
      handler,
      network,
      CGROUP_PARENT,
      `/var/tmp/${PREFIX}/cri-logs`,
    ],
    { timeout: 240_000 },
  );
  if (r.code !== 0) throw new Error(`cri_client.py failed (${r.code}): ${r.stderr}`);
  const report = JSON.parse(r.stdout);
  const ids: string[] = report.ids ?? [];
  delete report.ids;
  const exec = report.ExecSync;
  if (exec) {
    // The host's own addresses come and go with other users of the machine; a pod's are from the CNI range.
    exec.addresses = network === 'node' ? 'host' : exec.addresses.map((a: string) => (SUBNET.test(a) ? 'pod subnet' : a));
  }
  const failed = report['StartContainer(missing executable)'];
  if (failed?.error) failed.error = failed.error.replace('runc create failed: ', '');
  const root = ROOTS[handler];
  report.stateLeft = fs.existsSync(root) ? fs.readdirSync(root).filter(e => ids.includes(e)) : [];
  return report;
}

const ok = { ok: true };
const lifecycle = (network: 'node' | 'pod') => ({
  Version: ok,
  RunPodSandbox: ok,
  CreateContainer: ok,
  StartContainer: ok,
  ExecSync: {
    ok: true,
    exit_code: 3,
    stdout: 'exec bar',
    host_netns: network === 'node',
    hostname: network === 'node' ? /.+/ : 'tsrt-pod',
    addresses: network === 'node' ? 'host' : ['pod subnet'],
  },
  UpdateContainerResources: { ok: true, memory: '67108864', quota: '50000' },
  ContainerStatus: { ok: true, state: 'CONTAINER_RUNNING' },
  StopContainer: ok,
  'ContainerStatus(stopped)': { ok: true, state: 'CONTAINER_EXITED', exit_code: 137 },
  RemoveContainer: ok,
  'CreateContainer(missing executable)': ok,
  'StartContainer(missing executable)': {
    ok: false,
    error:
      /OCI runtime create failed: unable to start container process: exec: "\/nonexistent": stat \/nonexistent: no such file or directory/,
  },
  'RemoveContainer(missing executable)': ok,
  StopPodSandbox: ok,
  RemovePodSandbox: ok,
  stateLeft: [],
});

sameAsRunc(t, 'a pod on the host network (NamespaceMode NODE)', lifecycle('node'), rt => pod(rt, 'node'));
sameAsRunc(t, 'a pod on the CNI bridge network', lifecycle('pod'), rt => pod(rt, 'pod'));
