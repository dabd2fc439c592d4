#!/usr/bin/python3
"""A Kubernetes-less CRI client (no crictl in Debian 12): one pod's life through containerd's CRI plugin.

usage: cri_client.py SOCKET HANDLER node|pod CGROUP_PARENT LOG_DIR

Runs Version, RunPodSandbox, CreateContainer, StartContainer, ExecSync, UpdateContainerResources,
ContainerStatus, StopContainer, ContainerStatus, RemoveContainer, a container whose executable is missing,
StopPodSandbox and RemovePodSandbox with runtime_handler HANDLER, on the host network (node) or the CNI pod
network (pod), and prints what each step gave as one JSON document. Steps after a failure still run where
they can, so the document says what broke. Needs Debian's python3-grpcio and python3-grpc-tools.
"""
import json, os, sys, tempfile, uuid

import grpc
from grpc_tools import protoc

here = os.path.dirname(os.path.abspath(__file__))
# R9: mkdtemp picks a random name and makes it itself (mode 0700): no other user can make it first or swap it.
generated = tempfile.mkdtemp(prefix='cri-client-')
# The stubs are generated per run into a scratch dir, so nothing generated lives in the repository.
if protoc.main(['protoc', f'-I{here}', f'--python_out={generated}', f'--grpc_python_out={generated}', os.path.join(here, 'api.proto')]) != 0:
    sys.exit('cri_client: protoc failed')
sys.path.insert(0, generated)
import api_pb2 as pb  # noqa: E402
import api_pb2_grpc as pbg  # noqa: E402

socket, handler, network, cgroup_parent, log_dir = sys.argv[1:6]
rt = pbg.RuntimeServiceStub(grpc.insecure_channel(f'unix://{socket}'))
report = {}


def step(name, call):
    try:
        result = call()
        report[name] = {'ok': True}
        return result
    except grpc.RpcError as e:
        report[name] = {'ok': False, 'code': str(e.code()), 'error': e.details()}
        return None


def cgroup_file(controller, container_id, name):
    try:
        with open(f'/sys/fs/cgroup/{controller}{cgroup_parent}/{container_id}/{name}') as f:
            return f.read().strip()
    except OSError as e:
        return f'unreadable: {e.strerror}'


version = step('Version', lambda: rt.Version(pb.VersionRequest(version='v1')))
if version:
    report['Version']['runtime'] = version.runtime_name

uid = uuid.uuid4().hex[:8]
on_node = network == 'node'
namespaces = pb.NamespaceOption(network=pb.NODE if on_node else pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
# A host-network pod shares the host's UTS namespace too, so it must not ask for a hostname.
sandbox_config = pb.PodSandboxConfig(
    metadata=pb.PodSandboxMetadata(name=f'tsrt-pod-{uid}', uid=uid, namespace='default', attempt=0),
    hostname='' if on_node else 'tsrt-pod', log_directory=os.path.join(log_dir, uid),
    labels={'app': 'tsrt'}, annotations={'io.tsrt.test': 'yes'},
    linux=pb.LinuxPodSandboxConfig(cgroup_parent=cgroup_parent,
                                   security_context=pb.LinuxSandboxSecurityContext(namespace_options=namespaces)))
sandbox = step('RunPodSandbox', lambda: rt.RunPodSandbox(pb.RunPodSandboxRequest(config=sandbox_config, runtime_handler=handler)))
if not sandbox:
    print(json.dumps(report))
    sys.exit(0)
sandbox_id = sandbox.pod_sandbox_id
report['ids'] = [sandbox_id]


def container_config(name, command, args):
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image='localhost/tsrt-busybox:latest'),
        command=command, args=args, envs=[pb.KeyValue(key='FOO', value='bar')], log_path=f'{name}.log',
        linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(namespace_options=namespaces)))


created = step('CreateContainer', lambda: rt.CreateContainer(pb.CreateContainerRequest(
    pod_sandbox_id=sandbox_id, config=container_config('c1', ['sh', '-c'], ['echo started; sleep 1000']), sandbox_config=sandbox_config)))
if created:
    cid = created.container_id
    report['ids'].append(cid)
    step('StartContainer', lambda: rt.StartContainer(pb.StartContainerRequest(container_id=cid)))
    executed = step('ExecSync', lambda: rt.ExecSync(pb.ExecSyncRequest(
        container_id=cid, cmd=['sh', '-c', 'echo "exec $FOO"; hostname; readlink /proc/self/ns/net; ip -o -4 addr show | grep -v " lo "; exit 3'], timeout=30)))
    if executed:
        out = executed.stdout.decode().splitlines()
        report['ExecSync'].update({'exit_code': executed.exit_code, 'stdout': out[0] if out else '',
                                   'hostname': out[1] if len(out) > 1 else '',
                                   'host_netns': len(out) > 2 and out[2] == os.readlink('/proc/self/ns/net'),
                                   'addresses': [line.split()[3] for line in out[3:] if len(line.split()) > 3]})
    resources = pb.LinuxContainerResources(memory_limit_in_bytes=64 * 1024 * 1024, cpu_quota=50000, cpu_period=100000)
    step('UpdateContainerResources', lambda: rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(container_id=cid, linux=resources)))
    report['UpdateContainerResources'].update({'memory': cgroup_file('memory', cid, 'memory.limit_in_bytes'),
                                              'quota': cgroup_file('cpu', cid, 'cpu.cfs_quota_us')})
    status = step('ContainerStatus', lambda: rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status)
    if status:
        report['ContainerStatus']['state'] = pb.ContainerState.Name(status.state)
    # sh as pid 1 ignores SIGTERM: the stop ends in SIGKILL after the timeout.
    step('StopContainer', lambda: rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=2)))
    status = step('ContainerStatus(stopped)', lambda: rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status)
    if status:
        report['ContainerStatus(stopped)'].update({'state': pb.ContainerState.Name(status.state), 'exit_code': status.exit_code})
    step('RemoveContainer', lambda: rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid)))

broken = step('CreateContainer(missing executable)', lambda: rt.CreateContainer(pb.CreateContainerRequest(
    pod_sandbox_id=sandbox_id, config=container_config('c2', ['/nonexistent'], []), sandbox_config=sandbox_config)))
if broken:
    report['ids'].append(broken.container_id)
    step('StartContainer(missing executable)', lambda: rt.StartContainer(pb.StartContainerRequest(container_id=broken.container_id)))
    step('RemoveContainer(missing executable)', lambda: rt.RemoveContainer(pb.RemoveContainerRequest(container_id=broken.container_id)))

step('StopPodSandbox', lambda: rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id)))
step('RemovePodSandbox', lambda: rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id)))
print(json.dumps(report))
