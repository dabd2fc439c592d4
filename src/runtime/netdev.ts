// linux.netDevices in the lifecycle: host interfaces go into the container's network namespace once it exists
// (before the init is let go), and back to the runtime's namespace, under their host names, on delete.
import * as fs from 'node:fs';
import { RuntimeError } from '../errors.js';
import { native } from '../native.js';

export interface NetDevice {
  hostName: string;
  name: string;
}

function withNetns<T>(pid: number, fn: (nsFd: number) => T): T {
  const nsPath = `/proc/${pid}/ns/net`;
  let fd: number;
  try {
    fd = fs.openSync(nsPath, 'r');
  } catch (e) {
    throw new RuntimeError(`network devices: open ${nsPath}: ${(e as Error).message}`, { op: 'netdev', path: nsPath });
  }
  try {
    return fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Moves each device into the network namespace of `pid`; on a failure, the ones already moved go back. */
export function moveIntoContainer(pid: number, devices: NetDevice[]): void {
  withNetns(pid, nsFd => {
    const moved: NetDevice[] = [];
    for (const d of devices) {
      try {
        native().netdevMove(-1, d.hostName, nsFd, d.name);
      } catch (e) {
        for (const m of moved.reverse()) {
          try {
            native().netdevMove(nsFd, m.name, -1, m.hostName);
          } catch {
            /* reported below with the first error; the device returns when the namespace dies */
          }
        }
        throw new RuntimeError(`linux.netDevices: move "${d.hostName}" into the container as "${d.name}": ${(e as Error).message}`,
          { op: 'netdev', errno: (e as NodeJS.ErrnoException).code });
      }
      moved.push(d);
    }
  });
}

/** Moves the devices back to the runtime's network namespace under their host names; returns the failures. */
export function moveBackToHost(pid: number, devices: NetDevice[]): string[] {
  const failures: string[] = [];
  withNetns(pid, nsFd => {
    for (const d of devices) {
      try {
        native().netdevMove(nsFd, d.name, -1, d.hostName);
      } catch (e) {
        failures.push(`network device "${d.name}" could not be moved back to the host as "${d.hostName}": ${(e as Error).message}`);
      }
    }
  });
  return failures;
}
