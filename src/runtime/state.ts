// The state directory: <root>/<id>/state.json (written atomically), exec.fifo, and a per-container lock.
// Status is computed, never stored: the init pid alone could have been reused, so it is paired with the
// process start time recorded at create. The root is verified once per process (R9: the caller's own, not a
// symlink, no group/other write) and used by its fd.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cgroupFrozen } from '../cgroups/manager.js';
import type { CgroupRecord } from '../cgroups/types.js';
import { RuntimeError, fromSystemError } from '../errors.js';
import { native } from '../native.js';
import { openPrivateDir, verifiedRuntimeDir, type PrivateDir } from '../private-dir.js';
import { TSRT_LCR_FILE, TSRT_TEXT_ID_EMPTY, TSRT_TEXT_ID_FORMAT, TSRT_TEXT_ID_PUNCT, TSRT_TEXT_NOT_EXIST } from '../native-abi/abi.gen.js';
import { fill } from '../native-abi/text.js';
import { recordProblem } from './record-check.js';
import { inUserNamespace } from './host.js';
import type { Hooks, Linux, Process, State } from '../spec/types.gen.js';
import type { ImageRootfsRecord } from './image-rootfs.js';

export const OCI_VERSION = '1.2.0';

export type Status = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

export interface ContainerRecord {
  ociVersion: string;
  id: string;
  pid: number;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
  /** /proc/<pid>/stat starttime of the init, to tell our init from a reused pid. */
  initStartTime: string;
  /** The container has its own pid namespace: kill --all and delete can find every process through it. */
  privatePidns: boolean;
  hooks?: Hooks;
  /** The rootfs was prepared in the runtime's own mount namespace (no mount namespace in the config): delete
   * unmounts what is mounted there. */
  rootfsMountedHere?: boolean;
  /** The rootfs is an image file (SIF, squashfs, ext3) mounted under the state dir: delete unmounts it. */
  imageRootfs?: ImageRootfsRecord;
  /** The container has no mount namespace of its own: its root is a chroot in a shared one. */
  sharedMountns?: boolean;
  /** prestart hooks run at `start` (runtime-spec before 1.0.2) rather than during `create`. */
  prestartAtStart?: boolean;
  /** Created by an unprivileged runtime. */
  rootless: boolean;
  /** linux.netDevices moved into the container: delete moves them back. */
  netDevices?: { hostName: string; name: string }[];
  /** linux.intelRdt: the resctrl groups delete removes. */
  resctrl?: { group: string; createdGroup: boolean; monGroup?: string };
  /** The cgroup create made (or joined), and the resources in force. */
  cgroup?: CgroupRecord;
  /**
   * The config as exec needs it, fixed at create: the process (what exec's flags override), the seccomp
   * profile and process-wide Linux attributes every exec'd process gets, and --no-new-keyring.
   */
  exec: {
    process?: Process;
    linux: Pick<Linux, 'seccomp' | 'personality' | 'memoryPolicy'>;
    /** Whether setgroups(2) works in the container's user namespace (denied for a rootless single-id map). */
    setgroups?: boolean;
    noNewKeyring: boolean;
  };
  /**
   * Set while `create` is still working (it holds the lock meanwhile). The record is saved early and at each
   * step that makes something, so a create killed half-way leaves a record that delete can clean up from.
   */
  creating?: boolean;
}

/** Letters, digits and the punctuation the front door accepts too. */
const ID_PATTERN = new RegExp(`^[A-Za-z0-9${TSRT_TEXT_ID_PUNCT.replace(/[-\]\\^]/g, c => `\\${c}`)}]+$`);

export function validateId(id: string): void {
  if (!id) throw new RuntimeError(TSRT_TEXT_ID_EMPTY, { op: 'id' });
  if (!ID_PATTERN.test(id) || id === '.' || id === '..') {
    throw new RuntimeError(fill(TSRT_TEXT_ID_FORMAT, id), { op: 'id' });
  }
}

/**
 * --rootless: "auto" (runc's default) means unprivileged, or root in a user namespace (rootless podman runs its
 * runtime as uid 0 there): cgroups it may not create are then done without, as for an unprivileged user.
 */
export function rootlessMode(flag: 'auto' | 'true' | 'false', euid = process.geteuid?.() ?? 0, userns = inUserNamespace): boolean {
  if (flag !== 'auto') return flag === 'true';
  return euid !== 0 || userns();
}

const NO_RUNTIME_DIR =
  'an unprivileged tsrt keeps its state in $XDG_RUNTIME_DIR/tsrt: set XDG_RUNTIME_DIR to a directory of yours with mode 0700, or pass --root DIR';

