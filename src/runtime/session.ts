// The conversation with one executor (native/executor), for create, run and exec alike: spawn it with an
// encoded plan, answer its messages (one handler per message type) until it is ready to exec, let it exec,
// and in the foreground wait for it or proxy its terminal. What the runtime makes on the way goes onto one
// undo list, which a failure runs backwards.
import { RuntimeError, describeErrno } from '../errors.js';
import { S_EXEC_LOOKUP, S_MOUNT, S_ROOTFS, S_TEXT } from '../native-abi/abi.gen.js';
import { Msg, native, type ExitStatus, type SyncMessage } from '../native.js';
import type { SeccompPlan } from '../plan/seccomp.js';
import { MountFlag, type PlanStep } from '../plan/types.js';
import { OCI_VERSION, ociState, type ContainerRecord, type Status } from './state.js';

/** Message names, for the session's observer (create's crash points). */
const MSG_NAME: Record<number, string> = Object.fromEntries(Object.entries(Msg).map(([name, type]) => [type, name]));

/**
 * runc's text for proc or sysfs refused on a symlink or a non-directory (R7): the executor names only the
 * destination and the errno, the plan knows the mount. Undefined for any other failure.
 */
function procMountRefusal(m: SyncMessage, steps: PlanStep[]): string | undefined {
  if (!((m.step === S_ROOTFS && m.errname === 'ELOOP') || (m.step === S_MOUNT && (m.errname === 'ELOOP' || m.errname === 'ENOTDIR'))))
    return undefined;
  const step = steps.find(st => st.kind === 'fs' && st.flags & MountFlag.procOrSys && st.dest === m.detail);
  if (!step) return undefined;
  return (
    `error mounting ${JSON.stringify(step.source ?? step.fstype)} to rootfs at ${JSON.stringify(step.dest)}: ` +
    `filesystem ${JSON.stringify(step.fstype)} must be mounted on ordinary directory`
  );
}

/** The error an executor reported, as runc words it; `steps`, the plan's, let a refused proc or sysfs mount read as in runc. */
export function executorError(m: SyncMessage, steps: PlanStep[] = []): RuntimeError {
  const reason = describeErrno(m.errname) ?? (m.errname || `errno ${m.err}`);
  let text: string;
  const procRefusal = procMountRefusal(m, steps);
  if (procRefusal) {
    text = `error during container init: ${procRefusal}`;
  } else if (m.step === S_EXEC_LOOKUP) {
    const name = JSON.stringify(m.detail);
    if (m.err === -1) text = `exec: ${name}: executable file not found in $PATH`;
    else if (m.errname === 'ENOENT' || m.errname === 'ENOTDIR') text = `exec: ${name}: stat ${m.detail}: ${reason}`;
    else text = `exec: ${name}: ${reason}`;
  } else {
    const step = S_TEXT[m.step] ?? `step ${m.step}`;
    text = `error during container init: ${step} ${JSON.stringify(m.detail)}: ${reason}`;
  }
  return new RuntimeError(`unable to start container process: ${text}`, { op: 'init', path: m.detail, errno: m.errname });
}

/** What a failed create or exec takes back, the last thing made first. */
export class Undo {
  private readonly steps: (() => void)[] = [];

  push(step: () => void): void {
    this.steps.push(step);
  }

  /** Runs every step, last first; one that throws is reported to `warn` and the others still run. */
  run(warn: (m: string) => void): void {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        step();
      } catch (e) {
        warn((e as Error).message);
      }
    }
  }

  /** The operation succeeded: what it made stays. */
  clear(): void {
    this.steps.length = 0;
  }
}

/** The runtime's answers to the executor's messages; a message without one is a protocol error. */
export interface Handlers {
  /** MSG_USERNS: the new user namespace (made by process `pid`) waits for its id maps. */
  userns?: (pid: number) => void;
  /** MSG_PID: the process exists and our pidfd holds it; it goes on (MSG_GO) when this returns. */
  pid: (pid: number) => void;
  /** MSG_PREPIVOT: the mounts are done, and pivot_root waits for the hooks that run here. */
  prepivot?: () => void;
  /** MSG_SECCOMP: the filter is loaded; its listener `fd` (closed when this returns) goes to the agent. */
  seccomp?: (fd: number) => void;
  /** MSG_MOUNT_SOURCE: the source of bind step `index`, opened by the runtime; the fd returned goes with the ack. */
  mountSource?: (index: number) => number;
  /** Called every 250 ms while no message comes: a check that throws ends the wait (a frozen cgroup). */
  whileWaiting?: () => void;
}

