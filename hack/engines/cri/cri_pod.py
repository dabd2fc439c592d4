#!/usr/bin/python3
"""Runs one pod described by a JSON scenario through containerd's CRI plugin, the way the kubelet would, and
prints what happened as one JSON document.

usage: cri_pod.py SOCKET SCENARIO.json

The scenario:
  {"handler": "tsrt", "network": "node"|"pod", "cgroup_parent": "/x/pods", "log_dir": "/var/tmp/x/logs",
   "annotations": {...},                       pod (sandbox) annotations, as a Pod's metadata.annotations
   "containers": [{"name": "c1", "image": "localhost/tsrt-busybox:latest", "command": [...], "args": [...],
                   "envs": {"K": "V"}, "annotations": {...},
                   "mounts": [{"host": "/usr", "container": "/usr", "readonly": true}],
                   "execs": [["cat", "/etc/x"], ...]}],        ExecSync'd in order once every container started
   "while_running": [["losetup", "-j", "/img.sif"], ...]}      host commands run after the execs

Steps: RunPodSandbox, CreateContainer + StartContainer of each container, the execs, the host commands, then
StopPodSandbox and RemovePodSandbox (which removes the containers, as the kubelet's pod deletion does).
Report: {"sandbox": {...}, "containers": {name: {"id", "create", "start", "execs": [{exit_code, stdout,
stderr}]}}, "while_running": [{code, stdout}], "StopPodSandbox", "RemovePodSandbox"}. Steps after a failure
still run where they can, so the report says what broke. Needs Debian's python3-grpcio and python3-grpc-tools.
"""
import json, os, subprocess, sys, tempfile, uuid

import grpc
from grpc_tools import protoc

proto_dir = os.path.dirname(os.path.abspath(__file__))
# R9: mkdtemp picks a random name and makes it itself (mode 0700): no other user can make it first or swap it.
stub_dir = tempfile.mkdtemp(prefix='cri-pod-')
# Stubs are compiled from api.proto into a scratch directory on every run: nothing generated is kept.
protoc_args = ['protoc', '-I' + proto_dir, '--python_out=' + stub_dir, '--grpc_python_out=' + stub_dir, 'api.proto']
if protoc.main(protoc_args) != 0:
    sys.exit('cri_pod: compiling api.proto failed')
sys.path.insert(0, stub_dir)
import api_pb2 as pb  # noqa: E402
import api_pb2_grpc as pbg  # noqa: E402

socket_path, scenario_file = sys.argv[1:3]
with open(scenario_file) as f:
    scenario = json.load(f)
runtime = pbg.RuntimeServiceStub(grpc.insecure_channel('unix://' + socket_path))


def call(record, rpc):
    """Runs one RPC, noting in `record` whether it worked (and the gRPC error if not); returns its result."""
    try:
        result = rpc()
        record['ok'] = True
        return result
    except grpc.RpcError as e:
        record.update(ok=False, error=e.details())
        return None


pod_uid = uuid.uuid4().hex[:8]
host_network = scenario.get('network', 'node') == 'node'
namespaces = pb.NamespaceOption(network=pb.NODE if host_network else pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
sandbox_config = pb.PodSandboxConfig(
    metadata=pb.PodSandboxMetadata(name='pod-' + pod_uid, uid=pod_uid, namespace='default', attempt=0),
    # The host's UTS namespace cannot take a hostname: a host-network pod asks for none.
    hostname='' if host_network else 'pod-' + pod_uid,
    log_directory=os.path.join(scenario['log_dir'], pod_uid),
    annotations=scenario.get('annotations', {}),
    linux=pb.LinuxPodSandboxConfig(cgroup_parent=scenario['cgroup_parent'],
                                   security_context=pb.LinuxSandboxSecurityContext(namespace_options=namespaces)))
report = {'sandbox': {}, 'containers': {}, 'while_running': []}
sandbox = call(report['sandbox'], lambda: runtime.RunPodSandbox(
    pb.RunPodSandboxRequest(config=sandbox_config, runtime_handler=scenario['handler'])))
if sandbox is None:
    print(json.dumps(report))
    sys.exit(0)
sandbox_id = report['sandbox']['id'] = sandbox.pod_sandbox_id

started = []
for spec in scenario['containers']:
    entry = report['containers'][spec['name']] = {'create': {}, 'start': {}, 'execs': []}
    config = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=spec['name']), image=pb.ImageSpec(image=spec['image']),
        command=spec.get('command', []), args=spec.get('args', []),
        envs=[pb.KeyValue(key=k, value=v) for k, v in spec.get('envs', {}).items()],
        annotations=spec.get('annotations', {}), log_path=spec['name'] + '.log',
        mounts=[pb.Mount(container_path=m['container'], host_path=m['host'], readonly=m.get('readonly', False))
                for m in spec.get('mounts', [])],
        linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(namespace_options=namespaces)))
    created = call(entry['create'], lambda: runtime.CreateContainer(
        pb.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config)))
    if created is None:
        continue
    entry['id'] = created.container_id
    if call(entry['start'], lambda: runtime.StartContainer(pb.StartContainerRequest(container_id=created.container_id))):
        started.append(spec)

for spec in started:
    entry = report['containers'][spec['name']]
    for cmd in spec.get('execs', []):
        result = {}
        reply = call(result, lambda: runtime.ExecSync(pb.ExecSyncRequest(container_id=entry['id'], cmd=cmd, timeout=120)))
        if reply is not None:
            result.update(exit_code=reply.exit_code, stdout=reply.stdout.decode(errors='replace'),
                          stderr=reply.stderr.decode(errors='replace'))
        entry['execs'].append(result)

for cmd in scenario.get('while_running', []):
    done = subprocess.run(cmd, capture_output=True, text=True)
    report['while_running'].append({'code': done.returncode, 'stdout': done.stdout})

report['StopPodSandbox'] = {}
call(report['StopPodSandbox'], lambda: runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id)))
report['RemovePodSandbox'] = {}
call(report['RemovePodSandbox'], lambda: runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id)))
print(json.dumps(report))