/**
 * The state directory when --root is not given. Root in a user namespace that an unprivileged user made (rootless
 * podman runs its runtime so) cannot write the host's /run: like runc, it takes $XDG_RUNTIME_DIR, unless USER says
 * it is the real root inside, e.g., a container. Without XDG_RUNTIME_DIR an unprivileged caller is refused: a
 * fixed name in a shared directory (the old /tmp/tsrt-<uid>) is one any other user can make first (R9).
 * `runtimeDir` verifies $XDG_RUNTIME_DIR and gives its canonical path.
 */
export function defaultRoot(
  env: NodeJS.ProcessEnv = process.env,
  euid = process.geteuid?.() ?? 0,
  userns = inUserNamespace,
  runtimeDir: (env: NodeJS.ProcessEnv, fix: string) => string = verifiedRuntimeDir,
): string {
  const xdg = env['XDG_RUNTIME_DIR'];
  if (euid === 0 && !(xdg && userns() && env['USER'] !== 'root')) return '/run/tsrt';
  return path.join(runtimeDir(env, NO_RUNTIME_DIR), 'tsrt');
}

/** The state roots this process opened, by the path it was given: verified once, then used by fd. */
const roots = new Map<string, PrivateDir>();

/** The verified state root, made (0700) when `create`; undefined when it does not exist and create is off. */
export function openStateRoot(root: string, create = false): PrivateDir | undefined {
  const key = path.resolve(root);
  let dir = roots.get(key);
  if (!dir) {
    dir = openPrivateDir(key, { what: 'state directory', create, fix: 'use a directory of your own (--root DIR)' });
    if (dir) roots.set(key, dir);
  }
  return dir;
}

/** Start time (field 22), state letter and parent of a process, or undefined when there is none. */
export function procStat(pid: number): { startTime: string; state: string; ppid: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const after = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: after[0] ?? '', startTime: after[19] ?? '', ppid: Number(after[1]) };
}

/** The exec fifo in the container's directory: while it exists, the container is created, not running. */
export const FIFO_NAME = 'exec.fifo';

export class ContainerDir {
  private lockFd = -1;

  constructor(
    readonly root: string,
    readonly id: string,
  ) {
    validateId(id);
  }

  /** The container's directory by its canonical path: what records, mount points and messages name. */
  get dir(): string {
    return path.join(openStateRoot(this.root)?.path ?? path.resolve(this.root), this.id);
  }

  /** `name` in the container's directory, reached through the state root's fd (what this process opens). */
  at(name = ''): string {
    const root = openStateRoot(this.root);
    return root ? root.at(path.join(this.id, name)) : path.join(path.resolve(this.root), this.id, name);
  }

  get statePath(): string {
    return this.at('state.json');
  }

  get fifoPath(): string {
    return this.at(FIFO_NAME);
  }

  exists(): boolean {
    return fs.existsSync(this.statePath);
  }

