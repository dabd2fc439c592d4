// linux.netDevices in the lifecycle: host interfaces go into the container's network namespace once it exists
// (before the init is let go), and back to the runtime's namespace, under their host names, on delete.
//
// The namespace is pinned by a bind mount of its nsfs file in the container's state directory: without it,
// a container that exits on its own takes its namespace along, and with it a virtual device (a physical one
// would come back under a kernel-chosen name). delete moves the devices back through the pin, then drops it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import { native } from '../native.js';

export interface NetDevice {
  hostName: string;
  name: string;
}

/** Where a container's network namespace is pinned: its state directory. */
export function netnsPinPath(stateDir: string): string {
  return path.join(stateDir, 'netns');
}

function withNetns<T>(nsPath: string, fn: (nsFd: number) => T): T {
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

/**
 * Pins the network namespace of `pid` at `pin` and moves each device into it. On a failure, the devices
 * already moved go back and the pin is dropped.
 */
export function moveIntoContainer(pid: number, devices: NetDevice[], pin: string): void {
  try {
    fs.writeFileSync(pin, '', { mode: 0o400 });
    native().bindMount(`/proc/${pid}/ns/net`, pin);
  } catch (e) {
    fs.rmSync(pin, { force: true });
    throw new RuntimeError(`linux.netDevices: pin the container's network namespace at ${pin}: ${(e as Error).message}`, {
      op: 'netdev',
      path: pin,
    });
  }
  const moved: NetDevice[] = [];
  withNetns(pin, nsFd => {
    for (const d of devices) {
      try {
        native().netdevMove(-1, d.hostName, nsFd, d.name);
      } catch (e) {
        returnToHost(pin, moved);
        throw new RuntimeError(`linux.netDevices: move "${d.hostName}" into the container as "${d.name}": ${(e as Error).message}`, {
          op: 'netdev',
          errno: (e as NodeJS.ErrnoException).code,
        });
      }
      moved.push(d);
    }
  });
}

/**
 * Moves the devices back to the runtime's network namespace under their host names and drops the pin;
 * returns what could not be done (delete goes on regardless).
 */
export function returnToHost(pin: string, devices: NetDevice[]): string[] {
  const failures: string[] = [];
  if (!fs.existsSync(pin)) return failures;
  try {
    withNetns(pin, nsFd => {
      for (const d of [...devices].reverse()) {
        try {
          native().netdevMove(nsFd, d.name, -1, d.hostName);
        } catch (e) {
          failures.push(`network device "${d.name}" could not be moved back to the host as "${d.hostName}": ${(e as Error).message}`);
        }
      }
    });
  } catch (e) {
    failures.push((e as Error).message);
  }
  try {
    native().unmount(pin);
    fs.rmSync(pin, { force: true });
  } catch (e) {
    failures.push(`unpin the container's network namespace at ${pin}: ${(e as Error).message}`);
  }
  return failures;
}