/** How a session's failures read: the executor gone before it was ready, and an error it reported. */
export interface SessionErrors {
  lost: () => RuntimeError;
  failed: (m: SyncMessage) => RuntimeError;
}

/** A point of the conversation ("spawned", "recv-<message>", "go-sent"), for create's crash points. */
export type Observer = (event: string) => void;

export class Session {
  /** The process the executor reported (a container's init, or an exec'd process), and our pidfd of it. */
  pid = 0;
  pidfd = -1;

  private constructor(
    readonly stagePid: number,
    private stagePidfd: number,
    private sock: number,
    /** Our end of the socket pair a foreground terminal's pty master comes over; -1 without. */
    private consolePeer: number,
    private readonly errors: SessionErrors,
    private readonly observe: Observer,
  ) {}

  /**
   * Spawns the executor with an encoded plan. Once it runs, the fds in `handOver` are its (they are closed
   * here) and the console pair's end in `peer` is the session's: both arrays are emptied, so an undo step of
   * the caller's that closes what they still hold stays right. From then on `undo` kills and reaps what was
   * spawned and closes our ends.
   */
  static spawn(plan: Buffer, o: { handOver: number[]; peer?: number[]; errors: SessionErrors; observe?: Observer }, undo: Undo): Session {
    const a = native();
    const child = a.spawn(plan);
    const s = new Session(child.pid, child.pidfd, child.sock, o.peer?.splice(0)[0] ?? -1, o.errors, o.observe ?? (() => {}));
    undo.push(() => s.abandon());
    s.observe('spawned');
    for (const fd of o.handOver.splice(0)) a.closeFd(fd);
    return s;
  }

  /** Answers the executor's messages until it is ready to exec. */
  untilReady(handlers: Handlers): void {
    const a = native();
    for (;;) {
      if (handlers.whileWaiting) {
        while (!a.waitReadable(this.sock, 250)) handlers.whileWaiting();
      }
      const m = a.recv(this.sock);
      if (m === null) throw this.errors.lost();
      const name = MSG_NAME[m.type] ?? String(m.type);
      this.observe(`recv-${name}`);
      if (m.fd >= 0 && m.type !== Msg.seccomp) a.closeFd(m.fd);
      if (m.type === Msg.error) throw this.errors.failed(m);
      if (m.type === Msg.ready) return;
      if (m.type === Msg.pid) {
        this.adopt(m.pid);
        handlers.pid(m.pid);
        a.send(this.sock, Msg.go);
        this.observe('go-sent');
        continue;
      }
      const unexpected = () =>
        new RuntimeError(`unable to start container process: unexpected ${name} message from the executor`, { op: 'init' });
      if (m.type === Msg.userns) {
        if (!handlers.userns) throw unexpected();
        handlers.userns(m.pid);
      } else if (m.type === Msg.prepivot) {
        if (!handlers.prepivot) throw unexpected();
        handlers.prepivot();
      } else if (m.type === Msg.seccomp) {
        try {
          if (!handlers.seccomp) throw unexpected();
          handlers.seccomp(m.fd);
        } finally {
          if (m.fd >= 0) a.closeFd(m.fd);
        }
      } else if (m.type === Msg.mountSource) {
        if (!handlers.mountSource) throw unexpected();
        const fd = handlers.mountSource(m.pid);
        try {
          a.send(this.sock, Msg.ack, fd);
        } finally {
          a.closeFd(fd);
        }
        continue;
      } else {
        throw unexpected();
      }
      a.send(this.sock, Msg.ack);
    }
  }

