// /dev for a container whose config does not bind one: the OCI default devices plus linux.devices, made with
// mknod, or bound from the host (verified by device number) when a user namespace forbids mknod.
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import type { LinuxDevice } from '../spec/types.gen.js';
import { makedev, S_IF } from './linux.js';
import { planStep, type PlanStep } from './types.js';

interface Device {
  path: string;
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** runtime-spec "Default Devices". */
export const DEFAULT_DEVICES: readonly Device[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
];

const DEV_SYMLINKS: readonly [string, string][] = [
  ['/proc/self/fd', '/dev/fd'],
  ['/proc/self/fd/0', '/dev/stdin'],
  ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'],
  ['pts/ptmx', '/dev/ptmx'],
];

function typeBits(type: Device['type']): number {
  return type === 'b' ? S_IF.BLK : type === 'p' ? S_IF.FIFO : S_IF.CHR;
}

function fromSpec(d: LinuxDevice, i: number): Device {
  const where = `linux.devices[${i}] (${d.path})`;
  const normalized = path.posix.normalize(d.path);
  if (!normalized.startsWith('/dev/')) {
    throw new RuntimeError(`${where}: device path must be under /dev`, { op: 'device', path: d.path });
  }
  if (d.type !== 'p' && (d.major === undefined || d.minor === undefined)) {
    throw new RuntimeError(`${where}: major and minor are required for type "${d.type}"`, { op: 'device', path: d.path });
  }
  const type = d.type === 'u' ? 'c' : (d.type as Device['type']);
  // podman (--device, --privileged) gives the host node's whole st_mode: its type bits must say the same as type.
  const modeType = (d.fileMode ?? 0) & S_IF.FMT;
  if (modeType !== 0 && modeType !== typeBits(type)) {
    throw new RuntimeError(`${where}: fileMode has the file type bits 0o${modeType.toString(8)}, not those of type "${d.type}"`, {
      op: 'device',
      path: d.path,
    });
  }
  return {
    path: normalized,
    type,
    major: d.major ?? 0,
    minor: d.minor ?? 0,
    fileMode: d.fileMode ?? 0o666,
    uid: d.uid ?? 0,
    gid: d.gid ?? 0,
  };
}

export function planDevices(specDevices: LinuxDevice[], userns: boolean): PlanStep[] {
  const byPath = new Map<string, Device>();
  for (const d of DEFAULT_DEVICES) byPath.set(d.path, d);
  specDevices.forEach((d, i) => {
    byPath.set(d.path, fromSpec(d, i));
  });
  const steps: PlanStep[] = [];
  for (const d of byPath.values()) {
    // A fifo has no device number: major/minor of a "p" entry mean nothing to mknod (runtime-spec config-linux.md).
    const rdev = d.type === 'p' ? 0n : makedev(d.major, d.minor);
    const owner = { uid: d.uid, gid: d.gid, rdev };
    if (userns && d.type !== 'p') {
      // mknod is refused in a user namespace: bind the host's node, after checking it is this device.
      steps.push(planStep('bindDevice', d.path, { ...owner, source: d.path }));
    } else {
      steps.push(planStep('mknod', d.path, { ...owner, mode: typeBits(d.type) | (d.fileMode & 0o7777) }));
    }
  }
  for (const [target, link] of DEV_SYMLINKS) {
    steps.push(planStep('symlink', link, { data: target }));
  }
  return steps;
}