  /** Makes the directory for a new container; an existing one is an error (runc's message). */
  create(): void {
    const root = openStateRoot(this.root, true)!;
    try {
      fs.mkdirSync(root.at(this.id), { mode: 0o711 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new RuntimeError(`container with id exists: ${this.id}`, { op: 'create', path: this.dir });
      }
      throw fromSystemError('mkdir', this.dir, e);
    }
    this.lock();
  }

  /** Serialises commands on one container (create/start/kill/delete racing each other). */
  lock(): void {
    if (this.lockFd >= 0) return;
    try {
      this.lockFd = native().openDir(this.at());
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notExist();
      throw e;
    }
    native().flock(this.lockFd, true, true);
  }

  unlock(): void {
    if (this.lockFd >= 0) native().closeFd(this.lockFd);
    this.lockFd = -1;
  }

  load(): ContainerRecord {
    let text: string;
    try {
      text = fs.readFileSync(this.statePath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') throw notExist();
      throw fromSystemError('open', path.join(this.dir, 'state.json'), e);
    }
    let rec: unknown;
    try {
      rec = JSON.parse(text);
    } catch {
      const shown = path.join(this.dir, 'state.json');
      throw new RuntimeError(`corrupt state file ${shown}`, { op: 'state', path: shown });
    }
    // Docker 20.10 gives every runtime runc's root (<exec-root>/runtime-runc/moby), where runc keeps its own
    // <id>/state.json. Such an entry is not a container of ours: to tsrt it does not exist, so list skips it
    // and delete --force leaves it alone.
    if (!isOwnRecord(rec)) throw notExist();
    const problem = recordProblem(rec);
    if (problem) {
      const shown = path.join(this.dir, 'state.json');
      throw new RuntimeError(`corrupt state file ${shown}: ${problem}`, { op: 'state', path: shown });
    }
    return rec;
  }

  save(rec: ContainerRecord): void {
    writeFileAtomic(this.statePath, JSON.stringify(rec), 0o600, path.join(this.dir, 'state.json'));
  }

  remove(): void {
    // The lifecycle record and state.json go while we hold the lock, so a command waiting on it finds no
    // container, not a stale one; the record first, so that no record is ever found without its state.json.
    fs.rmSync(this.at(TSRT_LCR_FILE), { force: true });
    fs.rmSync(this.statePath, { force: true });
    this.unlock();
    fs.rmSync(this.at(), { recursive: true, force: true });
  }

  /**
   * For a directory without state.json: waits for the create that holds it, and removes the directory when
   * there is still no state.json then, because that create died before its first record (it made nothing
   * else yet). Returns whether a state.json exists after all.
   */
  settleWithoutRecord(): boolean {
    if (!fs.existsSync(this.at())) return false;
    try {
      this.lock();
    } catch {
      return false; // removed meanwhile: a create that failed cleans up after itself
    }
    if (this.exists()) return true;
    this.remove();
    return false;
  }

  /** Whether another process holds the lock (a create, or a command on the container, is in progress). */
  private lockedElsewhere(): boolean {
    if (this.lockFd >= 0) return false;
    let fd: number;
    try {
      fd = native().openDir(this.at());
    } catch {
      return false;
    }
    try {
      return !native().flock(fd, true, false);
    } finally {
      native().closeFd(fd);
    }
  }

  status(rec: ContainerRecord): Status {
    // A record still marked creating whose lock is free belongs to a create that died: never usable.
    if (rec.creating) return this.lockedElsewhere() ? 'creating' : 'stopped';
    if (rec.pid <= 0) return 'stopped';
    const st = procStat(rec.pid);
    if (!st || st.startTime !== rec.initStartTime || st.state === 'Z' || st.state === 'X') return 'stopped';
    if (cgroupFrozen(rec.cgroup)) return 'paused';
    if (fs.existsSync(this.fifoPath)) return 'created';
    return 'running';
  }
}

/** A state.json tsrt wrote: it always records the init's start time (runc's has init_process_start). */
function isOwnRecord(rec: unknown): rec is ContainerRecord {
  return !!rec && typeof rec === 'object' && typeof (rec as ContainerRecord).initStartTime === 'string';
}

export function notExist(): RuntimeError {
  return new RuntimeError(TSRT_TEXT_NOT_EXIST, { op: 'state', errno: 'ENOENT' });
}

/** Writes file by a rename from a temporary beside it; errors name `shown` (file reached through a dir fd has an unreadable name). */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600, shown = file): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const fd = fs.openSync(tmp, 'w', mode);
    try {
      // Blocks allocated before the write: ext4 (this host's /run) otherwise flushes the new file's delayed
      // allocation in the rename that replaces the old one, 1.5 ms median and up to 9 ms per save; allocated
      // up front the rename costs ~0.03 ms. create saves the record five times.
      native().allocate(fd, bytes.length);
      for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw fromSystemError('write', shown, e);
  }
}

/** The runtime-spec's state document as runc prints it: with runc's rootfs, created and owner, and "paused". */
export interface OciState extends Omit<State, 'status'> {
  status: Status;
  pid: number;
  rootfs: string;
  created: string;
  owner: string;
}

/** The OCI state document, in runc's field order. */
export function ociState(rec: ContainerRecord, status: Status): OciState {
  const out: OciState = {
    ociVersion: rec.ociVersion,
    id: rec.id,
    pid: status === 'stopped' ? 0 : rec.pid,
    status,
    bundle: rec.bundle,
    rootfs: rec.rootfs,
    created: rec.created,
    owner: rec.owner,
  };
  if (rec.annotations && Object.keys(rec.annotations).length) out.annotations = rec.annotations;
  return out;
}

/** Ids with a state.json under the root ([] when the root does not exist; a root that fails its checks throws). */
export function listIds(root: string): string[] {
  const dir = openStateRoot(root);
  if (!dir) return [];
  try {
    return fs
      .readdirSync(dir.at(''))
      .filter(n => ID_PATTERN.test(n) && fs.existsSync(dir.at(`${n}/state.json`)))
      .sort();
  } catch {
    return [];
  }
}
