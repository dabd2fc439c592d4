// The only importer of the addon. Everything here is synchronous: the CLI is a short-lived process, and
// libuv-free calls also work in the Bun-compiled executable.
import { createRequire } from 'node:module';

export interface SpawnResult {
  pid: number;
  pidfd: number;
  sock: number;
}

export interface SyncMessage {
  type: number;
  step: number;
  err: number;
  errname: string;
  pid: number;
  detail: string;
}

export interface ExitStatus {
  /** The exit code, or 128+N for a signal, as a shell reports it. */
  code: number;
  signal: number;
}

export interface Addon {
  spawn(plan: Buffer): SpawnResult;
  checkPlan(plan: Buffer): string | { steps: number; args: number; rootfs: string };
  recv(sock: number): SyncMessage | null;
  send(sock: number, type: number): void;
  wait(pidfd: number): ExitStatus;
  waitForeground(pidfd: number): ExitStatus;
  ptyProxy(master: number, pidfd: number): ExitStatus;
  pidfdOpen(pid: number): number;
  pidfdSignal(pidfd: number, sig: number): number;
  pidfdExited(pidfd: number, timeoutMs?: number): boolean;
  makeFifo(path: string, mode: number): number;
  startFifo(path: string, pidfd: number): 'ok' | 'stopped' | 'missing';
  connectUnix(path: string): number;
  socketPair(): [number, number];
  recvFd(sock: number): number;
  flock(fd: number, exclusive: boolean, wait: boolean): boolean;
  openDir(path: string): number;
  closeFd(fd: number): void;
  /** Loads a cgroup device eBPF program and attaches it to a cgroup2 directory, replacing the old ones. */
  attachDeviceFilter(cgroupDir: string, insns: Buffer): number;
}

export const Msg = {
  userns: 1,
  pid: 2,
  prepivot: 3,
  ready: 4,
  error: 5,
  ack: 16,
  go: 17,
  start: 18,
} as const;

let loaded: Addon | undefined;

/** Loaded on first use so that commands which never clone (state, list, spec) do not pay for dlopen. */
export function native(): Addon {
  if (!loaded) {
    // Under Bun this literal require is what `bun build --compile` embeds into the single executable;
    // under Node (library use, tests) the addon is loaded from the build tree.
    loaded = (process.versions.bun
      ? require('../build/Release/tsrt.node')
      : createRequire(import.meta.url)('../build/Release/tsrt.node')) as Addon;
  }
  return loaded;
}