  /**
   * Lets the process exec (MSG_START). `confirm`: wait until it has (its end of the socket closes at exec),
   * so that a failed exec is this call's error; otherwise the start is only sent.
   */
  start(confirm: boolean): void {
    const a = native();
    a.send(this.sock, Msg.start);
    const m = confirm ? a.recv(this.sock) : null;
    a.closeFd(this.sock);
    this.sock = -1;
    if (m && m.type === Msg.error) throw this.errors.failed(m);
  }

  /** Foreground: waits for the process (proxying its terminal when it has one) and returns its exit status. */
  waitForeground(): ExitStatus {
    const a = native();
    let status: ExitStatus;
    if (this.consolePeer >= 0) {
      const master = a.recvFd(this.consolePeer);
      this.closePeer();
      status = a.ptyProxy(master, this.pidfd);
      a.closeFd(master);
    } else {
      status = a.waitForeground(this.pidfd);
    }
    this.release();
    return status;
  }

  /** Reaps the process (it exited: a failed exec), and lets go of it. */
  reap(): void {
    try {
      native().wait(this.pidfd);
    } catch {
      /* already reaped */
    }
    this.release();
  }

  /** Done with the process, which carries on (create, a detached run or exec) or is handled elsewhere. */
  release(): void {
    const a = native();
    if (this.sock >= 0) a.closeFd(this.sock);
    this.sock = -1;
    if (this.pidfd >= 0) a.closeFd(this.pidfd);
    this.pidfd = -1;
    this.closePeer();
  }

  /** After a failure: nothing of the session may stay, no process and no fd. */
  private abandon(): void {
    killAndReap([this.stagePidfd, this.pidfd]);
    this.stagePidfd = -1;
    this.pidfd = -1;
    this.release();
  }

  /**
   * The pidfd of the process the executor reported (MSG_PID). When the first stage forked it into a new pid
   * namespace, the first stage exits: it is reaped and its pidfd closed here.
   */
  private adopt(reported: number): void {
    const a = native();
    this.pid = reported;
    if (reported === this.stagePid) {
      this.pidfd = this.stagePidfd;
    } else {
      a.wait(this.stagePidfd);
      a.closeFd(this.stagePidfd);
      this.pidfd = a.pidfdOpen(reported);
    }
    this.stagePidfd = -1;
    if (this.pidfd < 0) throw this.errors.lost();
  }

  private closePeer(): void {
    if (this.consolePeer >= 0) native().closeFd(this.consolePeer);
    this.consolePeer = -1;
  }
}

/** SIGKILLs, reaps and closes the processes behind these pidfds (-1: none). */
function killAndReap(pidfds: number[]): void {
  const a = native();
  for (const pidfd of pidfds) {
    if (pidfd < 0) continue;
    a.pidfdSignal(pidfd, 9);
    try {
      a.wait(pidfd);
    } catch {
      /* not our child any more: it is dying anyway */
    }
    a.closeFd(pidfd);
  }
}

/**
 * The listener fd goes to the agent at listenerPath with the container process state (runtime-spec
 * config-linux.md "seccomp", state.md "ContainerProcessState"), while the container is still being created.
 */
export function sendSeccompListener(
  listener: SeccompPlan['listener'],
  rec: ContainerRecord,
  fd: number,
  status: Status = 'creating',
): void {
  if (fd < 0 || !listener) {
    throw new RuntimeError('unable to start container process: unexpected seccomp listener from the container init', { op: 'init' });
  }
  const processState = {
    ociVersion: OCI_VERSION,
    fds: ['seccompFd'],
    pid: rec.pid,
    metadata: listener.metadata || undefined,
    state: ociState(rec, status),
  };
  try {
    native().sendFdTo(listener.path, JSON.stringify(processState), fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    const reason = describeErrno(code) ?? (e as Error).message;
    // runc's texts (Go's dial error inside), which scripts look for.
    const why =
      (e as NodeJS.ErrnoException).syscall === 'connect'
        ? `failed to connect with seccomp agent specified in the seccomp profile: dial unix ${listener.path}: connect: ${reason}`
        : `cannot send seccomp fd to ${listener.path}: ${reason}`;
    throw new RuntimeError(`unable to start container process: ${why}`, { op: 'seccomp', path: listener.path, errno: code });
  }
}
