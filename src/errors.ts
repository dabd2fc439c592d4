// One error type for the whole runtime. The CLI edge prints `message` exactly as runc would, so engines that
// match on runc's texts ("container does not exist", "container not running") keep working.
import * as os from 'node:os';

export class RuntimeError extends Error {
  /** The operation that failed, e.g. "mount", "create", "config.json". */
  readonly op: string;
  /** A host path, a path inside the rootfs or a JSON pointer; empty when nothing more precise applies. */
  readonly path: string;
  /** The errno name (ENOENT, EPERM, ...) when the failure came from the kernel. */
  readonly errno: string;

  constructor(message: string, opts: { op?: string; path?: string; errno?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RuntimeError';
    this.op = opts.op ?? '';
    this.path = opts.path ?? '';
    this.errno = opts.errno ?? '';
  }
}

/** Config validation failures: the message names the file, the JSON pointer and the broken rule. */
export class SpecError extends RuntimeError {
  constructor(message: string, pointer = '') {
    super(message, { op: 'config.json', path: pointer });
    this.name = 'SpecError';
  }
}

/**
 * A config that breaks a rule of ours: `<file>: <JSON pointer>: <what is wrong>`, the shape schema errors have,
 * with the pointer in `path`. Texts that are runc's own (scripts match them) stay as runc words them: those
 * are a SpecError with the pointer in `path` only.
 */
export function configError(pointer: string, message: string, file = 'config.json'): SpecError {
  return new SpecError(`${file}: ${pointer || '/'}: ${message}`, pointer);
}

/** One reference token of a JSON pointer (RFC 6901): a map key may hold '/' and '~'. */
export function pointerToken(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

/**
 * Wrap a Node fs error so the message reads like runc's `action path: strerror`; `op` is the action unless a
 * caller files it under a subsystem ("cgroup").
 */
export function fromSystemError(action: string, path: string, err: unknown, op = action): RuntimeError {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : '';
  const reason = describeErrno(code) ?? (e instanceof Error ? e.message : String(err));
  return new RuntimeError(`${action} ${path}: ${reason}`, { op, path, errno: code, cause: err });
}

const errnoText: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EEXIST: 'file exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EINVAL: 'invalid argument',
  ELOOP: 'too many levels of symbolic links',
  EXDEV: 'invalid cross-device link',
  EBUSY: 'device or resource busy',
  ESRCH: 'no such process',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  ENOEXEC: 'exec format error',
  ENOSYS: 'function not implemented',
  EAGAIN: 'resource temporarily unavailable',
  EBADF: 'bad file descriptor',
  ENXIO: 'no such device or address',
  ENODEV: 'no such device',
  ETXTBSY: 'text file busy',
  E2BIG: 'argument list too long',
  ENAMETOOLONG: 'file name too long',
  ENOTSUP: 'operation not supported',
  EOPNOTSUPP: 'operation not supported',
};

/** errno names by number (the first name of those that share one: EAGAIN, not EWOULDBLOCK). */
const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(os.constants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);

/** The name of an errno number a native call returned (negated), "errno N" for one this platform lacks. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

export function describeErrno(code: string): string | undefined {
  return errnoText[code];
}
