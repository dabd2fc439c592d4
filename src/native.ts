// The only importer of the addon. Everything here is synchronous: the CLI is a short-lived process, and
// libuv-free calls also work in the Bun-compiled executable.
import { createRequire } from 'node:module';
import {
  MSG_ACK,
  MSG_ERROR,
  MSG_GO,
  MSG_MOUNT_SOURCE,
  MSG_PID,
  MSG_PREPIVOT,
  MSG_READY,
  MSG_SECCOMP,
  MSG_START,
  MSG_USERNS,
} from './native-abi/abi.gen.js';
import type { SeccompFilter } from './plan/seccomp.js';

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
  /** An fd passed with the message (MSG_SECCOMP), else -1. */
  fd: number;
}

export interface ExitStatus {
  /** The exit code, or 128+N for a signal, as a shell reports it. */
  code: number;
  signal: number;
}

/** A seccomp program a joined program gets right before its execve (startContainer hooks). */
export interface SeccompForHook {
  seccomp: Buffer;
  /** SECCOMP_FILTER_FLAG_* for seccomp(2); never NEW_LISTENER: nobody would answer a hook's notifications. */
  seccompFlags: number;
  /** The container process's no_new_privs, which the filter was written for. */
  noNewPrivs: boolean;
}

/** What checkPlan reports of a plan the C decoder accepted. */
export interface DecodedPlan {
  steps: number;
  args: number;
  env: number;
  rootfs: string;
  cwd: string;
  join: string[];
  /** The arguments' bytes, NULs not counted. */
  argBytes: number;
}

/** A program to run inside the namespaces (CLONE_NEW* flags) of a container process. */
export interface JoinedRun extends Partial<SeccompForHook> {
  pid: number;
  nsFlags: number;
  path: string;
  args: string[];
  env: string[];
  input: string;
  timeoutMs: number;
  /** Working directory, entered after joining (a path in the joined mount namespace). */
  cwd?: string;
}

export interface Addon {
  spawn(plan: Buffer): SpawnResult;
  checkPlan(plan: Buffer): string | DecodedPlan;
  recv(sock: number): SyncMessage | null;
  /** A message of `type`; `fd`, when given, goes with it (SCM_RIGHTS). */
  send(sock: number, type: number, fd?: number): void;
  wait(pidfd: number): ExitStatus;
  waitForeground(pidfd: number): ExitStatus;
  ptyProxy(master: number, pidfd: number): ExitStatus;
  runJoined(req: JoinedRun): ExitStatus & { timedOut: boolean; output: string };
  /** open(path, O_PATH) in the mount namespace of `pid`, with the runtime's own credentials. */
  openInMountns(pid: number, path: string): number;
  /** Writes /proc/<pid>/<name> through a handle verified to be procfs (R2). */
  procWrite(pid: number, name: string, data: string): void;
  pidfdOpen(pid: number): number;
  pidfdSignal(pidfd: number, sig: number): number;
  pidfdExited(pidfd: number, timeoutMs?: number): boolean;
  makeFifo(path: string, mode: number): number;
  startFifo(path: string, pidfd: number): 'ok' | 'stopped' | 'missing';
  connectUnix(path: string): number;
  /** Whether `fd` becomes readable (or hits EOF/an error) within timeoutMs. */
  waitReadable(fd: number, timeoutMs: number): boolean;
  socketPair(): [number, number];
  recvFd(sock: number): number;
  /** Connects to a unix socket, sends data with fd attached (SCM_RIGHTS), disconnects. */
  sendFdTo(path: string, data: string, fd: number): void;
  /** libseccomp: a seccomp descriptor (plan/seccomp.ts) to BPF; throws with `where` (a JSON pointer). */
  compileSeccomp(filter: SeccompFilter): Buffer;
  /** libseccomp's version and the SECCOMP_FILTER_FLAG_* bits this kernel accepts. */
  seccompInfo(): { version: string; supportedFlags: number };
  flock(fd: number, exclusive: boolean, wait: boolean): boolean;
  openDir(path: string): number;
  /** fallocate(fd, 0, 0, length): false where the filesystem cannot allocate ahead. */
  allocate(fd: number, length: number): boolean;
  closeFd(fd: number): void;
  /** Moves a network interface between namespaces (fds; -1 = the caller's own), renamed, addresses kept. */
  netdevMove(fromNs: number, name: string, toNs: number, newName: string): void;
  /** A new user namespace (fd) with these uid_map/gid_map contents, for idmapped mounts. */
  idmapUserns(uidMap: string, gidMap: string): number;
  /** mount(source, target, MS_BIND). */
  bindMount(source: string, target: string): void;
  /** umount2(target, MNT_DETACH); not mounted is fine. */
  unmount(target: string): void;
  /** mount(device, target, fsType, MS_NODEV, plus MS_RDONLY when readOnly): a block device, no child process. */
  mountDevice(device: string, target: string, fsType: string, readOnly: boolean): void;
  /** umount2(target, UMOUNT_NOFOLLOW): a busy or absent mount throws, as umount(8) fails. */
  unmountNow(target: string): void;
  /**
   * A free loop device backed by the open file `fd` at [offset, offset+size), autoclear: `fd` of the device
   * holds it until the caller has mounted it and closes it.
   */
  loopAttach(fd: number, offset: number, size: number, readOnly: boolean): { device: string; fd: number };
  /** Loads a cgroup device eBPF program and attaches it to a cgroup2 directory, replacing the old ones. */
  attachDeviceFilter(cgroupDir: string, insns: Buffer): number;
}

export const Msg = {
  userns: MSG_USERNS,
  pid: MSG_PID,
  prepivot: MSG_PREPIVOT,
  ready: MSG_READY,
  error: MSG_ERROR,
  seccomp: MSG_SECCOMP,
  mountSource: MSG_MOUNT_SOURCE,
  ack: MSG_ACK,
  go: MSG_GO,
  start: MSG_START,
} as const;

let loaded: Addon | undefined;

/** Loaded on first use so that commands which never clone (state, list, spec) do not pay for dlopen. */
export function native(): Addon {
  if (!loaded) {
    // Under Bun this literal require is what `bun build --compile` embeds into the single executable;
    // under Node (library use, tests) the addon is loaded from the build tree.
    loaded = (
      process.versions.bun ? require('../build/Release/tsrt.node') : createRequire(import.meta.url)('../build/Release/tsrt.node')
    ) as Addon;
  }
  return loaded;
}
